package node

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSampleDead: each node keeps a dead member among its rejoin dials
// with probability rejoinDialers/others, so about rejoinDialers nodes dial
// each whatever N; in small networks every node does. Members that are
// not dead (bootstrap peers it hears nothing from) are always kept.
func TestSampleDead(t *testing.T) {
	const deadN = 2000
	for _, tc := range []struct {
		others int
		lo, hi int // dead members kept of deadN
	}{
		{others: 1, lo: deadN, hi: deadN},
		{others: 3, lo: deadN, hi: deadN},
		{others: 6, lo: 900, hi: 1100},    // 1/2
		{others: 99, lo: 40, hi: 80},      // 3/99: about 61
		{others: 999, lo: 1, hi: 14},      // 3/999: about 6
		{others: 0, lo: deadN, hi: deadN}, // alone: dial them all
	} {
		t.Run(fmt.Sprint(tc.others), func(t *testing.T) {
			targets := map[peer.ID]peer.AddrInfo{"boot": {ID: "boot"}}
			dead := map[peer.ID]bool{}
			for i := range deadN {
				id := peer.ID(fmt.Sprint("dead", i))
				targets[id] = peer.AddrInfo{ID: id}
				dead[id] = true
			}
			r := rand.New(rand.NewPCG(1, 2))
			sampleDead(targets, dead, tc.others, r.Float64)
			if _, ok := targets["boot"]; !ok {
				t.Fatal("a bootstrap peer that is not dead was dropped")
			}
			kept := len(targets) - 1
			if kept < tc.lo || kept > tc.hi {
				t.Fatalf("kept %d of %d dead members with %d others, want %d to %d", kept, deadN, tc.others, tc.lo, tc.hi)
			}
		})
	}
}
