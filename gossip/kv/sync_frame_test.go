package kv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"
)

func frames(tb testing.TB, payloads ...[]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, p := range payloads {
		if err := writeFrame(&buf, p); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	payloads := [][]byte{
		[]byte("hello"),
		{},
		bytes.Repeat([]byte{0xab}, 127), // one-byte length
		bytes.Repeat([]byte{0xcd}, 128), // two-byte length
		bytes.Repeat([]byte{0xef}, 70000),
		{0},
	}
	data := frames(t, payloads...)
	if data[0] != 5 || data[6] != 0 {
		t.Fatalf("unexpected framing: % x", data[:8])
	}
	r := bufio.NewReaderSize(bytes.NewReader(data), 16)
	for i, want := range payloads {
		got, err := readFrame(r, 70000)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if got, err := readFrame(r, 70000); err != io.EOF || got != nil {
		t.Fatalf("after the last frame: %q, %v; want io.EOF", got, err)
	}
}

func TestReadFrameLimit(t *testing.T) {
	p := bytes.Repeat([]byte("x"), 100)
	data := frames(t, p)
	if got, err := readFrame(bufio.NewReader(bytes.NewReader(data)), 100); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("a frame of exactly max bytes: %d bytes, %v", len(got), err)
	}
	for _, max := range []int{99, 1, 0} {
		got, err := readFrame(bufio.NewReader(bytes.NewReader(data)), max)
		if !errors.Is(err, ErrBadSync) || got != nil {
			t.Fatalf("a frame of 100 bytes with max %d: %d bytes, %v; want ErrBadSync", max, len(got), err)
		}
	}
	// A huge announced length is refused before anything is allocated or
	// read: the reader has nothing after the header.
	var hdr [binary.MaxVarintLen64]byte
	for _, n := range []uint64{MaxRecordSize + 1, 1 << 40, 1<<63 + 1, ^uint64(0)} {
		b := hdr[:binary.PutUvarint(hdr[:], n)]
		if got, err := readFrame(bufio.NewReader(bytes.NewReader(b)), MaxRecordSize); !errors.Is(err, ErrBadSync) || got != nil {
			t.Fatalf("announced length %d: %v; want ErrBadSync", n, err)
		}
	}
	// The empty frame always fits.
	if got, err := readFrame(bufio.NewReader(bytes.NewReader([]byte{0})), 0); err != nil || len(got) != 0 {
		t.Fatalf("empty frame with max 0: %q, %v", got, err)
	}
}

func TestReadFrameTruncated(t *testing.T) {
	full := frames(t, []byte("0123456789"))
	tests := map[string][]byte{
		"payload cut":          full[:6],
		"payload missing":      full[:1],
		"one byte short":       full[:len(full)-1],
		"length cut":           {0x80},
		"length cut long":      {0xff, 0xff, 0xff},
		"length overflows":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		"length over 10 bytes": bytes.Repeat([]byte{0x80}, 11),
		"nothing":              {},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := readFrame(bufio.NewReader(bytes.NewReader(data)), 1<<20)
			if err == nil || got != nil {
				t.Fatalf("readFrame(% x) = %q, %v; want an error", data, got, err)
			}
		})
	}
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(full[:6])), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a payload cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, io.ErrClosedPipe
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteFrameError(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		if err := writeFrame(&failWriter{n: n}, []byte("0123456789")); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("writer failing after %d bytes: %v", n, err)
		}
	}
}

func TestDiffering(t *testing.T) {
	a := make([]byte, digestSize)
	for i := range a {
		a[i] = byte(i * 7)
	}
	if d := differing(a, bytes.Clone(a)); len(d) != 0 {
		t.Fatalf("identical digests differ in %v", d)
	}
	for _, want := range [][]byte{{0}, {255}, {0, 255}, {1, 2, 3, 100, 200}} {
		b := bytes.Clone(a)
		for _, bucket := range want {
			// Flip one bit somewhere in the bucket's hash.
			b[int(bucket)*sha256.Size+int(bucket)%sha256.Size] ^= 0x10
		}
		got := slices.Sorted(maps.Keys(differing(a, b)))
		if !bytes.Equal(got, want) {
			t.Fatalf("differing = %v, want %v", got, want)
		}
		for _, bucket := range got {
			if !differing(a, b)[bucket] {
				t.Fatalf("bucket %d reported false", bucket)
			}
		}
	}
	b := make([]byte, digestSize)
	for i := range b {
		b[i] = ^a[i]
	}
	if d := differing(a, b); len(d) != Buckets {
		t.Fatalf("all buckets changed, %d reported", len(d))
	}
}

// testStore is a Store with only what the digest and record exchange need:
// a local copy in memory holding rs, their digests not cached.
func testStore(rs ...*Record) *Store {
	log := slog.New(slog.DiscardHandler)
	s := newStore(DefaultConfig(), log, newLocal(nil, log, nil), "", NewClock(nil))
	for _, r := range rs {
		s.local.recs[r.ID()] = r
	}
	return s
}

