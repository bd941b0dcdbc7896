package swim

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind is the kind of a message.
type Kind uint8

// Message kinds. Ping, Ack, Nack, PingReq and the table exchange go to
// one member (Transport.Send); the others are published to all
// (Transport.Publish).
const (
	KindPing      Kind = iota + 1 // are you there? (Seq)
	KindAck                       // I am, or: Target answered my relayed ping (Seq of the request)
	KindNack                      // Target did not answer my relayed ping in time (Seq of the request)
	KindPingReq                   // ping Target for me and tell me (Seq)
	KindSuspect                   // From could not reach Target at incarnation Inc
	KindAlive                     // Target is alive at Inc: a join, or a refutation
	KindDead                      // Target is dead at Inc
	KindLeave                     // Target (the sender) leaves for good at Inc
	KindHeartbeat                 // From is alive at Inc, with News
	KindSyncReq                   // my table (News); answer with yours
	KindSyncResp                  // my table (News)
)

func (k Kind) String() string {
	names := [...]string{"", "ping", "ack", "nack", "ping-req", "suspect", "alive", "dead", "leave", "heartbeat", "sync-req", "sync-resp"}
	if int(k) < len(names) && k != 0 {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Entry is one member's state as news or in a table exchange.
type Entry struct {
	ID    ID
	State State
	Inc   uint64
}

// Message is what cores exchange. The adapter signs published messages
// and checks that From is the signer; direct messages come over a stream
// whose remote peer is From.
type Message struct {
	Kind   Kind
	From   ID
	Target ID     // the member a message is about (the sender itself for Alive, Leave)
	Inc    uint64 // Target's incarnation (From's own for Ping, Ack, Heartbeat)
	Seq    uint64 // probe sequence, to match an Ack or Nack to its Ping or PingReq
	News   []Entry
	// Refused: a Suspect that rests on a refused connection (see
	// EvidenceRefused and Config.Confirmations).
	Refused bool
}

const flagRefused = 1

// MaxNews caps the entries of a message: a table exchange of a larger
// network is split by the adapter.
const MaxNews = 1 << 20

// ErrBadMessage: a message that does not parse.
var ErrBadMessage = errors.New("invalid membership message")

// Size is the length of AppendBinary's encoding of m.
func (m *Message) Size() int {
	n := 2 + strSize(m.From) + strSize(m.Target) + 8 + 8 + 4
	for _, e := range m.News {
		n += strSize(e.ID) + 1 + 8
	}
	return n
}

func strSize(s ID) int { return 1 + len(s) }

// AppendBinary appends m's wire encoding to b: kind, flags (bit 0:
// Refused), from, target, inc, seq, then the news, each ID prefixed by
// its length (IDs are at most 255 bytes: a libp2p peer ID is 38).
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if m.Refused {
		flags |= flagRefused
	}
	b = append(b, byte(m.Kind), flags)
	for _, s := range []ID{m.From, m.Target} {
		if len(s) > 255 {
			return nil, fmt.Errorf("%w: ID of %d bytes", ErrBadMessage, len(s))
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, m.Inc)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.News)))
	for _, e := range m.News {
		if len(e.ID) > 255 {
			return nil, fmt.Errorf("%w: ID of %d bytes", ErrBadMessage, len(e.ID))
		}
		b = append(b, byte(len(e.ID)))
		b = append(b, e.ID...)
		b = append(b, byte(e.State))
		b = binary.BigEndian.AppendUint64(b, e.Inc)
	}
	return b, nil
}

// Decode parses a message of AppendBinary.
func Decode(b []byte) (*Message, error) {
	bad := func(what string) (*Message, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadMessage, what)
	}
	str := func() (ID, bool) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", false
		}
		s := ID(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
		return s, true
	}
	if len(b) < 2 {
		return bad("empty")
	}
	m := &Message{Kind: Kind(b[0]), Refused: b[1]&flagRefused != 0}
	if m.Kind < KindPing || m.Kind > KindSyncResp {
		return bad("unknown kind")
	}
	if b[1]&^flagRefused != 0 {
		return bad("unknown flags")
	}
	b = b[2:]
	var ok bool
	if m.From, ok = str(); !ok || m.From == "" {
		return bad("sender")
	}
	if m.Target, ok = str(); !ok {
		return bad("target")
	}
	if len(b) < 20 {
		return bad("truncated")
	}
	m.Inc, m.Seq = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	n := binary.BigEndian.Uint32(b[16:])
	b = b[20:]
	if n > MaxNews || int(n) > len(b)/10 {
		return bad("news count")
	}
	m.News = make([]Entry, 0, n)
	for range n {
		var e Entry
		if e.ID, ok = str(); !ok || e.ID == "" || len(b) < 9 {
			return bad("news entry")
		}
		e.State = State(b[0])
		if e.State > StateLeft {
			return bad("news state")
		}
		e.Inc = binary.BigEndian.Uint64(b[1:])
		b = b[9:]
		m.News = append(m.News, e)
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return m, nil
}
