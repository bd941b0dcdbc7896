package kv

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// at returns a user record of key written d after testWall by the key of
// seed, deleted when tomb, expiring ttl after it was written when ttl > 0.
func at(t *testing.T, seed byte, key string, d time.Duration, tomb bool, ttl time.Duration) *Record {
	t.Helper()
	r := &Record{NS: NSUser, Key: key, Value: []byte("v"), Time: Timestamp{Wall: testWall + int64(d)}}
	if tomb {
		r.Value, r.Deleted = nil, true
	}
	if ttl > 0 {
		r.Expires = r.Time.Wall + int64(ttl)
	}
	return signRecord(t, r, testKey(t, seed))
}

func memLocal(cfg Config) *local {
	c := cfg
	return newLocal(&c, slog.New(slog.DiscardHandler), nil)
}

func TestLocalApply(t *testing.T) {
	now := time.Unix(0, testWall).Add(time.Hour)
	tests := []struct {
		name  string
		have  []*Record // kept before
		apply []*Record
		kept  int
		want  *Record // the copy of key "k" after; nil: none
	}{
		{name: "a new key is kept", apply: []*Record{at(t, 1, "k", 0, false, 0)}, kept: 1, want: at(t, 1, "k", 0, false, 0)},
		{name: "a newer write wins", have: []*Record{at(t, 1, "k", 0, false, 0)}, apply: []*Record{at(t, 2, "k", time.Second, false, 0)}, kept: 1, want: at(t, 2, "k", time.Second, false, 0)},
		{name: "an older write loses", have: []*Record{at(t, 1, "k", time.Second, false, 0)}, apply: []*Record{at(t, 2, "k", 0, false, 0)}, kept: 0, want: at(t, 1, "k", time.Second, false, 0)},
		{name: "the same record again changes nothing", have: []*Record{at(t, 1, "k", 0, false, 0)}, apply: []*Record{at(t, 1, "k", 0, false, 0)}, kept: 0, want: at(t, 1, "k", 0, false, 0)},
		{name: "a newer delete wins", have: []*Record{at(t, 1, "k", 0, false, 0)}, apply: []*Record{at(t, 1, "k", time.Minute, true, 0)}, kept: 1, want: at(t, 1, "k", time.Minute, true, 0)},
		{name: "an expired record is not kept", apply: []*Record{at(t, 1, "k", 0, false, time.Minute)}, kept: 0},
		{name: "a tombstone older than TombstoneTTL is not kept", apply: []*Record{at(t, 1, "k", -48*time.Hour, true, 0)}, kept: 0},
		{name: "of two versions in one batch the newer is kept once", apply: []*Record{at(t, 1, "k", time.Second, false, 0), at(t, 2, "k", 2*time.Second, false, 0), at(t, 3, "k", 0, false, 0)}, kept: 1, want: at(t, 2, "k", 2*time.Second, false, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := memLocal(DefaultConfig())
			if _, _, err := l.apply(tt.have, now); err != nil {
				t.Fatal(err)
			}
			kept, capped, err := l.apply(tt.apply, now)
			if err != nil || len(capped) != 0 {
				t.Fatalf("apply: %v, %d capped", err, len(capped))
			}
			if len(kept) != tt.kept {
				t.Fatalf("kept %d, want %d", len(kept), tt.kept)
			}
			got, ok := l.get(NSUser + "\x00k")
			switch {
			case tt.want == nil && ok:
				t.Fatalf("holds %v, want nothing", got.Time)
			case tt.want != nil && (!ok || got.digest() != tt.want.digest()):
				t.Fatalf("holds %v, want the record of %v", got, tt.want.Time)
			}
		})
	}
}

// The copy on disk is what a restart loads; expired records and old
// tombstones go at load and at every sweep, from memory and from disk.
func TestLocalPersistsAndSweeps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TombstoneTTL = time.Hour
	path := filepath.Join(t.TempDir(), "kv.db")
	t0 := time.Unix(0, testWall)
	open := func(now time.Time) *local {
		t.Helper()
		l, err := openLocal(path, &cfg, slog.New(slog.DiscardHandler), now, func(Timestamp) {})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open(t0)
	rs := []*Record{
		at(t, 1, "forever", 0, false, 0),
		at(t, 1, "ten-minutes", 0, false, 10*time.Minute),
		at(t, 1, "two-hours", 0, false, 2*time.Hour),
		at(t, 1, "deleted", 0, true, 0),
	}
	if kept, _, err := l.apply(rs, t0); err != nil || len(kept) != 4 {
		t.Fatalf("apply: %d kept, %v", len(kept), err)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		reopen  bool
		now     time.Duration
		present []string
	}{
		{"restart at once keeps all", true, 0, []string{"deleted", "forever", "ten-minutes", "two-hours"}},
		{"sweep after 20 min drops the expired", false, 20 * time.Minute, []string{"deleted", "forever", "two-hours"}},
		{"restart after 20 min", true, 20 * time.Minute, []string{"deleted", "forever", "two-hours"}},
		{"restart after 90 min drops the old tombstone", true, 90 * time.Minute, []string{"forever", "two-hours"}},
		{"sweep after 3 h drops the second expired", false, 3 * time.Hour, []string{"forever"}},
		{"restart after 3 h", true, 3 * time.Hour, []string{"forever"}},
	}
	l = nil
	for _, s := range steps {
		now := t0.Add(s.now)
		if s.reopen {
			if l != nil {
				if err := l.close(); err != nil {
					t.Fatal(err)
				}
			}
			l = open(now)
		} else if err := l.sweep(now); err != nil {
			t.Fatal(err)
		}
		if got := l.len(); got != len(s.present) {
			t.Fatalf("%s: %d records, want %d", s.name, got, len(s.present))
		}
		for _, k := range s.present {
			if _, ok := l.get(NSUser + "\x00" + k); !ok {
				t.Fatalf("%s: %q missing", s.name, k)
			}
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalHoldersAndList(t *testing.T) {
	now := time.Unix(0, testWall)
	l := memLocal(DefaultConfig())
	hold := func(seed byte, key string, tomb bool) *Record {
		r := at(t, seed, key, 0, tomb, 0)
		r.NS = NSHold
		return signRecord(t, r, testKey(t, seed))
	}
	a, b := hold(1, "cidA/p1", false), hold(2, "cidA/p2", false)
	if _, _, err := l.apply([]*Record{a, b, hold(3, "cidA/p3", true), hold(1, "cidB/p1", false), at(t, 1, "u", 0, false, 0)}, now); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cid  string
		want int
	}{{"cidA", 2}, {"cidB", 1}, {"cidC", 0}}
	for _, tt := range tests {
		if got := l.holders(tt.cid, now); len(got) != tt.want {
			t.Errorf("holders(%s) = %d records, want %d", tt.cid, len(got), tt.want)
		}
	}
	if got := l.list(NSHold+"\x00cidA/", now); len(got) != 2 || got[0].Key != a.Key || got[1].Key != b.Key {
		t.Errorf("list of cidA's holdings = %v, want %s and %s, sorted", got, a.Key, b.Key)
	}
}
