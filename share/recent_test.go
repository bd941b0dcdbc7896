package share

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

func TestRecentCopiesMergeAndExpire(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	c := cidFromDigest(sum[:])
	listed, fresh, old := peer.ID("listed"), peer.ID("fresh"), peer.ID("old")
	var r recentCopies
	t0 := time.Now()
	r.add(c, old, "", t0)
	r.add(c, listed, "owner", t0.Add(30*time.Second))
	r.add(c, fresh, "owner", t0.Add(30*time.Second))
	hs := r.merge(c, []catalog.Holder{{Peer: listed}}, t0.Add(recentCopyTTL+time.Second))
	if len(hs) != 2 || hs[0] != (catalog.Holder{Peer: listed}) || hs[1] != (catalog.Holder{Peer: fresh, CustodyFor: "owner"}) {
		t.Fatalf("merge = %+v, want the catalog's holding as it is, then the fresh copy (the old one expired)", hs)
	}
	// The catalog listed "listed": that copy is forgotten, so a later
	// removal from the catalog is not hidden.
	if hs := r.merge(c, nil, t0.Add(recentCopyTTL+2*time.Second)); len(hs) != 1 || hs[0].Peer != fresh {
		t.Fatalf("after the catalog listed one: merge = %+v, want only %s", hs, fresh)
	}
	if hs := r.merge(c, nil, t0.Add(30*time.Second+recentCopyTTL+time.Second)); len(hs) != 0 || len(r.m) != 0 {
		t.Fatalf("after every TTL: merge = %+v, %d CIDs remembered", hs, len(r.m))
	}
	// A copy of a file never merged again is forgotten by a later push.
	other := cidFromDigest(sha256.New().Sum(nil))
	r.add(c, fresh, "", t0)
	r.add(other, fresh, "", t0.Add(recentCopyTTL+time.Second))
	if _, ok := r.m[c]; ok || len(r.m) != 1 {
		t.Fatalf("an expired copy outlived a later push: %v", r.m)
	}
}
