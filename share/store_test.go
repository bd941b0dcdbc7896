package share

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"
)

var discardLog = slog.New(slog.DiscardHandler)

// openTestStore opens a store in a fresh temp dir and closes it at the end
// of the test.
func openTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenStore(dir, discardLog)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func reopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := OpenStore(dir, discardLog)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func mustPut(t *testing.T, s *Store, b []byte) cid.Cid {
	t.Helper()
	c, n, err := s.Put(context.Background(), bytes.NewReader(b), 0)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n != int64(len(b)) {
		t.Fatalf("Put size = %d, want %d", n, len(b))
	}
	return c
}

func heldCIDs(hs []Held) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.CID.String())
	}
	slices.Sort(out)
	return out
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStorePutCID(t *testing.T) {
	s, dir := openTestStore(t)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text", []byte("hello\n")},
		// Larger than copyBufSize, so the copy takes several rounds.
		{"multi-buffer", randomBytes(t, copyBufSize*2+17)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n, err := s.Put(context.Background(), bytes.NewReader(tc.data), 0)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if n != int64(len(tc.data)) {
				t.Errorf("size = %d, want %d", n, len(tc.data))
			}
			if want := ComputeCID(tc.data); !c.Equals(want) {
				t.Errorf("CID = %s, want %s", c, want)
			}
			p := c.Prefix()
			if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
				t.Errorf("CID prefix = %+v, want CIDv1 raw sha2-256", p)
			}
			got, err := os.ReadFile(filepath.Join(dir, "blocks", c.String()))
			if err != nil {
				t.Fatalf("block file: %v", err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("block file holds %d bytes, not the %d put", len(got), len(tc.data))
			}
			fi, err := os.Stat(filepath.Join(dir, "blocks", c.String()))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("block file mode = %v, want 0600", fi.Mode().Perm())
			}
			if size, ok := s.Has(c); !ok || size != int64(len(tc.data)) {
				t.Errorf("Has = %d, %v; want %d, true", size, ok, len(tc.data))
			}
		})
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp/ not empty after puts: %v", names)
	}
}

func TestStorePutEmpty(t *testing.T) {
	s, _ := openTestStore(t)
	c, n, err := s.Put(context.Background(), strings.NewReader(""), 10)
	if err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	if n != 0 || !c.Equals(ComputeCID(nil)) {
		t.Fatalf("Put empty = %s, %d; want %s, 0", c, n, ComputeCID(nil))
	}
	f, size, err := s.Open(c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	if size != 0 {
		t.Errorf("Open size = %d", size)
	}
	if err := s.Verify(c); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestStorePutMaxSize(t *testing.T) {
	data := []byte("0123456789")
	for _, tc := range []struct {
		max     int64
		tooLong bool
	}{
		{0, false}, // no limit
		{-1, false},
		{9, true},
		{1, true},
		{10, false}, // exactly the limit
		{11, false},
		// maxSize+1 must not overflow into a negative limit that reads
		// nothing and stores the empty file.
		{math.MaxInt64, false},
		{math.MaxInt64 - 1, false},
	} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			s, dir := openTestStore(t)
			c, n, err := s.Put(context.Background(), bytes.NewReader(data), tc.max)
			if tc.tooLong {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Put over the limit: err = %v, want ErrTooLarge", err)
				}
				if c.Defined() || n != 0 {
					t.Errorf("Put over the limit returned %s, %d", c, n)
				}
				for _, sub := range []string{"blocks", "tmp"} {
					if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
						t.Errorf("%s/ not empty after a refused put: %v", sub, names)
					}
				}
				if l := s.List(); len(l) != 0 {
					t.Errorf("List after a refused put = %v", l)
				}
				if _, ok := s.Has(ComputeCID(data)); ok {
					t.Error("Has reports the refused file")
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if n != int64(len(data)) || !c.Equals(ComputeCID(data)) {
				t.Fatalf("Put = %s, %d; want %s, %d", c, n, ComputeCID(data), len(data))
			}
		})
	}
}

