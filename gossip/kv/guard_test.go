package kv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	bolt "go.etcd.io/bbolt"
)

// gossipMessage is r as the KV topic delivers it, published by its writer.
func gossipMessage(tb testing.TB, r *Record) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{Data: marshalRecord(tb, r), From: []byte(r.Writer)}}
}

// syncReceive is what an anti-entropy exchange keeps of rs.
func syncReceive(tb testing.TB, s *Store, rs ...*Record) []*Record {
	tb.Helper()
	var ps [][]byte
	for _, r := range rs {
		ps = append(ps, marshalRecord(tb, r))
	}
	got, err := s.receive(bufio.NewReader(bytes.NewReader(append(frames(tb, ps...), 0))))
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func TestFutureRecordIsRejectedForGood(t *testing.T) {
	clock := &fakeWall{t: time.Unix(0, testWall)}
	s := testStore()
	s.cfg.Now = clock.now
	k := testKey(t, 1)
	at := func(d time.Duration, key string) *Record {
		r := userRecord(key, "v")
		r.Time = Timestamp{Wall: testWall + int64(d)}
		return signRecord(t, r, k)
	}
	// Both 90 s ahead of this node's clock (the limit is 30 s).
	viaGossip, viaSync := at(90*time.Second, "gossiped"), at(90*time.Second, "synced")
	if got := s.intake.validate(context.Background(), "", gossipMessage(t, viaGossip)); got != pubsub.ValidationReject {
		t.Fatalf("a record 90 s ahead: validation %v, want reject", got)
	}
	if got := syncReceive(t, s, viaSync); len(got) != 0 {
		t.Fatalf("a record 90 s ahead kept by anti-entropy: %v", got)
	}

	// Two minutes later both are in the past, and a record never seen
	// before is accepted; the two rejected on receipt stay rejected, by
	// either path.
	clock.set(clock.now().Add(2 * time.Minute))
	fresh := at(90*time.Second, "fresh")
	if got := s.intake.validate(context.Background(), "", gossipMessage(t, fresh)); got != pubsub.ValidationAccept {
		t.Fatalf("a record never seen, now in the past: validation %v, want accept", got)
	}
	for _, r := range []*Record{viaGossip, viaSync} {
		if got := s.intake.validate(context.Background(), "", gossipMessage(t, r)); got != pubsub.ValidationReject {
			t.Errorf("%q, rejected as from the future 2 min ago: validation %v, want reject", r.Key, got)
		}
		if got := syncReceive(t, s, r); len(got) != 0 {
			t.Errorf("%q, rejected as from the future 2 min ago, kept by anti-entropy", r.Key)
		}
	}
	if got := s.Stats().Rejected[RejectFuture]; got != 6 {
		t.Errorf("Stats.Rejected[future] = %d, want 6", got)
	}
}

func TestFutureRecordsRememberedAreBounded(t *testing.T) {
	var f futureSet
	k := testKey(t, 1)
	first := signRecord(t, userRecord("k0", "v"), k)
	f.add(first)
	for i := 1; i <= maxFutureKept; i++ {
		r := userRecord("k", "v")
		r.Time.Wall += int64(i)
		r.Writer = first.Writer
		f.add(r)
	}
	if len(f.m) != maxFutureKept || len(f.order) != maxFutureKept || f.has(first) {
		t.Fatalf("set of %d (order %d), oldest kept %v; want %d without the oldest", len(f.m), len(f.order), f.has(first), maxFutureKept)
	}
}

func TestMeasuredClockJudgesRecords(t *testing.T) {
	clock := &fakeWall{t: time.Unix(0, testWall)}
	s := testStore()
	s.cfg.Now = clock.now
	// This node's clock is 10 min behind the network's.
	s.cfg.ClockOffset = func() (time.Duration, bool) { return -10 * time.Minute, true }
	r := userRecord("k", "v")
	r.Time = Timestamp{Wall: testWall + int64(9*time.Minute)}
	signRecord(t, r, testKey(t, 1))
	if got := s.intake.validate(context.Background(), "", gossipMessage(t, r)); got != pubsub.ValidationAccept {
		t.Fatalf("a record written a minute ago by the network's clock: validation %v, want accept", got)
	}
	err := s.CheckClock()
	var ce *ClockError
	if !errors.As(err, &ce) || !errors.Is(err, ErrClockOff) {
		t.Fatalf("CheckClock = %v, want a ClockError", err)
	}
	if want := "this node's clock is 10m0s behind the network (limit 30s): fix the system clock (NTP) and retry"; err.Error() != want {
		t.Fatalf("CheckClock = %q, want %q", err, want)
	}
	s.cfg.ClockOffset = func() (time.Duration, bool) { return 29 * time.Second, true }
	if err := s.CheckClock(); err != nil {
		t.Fatalf("CheckClock at +29s = %v, want nil", err)
	}
	s.cfg.ClockOffset = func() (time.Duration, bool) { return time.Hour, false }
	if err := s.CheckClock(); err != nil {
		t.Fatalf("CheckClock before any measurement = %v, want nil", err)
	}
}

// capStore is a store on a bbolt file with a per-writer cap of max, whose
// own writer is the key of seed 1.
func capStore(t *testing.T, max int) *Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketRecords)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxRecordsPerWriter = max
	cfg.Now = func() time.Time { return time.Unix(0, testWall).Add(time.Minute) }
	log := slog.New(slog.DiscardHandler)
	return newStore(cfg, log, newLocal(nil, log, db), idOf(t, testKey(t, 1)), NewClock(nil))
}

