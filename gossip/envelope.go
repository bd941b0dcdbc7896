package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// direct is a message of SwimProtocol: the core's message, then the
// addresses the sender knows of the members it names (those listed in a
// table exchange, the target of a ping-req). A member known only from a
// table has sent this node no heartbeat, so no address of its own, and
// could not be pinged without them.
//
//	uvarint length, the core's message (package swim's binary encoding)
//	uvarint count, then per member: byte length, peer ID,
//	    byte count, then per address: uvarint length, multiaddr bytes
type direct struct {
	msg   *swim.Message
	addrs map[peer.ID][]ma.Multiaddr
}

const (
	// maxSharedAddrs caps the addresses of one member in a message,
	// maxAddrSize the length of one.
	maxSharedAddrs = 8
	maxAddrSize    = 256
)

func (d direct) encode() ([]byte, error) {
	b, err := d.msg.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(make([]byte, 0, d.size()), uint64(len(b)))
	out = append(out, b...)
	out = binary.AppendUvarint(out, uint64(len(d.addrs)))
	for p, as := range d.addrs {
		if len(p) > 255 || len(as) > maxSharedAddrs {
			return nil, fmt.Errorf("%w: addresses of %s", ErrBadMessage, p)
		}
		out = append(out, byte(len(p)))
		out = append(out, p...)
		out = append(out, byte(len(as)))
		for _, a := range as {
			out = binary.AppendUvarint(out, uint64(len(a.Bytes())))
			out = append(out, a.Bytes()...)
		}
	}
	return out, nil
}

// size bounds the length of d's encoding from above.
func (d direct) size() int {
	n := 2*binary.MaxVarintLen32 + d.msg.Size()
	for p, as := range d.addrs {
		n += addrsSize(p, as)
	}
	return n
}

// addrsSize bounds the length of the encoding of p's addresses as.
func addrsSize(p peer.ID, as []ma.Multiaddr) int {
	n := 2 + len(p)
	for _, a := range as {
		n += binary.MaxVarintLen16 + len(a.Bytes())
	}
	return n
}

// decodeDirect parses and checks a direct message from peer from.
func decodeDirect(b []byte, from peer.ID) (direct, error) {
	bad := func(err error) (direct, error) {
		return direct{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if len(b) > MaxDirectSize {
		return bad(fmt.Errorf("more than %d bytes", MaxDirectSize))
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return bad(errors.New("length"))
	}
	msg, err := swim.Decode(b[k : k+int(n)])
	if err != nil {
		return bad(err)
	}
	if err := checkDirect(msg, from); err != nil {
		return bad(err)
	}
	addrs, err := decodeAddrs(b[k+int(n):])
	if err != nil {
		return bad(err)
	}
	return direct{msg: msg, addrs: addrs}, nil
}

// decodeAddrs parses the addresses that follow a direct message.
func decodeAddrs(b []byte) (map[peer.ID][]ma.Multiaddr, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, errors.New("address count")
	}
	b = b[k:]
	out := make(map[peer.ID][]ma.Multiaddr, count)
	for range count {
		if len(b) < 1 || len(b) < 2+int(b[0]) {
			return nil, errors.New("truncated addresses")
		}
		p, err := peer.IDFromBytes(b[1 : 1+int(b[0])])
		if err != nil {
			return nil, fmt.Errorf("addresses of a bad peer ID: %v", err)
		}
		b = b[1+int(b[0]):]
		na := int(b[0])
		b = b[1:]
		if na > maxSharedAddrs {
			return nil, fmt.Errorf("%d addresses of %s", na, p)
		}
		for range na {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > maxAddrSize || l > uint64(len(b)-k) {
				return nil, fmt.Errorf("address of %s: length", p)
			}
			a, err := ma.NewMultiaddrBytes(b[k : k+int(l)])
			if err != nil {
				return nil, fmt.Errorf("address of %s: %v", p, err)
			}
			out[p] = append(out[p], a)
			b = b[k+int(l):]
		}
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// checkDirect checks that a message from peer from is one that goes
// directly, in from's own name, about valid peer IDs.
func checkDirect(msg *swim.Message, from peer.ID) error {
	if peerID(msg.From) != from {
		return fmt.Errorf("sent by %s in the name of %q", from, msg.From)
	}
	switch msg.Kind {
	case swim.KindPing, swim.KindAck, swim.KindNack, swim.KindSyncReq, swim.KindSyncResp, swim.KindSuspect, swim.KindDead:
	case swim.KindPingReq:
		if msg.Target == "" {
			return errors.New("a ping-req without a target")
		}
	case swim.KindLeave, swim.KindAlive:
		// A goodbye, or a refutation sent to its accuser: a member's word
		// on itself only.
		if msg.Target != msg.From {
			return fmt.Errorf("%s in the name of another member", msg.Kind)
		}
	default:
		return fmt.Errorf("%s is not a direct message", msg.Kind)
	}
	if msg.Target != "" {
		if _, err := peer.IDFromBytes([]byte(msg.Target)); err != nil {
			return fmt.Errorf("target: %v", err)
		}
	}
	for _, e := range msg.News {
		if _, err := peer.IDFromBytes([]byte(e.ID)); err != nil {
			return fmt.Errorf("table entry: %v", err)
		}
	}
	return nil
}

// split splits a table exchange so that no part's encoding exceeds
// limit. A request is answered once, so the parts after the first go as
// responses, which are only merged. Each part's Seq counts the parts
// after it: the last has 0.
func (d direct) split(limit int) []direct {
	msg := d.msg
	if msg.Kind != swim.KindSyncReq && msg.Kind != swim.KindSyncResp || d.size() <= limit {
		return []direct{d}
	}
	head := swim.Message{Kind: msg.Kind, From: msg.From, Target: msg.Target, Inc: msg.Inc}
	empty := direct{msg: &head}.size()
	newPart := func(k swim.Kind) direct {
		m := head
		m.Kind = k
		return direct{msg: &m, addrs: map[peer.ID][]ma.Multiaddr{}}
	}
	var parts []direct
	part, size := newPart(msg.Kind), empty
	for _, e := range msg.News {
		p := peerID(e.ID)
		as, hasAddrs := d.addrs[p]
		es := (&swim.Message{News: []swim.Entry{e}}).Size() - (&swim.Message{}).Size()
		if hasAddrs {
			es += addrsSize(p, as)
		}
		if size+es > limit && len(part.msg.News) > 0 {
			parts = append(parts, part)
			part, size = newPart(swim.KindSyncResp), empty
		}
		part.msg.News = append(part.msg.News, e)
		if hasAddrs {
			part.addrs[p] = as
		}
		size += es
	}
	parts = append(parts, part)
	for i, p := range parts {
		p.msg.Seq = uint64(len(parts) - 1 - i)
	}
	return parts
}