func TestStorePutIdempotent(t *testing.T) {
	s, dir := openTestStore(t)
	data := []byte("same bytes")
	c1 := mustPut(t, s, data)
	l1 := s.List()
	c2 := mustPut(t, s, data)
	if !c1.Equals(c2) {
		t.Fatalf("second Put gave %s, first %s", c2, c1)
	}
	l2 := s.List()
	if len(l2) != 1 || len(l1) != 1 {
		t.Fatalf("List after two puts of the same bytes: %v", l2)
	}
	if !l1[0].Added.Equal(l2[0].Added) || l1[0].Size != l2[0].Size {
		t.Errorf("second Put changed the entry: %+v -> %+v", l1[0], l2[0])
	}
	if names := dirNames(t, filepath.Join(dir, "blocks")); len(names) != 1 || names[0] != c1.String() {
		t.Errorf("blocks/ = %v, want [%s]", names, c1)
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp/ = %v, want empty", names)
	}
	if err := s.Verify(c1); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestStoreHasOpenListVerify(t *testing.T) {
	s, _ := openTestStore(t)
	files := [][]byte{[]byte("first"), []byte("second file"), randomBytes(t, 4096)}
	var cids []cid.Cid
	for _, b := range files {
		cids = append(cids, mustPut(t, s, b))
	}
	for i, c := range cids {
		size, ok := s.Has(c)
		if !ok || size != int64(len(files[i])) {
			t.Errorf("Has(%s) = %d, %v; want %d, true", c, size, ok, len(files[i]))
		}
		f, size, err := s.Open(c)
		if err != nil {
			t.Fatalf("Open(%s): %v", c, err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(files[i])) || !bytes.Equal(got, files[i]) {
			t.Errorf("Open(%s) = %d bytes (size %d), want the %d put", c, len(got), size, len(files[i]))
		}
		if err := s.Verify(c); err != nil {
			t.Errorf("Verify(%s): %v", c, err)
		}
	}

	list := s.List()
	if len(list) != len(files) {
		t.Fatalf("List has %d entries, want %d", len(list), len(files))
	}
	for i, h := range list {
		// Oldest first: in put order (each put fsyncs, so the clock moves).
		if !h.CID.Equals(cids[i]) {
			t.Errorf("List[%d] = %s, want %s (oldest first)", i, h.CID, cids[i])
		}
		if i > 0 && h.Added.Before(list[i-1].Added) {
			t.Errorf("List not oldest first: %v before %v", list[i-1].Added, h.Added)
		}
		if h.Size != int64(len(files[i])) {
			t.Errorf("List[%d].Size = %d, want %d", i, h.Size, len(files[i]))
		}
		if h.Added.IsZero() || time.Since(h.Added) > time.Hour || time.Until(h.Added) > time.Minute {
			t.Errorf("List[%d].Added = %v, not about now", i, h.Added)
		}
	}

	missing := ComputeCID([]byte("never put"))
	if _, ok := s.Has(missing); ok {
		t.Error("Has reports a CID never put")
	}
	if _, _, err := s.Open(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a missing CID: err = %v, want ErrNotFound", err)
	}
	if err := s.Verify(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify of a missing CID: err = %v, want ErrNotFound", err)
	}
}

func TestStoreVerifyDetectsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(b []byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[3] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"appended", func(b []byte) []byte { return append(b, 'x') }},
		{"emptied", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := openTestStore(t)
			data := []byte("the original contents")
			c := mustPut(t, s, data)
			p := filepath.Join(dir, "blocks", c.String())
			if err := os.WriteFile(p, tc.modify(bytes.Clone(data)), 0o600); err != nil {
				t.Fatal(err)
			}
			err := s.Verify(c)
			if !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("Verify of a modified block: err = %v, want ErrHashMismatch", err)
			}
		})
	}
}

func TestStoreVerifyFileDeleted(t *testing.T) {
	s, dir := openTestStore(t)
	c := mustPut(t, s, []byte("soon gone"))
	if err := os.Remove(filepath.Join(dir, "blocks", c.String())); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(c); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify of a deleted block: err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Open(c); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a deleted block: err = %v, want ErrNotFound", err)
	}
}

