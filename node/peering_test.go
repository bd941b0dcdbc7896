package node

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip"
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

// TestRejoinTargets: a round of rejoin dials dials a sample of the dead
// members and the bootstrap peers this node hears nothing from; a dead
// bootstrap peer is sampled like any dead member (and keeps both its
// announced and its configured addresses when kept); a live or suspect
// one, and this node, are never dialled.
func TestRejoinTargets(t *testing.T) {
	addr := func(port int) ma.Multiaddr { return ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)) }
	var members []gossip.Member
	for i := range 100 {
		members = append(members, gossip.Member{ID: peer.ID(fmt.Sprint("live", i)), State: gossip.StateAlive})
	}
	members = append(members,
		gossip.Member{ID: "suspect", State: gossip.StateSuspect},
		gossip.Member{ID: "deadboot", State: gossip.StateDead, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
		gossip.Member{ID: "deadother", State: gossip.StateDead},
		gossip.Member{ID: "left", State: gossip.StateLeft},
	)
	each := func(fn func(gossip.Member)) {
		for _, m := range members {
			fn(m)
		}
	}
	boot := []peer.AddrInfo{
		{ID: "self", Addrs: []ma.Multiaddr{addr(2)}},
		{ID: "live3", Addrs: []ma.Multiaddr{addr(3)}},
		{ID: "suspect", Addrs: []ma.Multiaddr{addr(4)}},
		{ID: "deadboot", Addrs: []ma.Multiaddr{addr(5)}},
		{ID: "left", Addrs: []ma.Multiaddr{addr(6)}},
		{ID: "unknown", Addrs: []ma.Multiaddr{addr(7)}},
	}
	for _, tc := range []struct {
		name string
		draw float64
		want []peer.ID
	}{
		{"dead members drawn", 0, []peer.ID{"deadboot", "deadother", "left", "unknown"}},
		{"dead members left to others", 0.99, []peer.ID{"left", "unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targets, dead := rejoinTargets(each, boot, "self", func() float64 { return tc.draw })
			var got []peer.ID
			for id := range targets {
				got = append(got, id)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("targets %v, want %v", got, tc.want)
			}
			if !dead["deadboot"] || !dead["deadother"] || dead["left"] || dead["unknown"] {
				t.Fatalf("dead %v", dead)
			}
			if ai, ok := targets["deadboot"]; ok && len(ai.Addrs) != 2 {
				t.Fatalf("the dead bootstrap peer is dialled at %v, want its announced and its configured address", ai.Addrs)
			}
		})
	}
}
