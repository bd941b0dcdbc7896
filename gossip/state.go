package gossip

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// State is what this node believes of a member.
type State int

// Member states, in the order of package swim's (the core's): at the
// same incarnation a later one wins.
const (
	StateAlive   State = iota // answers its watchers' pings, or announced itself
	StateSuspect              // a watcher could not reach it, directly or through others
	StateDead                 // suspected until the suspicion timed out, or its port refused
	StateLeft                 // said goodbye
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// EventKind is what changed about a member.
type EventKind int

// Event kinds.
const (
	EventJoined     EventKind = iota // first heard of
	EventSuspect                     // alive -> suspect
	EventAliveAgain                  // suspect -> alive: it refuted the suspicion
	EventDead                        // -> dead
	EventLeft                        // said goodbye
	EventRejoined                    // back after dead or left, with a new incarnation (a restart, or a refuted death)
)

func (k EventKind) String() string {
	switch k {
	case EventJoined:
		return "joined"
	case EventSuspect:
		return "suspect"
	case EventAliveAgain:
		return "alive-again"
	case EventDead:
		return "dead"
	case EventLeft:
		return "left"
	case EventRejoined:
		return "rejoined"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one membership change.
type Event struct {
	Peer peer.ID
	Kind EventKind
	Inc  uint64
	At   time.Time
}

// Member is this node's view of one member. Its facts come from the
// member's last heartbeat: a member known only from others' news or a
// table exchange has none yet, and the addresses another member gave.
type Member struct {
	ID       peer.ID
	State    State
	Inc, Seq uint64    // Seq: of the last message of the member on the topic
	LastSeen time.Time // last message received from the member itself (zero if none yet)
	Since    time.Time // when State was entered
	// Period is the member's announced heartbeat period.
	Period    time.Duration
	Addrs     []string
	Files     int
	FreeBytes int64
	RTT       time.Duration // from the peerstore, 0 if unknown
	// Coord is the network coordinate of the member's last heartbeat,
	// nil if it carried none (or an invalid one). It is shared between
	// copies of the table: never modify it.
	Coord *coord.Coordinate
	// Offset is how far the member's clock is ahead of this node's
	// (negative: behind), when OffsetKnown (see Offsets); 0 for this node.
	Offset      time.Duration
	OffsetKnown bool
	Self        bool

	ownAddrs bool // Addrs came from the member itself, not from another's table
	// seen holds LastSeen, in Unix nanoseconds, for the loop to update and
	// readers to load: the loop's record and every published copy of it
	// share it, so a ping or an ack (several a second) changes it without
	// a new copy of the table. LastSeen is filled in from it when a
	// Member is handed out.
	seen *atomic.Int64
}

// sameMember reports whether a and b hold the same view of a member, so
// a table may keep a's copy for b. TestSameMemberSeesEveryField keeps it
// in step with Member's fields.
func sameMember(a, b *Member) bool {
	return a.ID == b.ID && a.State == b.State && a.Inc == b.Inc && a.Seq == b.Seq &&
		a.LastSeen.Equal(b.LastSeen) && a.Since.Equal(b.Since) && a.Period == b.Period &&
		slices.Equal(a.Addrs, b.Addrs) && a.Files == b.Files && a.FreeBytes == b.FreeBytes &&
		a.RTT == b.RTT && a.Coord == b.Coord && a.Offset == b.Offset && a.OffsetKnown == b.OffsetKnown &&
		a.Self == b.Self && a.ownAddrs == b.ownAddrs && a.seen == b.seen
}

// AddrInfo is the member's ID with the addresses its last heartbeat
// announced; any that do not parse are left out.
func (m Member) AddrInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: m.ID}
	for _, s := range m.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}
