package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/internal/direct"
)

// shortReader returns at most n bytes a read, as a socket does.
type shortReader struct {
	r io.Reader
	n int
}

func (s shortReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.n)]) }

func TestHashCopy(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("direct writes on %s: %v", dir, direct.Supported(f))
	f.Close()
	for _, tc := range []struct {
		name       string
		size, hint int64
		chunk      int
	}{
		{"empty", 0, 0, 4096},
		{"one byte", 1, 1, 4096},
		{"a block less one", direct.Align - 1, direct.Align - 1, 1000},
		{"one chunk", copyChunk, copyChunk, 65536},
		{"a chunk and a byte", copyChunk + 1, copyChunk + 1, 65536},
		{"direct, whole chunks", directMin + 2*copyChunk, directMin + 2*copyChunk, 200_000},
		{"direct, with a tail", directMin + 3*copyChunk + 12345, directMin + 3*copyChunk + 12345, 300_001},
		{"direct, tail of whole blocks", directMin + 5*direct.Align, directMin + 5*direct.Align, 1 << 20},
		{"size unknown", directMin + 777, -1, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := make([]byte, tc.size)
			rand.Read(src)
			w, err := os.Create(filepath.Join(dir, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			h := sha256.New()
			n, err := hashCopy(w, h, shortReader{bytes.NewReader(src), tc.chunk}, tc.hint)
			if err != nil || n != tc.size {
				t.Fatalf("hashCopy = %d, %v; want %d, nil", n, err, tc.size)
			}
			if want := sha256.Sum256(src); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("the hash is not that of the bytes read")
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(w.Name())
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("the file holds %d bytes that differ from the %d read (%v)", len(got), len(src), err)
			}
		})
	}
}

// errAfter reads n bytes of zeros and then fails.
type errAfter struct{ n int64 }

var errCut = errors.New("cut")

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errCut
	}
	k := min(int64(len(p)), e.n)
	clear(p[:k])
	e.n -= k
	return int(k), nil
}

func TestHashCopyErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("read", func(t *testing.T) {
		w, err := os.Create(filepath.Join(dir, "read"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		n, err := hashCopy(w, sha256.New(), &errAfter{n: 3*copyChunk + 5}, directMin*2)
		if !errors.Is(err, errCut) || n != 3*copyChunk+5 {
			t.Fatalf("hashCopy = %d, %v; want %d, %v", n, err, 3*copyChunk+5, errCut)
		}
	})
	t.Run("write", func(t *testing.T) {
		// A file opened read-only fails every write; the copy must stop
		// reading soon after, not drain an endless stream.
		p := filepath.Join(dir, "ro")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		src := &errAfter{n: 1 << 62}
		done := make(chan error, 1)
		go func() {
			_, err := hashCopy(w, sha256.New(), src, -1)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("hashCopy into a read-only file succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("hashCopy went on reading after its writes failed")
		}
		if read := 1<<62 - src.n; read > (copyBuffers+2)*copyChunk {
			t.Fatalf("hashCopy read %d bytes after the first write failed", read)
		}
	})
}
