package kv

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// The digest that anti-entropy compares must follow every overwrite and
// deletion of a record, not a cached value of an older version: after a
// node overwrites and deletes keys, its digest equals the digest of a
// fresh store holding the same final records.
func TestDigestFollowsOverwritesAndDeletes(t *testing.T) {
	n := clStartNode(t, nil, "")
	ctx := context.Background()
	for i, v := range []string{"one", "two", "three"} {
		if _, err := n.s.Put(ctx, NSUser, "k", []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := n.s.Put(ctx, NSUser, "other", []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.s.Delete(ctx, NSUser, "other"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	n.s.mu.RLock()
	var final []*Record
	for _, r := range n.s.recs {
		final = append(final, r)
	}
	n.s.mu.RUnlock()
	fresh := testStore(final...)
	if got, want := n.s.digest(now), fresh.digest(now); !bytes.Equal(got, want) {
		t.Fatal("after overwrites and a delete, the store's digest differs from a fresh digest of the same records")
	}
	// And it differs from the digest before the last write.
	before := n.s.digest(now)
	if _, err := n.s.Put(ctx, NSUser, "k", []byte("four"), 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, n.s.digest(time.Now())) {
		t.Fatal("an overwrite did not change the digest")
	}
}
