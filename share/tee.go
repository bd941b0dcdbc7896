package share

import (
	"context"
	"io"
	"sync"

	"github.com/p2pshare/p2pshare/internal/direct"
)

// teeBlockSize is the size of the blocks a Tee holds: a get that tees its
// bytes writes its file one block at a time.
const teeBlockSize = 1 << 20

// teeBlocks keeps the blocks of ended tees for the next: aligned, so a get
// can write them to its file around the page cache.
var teeBlocks = sync.Pool{New: func() any { b := direct.Buffer(teeBlockSize); return &b }}

// A Tee hands the bytes of a get to a reader from memory as the get writes
// them to its file, so that a reader following the transfer does not read
// them back from the file. It holds at most a fixed number of blocks, each
// already written to the file; the get never waits for the reader: when
// the reader falls behind, the get takes its oldest block back, and the
// reader reads those bytes from the file (Send tells it to). Set a Tee on
// a get's context with WithTee; a get that tees writes its file around
// the page cache when the file is large and the file system allows,
// since the file is then read back only by a reader left behind.
type Tee struct {
	onRestart func()

	mu      sync.Mutex
	max     int        // blocks it may hold
	blocks  int        // blocks taken from the pool
	free    []*[]byte  // blocks holding nothing
	held    []teeBlock // blocks written to the file, in file order
	pinned  *[]byte    // the block Send is writing from
	gen     int        // counts restarts from zero
	closed  bool       // blocks go back to the pool
	evicted int
}

// teeBlock is n bytes of the file from off, in b.
type teeBlock struct {
	off int64
	n   int
	b   *[]byte
}

// NewTee returns a tee that holds up to size bytes of the file for its
// reader (in whole blocks of 1 MiB, at least two; the get's writes in
// flight take a few blocks more). onRestart, when set, is called when the
// get starts again from zero (the bytes it wrote did not verify): whatever
// a reader had is not the file.
func NewTee(size int, onRestart func()) *Tee {
	return &Tee{max: max((size+teeBlockSize-1)/teeBlockSize, 2), onRestart: onRestart}
}

type teeKey struct{}

// WithTee returns a context under which Get tees the bytes it fetches
// into t.
func WithTee(ctx context.Context, t *Tee) context.Context {
	return context.WithValue(ctx, teeKey{}, t)
}

func teeFrom(ctx context.Context) *Tee {
	t, _ := ctx.Value(teeKey{}).(*Tee)
	return t
}

// take returns a block for the get to fill: a free one, a new one while
// fewer than max are out, else the oldest held (which the reader will
// read from the file).
func (t *Tee) take() *[]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.free); n > 0 {
		b := t.free[n-1]
		t.free = t.free[:n-1]
		return b
	}
	if t.blocks < t.max {
		t.blocks++
		return teeBlocks.Get().(*[]byte)
	}
	for i, hb := range t.held {
		if hb.b != t.pinned {
			t.held = append(t.held[:i], t.held[i+1:]...)
			t.evicted++
			return hb.b
		}
	}
	// Every block is out: being written by the get (at most teeQueue+1)
	// or sent (one).
	t.blocks++
	return teeBlocks.Get().(*[]byte)
}

// put hands over the first n bytes of b, written to the file at off.
func (t *Tee) put(off int64, b *[]byte, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		teeBlocks.Put(b)
		return
	}
	t.held = append(t.held, teeBlock{off: off, n: n, b: b})
}

// drop gives back a block taken and not put.
func (t *Tee) drop(b *[]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.release(b)
}

func (t *Tee) release(b *[]byte) {
	if t.closed {
		teeBlocks.Put(b)
	} else {
		t.free = append(t.free, b)
	}
}

// reset forgets what the tee holds: the get starts again from zero.
func (t *Tee) reset() {
	t.mu.Lock()
	t.gen++
	for _, hb := range t.held {
		if hb.b != t.pinned {
			t.release(hb.b)
		}
	}
	t.held = nil
	t.mu.Unlock()
	if t.onRestart != nil {
		t.onRestart()
	}
}

// Send writes to w up to n bytes of the file from off, if the tee holds
// the bytes at off; else it writes nothing and returns 0, nil, and the
// caller reads them from the file. The reader goes forward: blocks that
// end at or before off are let go.
func (t *Tee) Send(w io.Writer, off, n int64) (int64, error) {
	if t == nil || n <= 0 {
		return 0, nil
	}
	t.mu.Lock()
	for len(t.held) > 0 && t.held[0].off+int64(t.held[0].n) <= off && t.held[0].b != t.pinned {
		t.release(t.held[0].b)
		t.held = t.held[1:]
	}
	var hb teeBlock
	found := false
	for _, h := range t.held {
		if h.off <= off && off < h.off+int64(h.n) {
			hb, found = h, true
			break
		}
	}
	if !found || t.closed || t.pinned != nil {
		t.mu.Unlock()
		return 0, nil
	}
	t.pinned = hb.b
	gen := t.gen
	t.mu.Unlock()

	i := off - hb.off
	m, err := w.Write((*hb.b)[i : i+min(n, int64(hb.n)-i)])

	t.mu.Lock()
	defer t.mu.Unlock()
	t.pinned = nil
	switch {
	case t.gen != gen:
		t.release(hb.b) // no longer held
	case t.closed:
		teeBlocks.Put(hb.b)
	case i+int64(m) == int64(hb.n) && len(t.held) > 0 && t.held[0].b == hb.b:
		t.release(hb.b)
		t.held = t.held[1:]
	}
	return int64(m), err
}

// Evicted is the number of blocks the get took back before the reader
// had them.
func (t *Tee) Evicted() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evicted
}

// Close gives the blocks back; a block taken or pinned at the time goes
// back when it is put or sent.
func (t *Tee) Close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, b := range t.free {
		teeBlocks.Put(b)
	}
	for _, hb := range t.held {
		if hb.b != t.pinned {
			teeBlocks.Put(hb.b)
		}
	}
	t.free, t.held = nil, nil
}
