package gossip

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// The pings and acks between members go on one stream per pair and
// direction, not one per message: an idle cluster's node opens a stream
// to each member it talks to and writes message after message on it.
func TestDetectorMessagesShareAStream(t *testing.T) {
	nodes := startCluster(t, 4, testConfig())
	st := &nodes[0].m.streams
	// Each of the others is watched by, and watches, node 0.
	waitFor(t, 10*time.Second, "streams to the 3 others", func() bool { return st.opened.Load() >= 3 })
	opened0, sent0 := st.opened.Load(), st.sent.Load()
	waitFor(t, 20*time.Second, "40 messages written on streams", func() bool { return st.sent.Load()-sent0 >= 40 })
	if opened := st.opened.Load() - opened0; opened > 0 {
		t.Fatalf("%d streams opened for %d messages, want the streams of the cluster's start reused", opened, st.sent.Load()-sent0)
	}
}

// frame is b with its length before it, as SwimStreamProtocol carries it.
func frame(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }

// A stream of SwimStreamProtocol that carries a message that is too
// large, malformed, or sent in another's name is reset, and the message
// counted as refused; well-formed messages on one stream are each
// answered (on SwimProtocol, to a peer that serves only that).
func TestStreamMessagesRefused(t *testing.T) {
	n, r, acks := startRawPeer(t)
	self, other := swimID(r.ID()), swimID(n.h.ID())
	enc := func(d direct) []byte { return encoded(t, d) }
	ping := func(seq uint64) []byte {
		return frame(enc(direct{msg: &swim.Message{Kind: swim.KindPing, From: self, Target: other, Seq: seq}}))
	}
	bad := map[string][]byte{
		"too large":            binary.AppendUvarint(nil, MaxDirectSize+1),
		"garbage":              frame([]byte("hello, members")),
		"in another's name":    frame(enc(direct{msg: &swim.Message{Kind: swim.KindPing, From: other, Target: other, Seq: 1}})),
		"a published kind":     frame(enc(direct{msg: &swim.Message{Kind: swim.KindHeartbeat, From: self, Target: self, Inc: 9}})),
		"another's refutation": frame(enc(direct{msg: &swim.Message{Kind: swim.KindAlive, From: self, Target: other, Inc: 9}})),
	}
	for name, b := range bad {
		// A well-formed ping first: what came before a bad message stands.
		expectRefused(t, n, r, SwimStreamProtocol, name, append(ping(uint64(len(name))), b...))
		select {
		case m := <-acks:
			if m.Kind != swim.KindAck || m.Seq != uint64(len(name)) {
				t.Fatalf("%s: answer %+v, want the ack of the ping before it", name, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the ping before it was not answered", name)
		}
	}
	// Two pings on one stream, then its end: both answered.
	s, err := r.NewStream(context.Background(), n.h.ID(), SwimStreamProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(append(ping(7), ping(8)...)); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if _, err := io.ReadAll(s); err != nil {
		t.Fatalf("a stream of well-formed messages: %v", err)
	}
	s.Close()
	// Each answer goes on a stream of its own: in either order.
	got := map[uint64]bool{}
	for range 2 {
		select {
		case m := <-acks:
			if m.Kind != swim.KindAck || (m.Seq != 7 && m.Seq != 8) || got[m.Seq] || m.From != other {
				t.Fatalf("answer %+v, want the acks of seq 7 and 8", m)
			}
			got[m.Seq] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("pings 7 and 8 answered: %v", got)
		}
	}
}

// When a member's connection closes, the stream to it goes with it: none
// is kept registered (it would be, for every disconnect, as long as the
// node runs), and the next message opens another.
func TestStreamForgottenOnDisconnect(t *testing.T) {
	nodes := startCluster(t, 2, testConfig())
	a, b := nodes[0], nodes[1]
	st := &a.m.streams
	waitFor(t, 10*time.Second, "a stream to the other member", func() bool { return st.opened.Load() >= 1 })
	st.mu.Lock()
	var old []network.Stream
	for s := range st.open {
		old = append(old, s)
	}
	st.mu.Unlock()
	if err := a.h.Network().ClosePeer(b.h.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the closed connection's streams forgotten", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, s := range old {
			if _, ok := st.open[s]; ok {
				return false
			}
		}
		return true
	})
	opened := st.opened.Load()
	waitFor(t, 10*time.Second, "a new stream for the next message", func() bool { return st.opened.Load() > opened })
}
