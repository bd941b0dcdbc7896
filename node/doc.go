// Package node owns a p2pshare node's process-wide state: its repo (identity
// key, lock, API address and token files), the libp2p host (TCP and QUIC,
// TLS then Noise, yamux, a connection manager), the Kademlia DHT in server
// mode under the private /p2pshare protocol prefix, bootstrap and mDNS
// discovery, and the peers table. Node wires the share service onto them and
// implements the api.API that the daemon serves and the CLI calls.
package node
