// Package gossip owns what p2pshare nodes tell each other over GossipSub:
// the membership topic (/p2pshare/members/1), whose signed heartbeats,
// suspicions and goodbyes build each node's members table (alive, suspect,
// dead, left) and its stream of membership events.
//
// Failure detection combines two signals. Heartbeats: a member silent for
// TFail is suspect, for 2·TFail dead. Connection evidence: when the last
// connection to a member drops and an immediate re-dial fails, the node
// suspects it at once and says so on the topic; a member suspected by
// enough distinct peers is dead without waiting for the timers. Any newer
// heartbeat signed by the member itself refutes a suspicion, and a node that
// hears itself suspected raises its incarnation and answers at once.
//
// gossip depends on libp2p's core interfaces, go-libp2p-pubsub and the
// project's goroutine group (package internal/bg) only.
package gossip
