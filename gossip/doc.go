// Package gossip owns what p2pshare nodes learn of each other first hand:
// the members table (alive, suspect, dead, left) and its stream of
// membership events, kept by a failure detector; the membership topic
// (/p2pshare/members/1) on GossipSub and the direct protocols of the
// failure detector that it runs on (/p2pshare/swim/stream/1.0.0, one
// long-lived stream per member for its pings and answers, and
// /p2pshare/swim/1.0.0, a stream per message, for table exchanges, a
// leaver's goodbye and nodes of earlier releases); and the clock
// protocol (/p2pshare/clock/1), by which a node estimates the offset of
// its members' clocks to its own.
//
// The failure detector is package swim's core (SWIM with Lifeguard's
// extensions; its package comment gives the reasoning), which this
// package runs on libp2p. One goroutine, the loop, owns the core: it
// hands it the topic's messages, the direct messages, the network's
// evidence and its timers, one at a time, sends what the core asks for
// (direct messages on bounded goroutines, published ones in order through
// one publisher), and publishes the members table that readers see as an
// immutable copy. Each node pings the members it watches every
// ProbeInterval and keeps its connections to them protected from the
// connection manager; an unanswered ping is retried through other members,
// then suspected on the topic, and the suspicion ends in dead unless the
// member refutes it with a higher incarnation (taken from the node's
// Incarnations counter). A silent member is found in a few seconds
// whatever N.
//
// Connection evidence hastens this. When the last TCP connection to a
// member drops, the node dials the member's TCP addresses: a refusal (no
// process listens there any more) makes it suspect the member at once
// (the core decides who says so on the topic), and a node that hears the
// suspicion and has no TCP connection to the member dials the TCP
// addresses the member announced itself, or, knowing none, has the core
// ask the member's neighbours for their refusals; refusals from
// Confirmations distinct peers, its own among them, make it dead at once.
// No answer at all makes the node probe the member at once.
//
// A node joins by announcing itself on the topic and exchanging tables
// with the members it meets there (anti-entropy), and does so again with
// a member its table holds dead when it meets it (a healed partition):
// each side learns that the other declared it dead, and refutes. Rare
// heartbeats carry a node's addresses and facts, its network coordinate
// (package gossip/coord, Config.Coordinates), which the table keeps with
// each member so the node can estimate the RTT to members it never
// measured, and the latest changes it knows. Members dead or left for
// ForgetAfter are forgotten.
//
// Nodes of the earlier release, whose detector judged silence by frequent
// heartbeats, understand every message published here (wire.go); they do
// not serve the direct protocol, so they are pinged with libp2p pings and
// not asked to relay pings.
//
// gossip depends on libp2p's core interfaces, its ping protocol,
// go-libp2p-pubsub, go-multiaddr, go-multistream, and the project's
// goroutine group, socket errors, failure detector and network
// coordinates (packages internal/bg, internal/oserr, gossip/swim,
// gossip/coord); it imports no other p2pshare package. The node package
// gives it a host and a PubSub.
package gossip
