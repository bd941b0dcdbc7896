package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestRTTScore(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		rtt  time.Duration
		want float64
	}{
		{0, 0.5}, // unmeasured: as at rttScoreRef
		{-ms, 0.5},
		{rttScoreRef, 0.5},
		{0, rttScore(rttScoreRef)},
		{time.Microsecond, 20.0 / 20.001},
		{20 * ms, 0.5},
		{60 * ms, 0.25},
		{180 * ms, 0.1},
		{10 * time.Second, 20.0 / 10020},
	} {
		if got := rttScore(tc.rtt); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("rttScore(%s) = %g, want %g", tc.rtt, got, tc.want)
		}
	}
	prev := 2.0
	for rtt := time.Microsecond; rtt < time.Minute; rtt *= 2 {
		s := rttScore(rtt)
		if s <= 0 || s > 1 || s >= prev {
			t.Fatalf("rttScore(%s) = %g after %g: not in (0, 1] or not falling", rtt, s, prev)
		}
		prev = s
	}
}

// TestPeerScoreKeepsThresholdsOutOfReach: GossipSub accepts the scoring,
// nearer peers score higher, no mesh is ever below the opportunistic
// graft threshold (grafting by score alone draws a site's meshes into the
// site), and no RTT score comes near the gossip, publish or graylist
// thresholds, which only penalties could reach.
func TestPeerScoreKeepsThresholdsOutOfReach(t *testing.T) {
	const near, far, unknown = peer.ID("near"), peer.ID("far"), peer.ID("unknown")
	rtts := map[peer.ID]time.Duration{near: 2 * time.Millisecond, far: 60 * time.Millisecond, "very far": time.Hour}
	params, th := peerScore(func(p peer.ID) time.Duration { return rtts[p] })
	score := func(p peer.ID) float64 { return params.AppSpecificWeight * params.AppSpecificScore(p) }
	if !(score(near) > score(unknown) && score(unknown) > score(far)) {
		t.Fatalf("scores near %g, unknown %g, far %g", score(near), score(unknown), score(far))
	}
	if lowest := score(peer.ID("very far")); th.OpportunisticGraftThreshold > 0 || lowest <= th.OpportunisticGraftThreshold {
		t.Fatalf("opportunistic graft threshold %g, lowest RTT score %g: a mesh can fall below it", th.OpportunisticGraftThreshold, lowest)
	}
	// Every RTT score is in (0, weight]: ten times the weight below zero
	// is out of its reach.
	if lowest := th.GossipThreshold; lowest > -10*params.AppSpecificWeight || th.AcceptPXThreshold < 10*params.AppSpecificWeight {
		t.Fatalf("thresholds %+v within ten weights %g of the RTT score", *th, params.AppSpecificWeight)
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pubsub.NewGossipSub(ctx, h, pubsub.WithGossipSubParams(gossipSubParams()), pubsub.WithPeerScore(params, th)); err != nil {
		t.Fatalf("GossipSub refuses the scoring: %v", err)
	}
}
