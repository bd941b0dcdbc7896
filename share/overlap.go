package share

import "hash"

// overlapHasher hashes the chunks of a copy in order on a goroutine of its
// own, so that the copy loop sends a chunk while it is being hashed: on a
// holder serving a file, the send-side hash then costs a core's time in
// parallel rather than the transfer's time in series. It owns a fixed set
// of buffers; a buffer comes back from next only when it is neither being
// hashed nor (the copy loop being sequential) being sent.
type overlapHasher struct {
	h      hash.Hash
	in     chan []byte
	free   chan []byte
	done   chan struct{}
	closed bool
}

func newOverlapHasher(bufs ...[]byte) *overlapHasher {
	o := &overlapHasher{h: newHasher(), in: make(chan []byte, len(bufs)), free: make(chan []byte, len(bufs)), done: make(chan struct{})}
	for _, b := range bufs {
		o.free <- b
	}
	go func() {
		defer close(o.done)
		for b := range o.in {
			o.h.Write(b)
			o.free <- b[:cap(b)]
		}
	}()
	return o
}

// next returns a free buffer, waiting for the hash of an earlier chunk.
func (o *overlapHasher) next() []byte { return <-o.free }

// add hashes b after every chunk added before it; b is not to be written
// to until next returns it again.
func (o *overlapHasher) add(b []byte) { o.in <- b }

// sum waits until every chunk added is hashed and returns the digest. The
// hasher takes no chunk after it.
func (o *overlapHasher) sum() []byte {
	o.stop()
	return o.h.Sum(nil)
}

// stop ends the hashing goroutine; safe to call after sum and more than
// once, so a copy loop defers it on every return.
func (o *overlapHasher) stop() {
	if !o.closed {
		o.closed = true
		close(o.in)
	}
	<-o.done
}
