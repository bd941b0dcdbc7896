// Package gossip owns what p2pshare nodes learn of each other first hand:
// the membership topic (/p2pshare/members/1) on GossipSub, whose signed
// heartbeats, suspicions and goodbyes build each node's members table
// (alive, suspect, dead, left) and its stream of membership events; the
// probes of late members (libp2p pings); and the clock protocol
// (/p2pshare/clock/1), by which a node estimates the offset of its
// members' clocks to its own. Heartbeats also carry the sender's network
// coordinate (package gossip/coord, Config.Coordinates), which the table
// keeps with each member so the node can estimate the RTT to members it
// never measured.
//
// Failure detection combines three signals. Heartbeats: a member silent
// for TFail is suspect, for 2·TFail dead, TFail stretched to at least 3 of
// the member's announced periods (the period grows with N, see Config).
// Connection evidence: when the last TCP connection to a member drops, the
// node dials the member's TCP addresses; a refusal (no process listens
// there any more) makes it suspect the member at once and say so on the
// topic, and a node that hears the suspicion and has no TCP connection to
// the member dials the TCP addresses of the member's last heartbeat
// itself. Probes: a member late for its heartbeat is pinged, and a ping
// unanswered in time is evidence like a refusal. A member suspected on
// evidence by Confirmations distinct peers is dead without waiting for the
// timers. Any newer heartbeat signed by the member itself refutes a
// suspicion, and a node that hears itself suspected raises its incarnation
// and answers at once.
//
// gossip depends on libp2p's core interfaces, its swarm (to clear a dial
// backoff) and ping protocol, go-libp2p-pubsub, go-multiaddr and the
// project's goroutine group (package internal/bg) and its own
// sub-package coord; it imports no other p2pshare package. The node
// package gives it a host and a PubSub.
package gossip
