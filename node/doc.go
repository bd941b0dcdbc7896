// Package node owns a p2pshare node's process-wide state and puts its parts
// together: its repo (layout version and the upgrade of older layouts,
// identity key, lock, incarnation, API address and token files; its bbolt
// databases checked by package boltcheck before they are opened), the libp2p
// host (TCP and QUIC, or TCP only with the swarm key of a private network;
// TLS then Noise; yamux; a connection manager and a resource manager; the
// admission gate of package admit when the network has an authority or an
// allowlist; relays and hole punching for nodes behind NATs), the Kademlia
// DHT in server mode under the private /p2pshare protocol prefix, the peers
// table with its RTTs, and the node's Prometheus metrics. On them it builds
// GossipSub, membership (package gossip), the key-value store and catalog
// (package gossip/kv) and the share service (package share), each given its
// collaborators when it is built, then the peering part (bootstrap, rejoin,
// ping and mDNS); Close closes them in the reverse order. CoreAPI, beside
// the Node, implements the api.API that the daemon serves and the CLI calls.
package node
