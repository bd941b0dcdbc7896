package node

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
)

func TestRTTFilter(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		after time.Duration // clock advance before the sample
		rtt   time.Duration // 0: no sample, only the advance
	}
	tests := []struct {
		name  string
		steps []step
		want  time.Duration
		have  int
	}{
		{"never measured", nil, 0, 0},
		{"one sample", []step{{0, 30 * ms}}, 30 * ms, 1},
		{"minimum, not the mean, of jittered samples",
			[]step{{0, 41 * ms}, {time.Second, 56 * ms}, {time.Second, 30 * ms}}, 30 * ms, 3},
		{"a sample taken under load does not raise it",
			[]step{{0, 30 * ms}, {time.Second, 300 * ms}}, 30 * ms, 2},
		{"a sample older than the window no longer counts",
			[]step{{0, 20 * ms}, {4 * time.Minute, 45 * ms}, {2 * time.Minute, 44 * ms}}, 44 * ms, 2},
		{"the window is inclusive",
			[]step{{0, 20 * ms}, {5 * time.Minute, 45 * ms}}, 20 * ms, 2},
		{"all samples old: the newest stands, counted as none",
			[]step{{0, 20 * ms}, {time.Second, 25 * ms}, {10 * time.Minute, 0}}, 25 * ms, 0},
		{"samples that are not positive are ignored",
			[]step{{0, 0}, {0, -5 * ms}}, 0, 0},
		{"at most keep samples: the oldest go first",
			[]step{{0, 10 * ms}, {time.Second, 50 * ms}, {time.Second, 40 * ms}, {time.Second, 45 * ms}}, 40 * ms, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1e9, 0)
			f := newRTTFilter(func() time.Time { return now }, 5*time.Minute, 3)
			for _, s := range tc.steps {
				now = now.Add(s.after)
				if s.rtt != 0 || s.after == 0 {
					f.record("p", s.rtt)
				}
			}
			got, have := f.rtt("p")
			if got != tc.want || have != tc.have {
				t.Fatalf("rtt = %v from %d samples, want %v from %d", got, have, tc.want, tc.have)
			}
			if got, _ := f.rtt("other"); got != 0 {
				t.Fatalf("an unmeasured peer has rtt %v", got)
			}
		})
	}
}

// The host's peerstore answers LatencyEWMA with the windowed minimum of
// what libp2p's ping recorded, forgets a removed peer, and keeps the
// certified address book identify looks for.
func TestRTTPeerstore(t *testing.T) {
	mem, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	ps := &rttPeerstore{certifiedPeerstore: mem, f: newRTTFilter(time.Now, time.Minute, 8)}
	defer ps.Close()
	p := peer.ID("p")
	for _, rtt := range []time.Duration{80, 30, 60} {
		ps.RecordLatency(p, rtt*time.Millisecond)
	}
	if got := ps.LatencyEWMA(p); got != 30*time.Millisecond {
		t.Fatalf("LatencyEWMA = %v, want the minimum, 30ms", got)
	}
	ps.RemovePeer(p)
	if got := ps.LatencyEWMA(p); got != 0 {
		t.Fatalf("LatencyEWMA after RemovePeer = %v, want 0", got)
	}
	var ab any = ps
	if _, ok := ab.(certifiedPeerstore); !ok {
		t.Fatal("the peerstore lost its certified address book")
	}
}

// A choice's measure pings a peer until it has rttMinSamples samples, and
// the host's peerstore then answers their minimum.
func TestMeasureFillsSamples(t *testing.T) {
	ns := newTestNetwork(t, 2)
	a, b := ns[0], ns[1]
	a.rtts.forget(b.host.ID()) // whatever the ping loop measured so far
	a.measure(context.Background(), []peer.ID{b.host.ID(), a.host.ID()})
	rtt, have := a.rtts.rtt(b.host.ID())
	if have < rttMinSamples || rtt <= 0 {
		t.Fatalf("after measure: %v from %d samples, want %d samples", rtt, have, rttMinSamples)
	}
	if got := a.host.Peerstore().LatencyEWMA(b.host.ID()); got != rtt {
		t.Fatalf("peerstore latency %v, want the filter's minimum %v", got, rtt)
	}
	if _, have := a.rtts.rtt(a.host.ID()); have != 0 {
		t.Fatalf("measure pinged the node itself: %d samples", have)
	}
}

// pingList pings what a choice would otherwise rank blind or by estimate
// alone: the peers that need samples and have no estimate, and the
// shortlist of those estimated nearest.
func TestPingList(t *testing.T) {
	const ms = time.Millisecond
	type p struct {
		need int
		est  time.Duration // 0: no estimate
	}
	tests := []struct {
		name      string
		peers     map[peer.ID]p
		order     []peer.ID
		shortlist int
		want      []peer.ID
	}{
		{"measured enough: none", map[peer.ID]p{"a": {0, 0}, "b": {0, 5 * ms}}, []peer.ID{"a", "b"}, 2, nil},
		{"no estimate: all that need samples", map[peer.ID]p{"a": {3, 0}, "b": {1, 0}, "c": {0, 0}},
			[]peer.ID{"a", "b", "c"}, 2, []peer.ID{"a", "b"}},
		{"estimated: only the shortlist nearest", map[peer.ID]p{"far": {3, 60 * ms}, "near": {3, 2 * ms}, "mid": {3, 30 * ms}, "x": {3, 45 * ms}},
			[]peer.ID{"far", "near", "mid", "x"}, 2, []peer.ID{"near", "mid"}},
		{"unestimated first, then the shortlist", map[peer.ID]p{"far": {3, 60 * ms}, "blind": {2, 0}, "near": {3, 2 * ms}},
			[]peer.ID{"far", "blind", "near"}, 1, []peer.ID{"blind", "near"}},
		{"a measured peer takes no shortlist place", map[peer.ID]p{"done": {0, 1 * ms}, "near": {3, 2 * ms}, "far": {3, 60 * ms}},
			[]peer.ID{"done", "far", "near"}, 1, []peer.ID{"near"}},
		{"fewer estimated than the shortlist", map[peer.ID]p{"a": {3, 9 * ms}}, []peer.ID{"a"}, 4, []peer.ID{"a"}},
		{"ties by peer ID, duplicates once", map[peer.ID]p{"b": {3, 5 * ms}, "a": {3, 5 * ms}, "c": {3, 5 * ms}},
			[]peer.ID{"c", "b", "a", "b"}, 2, []peer.ID{"a", "b"}},
		{"shortlist 0: estimates alone", map[peer.ID]p{"a": {3, 5 * ms}}, []peer.ID{"a"}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			need := func(id peer.ID) int { return tc.peers[id].need }
			est := func(id peer.ID) (time.Duration, bool) { e := tc.peers[id].est; return e, e > 0 }
			got := pingList(tc.order, need, est, tc.shortlist)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("pingList = %v, want %v", got, tc.want)
			}
		})
	}
}
