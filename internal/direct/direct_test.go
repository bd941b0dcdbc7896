package direct

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// writeShapes writes, through a Writer of a new file in dir, whole blocks
// from an aligned buffer, whole blocks from an unaligned one, a short
// piece, and whole blocks at the unaligned offset it leaves, and returns
// the writer and the bytes written.
func writeShapes(t *testing.T, dir string, direct bool) (*Writer, []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, direct)
	if err != nil {
		t.Fatal(err)
	}
	aligned := Buffer(4 * Align)
	rand.Read(aligned)
	unaligned := make([]byte, 2*Align+1)
	rand.Read(unaligned)
	var want []byte
	// Only the first write is of whole blocks, from an aligned buffer,
	// at an aligned offset.
	for i, b := range [][]byte{aligned, unaligned[1:], aligned[:100], aligned[:2*Align], aligned} {
		if n, err := w.Write(b); n != len(b) || err != nil {
			t.Fatalf("write of %d bytes at %d: %d, %v", len(b), w.Offset()-int64(n), n, err)
		}
		if wantOn := i == 0 && w.able; w.on != wantOn {
			t.Fatalf("write %d went around the cache: %v, want %v", i, w.on, wantOn)
		}
		want = append(want, b...)
	}
	if w.Offset() != int64(len(want)) {
		t.Fatalf("offset %d after %d bytes", w.Offset(), len(want))
	}
	return w, want
}

func TestWriterWritesEveryShape(t *testing.T) {
	dir := t.TempDir()
	for _, direct := range []bool{true, false} {
		w, want := writeShapes(t, dir, direct)
		t.Logf("direct %v on %s: %v", direct, dir, w.Direct())
		if got, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("direct %v: the file differs from the bytes written (%v)", direct, err)
		}
	}
}

// A file system that takes O_DIRECT at the statfs check but refuses to
// turn it on gets every write through the cache.
func TestWriterFallsBackWhenRefused(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	ok := Supported(f)
	f.Close()
	if !ok {
		t.Skipf("%s does not take direct writes", dir)
	}
	tries := 0
	setDirect = func(f *os.File, on bool) bool {
		if on {
			tries++
			return false
		}
		return set(f, false)
	}
	defer func() { setDirect = set }()
	w, want := writeShapes(t, dir, true)
	if w.Direct() || tries != 1 {
		t.Fatalf("after a refusal: direct %v, %d tries; want false, 1", w.Direct(), tries)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the file differs from the bytes written (%v)", err)
	}
}
