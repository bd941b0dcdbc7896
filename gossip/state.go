package gossip

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// State is what this node believes of a member.
type State int

// Member states.
const (
	StateAlive   State = iota // heartbeats arrive
	StateSuspect              // silent for TFail, or unreachable after its connection dropped
	StateDead                 // silent for 2·TFail, or suspected by enough peers
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
	EventAliveAgain                  // suspect or dead -> alive, same incarnation
	EventDead                        // -> dead
	EventLeft                        // said goodbye
	EventRejoined                    // back after dead or left, with a new incarnation
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

// Member is this node's view of one member.
type Member struct {
	ID        peer.ID
	State     State
	Inc, Seq  uint64
	LastSeen  time.Time     // last heartbeat (or goodbye) received
	Since     time.Time     // when State was entered
	Period    time.Duration // the member's announced heartbeat period
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

	accusers map[peer.ID]bool // peers suspecting the current (Inc, Seq)
	// checkedInc, checkedSeq: the (Inc, Seq) at which a suspicion last made
	// this node check the member's TCP port (once per silence, not once
	// per suspicion message).
	checkedInc, checkedSeq uint64
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