func TestWriterCap(t *testing.T) {
	s := capStore(t, 3)
	a, b := testKey(t, 1), testKey(t, 2)
	mk := func(key string, logical uint32, deleted bool, byB bool) *Record {
		r := userRecord(key, "v")
		r.Time.Logical = logical
		if deleted {
			r.Value, r.Deleted = nil, true
		}
		k := a
		if byB {
			k = b
		}
		return signRecord(t, r, k)
	}
	apply := func(rs ...*Record) int {
		t.Helper()
		n, err := s.apply(rs)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Three records of A fit, in one batch; a fourth does not, in the
	// same batch or a later one.
	if n := apply(mk("a1", 1, false, false), mk("a2", 1, false, false), mk("a3", 1, false, false), mk("a4", 1, false, false)); n != 3 {
		t.Fatalf("applied %d of 4 records of one writer, the cap is 3", n)
	}
	if n := apply(mk("a5", 1, false, false)); n != 0 || s.stored("a5") {
		t.Fatal("a record past the writer's cap was kept")
	}
	if got := s.Stats().Rejected[RejectWriterCap]; got != 2 {
		t.Fatalf("Stats.Rejected[writer_cap] = %d, want 2", got)
	}
	// A newer version of a key A holds replaces it; another writer is
	// not limited by A's count.
	if n := apply(mk("a1", 2, false, false), mk("b1", 1, false, true)); n != 2 {
		t.Fatalf("applied %d, want the update and B's record", n)
	}
	err := s.checkOwnWrite(NSUser, "a6", false)
	var we *WriterLimitError
	if !errors.As(err, &we) || !errors.Is(err, ErrWriterLimit) || !strings.Contains(err.Error(), "per-writer limit of 3 records") {
		t.Fatalf("own write past the cap: %v, want a WriterLimitError", err)
	}
	if err := s.checkOwnWrite(NSUser, "a2", false); err != nil {
		t.Fatalf("own update of a key it holds: %v", err)
	}
	// A delete turns a live record into a tombstone: room for one more.
	if n := apply(mk("a2", 2, true, false)); n != 1 {
		t.Fatal("a delete was not applied")
	}
	if err := s.checkOwnWrite(NSUser, "a6", false); err != nil {
		t.Fatalf("own write after a delete: %v", err)
	}
	// B overwriting one of A's keys frees another.
	if n := apply(mk("a3", 5, false, true), mk("a6", 1, false, false), mk("a7", 1, false, false), mk("a8", 1, false, false)); n != 3 {
		t.Fatalf("applied %d, want B's overwrite and two more of A", n)
	}
	if !s.stored("a6") || !s.stored("a7") || s.stored("a8") {
		t.Fatal("wrong records kept after B took one of A's keys")
	}
	// The sweep gives the room back too.
	s.local.mu.Lock()
	s.local.dropLocked(NSUser + "\x00a1")
	s.local.mu.Unlock()
	if err := s.checkOwnWrite(NSUser, "a8", false); err != nil {
		t.Fatalf("own write after a record was dropped: %v", err)
	}
}

// stored reports whether s holds a record for the user key.
func (s *Store) stored(key string) bool {
	_, ok := s.local.get(NSUser + "\x00" + key)
	return ok
}

// A writer whose own cap is higher than its peers' floods them: each keeps
// its cap of the writer's records, by gossip and by anti-entropy, and
// counts the rest as rejected.
func TestClusterWriterCapOnIntake(t *testing.T) {
	big := clConfig()
	big.MaxRecordsPerWriter = 100
	small := clConfig()
	small.MaxRecordsPerWriter = 5
	w := clStartNodeWith(t, nil, "", big)
	r1 := clStartNodeWith(t, nil, "", small)
	r2 := clStartNodeWith(t, nil, "", small)
	clConnect(t, r1, w)
	clConnect(t, r2, w)
	clConnect(t, r2, r1)
	clWaitReady(t, 15*time.Second, w, r1, r2)
	ctx := t.Context()
	for i := range 8 {
		if _, err := w.s.Put(ctx, NSUser, fmt.Sprintf("k%d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*clNode{r1, r2} {
		clWait(t, 15*time.Second, func() error {
			held := len(n.s.List(NSUser, ""))
			if rej := n.s.Stats().Rejected[RejectWriterCap]; held != 5 || rej < 3 {
				return fmt.Errorf("%s holds %d of the writer's 8 records and rejected %d, want 5 and at least 3", n.name(), held, rej)
			}
			return nil
		})
	}
	// Anti-entropy keeps offering the rest; after two more exchanges of
	// each, still 5.
	s1, s2 := r1.s.Stats().Syncs, r2.s.Stats().Syncs
	clWait(t, 15*time.Second, func() error {
		if r1.s.Stats().Syncs < s1+2 || r2.s.Stats().Syncs < s2+2 {
			return fmt.Errorf("waiting for two anti-entropy exchanges of each")
		}
		return nil
	})
	for _, n := range []*clNode{r1, r2} {
		if held := len(n.s.List(NSUser, "")); held != 5 {
			t.Fatalf("%s holds %d of the writer's records after anti-entropy, the cap is 5", n.name(), held)
		}
	}
}
