package share

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// trimCfg lets a surplus be trimmed at the second check, 20 ms after the
// first; the loop itself never checks (the tests call checkReplicas).
var trimCfg = Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: 20 * time.Millisecond}

// holdEverywhere stores body on every node of holders and gives each node
// of nodes the same catalog view: all of holders hold it.
func holdEverywhere(t *testing.T, nodes, holders []repNode, body string) cid.Cid {
	t.Helper()
	var c cid.Cid
	var hs []catalog.Holder
	for _, n := range holders {
		c, _ = putHeld(t, n, body)
		hs = append(hs, catalog.Holder{Peer: n.h.ID()})
	}
	for _, n := range nodes {
		n.dir.mu.Lock()
		n.dir.hs[c] = slices.Clone(hs)
		n.dir.mu.Unlock()
	}
	return c
}

// publishedBy records in every node's catalog view that p published name
// for c.
func publishedBy(nodes []repNode, p peer.ID, name string, c cid.Cid) {
	for _, n := range nodes {
		n.dir.mu.Lock()
		n.dir.names[name] = Resolved{Name: name, CID: c, Publisher: p, Time: time.Now()}
		n.dir.mu.Unlock()
	}
}

// checkAll runs a replication check on every node at once, twice, a
// ReplicationInterval apart: the first sees the surplus, the second may
// trim it.
func checkAll(nodes []repNode) {
	for range 2 {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { n.s.checkReplicas(context.Background()) })
		}
		wg.Wait()
		time.Sleep(2 * trimCfg.ReplicationInterval)
	}
}

// byID returns nodes sorted by peer ID.
func byID(nodes []repNode) []repNode {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b repNode) int {
		switch {
		case a.h.ID() < b.h.ID():
			return -1
		case a.h.ID() > b.h.ID():
			return 1
		}
		return 0
	})
	return out
}

// holding returns the nodes whose store holds c.
func holding(nodes []repNode, c cid.Cid) []peer.ID {
	var out []peer.ID
	for _, n := range nodes {
		if _, ok := n.s.Store().Has(c); ok {
			out = append(out, n.h.ID())
		}
	}
	slices.Sort(out)
	return out
}

// A file on 4 nodes with R = 2, published by the highest of them: checked
// everywhere at once, it ends on its publisher and the lowest other
// holder, which never drop; the two others drop theirs, and nothing is
// left below R on the way.
func TestTrimKeepsPublisherAndLowestHolders(t *testing.T) {
	nodes := byID(startRepNodesCfg(t, 4, trimCfg, nil))
	c := holdEverywhere(t, nodes, nodes, "a file four repairers copied\n")
	pub := nodes[3]
	publishedBy(nodes, pub.h.ID(), "report.txt", c)
	checkAll(nodes)
	want := []peer.ID{nodes[0].h.ID(), pub.h.ID()}
	slices.Sort(want)
	if got := holding(nodes, c); !slices.Equal(got, want) {
		t.Fatalf("held by %v, want the lowest holder and the publisher %v", got, want)
	}
	for i, n := range nodes {
		want := int64(0)
		if i == 1 || i == 2 {
			want = 1
		}
		if got := n.s.Stats().Trimmed.Load(); got != want {
			t.Errorf("node %d trimmed %d copies, want %d", i, got, want)
		}
		if _, own := n.dir.own(c); own != (want == 0) {
			t.Errorf("node %d's catalog holding: %v, its store: %v", i, own, want == 0)
		}
	}
}

// The trim does not take the catalog's word that the others hold the
// file: a holder that does not answer keeps the surplus, a listed holder
// that lost its copy gets it back before anyone drops one, and one check
// alone trims nothing.
func TestTrimConfirmsTheOthersCopies(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, nodes []repNode, c cid.Cid)
		once  bool     // one check only
		want  []int    // nodes holding the file at the end
		trims [3]int64 // copies each node dropped
	}{
		{
			name: "a listed holder is down",
			setup: func(t *testing.T, nodes []repNode, c cid.Cid) {
				if err := nodes[1].s.Close(); err != nil {
					t.Fatal(err)
				}
				nodes[1].h.Close()
			},
			want: []int{0, 1, 2},
		},
		{
			name: "a listed holder lost its copy",
			setup: func(t *testing.T, nodes []repNode, c cid.Cid) {
				if err := nodes[1].s.Store().Remove(c); err != nil {
					t.Fatal(err)
				}
			},
			want:  []int{0, 1},
			trims: [3]int64{0, 0, 1},
		},
		{
			name:  "a surplus seen once",
			once:  true,
			want:  []int{0, 1, 2},
			trims: [3]int64{},
		},
		{
			name:  "a surplus that lasted",
			want:  []int{0, 1},
			trims: [3]int64{0, 0, 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := byID(startRepNodesCfg(t, 3, trimCfg, nil))
			c := holdEverywhere(t, nodes, nodes, "a file on one node too many\n")
			if tc.setup != nil {
				tc.setup(t, nodes, c)
			}
			top := nodes[2] // the only node the rule lets drop
			top.s.checkReplicas(context.Background())
			if !tc.once {
				time.Sleep(2 * trimCfg.ReplicationInterval)
				top.s.checkReplicas(context.Background())
			}
			var want []peer.ID
			for _, i := range tc.want {
				want = append(want, nodes[i].h.ID())
			}
			if got := holding(nodes, c); !slices.Equal(got, want) {
				t.Fatalf("held by %v, want %v", got, want)
			}
			for i, n := range nodes {
				if got := n.s.Stats().Trimmed.Load(); got != tc.trims[i] {
					t.Errorf("node %d trimmed %d, want %d", i, got, tc.trims[i])
				}
			}
		})
	}
}

// A node never trims a file it published, nor a copy it keeps in custody,
// even when it is the highest of more than R holders.
func TestTrimSparesPublishersAndCustody(t *testing.T) {
	for _, custody := range []bool{false, true} {
		nodes := byID(startRepNodesCfg(t, 3, trimCfg, nil))
		c := holdEverywhere(t, nodes, nodes, "a file its publisher keeps\n")
		top := nodes[2]
		if custody {
			// In custody for a node that is not live: nothing to give back.
			owner := peer.ID("a node that left")
			if err := top.dir.Hold(context.Background(), c, owner); err != nil {
				t.Fatal(err)
			}
		} else if err := top.s.Store().PutName(PublishedName{Name: "mine.txt", CID: c, Size: 26, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		checkAll(nodes[2:])
		if got := holding(nodes, c); len(got) != 3 {
			t.Fatalf("custody %v: held by %v, want all 3 still", custody, got)
		}
	}
}

func TestTrimRank(t *testing.T) {
	pubs := []peer.ID{"p"}
	cases := []struct {
		a, b peer.ID
		want int
	}{
		{"a", "b", -1},
		{"b", "a", 1},
		{"a", "a", 0},
		{"p", "a", -1}, // a publisher ranks first, whatever its ID
		{"z", "p", 1},
		{"p", "p", 0},
	}
	for _, tc := range cases {
		if got := trimRank(pubs)(tc.a, tc.b); got != tc.want {
			t.Errorf("rank(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