func TestStoreReopenKeepsEverything(t *testing.T) {
	s, dir := openTestStore(t)
	var cids []cid.Cid
	for _, b := range []string{"a", "bb", "ccc"} {
		cids = append(cids, mustPut(t, s, []byte(b)))
	}
	pub := PublishedName{Name: "notes.txt", CID: cids[1], Size: 2, Time: time.Now().UTC()}
	if err := s.PutName(pub); err != nil {
		t.Fatal(err)
	}
	before := s.List()

	s = reopen(t, s, dir)
	after := s.List()
	if len(after) != len(before) {
		t.Fatalf("List after reopen = %d entries, want %d", len(after), len(before))
	}
	for i := range before {
		if !before[i].CID.Equals(after[i].CID) || before[i].Size != after[i].Size || !before[i].Added.Equal(after[i].Added) {
			t.Errorf("entry %d changed across reopen: %+v -> %+v", i, before[i], after[i])
		}
	}
	for _, c := range cids {
		if err := s.Verify(c); err != nil {
			t.Errorf("Verify(%s) after reopen: %v", c, err)
		}
	}
	names := s.Names()
	if len(names) != 1 || !namesEqual(names[0], pub) {
		t.Errorf("Names after reopen = %v, want [%v]", names, pub)
	}
}