func TestStoreDigest(t *testing.T) {
	k := testKey(t, 1)
	now := time.Now()
	var rs []*Record
	for i := range 40 {
		r := userRecord("key"+strconv.Itoa(i), "v")
		r.Time.Wall = now.Add(-time.Minute).UnixNano()
		rs = append(rs, signRecord(t, r, k))
	}
	empty := testStore().local.digest(now)
	if len(empty) != digestSize || !bytes.Equal(empty, make([]byte, digestSize)) {
		t.Fatal("the digest of an empty store is not all zero")
	}
	full := testStore(rs...)
	d := full.local.digest(now)
	if len(d) != digestSize {
		t.Fatalf("digest of %d bytes", len(d))
	}
	// Same records, other insertion order: same digest.
	rev := slices.Clone(rs)
	slices.Reverse(rev)
	if !bytes.Equal(d, testStore(rev...).local.digest(now)) {
		t.Fatal("the digest depends on the order of insertion")
	}
	// One record more, newer, or expired: exactly its bucket differs.
	extra := signRecord(t, userRecord("extra", "v"), k)
	newer := cloneRecord(rs[3])
	newer.Value = []byte("w")
	signRecord(t, newer, k)
	expired := cloneRecord(rs[5])
	expired.Expires = now.UnixNano()
	signRecord(t, expired, k)
	for _, c := range []struct {
		name string
		s    *Store
		id   string
	}{
		{"extra record", testStore(append(slices.Clone(rs), extra)...), extra.ID()},
		{"newer version", testStore(append(slices.Clone(rs), newer)...), newer.ID()},
		{"expired record", testStore(append(slices.Clone(rs), expired)...), expired.ID()},
	} {
		got := slices.Sorted(maps.Keys(differing(d, c.s.local.digest(now))))
		if want := []byte{bucketOf(c.id)}; !bytes.Equal(got, want) {
			t.Fatalf("%s: buckets %v differ, want %v", c.name, got, want)
		}
	}
	// The expired record counts as absent.
	withoutExpired := testStore(slices.Delete(slices.Clone(rs), 5, 6)...)
	if !bytes.Equal(withoutExpired.local.digest(now), testStore(append(slices.Clone(rs), expired)...).local.digest(now)) {
		t.Fatal("an expired record changes the digest")
	}
	// recordsIn gives exactly the live records of the asked buckets.
	want := map[byte]bool{bucketOf(rs[0].ID()): true, bucketOf(rs[1].ID()): true}
	var wantIDs []string
	for _, r := range rs {
		if want[bucketOf(r.ID())] {
			wantIDs = append(wantIDs, r.ID())
		}
	}
	var gotIDs []string
	for _, b := range full.local.recordsIn(want, now) {
		r, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		gotIDs = append(gotIDs, r.ID())
	}
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("recordsIn = %q, want %q", gotIDs, wantIDs)
	}
	if got := full.local.recordsIn(nil, now); got != nil {
		t.Fatalf("recordsIn(nil) = %d records", len(got))
	}
	if got := testStore(expired).local.recordsIn(map[byte]bool{bucketOf(expired.ID()): true}, now); len(got) != 0 {
		t.Fatal("recordsIn gives an expired record")
	}
}

func TestStoreReceive(t *testing.T) {
	k := testKey(t, 1)
	now := time.Now()
	at := func(key string, wall time.Time, expires time.Time) *Record {
		r := userRecord(key, "v")
		r.Time = Timestamp{Wall: wall.UnixNano(), Logical: 4}
		if !expires.IsZero() {
			r.Expires = expires.UnixNano()
		}
		return signRecord(t, r, k)
	}
	a := at("a", now.Add(-time.Minute), time.Time{})
	b := at("b", now.Add(10*time.Second), time.Time{}) // ahead, within the skew
	future := at("future", now.Add(time.Hour), time.Time{})
	expired := at("expired", now.Add(-time.Hour), now.Add(-time.Minute))
	forged := cloneRecord(a)
	forged.Key = "forged"

	s := testStore()
	data := frames(t,
		marshalRecord(t, a),
		[]byte("garbage"),
		marshalRecord(t, forged),
		marshalRecord(t, future),
		marshalRecord(t, expired),
		marshalRecord(t, b),
		nil,
		[]byte("after the end"),
	)
	r := bufio.NewReader(bytes.NewReader(data))
	got, err := s.receive(r)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(got) != 2 || !recordsEqual(got[0], a) || !recordsEqual(got[1], b) {
		t.Fatalf("receive kept %d records, want a and b: %+v", len(got), got)
	}
	if next := s.clock.Now(); next.Compare(b.Time) <= 0 {
		t.Fatalf("the clock did not observe a received record: %v after %v", next, b.Time)
	}
	// The frame after the end is left unread.
	if rest, err := readFrame(r, 100); err != nil || string(rest) != "after the end" {
		t.Fatalf("after the end frame: %q, %v", rest, err)
	}

	// No end frame: an error, with what came before.
	got, err = testStore().receive(bufio.NewReader(bytes.NewReader(frames(t, marshalRecord(t, a)))))
	if err == nil || len(got) != 1 {
		t.Fatalf("receive without an end frame = %d records, %v; want 1 and an error", len(got), err)
	}
	// A frame over the limit breaks the exchange.
	var hdr [binary.MaxVarintLen64]byte
	over := hdr[:binary.PutUvarint(hdr[:], MaxRecordSize+1)]
	if _, err := testStore().receive(bufio.NewReader(bytes.NewReader(over))); !errors.Is(err, ErrBadSync) {
		t.Fatalf("receive of an oversize frame: %v, want ErrBadSync", err)
	}
}
