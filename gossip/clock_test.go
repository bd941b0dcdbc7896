package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// exchange is one clock reading: this node sends at sent (its clock), the
// peer answers with its clock reading remote, this node receives at recv.
type exchange struct {
	sent, remote, recv time.Duration // from a base time
}

func TestOffsetsEstimate(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := time.Millisecond
	cases := []struct {
		name    string
		samples []exchange
		want    time.Duration
		known   bool
	}{
		{"none", nil, 0, false},
		{"same clock, symmetric path", []exchange{{0, 5 * ms, 10 * ms}}, 0, true},
		{"peer 10 min ahead", []exchange{{0, 10*time.Minute + 2*ms, 4 * ms}}, 10 * time.Minute, true},
		{"peer 10 min behind", []exchange{{0, -10*time.Minute + 2*ms, 4 * ms}}, -10 * time.Minute, true},
		{
			// A queued answer (long round trip, asymmetric) is off by
			// up to half its round trip; the fastest exchange wins.
			"shortest round trip wins",
			[]exchange{
				{0, 60*time.Second + 400*ms, 800 * ms},                           // says +60s
				{time.Second, 61*time.Second + 1*ms, time.Second + 2*ms},         // exact: +60s
				{2 * time.Second, 62*time.Second + 5*ms, 2*time.Second + 500*ms}, // says 59.755s
			},
			60 * time.Second, true,
		},
		{
			"a clock stepped back mid-exchange is dropped",
			[]exchange{{time.Second, time.Hour, 0}},
			0, false,
		},
	}
	p := peer.ID("peer")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOffsets()
			for _, x := range tc.samples {
				o.Add(p, base.Add(x.sent), base.Add(x.remote), base.Add(x.recv))
			}
			got, ok := o.Offset(p)
			if ok != tc.known || got != tc.want {
				t.Fatalf("Offset = %v, %v; want %v, %v", got, ok, tc.want, tc.known)
			}
		})
	}
}

func TestOffsetsKeepsRecentSamples(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := NewOffsets()
	p := peer.ID("peer")
	// A very fast old exchange, then clockSamples slower ones after the
	// peer's clock was corrected: the old one is forgotten.
	o.Add(p, base, base.Add(time.Hour), base)
	for i := range clockSamples {
		at := base.Add(time.Duration(i+1) * time.Second)
		o.Add(p, at, at.Add(time.Millisecond), at.Add(2*time.Millisecond))
	}
	if got, _ := o.Offset(p); got != 0 {
		t.Fatalf("Offset = %v after the peer's clock was corrected, want 0", got)
	}
	o.Retain(func(peer.ID) bool { return false })
	if _, ok := o.Offset(p); ok {
		t.Fatal("Retain kept a peer it was told to forget")
	}
}

func TestOffsetsNetwork(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	min := time.Minute
	cases := []struct {
		name  string
		peers []time.Duration // each peer's clock minus this node's
		want  time.Duration   // this node's clock minus the network's
	}{
		{"alone", nil, 0},
		{"one good peer of three", []time.Duration{0, 10 * min}, 0},
		{"this node 10 min ahead", []time.Duration{-10 * min, -10 * min}, 10 * min},
		{"this node 10 min behind", []time.Duration{10 * min, 10 * min, 11 * min}, -10 * min},
		// +10 min, -10 min, +60 s and two good nodes, seen from the +60 s one.
		{"mixed, from the +60 s node", []time.Duration{-min, -min, 9 * min, -11 * min}, min},
		{"mixed, from a good node", []time.Duration{0, 10 * min, -10 * min, min}, 0},
		// Two nodes that disagree: neither is taken as right.
		{"two nodes", []time.Duration{10 * min}, -5 * min},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOffsets()
			var ps []peer.ID
			for i, d := range tc.peers {
				p := peer.ID(rune('a' + i))
				ps = append(ps, p)
				o.Add(p, base, base.Add(d), base)
			}
			ps = append(ps, "unmeasured")
			got, n := o.Network(ps)
			if got != tc.want || n != len(tc.peers) {
				t.Fatalf("Network = %v over %d peers, want %v over %d", got, n, tc.want, len(tc.peers))
			}
		})
	}
}