func TestStoreReconcile(t *testing.T) {
	s, dir := openTestStore(t)
	kept := mustPut(t, s, []byte("kept"))
	deleted := mustPut(t, s, []byte("deleted while closed"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// While closed: one block file disappears, one appears under its
	// correct CID name, and some files that are not blocks show up.
	blocks := filepath.Join(dir, "blocks")
	if err := os.Remove(filepath.Join(blocks, deleted.String())); err != nil {
		t.Fatal(err)
	}
	dropped := []byte("dropped in while closed")
	droppedCID := ComputeCID(dropped)
	if err := os.WriteFile(filepath.Join(blocks, droppedCID.String()), dropped, 0o600); err != nil {
		t.Fatal(err)
	}
	v0 := cid.NewCidV0(droppedCID.Hash())
	pb := cid.NewCidV1(cid.DagProtobuf, ComputeCID([]byte("pb")).Hash())
	for _, name := range []string{"junk.txt", v0.String(), pb.String()} {
		if err := os.WriteFile(filepath.Join(blocks, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory under a valid CID name is not a block either.
	dirCID := ComputeCID([]byte("a directory"))
	if err := os.Mkdir(filepath.Join(blocks, dirCID.String()), 0o700); err != nil {
		t.Fatal(err)
	}

	s2, err := OpenStore(dir, discardLog)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	want := []string{droppedCID.String(), kept.String()}
	slices.Sort(want)
	if got := heldCIDs(s2.List()); !slices.Equal(got, want) {
		t.Errorf("List after reconcile = %v, want %v", got, want)
	}
	if size, ok := s2.Has(droppedCID); !ok || size != int64(len(dropped)) {
		t.Errorf("Has(dropped) = %d, %v; want %d, true", size, ok, len(dropped))
	}
	if err := s2.Verify(droppedCID); err != nil {
		t.Errorf("Verify(dropped): %v", err)
	}
	if _, ok := s2.Has(deleted); ok {
		t.Error("Has(deleted) is true after reconcile")
	}
	if _, _, err := s2.Open(deleted); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(deleted): err = %v, want ErrNotFound", err)
	}
}

// A file dropped into blocks/ under another encoding of its CID (another
// base, upper case) must not be listed as held unless it can be opened.
func TestStoreReconcileNonCanonicalName(t *testing.T) {
	data := []byte("dropped under an odd name")
	c := ComputeCID(data)
	for _, name := range []string{
		c.Encode(multibase.MustNewEncoder(multibase.Base58BTC)),
		c.Encode(multibase.MustNewEncoder(multibase.Base32Upper)),
		c.Encode(multibase.MustNewEncoder(multibase.Base36)),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := OpenStore(dir, discardLog)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := os.WriteFile(filepath.Join(dir, "blocks", name), data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = OpenStore(dir, discardLog)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, has := s.Has(c)
			listed := len(s.List()) > 0
			if !has && !listed {
				return
			}
			f, _, err := s.Open(c)
			if err != nil {
				t.Fatalf("Has = %v, List = %v, but Open: %v", has, s.List(), err)
			}
			f.Close()
			if err := s.Verify(c); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestStoreOpenRemovesTemp(t *testing.T) {
	s, dir := openTestStore(t)
	c := mustPut(t, s, []byte("real"))
	f, err := s.TempFile("dl-*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial download")
	f.Close()
	td, err := s.TempDir("fetch-*")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(td, "part"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("crash leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 3 {
		t.Fatalf("tmp/ before reopen = %v, want 3 entries", names)
	}

	s = reopen(t, s, dir)
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp/ after reopen = %v, want empty", names)
	}
	if got := heldCIDs(s.List()); !slices.Equal(got, []string{c.String()}) {
		t.Errorf("List after reopen = %v, want [%s]", got, c)
	}
}

func TestStoreTempIsInsideStore(t *testing.T) {
	s, dir := openTestStore(t)
	f, err := s.TempFile("x-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Dir(f.Name()) != filepath.Join(dir, "tmp") {
		t.Errorf("TempFile in %s, want %s", filepath.Dir(f.Name()), filepath.Join(dir, "tmp"))
	}
	d, err := s.TempDir("y-*")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(d) != filepath.Join(dir, "tmp") {
		t.Errorf("TempDir in %s, want %s", filepath.Dir(d), filepath.Join(dir, "tmp"))
	}
}

func TestStoreNames(t *testing.T) {
	s, dir := openTestStore(t)
	if n := s.Names(); len(n) != 0 {
		t.Fatalf("Names of a new store = %v", n)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	a := PublishedName{Name: "a.txt", CID: ComputeCID([]byte("a")), Size: 1, Time: t0}
	b := PublishedName{Name: "b.txt", CID: ComputeCID([]byte("b")), Size: 1, Time: t0}
	a2 := PublishedName{Name: "a.txt", CID: ComputeCID([]byte("a2")), Size: 2, Time: t0.Add(time.Second)}
	for _, n := range []PublishedName{a, b, a2} {
		if err := s.PutName(n); err != nil {
			t.Fatalf("PutName(%s): %v", n.Name, err)
		}
	}
	// A repo of an earlier release holds its signed name records in the
	// same bucket: they read alike; an entry that does not decode is
	// skipped.
	key := testKey(t)
	self, _ := peer.IDFromPrivateKey(key)
	c := ComputeCID([]byte("c"))
	old := fmt.Sprintf(`{"name":"c.txt","cid":{"/":"%s"},"size":3,"publisher":"%s","time":"%s","sig":"c2ln"}`,
		c, self, t0.Format(time.RFC3339Nano))
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketNames).Put([]byte("c.txt"), []byte(old)); err != nil {
			return err
		}
		return tx.Bucket(bucketNames).Put([]byte("bad.txt"), []byte("not json"))
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	got := map[string]PublishedName{}
	for _, n := range s.Names() {
		got[n.Name] = n
	}
	if len(got) != 3 {
		t.Fatalf("Names = %v, want a.txt, b.txt and c.txt", got)
	}
	// A later PutName of the same name replaces the earlier one.
	for _, want := range []PublishedName{a2, b, {Name: "c.txt", CID: c, Size: 3, Time: t0}} {
		if !namesEqual(got[want.Name], want) {
			t.Errorf("Names[%s] = %+v, want %+v", want.Name, got[want.Name], want)
		}
	}
}

// namesEqual compares every field of two published names.
func namesEqual(a, b PublishedName) bool {
	return a.Name == b.Name && a.CID.Equals(b.CID) && a.Size == b.Size && a.Time.Equal(b.Time)
}

func TestStoreClose(t *testing.T) {
	s, dir := openTestStore(t)
	c := mustPut(t, s, []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := s.Put(context.Background(), strings.NewReader("after close"), 0)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: err = %v, want ErrClosed", err)
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp/ after a put on a closed store = %v", names)
	}
	// Reads on a closed store fail quietly rather than panic.
	if _, ok := s.Has(c); ok {
		t.Error("Has on a closed store reports true")
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List on a closed store = %v", l)
	}
}

func TestStorePutCancelledContext(t *testing.T) {
	s, dir := openTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := s.Put(ctx, strings.NewReader("never stored"), 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: err = %v, want context.Canceled", err)
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List after a cancelled put = %v", l)
	}
	for _, sub := range []string{"blocks", "tmp"} {
		if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
			t.Errorf("%s/ after a cancelled put = %v", sub, names)
		}
	}
}

// errReader returns some bytes, then an error.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		k := min(r.n, len(p))
		r.n -= k
		return k, nil
	}
	return 0, errors.New("disk on fire")
}

func TestStorePutReaderError(t *testing.T) {
	s, dir := openTestStore(t)
	if _, _, err := s.Put(context.Background(), &errReader{n: 100}, 0); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put from a failing reader: err = %v", err)
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List after a failed put = %v", l)
	}
	for _, sub := range []string{"blocks", "tmp"} {
		if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
			t.Errorf("%s/ after a failed put = %v", sub, names)
		}
	}
}

func TestStoreConcurrentPut(t *testing.T) {
	s, _ := openTestStore(t)
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Everyone puts the same shared file and one of their own.
			for _, b := range [][]byte{[]byte("shared"), []byte(fmt.Sprint("own ", i))} {
				c, _, err := s.Put(context.Background(), bytes.NewReader(b), 0)
				if err == nil && !c.Equals(ComputeCID(b)) {
					err = fmt.Errorf("CID %s, want %s", c, ComputeCID(b))
				}
				if err != nil {
					errs <- err
				}
			}
			s.List()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(s.List()); n != workers+1 {
		t.Errorf("List has %d entries, want %d", n, workers+1)
	}
	for _, h := range s.List() {
		if err := s.Verify(h.CID); err != nil {
			t.Errorf("Verify(%s): %v", h.CID, err)
		}
	}
}

func TestOpenStoreTwiceFails(t *testing.T) {
	_, dir := openTestStore(t)
	// meta.db is locked by the first store; the second waits out bbolt's
	// one second timeout and fails.
	s2, err := OpenStore(dir, discardLog)
	if err == nil {
		s2.Close()
		t.Fatal("a second OpenStore on an open store succeeded")
	}
}

func TestOpenStoreNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenStore(filepath.Join(f, "store"), discardLog); err == nil {
		s.Close()
		t.Fatal("OpenStore under a regular file succeeded")
	}
}

// testKey returns a fresh Ed25519 key.
func testKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A quarantined copy leaves the store's listing and blocks/ for
// quarantine/, which keeps the newest maxQuarantined copies only.
func TestStoreQuarantineIsBounded(t *testing.T) {
	s, dir := openTestStore(t)
	for i := range maxQuarantined + 4 {
		c := mustPut(t, s, []byte(fmt.Sprintf("copy %d", i)))
		p, err := s.Quarantine(c)
		if err != nil || !strings.HasPrefix(p, filepath.Join(dir, "quarantine", c.String())) {
			t.Fatalf("Quarantine(%s) = %q, %v", c, p, err)
		}
		if _, ok := s.Has(c); ok {
			t.Fatalf("%s still held", c)
		}
		if _, err := s.Quarantine(c); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Quarantine: %v, want ErrNotFound", err)
		}
	}
	if n := len(dirNames(t, filepath.Join(dir, "quarantine"))); n != maxQuarantined {
		t.Fatalf("quarantine/ keeps %d copies, want %d", n, maxQuarantined)
	}
	if n := len(dirNames(t, filepath.Join(dir, "blocks"))); n != 0 || s.Count() != 0 {
		t.Fatalf("blocks/ has %d files, the store lists %d", n, s.Count())
	}
}
