// Package share owns a node's files: the content store on disk (bytes kept
// under their CID, metadata in an embedded bbolt database), the name records
// that map a human name to a CID, the transfer protocol /p2pshare/get/1.0.0
// that serves held bytes to peers, and the fetch logic that finds providers
// in the DHT, orders them by measured RTT and streams a file one-to-one from
// the best of them, verified against its CID.
//
// share depends on libp2p's core interfaces (host.Host, routing) only; the
// node package wires it to a concrete host and DHT.
package share
