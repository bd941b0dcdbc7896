package main

import (
	"errors"
	"hash"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

const (
	// copyChunk is the size of each read, hash and write of a streamed
	// get; copyBuffers chunks are in flight at once (one being read and
	// hashed, the others written or waiting to be).
	copyChunk   = 1 << 20
	copyBuffers = 4
	// directAlign is the alignment of buffers, offsets and lengths that
	// direct writes need (the largest logical block size in use).
	directAlign = 4096
	// directMin is the least size written around the page cache: below
	// it the copy through the cache costs too little to matter.
	directMin = 8 << 20
	// writebackEvery is how often a write through the cache starts the
	// writeback of what it wrote.
	writebackEvery = 16 << 20
)

// hashCopy copies r to w, hashing each chunk into h as it is read; a
// goroutine of its own writes the chunks, so that waiting for the disk
// overlaps with reading and hashing the next ones. Reading and hashing
// share one goroutine: on a machine whose cores are busy with the daemon,
// a third would mostly add switches between them.
//
// A file of size bytes (-1: unknown) of at least directMin on a local
// disk filesystem is written around the page cache (O_DIRECT): the bytes
// go from the buffer to the disk, without the kernel copying them into
// the cache first and writing them back later, which costs as much CPU as
// the hash; the command never reads them back. Anything else, and a last
// chunk that is not a whole number of blocks, goes through the cache, with
// its writeback started as it goes.
func hashCopy(w *os.File, h hash.Hash, r io.Reader, size int64) (int64, error) {
	out := &outFile{f: w}
	if size >= directMin && directFS(w) {
		out.direct = setDirect(w, true)
	}
	raw := make([]byte, copyBuffers*copyChunk+directAlign)
	skip := int((directAlign - uintptr(unsafe.Pointer(&raw[0]))%directAlign) % directAlign)
	free := make(chan []byte, copyBuffers)
	for i := range copyBuffers {
		lo, hi := skip+i*copyChunk, skip+(i+1)*copyChunk
		free <- raw[lo:hi:hi]
	}
	full := make(chan []byte, copyBuffers)
	failed := make(chan struct{})
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for b := range full {
			if werr == nil {
				if werr = out.write(b); werr != nil {
					close(failed)
				}
			}
			free <- b[:cap(b)]
		}
	})
	var total int64
	var rerr error
	for rerr == nil {
		buf := take(free, failed)
		if buf == nil {
			break
		}
		var n int
		n, rerr = io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			full <- buf[:n]
			total += int64(n)
		}
	}
	close(full)
	wg.Wait()
	switch {
	case werr != nil:
		return total, werr
	case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
		return total, nil
	}
	return total, rerr
}

// take returns a free buffer, or nil once the writer has failed.
func take(free <-chan []byte, failed <-chan struct{}) []byte {
	select {
	case <-failed:
		return nil
	default:
	}
	select {
	case b := <-free:
		return b
	case <-failed:
		return nil
	}
}

// outFile writes the chunks of a get in order, around the page cache
// while direct is set.
type outFile struct {
	f       *os.File
	direct  bool
	off     int64
	flushed int64
}

func (o *outFile) write(b []byte) error {
	if o.direct && len(b)%directAlign != 0 {
		o.direct = !setDirect(o.f, false)
	}
	n, err := o.f.Write(b)
	if o.direct && errors.Is(err, syscall.EINVAL) {
		// The filesystem took O_DIRECT but refuses this write (an
		// alignment it wants larger): write through the cache.
		if o.direct = !setDirect(o.f, false); !o.direct {
			var m int
			m, err = o.f.Write(b[n:])
			n += m
		}
	}
	o.off += int64(n)
	if !o.direct && o.off-o.flushed >= writebackEvery {
		startWriteback(o.f, o.flushed, o.off-o.flushed)
		o.flushed = o.off
	}
	return err
}
