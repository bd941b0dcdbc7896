// Package swim is p2pshare's members table and failure detector as a pure
// state machine: SWIM with Lifeguard's extensions, with an injected clock
// and transport and no libp2p inside. The node's adapter feeds it the
// messages of the membership topic and of the ping protocol, the network
// layer's evidence, and timer ticks; the simulator in testnet/cmd/membersim
// runs the same core for thousands of members in virtual time.
//
// Members and states. Each member is alive, suspect, dead or left, at an
// incarnation that only its owner raises. A higher incarnation wins; at
// the same incarnation left > dead > suspect > alive. A member that hears
// itself suspected or declared dead refutes with a higher incarnation
// (an Alive message; NextInc may pick a higher one still, from a counter
// that survives restarts); left is final for its incarnation.
//
// Watchers. Each member is watched by the Watchers (k = 3) members before
// it on a ring of the live members ordered by a hash of their IDs; every
// node computes the ring from its own table and pings its k successors
// every ProbePeriod. SWIM's other choice, one random target per period,
// finds a silent member after a geometric number of periods (a long
// tail: the p99 is several times the median) and makes every node dial
// members it is not connected to. On the ring every member is pinged k
// times per period by the same few nodes, so detection is bounded (the
// first ping after the silence comes within a period, from whichever
// watcher's phase is next) and the node's adapter can keep protected
// connections to exactly its k successors: an idle node's cost is O(k)
// whatever N (WatchedBy gives the other side: the members that watch
// this node). Views of the ring differ a little during churn; a member
// then has a watcher more or less for a moment, never none for long.
//
// Probes. A ping unanswered within ProbeTimeout is retried through Helpers
// members (ping-req; only those that CanRelay, when it is set): the
// target's other watchers first, which keep a connection to it, then
// members this node is connected to, then any, each of which pings the
// target and answers with an Ack, or a Nack when
// the target did not answer it either. When
// the round ends unanswered, with at least one Nack, the watcher suspects
// the target and publishes a Suspect message. A ping that has to dial
// first (Connected says no connection is open) is allowed DialTimeout
// more, and so is a round that no helper has nacked yet: a dial is slow
// for every watcher at once on a busy machine, and is not the target's
// silence.
//
// Ping timeouts that follow the answers. ProbeTimeout and IndirectTimeout
// are floors: each node times the answers to its pings (its probes' and
// its relayed ones', late answers included; not those that waited for a
// dial, nor a helper's, nor those of a member it holds suspect or dead,
// which stalled) and waits, as TCP does before it retransmits,
// srtt + 4·rttvar of them, at most MaxPingTimeout (a ping-req round twice
// that). A machine so loaded that every process waits hundreds of
// milliseconds for its turn, or a WAN, makes every member's answers late
// at once; the timeouts stretch with them rather than turn each late
// answer into an accusation, whose suspicion, refutation and rejoin add
// to the load that made the answer late. A member that stops answering
// gives no answer to time: it is suspected within the capped rounds.
//
// Buddy system (Lifeguard). The accuser sends its Suspect message to the
// suspect too, and the suspect's watchers send it with each ping while
// the suspicion runs, so a member that is slow but running hears of it at
// once and refutes; it sends its refutation to the accuser directly as
// well as to all, and tells a member that accuses it at an incarnation
// already refuted which one it is at.
//
// Suspicion timeout (Lifeguard). Each node starts a timer when it first
// hears a suspicion, and counts distinct accusers. With C confirmations
// (accusers after the first) and K = k-1 expected, the timeout is
// max(min, max - (max-min)·log(C+1)/log(K+1)), min = SuspicionMin·log10 N
// and max = SuspicionMaxMult·min: a suspicion nobody confirms waits long
// enough for a refutation, one that every watcher confirms ends fast.
// When it ends the member is dead on that node; the first accuser
// publishes a Dead message for nodes that missed the suspicions, unless
// refusals ended it (see Evidence): those were published, and end it
// wherever they arrive.
//
// Local health (Lifeguard's LHM). A node whose own timers fire late
// (LateSlack), whose ping-req helpers do not even answer with a Nack, or
// which hears itself suspected, raises its local health multiplier (to
// MaxLHM); each answered probe lowers it. Its probe and suspicion
// timeouts are stretched by 1+LHM, a probe timed out by a late timer
// concludes nothing, and from AccuseLimit on it accuses nobody: an
// overloaded node doubts itself before others. A member that has just
// joined, and is at its busiest, is not accused on unanswered probes for
// JoinGrace.
//
// Evidence. The network layer's fast paths are inputs that can only
// hasten a suspicion: EvidenceReset (the last connection to a member was
// reset) probes it at once, unless this node's local health multiplier
// is up, EvidenceRefused (a re-dial was refused)
// suspects it at once, as a failed probe would, and says so in the
// Suspect message. A refusal is proof that no process listens at the
// member's address: refusals from Confirmations distinct members (or
// from every other live member, if fewer) end the suspicion at once, which
// is how a crashed process, whose kernel resets its connections, is dead
// everywhere within milliseconds. A crash reaches every member connected
// to the process and every member that checks its port on hearing the
// suspicion, and each counts its own refusal: so only the
// Confirmations-1 watchers nearest the member on the ring publish theirs
// at once, and with its own that makes Confirmations on every member
// that checked. The next watcher sends its refusal to those first ones
// directly (they need one more) and publishes it RefusalHold/2 later,
// for the members that cannot check; a member that cannot check (it
// knows no address the member announced itself, see CannotCheck) asks
// the member's neighbours for their refusals at once, and one that found
// the port refused answers a ping-req with its refusal. Every other
// member suspects it at once too but holds its publication back for
// RefusalHold to twice that, and publishes it then only if fewer than
// Confirmations others have (nor a death). A crash's busiest
// milliseconds carry one publication (with the default Confirmations of
// 2), not one from every member: each delivery of a message costs every
// member CPU, and on a busy machine that is what a crash's news waits
// on.
//
// Healing. For DeadProbeFor after a member is declared dead, each node
// pings it in a period with probability Watchers/(N-1), so about Watchers
// nodes a period do, whatever N: a member wrongly declared dead because
// it was busy is not then dialled by every node at once. A member that
// answers (a healed
// partition, a wrong verdict) is told it was declared dead, as is any
// member suspected or declared dead that is heard from, and refutes.
// A member dead or left for ForgetAfter is dropped from the table.
//
// Dissemination. Suspect, Alive, Dead and Leave messages are published
// to all (GossipSub) when they happen. Heartbeats are rare, every
// max(HeartbeatMin, N/HeartbeatRate) with N the live members (as in the
// suspicion timeout), so the whole network sends
// HeartbeatRate of them a second; each carries the sender's incarnation
// and the latest changes it knows, for nodes that missed a message. A
// joiner announces itself with an Alive and catches up on the table by
// anti-entropy: a full table exchange with one member (Join).
package swim
