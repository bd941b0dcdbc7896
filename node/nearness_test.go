package node

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// settle moves nr's coordinate with samples of rtt to a settled peer at
// the origin until its error estimate is below coordMaxError.
func settle(t *testing.T, nr *nearness, rtt time.Duration) {
	t.Helper()
	peerAt := coord.Coordinate{Vec: make([]float64, coord.DefaultConfig().Dimensionality), Error: 0.05, Height: 0.01}
	for range 100 {
		if _, err := nr.client.Update("settled", peerAt, rtt); err != nil {
			t.Fatal(err)
		}
	}
	if e := nr.client.Coordinate().Error; e >= coordMaxError {
		t.Fatalf("error estimate %g after 100 exact samples", e)
	}
}

func TestRankRTT(t *testing.T) {
	const ms = time.Millisecond
	now := time.Unix(1e9, 0)
	clock := func() time.Time { return now }
	dims := coord.DefaultConfig().Dimensionality
	at := func(x, errEst float64) *coord.Coordinate {
		v := make([]float64, dims)
		v[0] = x
		return &coord.Coordinate{Vec: v, Error: errEst, Height: 0.01}
	}
	for _, tc := range []struct {
		name    string
		settled bool          // this node's coordinate has settled
		sample  time.Duration // a sample of the member, 0 for none
		age     time.Duration // how old the sample is
		c       *coord.Coordinate
		want    time.Duration // 0: unknown
		approx  bool          // want is an estimate: within 10 %
	}{
		{"measured: the measurement, not the estimate", true, 30 * ms, 0, at(80, 0.1), 30 * ms, false},
		{"not measured: the estimate", true, 0, 0, at(80, 0.1), 80 * ms, true},
		{"measured long ago: the estimate", true, 30 * ms, 10 * time.Minute, at(80, 0.1), 80 * ms, true},
		{"measured long ago, no coordinate: the old measurement", true, 30 * ms, 10 * time.Minute, nil, 30 * ms, false},
		{"the member's coordinate has not settled", true, 0, 0, at(80, 0.9), 0, false},
		{"this node's coordinate has not settled", false, 0, 0, at(80, 0.1), 0, false},
		{"another dimensionality", true, 0, 0, &coord.Coordinate{Vec: []float64{80}, Error: 0.1}, 0, false},
		{"nothing known", true, 0, 0, nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = time.Unix(1e9, 0)
			f := newRTTFilter(clock, rttWindow, rttKeep)
			nr, err := newNearness(f, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			if tc.settled {
				// This node is 1 ms from a peer at the origin: near
				// the origin itself.
				settle(t, nr, time.Millisecond)
			}
			if tc.sample > 0 {
				f.record("m", tc.sample)
				now = now.Add(tc.age)
			}
			got := nr.rankRTT(peer.ID("m"), tc.c)
			if tc.approx {
				if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.1 {
					t.Fatalf("rankRTT = %s, want about %s", got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("rankRTT = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestPingsMoveTheCoordinate: a node's heartbeats carry its coordinate,
// and the RTT samples of a member whose heartbeat it has move it.
func TestPingsMoveTheCoordinate(t *testing.T) {
	nodes := newTestNetwork(t, 2)
	a, b := nodes[0], nodes[1]
	waitFor(t, 15*time.Second, "a's heartbeat with its coordinate at b", func() bool {
		m, ok := b.Membership().Member(a.Host().ID())
		return ok && m.Coord != nil
	})
	before := b.near.client.Coordinate()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	results := ping.Ping(ctx, b.Host(), a.Host().ID())
	for range 5 {
		if r := <-results; r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	cancel()
	// Loopback RTTs under -race are anything from 50 µs to
	// milliseconds: whether the error estimate rises or falls depends on
	// them, but every sample moves the coordinate.
	if after := b.near.client.Coordinate(); reflect.DeepEqual(after, before) {
		t.Fatalf("5 samples did not move b's coordinate %+v", before)
	}
}
