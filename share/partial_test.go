package share

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the partial store.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func openPartials(t *testing.T, max int64, clk *fakeClock) *PartialStore {
	t.Helper()
	ps, err := OpenPartialStore(t.TempDir(), max, time.Hour, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// writePartial appends b to p as a fetch does: hash, then file.
func writePartial(t *testing.T, p *Partial, b []byte) {
	t.Helper()
	p.Hash().Write(b)
	if _, err := p.File().Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestPartialResumesFromCheckpoint(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	ps := openPartials(t, 1<<20, clk)
	content := bytes.Repeat([]byte("0123456789"), 1000)
	c := ComputeCID(content)
	p, err := ps.Begin(c, int64(len(content)))
	if err != nil || p.Start != 0 {
		t.Fatalf("begin: %v, start %d", err, p.Start)
	}
	if _, err := ps.Begin(c, int64(len(content))); !errors.Is(err, errPartialBusy) {
		t.Fatalf("a second begin of the same CID: %v, want busy", err)
	}
	writePartial(t, p, content[:4000])
	if err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Bytes after the checkpoint, then a crash: they are not trusted.
	writePartial(t, p, content[4000:5000])
	p.f.Close()
	delete(ps.busy, c.String())

	p, err = ps.Begin(c, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 4000 || p.Tampered {
		t.Fatalf("resumed at %d (tampered %v), want 4000", p.Start, p.Tampered)
	}
	writePartial(t, p, content[4000:])
	if got := cidFromDigest(p.Hash().Sum(nil)); !got.Equals(c) {
		t.Fatal("the resumed hash does not give the CID")
	}
	out := t.TempDir() + "/out"
	if err := p.Finish(out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, content) {
		t.Fatal("finished file differs")
	}
	if n := ps.Size(); n != 0 {
		t.Fatalf("the store keeps %d bytes after Finish", n)
	}
}

func TestPartialTamperedStartsFromZero(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	ps := openPartials(t, 1<<20, clk)
	content := bytes.Repeat([]byte("abcdefgh"), 512)
	c := ComputeCID(content)
	p, _ := ps.Begin(c, int64(len(content)))
	writePartial(t, p, content[:2048])
	p.Suspend()
	// Change one kept byte on disk.
	f, err := os.OpenFile(ps.dataPath(c.String()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{'X'}, 100)
	f.Close()
	p, err = ps.Begin(c, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 0 || !p.Tampered {
		t.Fatalf("start %d tampered %v, want 0 and true", p.Start, p.Tampered)
	}
	if fi, _ := p.File().Stat(); fi.Size() != 0 {
		t.Fatalf("the dropped partial still holds %d bytes", fi.Size())
	}
	p.Discard()
}

func TestPartialBoundAndStale(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	ps := openPartials(t, 10000, clk)
	mk := func(s string, n int) {
		t.Helper()
		b := bytes.Repeat([]byte(s), n)
		p, err := ps.Begin(ComputeCID(b), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		writePartial(t, p, b)
		p.Suspend()
		// Order the partials by time.
		now := clk.t
		os.Chtimes(ps.dataPath(p.key), now, now)
		os.Chtimes(ps.statePath(p.key), now, now)
		clk.t = clk.t.Add(time.Minute)
	}
	mk("a", 4000)
	mk("b", 4000)
	if n := ps.Size(); n != 8000 {
		t.Fatalf("size %d, want 8000", n)
	}
	if _, err := ps.Begin(ComputeCID([]byte("big")), 20000); !errors.Is(err, errPartialFull) {
		t.Fatalf("a file over the bound: %v, want errPartialFull", err)
	}
	// A third needs room: the oldest ("a") goes.
	mk("c", 4000)
	if _, err := os.Stat(ps.dataPath(ComputeCID(bytes.Repeat([]byte("a"), 4000)).String())); !os.IsNotExist(err) {
		t.Fatal("the oldest partial was kept over the bound")
	}
	if n := ps.Size(); n != 8000 {
		t.Fatalf("size %d, want 8000", n)
	}
	// Two hours later everything is stale.
	clk.t = clk.t.Add(2 * time.Hour)
	ps.Clean()
	if n := ps.Size(); n != 0 {
		t.Fatalf("%d stale bytes kept", n)
	}
}

// A checkpoint's fsync does not hold up the transfer: Progress returns
// while the sync is under way, starts no second one meanwhile, and the
// offset is recorded only once its bytes are synced.
func TestPartialCheckpointSyncsInTheBackground(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	ps := openPartials(t, 1<<20, clk)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var syncs atomic.Int32
	started := make(chan struct{}, 4)
	ps.syncFile = func(f *os.File) error {
		syncs.Add(1)
		started <- struct{}{}
		<-release
		return f.Sync()
	}
	content := bytes.Repeat([]byte("0123456789"), 1000)
	c := ComputeCID(content)
	p, err := ps.Begin(c, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	progress := func(done int64) {
		t.Helper()
		returned := make(chan struct{})
		go func() { p.Progress(done); close(returned) }()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("Progress waited for the checkpoint's fsync")
		}
	}
	writePartial(t, p, content[:4000])
	clk.t = clk.t.Add(checkpointEvery)
	progress(4000)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no checkpoint started")
	}
	if _, ok := ps.readState(c.String()); ok {
		t.Fatal("a checkpoint was recorded before its bytes were synced")
	}
	writePartial(t, p, content[4000:5000])
	clk.t = clk.t.Add(checkpointEvery)
	progress(5000)
	unblock()
	p.wait()
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d syncs started, want 1 (one checkpoint at a time)", n)
	}
	if st, ok := ps.readState(c.String()); !ok || st.Offset != 4000 {
		t.Fatalf("recorded %+v (%v), want offset 4000", st, ok)
	}
	p.Suspend()
	p, err = ps.Begin(c, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Discard()
	if p.Start != 5000 || p.Tampered {
		t.Fatalf("resumed at %d (tampered %v), want 5000", p.Start, p.Tampered)
	}
}
