// Package share owns a node's files: the content store on disk (bytes kept
// under their CID, metadata in an embedded bbolt database, with the names
// this node published); sharing names and resolving them through the
// network's catalog (the Directory: a name's one record is the catalog's,
// gossiped, with a copy in the DHT that a node which has not heard the name
// falls back on); the transfer protocol /p2pshare/get/1.0.0 that serves held
// bytes to peers; the fetch logic that takes its providers from the
// holders the catalog knows to be live (from the DHT's provider records
// only if there are none or all of them fail), orders them by measured RTT
// and streams a file one-to-one from the best of them, verified against its
// CID (into a file a later get resumes if this one is cut, and, for a
// reader following the transfer, through a Tee from memory); replication,
// which keeps R verified copies of every file (/p2pshare/replicate/1.0.0:
// repairs below R, trims above it); and the scrub.
//
// Every copy is checked. A holder hashes what it serves as it serves it and
// holds back the last bytes until the hash matched; a background scrub
// re-hashes every held file at a bounded rate (Config.ScrubRate), the one
// verified longest ago first; a copy is verified before it is pushed to
// another node. A copy that fails is quarantined (moved to the store's
// quarantine/ directory), its holding withdrawn from the catalog, and a
// good copy fetched from another holder. A getter that received a whole
// transfer that does not hash to its CID tells the provider (which
// re-hashes, and trusts nothing else) and tries it last for a while.
//
// The rule for counting copies: a holding in the catalog is a verified
// holder. A node records a holding only for a copy it hashed when it
// stored it, keeps re-verifying it (on every serve, every ScrubInterval
// by the scrub, before every push), and withdraws the holding as soon as
// the copy fails. Replication counts live holders from the catalog, so a
// rotten copy stops counting toward R once its holder has found it bad,
// and repair copies only from a copy its pusher verified; the receiver
// verifies again against the CID.
//
// share depends on libp2p's core interfaces (host, network, peerstore,
// routing) and its ping protocol (to measure RTTs), go-cid and
// go-multihash, bbolt, golang.org/x/time/rate (the scrub's pace), the
// project's catalog vocabulary (package catalog), its goroutine group
// (package internal/bg) and its writer around the page cache (package
// internal/direct); it imports neither gossip nor node. The node
// package wires it to a concrete host, the DHT (Routing) and gossip/kv's
// catalog (Directory).
package share