// A peer that identify shows without the clock protocol (an earlier
// release) is not asked for its clock; one not identified yet is.
func TestClockReadsSkipPeersWithoutTheProtocol(t *testing.T) {
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	m := &Membership{h: h}
	for _, tc := range []struct {
		name   string
		protos []protocol.ID
		want   bool
	}{
		{"not identified", nil, true},
		{"serves it", []protocol.ID{"/ipfs/id/1.0.0", ClockProtocol}, true},
		{"earlier release", []protocol.ID{"/ipfs/id/1.0.0", "/p2pshare/members/1"}, false},
	} {
		p := peer.ID("peer " + tc.name)
		if tc.protos != nil {
			if err := h.Peerstore().SetProtocols(p, tc.protos...); err != nil {
				t.Fatal(err)
			}
		}
		if got := m.mayReadClock(p); got != tc.want {
			t.Errorf("%s: mayReadClock = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// ClockOffset keeps its figure between calls, and gives a new one as soon
// as an estimate or the table moves.
func TestClockOffsetFollowsChanges(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &Membership{offsets: NewOffsets()}
	publish := func(states map[peer.ID]State) {
		tb := &table{members: map[peer.ID]*Member{}}
		for p, st := range states {
			tb.members[p] = &Member{ID: p, State: st}
			if live(st) {
				tb.live = append(tb.live, p)
			}
		}
		m.snap.Store(tb)
	}
	check := func(step string, want time.Duration, wantN int) {
		t.Helper()
		for range 2 { // the kept figure as well as the new one
			if got, n := m.ClockOffset(); got != want || n != wantN {
				t.Fatalf("%s: ClockOffset = %v over %d peers, want %v over %d", step, got, n, want, wantN)
			}
		}
	}
	publish(map[peer.ID]State{"a": StateAlive, "b": StateAlive, "c": StateSuspect})
	check("no estimate", 0, 0)
	m.offsets.Add("a", base, base.Add(4*time.Second), base.Add(2*time.Millisecond))
	m.offsets.Add("b", base, base.Add(6*time.Second), base.Add(2*time.Millisecond))
	check("a +4 s, b +6 s", -3999*time.Millisecond, 2) // the median of 0, +4 s and +6 s, each less half its round trip
	m.offsets.Add("c", base, base.Add(8*time.Second), base)
	check("and c +8 s", -4999*time.Millisecond, 3)
	m.offsets.Add("a", base, base.Add(10*time.Second), base) // a shorter round trip: the new estimate of a
	check("a now +10 s", -6999500*time.Microsecond, 3)
	publish(map[peer.ID]State{"a": StateAlive, "b": StateDead, "c": StateSuspect})
	check("b dead", -8*time.Second, 2)
	m.offsets.Retain(func(p peer.ID) bool { return p != "c" })
	check("c forgotten", -5*time.Second, 1)
}

// A round reads every member not measured yet (up to maxClockReads), and
// only clockReReads of those already measured, a different few each time.
func TestClockReads(t *testing.T) {
	ids := func(prefix string, n int) []peer.ID {
		var out []peer.ID
		for i := range n {
			out = append(out, peer.ID(fmt.Sprintf("%s%d", prefix, i)))
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		missing, known int
		want           int // readings
		wantKnown      int // of them, of known members
	}{
		{"nothing", 0, 0, 0, 0},
		{"new members only", 5, 0, 5, 0},
		{"known only", 0, 35, clockReReads, clockReReads},
		{"fewer known than a batch", 2, clockReReads - 1, 2 + clockReReads - 1, clockReReads - 1},
		{"both", 3, 35, 3 + clockReReads, clockReReads},
		{"a crowd of new members", 40, 35, maxClockReads, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			seen := map[peer.ID]bool{}
			known := ids("k", tc.known)
			for round := range 100 {
				got := clockReads(ids("m", tc.missing), known, rng.Shuffle)
				k := 0
				for _, p := range got {
					if p[0] == 'k' {
						k++
						seen[p] = true
					}
				}
				if len(got) != tc.want || k != tc.wantKnown {
					t.Fatalf("round %d: %d readings, %d of known members; want %d, %d", round, len(got), k, tc.want, tc.wantKnown)
				}
			}
			if tc.wantKnown > 0 && len(seen) != tc.known {
				t.Errorf("100 rounds re-read %d of %d known members, want all", len(seen), tc.known)
			}
		})
	}
}

// A clock reading is a round trip, and the peerstore gets it as an RTT
// sample, as it gets a libp2p ping's.
func TestClockReadingRecordsRTT(t *testing.T) {
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", Config{})
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", Config{})
	connect(t, a, b)
	a.h.Peerstore().RemovePeer(b.h.ID()) // forget any sample taken so far
	if err := a.m.readClock(context.Background(), b.h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.m.offsets.Offset(b.h.ID()); !ok {
		t.Fatal("no clock estimate after a reading")
	}
	if rtt := a.h.Peerstore().LatencyEWMA(b.h.ID()); rtt <= 0 || rtt > clockTimeout {
		t.Fatalf("RTT of b after a clock reading = %v, want a sample", rtt)
	}
}

// A jump of the wall clock against the monotonic clock is a step; the
// drift and scheduling of a second are not.
func TestClockStepped(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		wall    time.Duration // how far the wall clock moved
		elapsed time.Duration // the monotonic time elapsed
		want    bool
	}{
		{"a round, on time", time.Second, time.Second, false},
		{"a late round", 1300 * time.Millisecond, 1300 * time.Millisecond, false},
		{"slewed by NTP", time.Second + 500*time.Microsecond, time.Second, false},
		{"set forward a minute", time.Minute + time.Second, time.Second, true},
		{"set back ten minutes", time.Second - 10*time.Minute, time.Second, true},
		{"woke from sleep", time.Hour, time.Second, true},
		{"just under a step", 1999 * time.Millisecond, time.Second, false},
		{"a step of a second", 2 * time.Second, time.Second, true},
	} {
		step, got := clockStepped(base, base.Add(tc.wall), tc.elapsed)
		if got != tc.want || step != tc.wall-tc.elapsed {
			t.Errorf("%s: clockStepped = %v, %v; want %v, %v", tc.name, step, got, tc.wall-tc.elapsed, tc.want)
		}
	}
}

// Reset forgets every estimate and moves the version.
func TestOffsetsReset(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := NewOffsets()
	o.Add("a", base, base.Add(time.Minute), base.Add(time.Millisecond))
	v := o.version()
	o.Reset()
	if _, ok := o.Offset("a"); ok {
		t.Fatal("an estimate survived Reset")
	}
	if o.version() == v {
		t.Fatal("Reset left the version")
	}
	if _, n := o.Network([]peer.ID{"a"}); n != 0 {
		t.Fatalf("Network counts %d estimates after Reset", n)
	}
}

// jumpClock is a wall clock a test can set forward or back.
type jumpClock struct{ off atomic.Int64 }

func (c *jumpClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// When this node's clock steps, it drops its estimates and reads its
// members' clocks again at once, not over the minutes its few re-reads
// each ClockInterval would take.
func TestClockStepReadsAgain(t *testing.T) {
	clk := &jumpClock{}
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", Config{Clock: clk, ClockInterval: time.Hour})
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", Config{})
	connect(t, a, b)
	offsetNear := func(want time.Duration) func() bool {
		return func() bool {
			off, ok := a.m.offsets.Offset(b.h.ID())
			return ok && (off-want).Abs() < time.Second
		}
	}
	waitFor(t, 10*time.Second, "a to measure b's clock", offsetNear(0))
	clk.off.Store(int64(-time.Minute)) // a's clock is set back a minute: b is a minute ahead
	waitFor(t, 10*time.Second, "a to measure b's clock a minute ahead", offsetNear(time.Minute))
}
