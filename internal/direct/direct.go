// Package direct writes files around the page cache (O_DIRECT) where the
// file system takes it well, and through the cache where it does not. It
// is for large files written once and not read back soon: copying their
// bytes into the cache and writing them back later costs as much CPU as
// hashing them.
package direct

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// Align is the alignment of buffers, file offsets and lengths that a
// direct write needs (the largest logical block size in use).
const Align = 4096

// Buffer returns n bytes whose first byte is aligned on Align.
func Buffer(n int) []byte {
	raw := make([]byte, n+Align)
	skip := int((Align - uintptr(unsafe.Pointer(&raw[0]))%Align) % Align)
	return raw[skip : skip+n : skip+n]
}

// setDirect turns O_DIRECT on or off for f's later writes; false when the
// file system refuses it (tests replace it).
var setDirect = set

// Writer writes a file in order from its offset at creation. A write of
// whole blocks, from an aligned buffer to an aligned offset, goes around
// the page cache while the file system takes it; any other write goes
// through the cache.
type Writer struct {
	f    *os.File
	able bool // direct writes are wanted and the file system takes them
	on   bool // O_DIRECT is set on f
	off  int64
	// Writeback, when above zero, starts the writeback of the bytes
	// written through the cache each time this many have been, so that a
	// sync at the end has little left to wait for.
	Writeback int64
	flushed   int64
}

// NewWriter returns a writer of f from its current offset, writing around
// the cache when direct is true and f is on a local disk file system.
func NewWriter(f *os.File, direct bool) (*Writer, error) {
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, able: direct && Supported(f), off: off, flushed: off}, nil
}

// Direct reports whether the writer still writes around the cache when
// it can.
func (w *Writer) Direct() bool { return w.able }

// Offset is the file offset of the next write.
func (w *Writer) Offset() int64 { return w.off }

// Write writes b at the writer's offset.
func (w *Writer) Write(b []byte) (int, error) {
	aligned := len(b)%Align == 0 && w.off%Align == 0 &&
		(len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%Align == 0)
	if want := w.able && aligned; want != w.on {
		switch {
		case setDirect(w.f, want):
			w.on = want
		case want:
			w.able = false // the file system refuses O_DIRECT
		}
	}
	n, err := w.f.Write(b)
	if w.on && errors.Is(err, syscall.EINVAL) {
		// The file system took O_DIRECT but refuses this write (an
		// alignment it wants larger): write through the cache.
		w.able = false
		if setDirect(w.f, false) {
			w.on = false
			var m int
			m, err = w.f.Write(b[n:])
			n += m
		}
	}
	w.off += int64(n)
	if !w.on && w.Writeback > 0 && w.off-w.flushed >= w.Writeback {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}
