package kv

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
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
	n.s.local.mu.RLock()
	var final []*Record
	for _, r := range n.s.local.recs {
		final = append(final, r)
	}
	n.s.local.mu.RUnlock()
	fresh := testStore(final...)
	if got, want := n.s.local.digest(now), fresh.local.digest(now); !bytes.Equal(got, want) {
		t.Fatal("after overwrites and a delete, the store's digest differs from a fresh digest of the same records")
	}
	// And it differs from the digest before the last write.
	before := n.s.local.digest(now)
	if _, err := n.s.Put(ctx, NSUser, "k", []byte("four"), 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, n.s.local.digest(time.Now())) {
		t.Fatal("an overwrite did not change the digest")
	}
}

// BenchmarkDigest10k measures the anti-entropy digest of a store holding
// 10,000 records, kept the way apply keeps them (digests cached), against
// hashing every record on every digest.
func BenchmarkDigest10k(b *testing.B) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var rs []*Record
	for i := 0; i < 10000; i++ {
		r := &Record{NS: NSUser, Key: "bench/" + strconv.Itoa(i), Value: []byte("value"), Time: Timestamp{Wall: now.UnixNano() + int64(i)}}
		if err := r.Sign(key); err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	cached := testStore()
	cached.local.mu.Lock()
	for _, r := range rs {
		cached.local.setLocked(r)
	}
	cached.local.mu.Unlock()
	for _, c := range []struct {
		name string
		s    *Store
	}{{"cached", cached}, {"hashed-each-time", testStore(rs...)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.s.local.digest(now)
			}
		})
	}
}
