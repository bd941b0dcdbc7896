package main

import (
	"hash"
	"io"
	"os"
	"sync"

	"github.com/p2pshare/p2pshare/internal/direct"
)

const (
	// copyChunk is the size of each read, hash and write of a streamed
	// get; copyBuffers chunks are in flight at once (one being read and
	// hashed, the others written or waiting to be).
	copyChunk   = 1 << 20
	copyBuffers = 4
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
	out, err := direct.NewWriter(w, size >= directMin)
	if err != nil {
		return 0, err
	}
	out.Writeback = writebackEvery
	raw := direct.Buffer(copyBuffers * copyChunk)
	free := make(chan []byte, copyBuffers)
	for i := range copyBuffers {
		free <- raw[i*copyChunk : (i+1)*copyChunk : (i+1)*copyChunk]
	}
	full := make(chan []byte, copyBuffers)
	failed := make(chan struct{})
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for b := range full {
			if werr == nil {
				if _, werr = out.Write(b); werr != nil {
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
