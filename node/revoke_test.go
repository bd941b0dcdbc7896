package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/node/admit"
)

// A revocation made on one node reaches the others through the KV store:
// a node online when it is made (by gossip or anti-entropy) and a node
// that starts later (by anti-entropy only) both disconnect the revoked
// peer and keep it out.
func TestRevocationSpreadsAndDisconnects(t *testing.T) {
	auth, err := admit.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	member := func(dir string, id peer.ID) func(*Config) {
		return func(c *Config) {
			tk, err := auth.Admit(id, time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			c.RepoDir = dir
			c.Admission = admit.Config{Authority: auth.Public(), Ticket: tk, Timeout: 2 * time.Second}
		}
	}
	start := func(bootstrap ...peer.AddrInfo) *Node {
		dir, id := repoID(t)
		return newTestNode(t, member(dir, id), bootstrap...)
	}
	connected := func(a, b *Node) bool {
		return a.Host().Network().Connectedness(b.Host().ID()) == network.Connected
	}
	n1 := start()
	n2 := start(addrInfo(n1))
	n3 := start(addrInfo(n1), addrInfo(n2))
	waitFor(t, 15*time.Second, "node 3 connected to nodes 1 and 2", func() bool { return connected(n3, n1) && connected(n3, n2) })

	rev, err := auth.Revoke(n3.Host().ID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n1.API().Revoke(context.Background(), admit.Encode(rev)); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	waitFor(t, 10*time.Second, "node 2 to learn the revocation and drop node 3", func() bool {
		return n2.Gate().Revoked(n3.Host().ID()) && !connected(n2, n3)
	})
	st := n2.KV().Stats()
	t.Logf("node 2 dropped node 3 %s after the revocation (KV applied by gossip %d, by anti-entropy %d)",
		time.Since(revoked).Round(time.Millisecond), st.AppliedGossip, st.AppliedSync)

	// A node started after the revocation hears of it by anti-entropy
	// only, and drops node 3 though it was told to dial it.
	n4 := start(addrInfo(n3), addrInfo(n1))
	waitFor(t, 15*time.Second, "node 4 to learn the revocation and drop node 3", func() bool {
		return n4.Gate().Revoked(n3.Host().ID()) && !connected(n4, n3)
	})
	if st := n4.KV().Stats(); st.AppliedSync == 0 {
		t.Fatalf("node 4 learned the revocation without anti-entropy: %+v", st)
	}
	// Node 3 stays out.
	for _, n := range []*Node{n1, n2, n4} {
		if connected(n, n3) {
			t.Fatalf("node %s took node 3 back", n.Host().ID())
		}
	}
}
