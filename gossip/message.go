package gossip

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// MembersTopic is the GossipSub topic of membership messages.
const MembersTopic = "/p2pshare/members/1"

// MaxMessageSize caps a membership message on the wire.
const MaxMessageSize = 8 << 10

// Kind is the kind of a membership message.
type Kind string

// Message kinds. Nodes of earlier releases reject any other kind, so the
// failure detector's messages map onto these three (see wire.go): its
// heartbeats and its announcements (a join, a refutation) are heartbeats,
// a declaration of death is a suspicion marked Dead.
const (
	KindHeartbeat Kind = "heartbeat" // I am alive (at a higher incarnation: I joined, or refute)
	KindLeave     Kind = "leave"     // I am leaving for good
	KindSuspect   Kind = "suspect"   // I could not reach About (or, with Dead: About is dead)
)

// ErrBadMessage: a membership message that is malformed or lies about its
// sender.
var ErrBadMessage = errors.New("invalid membership message")

// Message is what nodes publish on MembersTopic. It travels inside a
// GossipSub message signed by Peer (strict signing), which is how receivers
// know Peer wrote it.
type Message struct {
	Kind Kind    `json:"kind"`
	Peer peer.ID `json:"peer"` // the sender, who must be the signer
	// Inc is the sender's incarnation: it grows on every restart and every
	// refutation. Seq grows with every message within an incarnation.
	Inc uint64 `json:"inc"`
	Seq uint64 `json:"seq"`
	// Heartbeat facts.
	PeriodMillis int64    `json:"period_ms,omitempty"`
	Addrs        []string `json:"addrs,omitempty"`
	Files        int      `json:"files,omitempty"`
	FreeBytes    int64    `json:"free_bytes,omitempty"`
	// Coord is the sender's network coordinate (see package coord), if
	// it has one. Omitted when nil, so that nodes that know no
	// coordinates read the heartbeat as before.
	Coord *coord.Coordinate `json:"coord,omitempty"`
	// News, in a heartbeat: recent changes the sender knows of, for nodes
	// that missed them.
	News []NewsEntry `json:"news,omitempty"`
	// Suspicion: the member suspected, and its newest (Inc, Seq) the
	// sender had seen. A node of an earlier release takes a heartbeat
	// newer than that as a refutation; this release takes only a higher
	// incarnation.
	About    peer.ID `json:"about,omitempty"`
	AboutInc uint64  `json:"about_inc,omitempty"`
	AboutSeq uint64  `json:"about_seq,omitempty"`
	// Dead: the suspicion has ended, About is dead. Refused: the
	// suspicion rests on a refused connection (see Config.Confirmations).
	// Nodes of earlier releases ignore both fields, as they ignore News:
	// to them a declaration of death is one more suspicion.
	Dead    bool `json:"dead,omitempty"`
	Refused bool `json:"refused,omitempty"`
}

// NewsEntry is one member's state at an incarnation, as news.
type NewsEntry struct {
	Peer  peer.ID `json:"peer"`
	State string  `json:"state"` // alive, suspect, dead or left
	Inc   uint64  `json:"inc"`
}

// maxAddrs caps the addresses a heartbeat may carry, maxNews its news.
const (
	maxAddrs = 32
	maxNews  = 32
)

// decodeMessage parses and checks a message's shape.
func decodeMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if err := m.Peer.Validate(); err != nil {
		return nil, fmt.Errorf("%w: peer: %v", ErrBadMessage, err)
	}
	switch m.Kind {
	case KindHeartbeat:
		if m.PeriodMillis <= 0 || m.PeriodMillis > maxPeriodMillis {
			return nil, fmt.Errorf("%w: heartbeat period %d ms", ErrBadMessage, m.PeriodMillis)
		}
		if len(m.Addrs) > maxAddrs {
			return nil, fmt.Errorf("%w: %d addresses", ErrBadMessage, len(m.Addrs))
		}
		// A coordinate out of bounds (a hostile or broken sender, or
		// one of another release) is dropped, not the heartbeat: the
		// sender is alive whatever its coordinate says.
		if m.Coord != nil && m.Coord.Validate() != nil {
			m.Coord = nil
		}
		if len(m.News) > maxNews {
			return nil, fmt.Errorf("%w: %d news entries", ErrBadMessage, len(m.News))
		}
		for _, n := range m.News {
			if _, ok := parseState(n.State); !ok || n.Peer.Validate() != nil {
				return nil, fmt.Errorf("%w: news entry %q %q", ErrBadMessage, n.Peer, n.State)
			}
		}
	case KindLeave:
	case KindSuspect:
		if err := m.About.Validate(); err != nil {
			return nil, fmt.Errorf("%w: about: %v", ErrBadMessage, err)
		}
		if m.About == m.Peer {
			return nil, fmt.Errorf("%w: a node suspecting itself", ErrBadMessage)
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadMessage, m.Kind)
	}
	if m.Kind != KindHeartbeat {
		m.Coord = nil
	}
	return &m, nil
}

// parseState is the State a String gives.
func parseState(s string) (State, bool) {
	for st := StateAlive; st <= StateLeft; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

func (m *Message) encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

// newer reports whether (inc, seq) comes after (inc2, seq2).
func newer(inc, seq, inc2, seq2 uint64) bool {
	return inc > inc2 || (inc == inc2 && seq > seq2)
}
