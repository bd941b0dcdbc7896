// Package kv owns p2pshare's replicated key-value store: signed records
// ordered by a hybrid logical clock (last writer wins; ties by writer peer
// ID, then by the signed bytes), kept in a crash-safe local copy on every
// node, spread on the GossipSub topic /p2pshare/kv/1, caught up by an
// anti-entropy exchange of digests over the stream protocol
// /p2pshare/kv-sync/1.0.0, and, for the user and name namespaces, put in
// the DHT under /p2pshare-kv/ (with the DHT's Validator for them, which
// orders records the same way) so a node lacking a key or a name can still
// find it.
//
// The same machinery carries the network's catalog: the "name" namespace
// maps each shared name to its CID and size (written by its publisher: the
// one record of a name in the network, checked by catalog.ValidateName
// wherever it is written or received), and the "hold" namespace records
// which peers hold which CID (each written by the holder itself). Every
// node therefore lists and searches every name without asking anyone. The
// "revoke" namespace carries the network authority's revocations.
//
// kv depends on libp2p's core interfaces, go-libp2p-pubsub, go-cid, bbolt,
// the project's catalog vocabulary (package catalog) and its goroutine
// group (package internal/bg) only.
package kv
