package share

import (
	"context"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/direct"
)

// directMin is the least size of a teed get written around the page
// cache: below it the copy through the cache costs too little to matter.
const directMin = 8 << 20

// A sink takes the bytes a fetch receives, in order: it hashes them into
// the fetch's hash, writes them to the fetch's file, and reports progress
// as they are written.
type sink interface {
	// buffer returns where to read the next bytes, at most max of them.
	buffer(max int64) []byte
	// wrote takes the first n bytes of the last buffer; they came from p,
	// of a file of total bytes. An error is one of an earlier write.
	wrote(n int, total int64, p peer.ID) error
	// wait returns once every byte taken is hashed and written, with the
	// first write error.
	wait() error
	// rewind empties the file for a transfer from zero (after wait, with
	// the hash reset).
	rewind() error
	// close waits as wait does; the sink is not used after.
	close() error
}

// newSink returns the sink of a fetch into f, which holds off bytes
// already, hashed into h, of a file of size bytes (-1: unknown): a
// fileSink, or a teeSink when ctx carries a Tee.
func newSink(ctx context.Context, f *os.File, h hash.Hash, off, size int64, progress Progress) (sink, error) {
	if t := teeFrom(ctx); t != nil {
		w, err := direct.NewWriter(f, size >= directMin)
		if err != nil {
			return nil, err
		}
		s := &teeSink{f: f, h: h, w: w, tee: t, start: off, progress: progress,
			q: make(chan teeJob, teeQueue), done: make(chan struct{})}
		go s.run()
		return s, nil
	}
	return &fileSink{f: f, h: h, buf: getCopyBuf(), off: off, progress: progress}, nil
}

// fileSink hashes and writes each read as it comes, through the page
// cache, on the fetch's goroutine.
type fileSink struct {
	f        *os.File
	h        hash.Hash
	buf      *[]byte
	off      int64
	progress Progress
}

func (s *fileSink) buffer(max int64) []byte {
	b := *s.buf
	if int64(len(b)) > max {
		b = b[:max]
	}
	return b
}

func (s *fileSink) wrote(n int, total int64, p peer.ID) error {
	b := (*s.buf)[:n]
	s.h.Write(b)
	if _, err := s.f.Write(b); err != nil {
		return err
	}
	s.off += int64(n)
	if s.progress != nil {
		s.progress(s.off, total, p)
	}
	return nil
}

func (s *fileSink) wait() error { return nil }

func (s *fileSink) rewind() error {
	s.off = 0
	return rewind(s.f)
}

func (s *fileSink) close() error {
	putCopyBuf(s.buf)
	return nil
}

// teeQueue is how many full blocks a teeSink's reads may be ahead of its
// hash and writes.
const teeQueue = 4

// teeSink fills the blocks of a Tee on the fetch's goroutine and hands
// each, full (or when the fetch waits or ends), to a goroutine of its own
// that writes it to the file, hashes it and then gives it to the tee: the
// fetch goes on reading from the network while the disk takes a block
// (which a write around the page cache waits for) and while it is hashed. Progress counts the bytes in the file and is reported from
// that goroutine when they are exactly the bytes hashed, so a checkpoint
// taken then is consistent. Blocks are aligned on teeBlockSize in the
// file, so all but a first one after an unaligned start and the last are
// written around the page cache when the writer can.
type teeSink struct {
	f        *os.File
	h        hash.Hash
	w        *direct.Writer
	tee      *Tee
	progress Progress

	// The fetch's goroutine's.
	b     *[]byte // the block being filled, nil between blocks
	fill  int     // bytes in b
	size  int     // bytes b takes before it is handed over
	start int64   // file offset of b's first byte
	total int64
	from  peer.ID

	q    chan teeJob
	done chan struct{} // closed when run returns

	mu  sync.Mutex
	err error // the first write error
}

// teeJob is n bytes of b, for the file at start; or, with ack set, a
// request to close ack once every job before it is done.
type teeJob struct {
	b     *[]byte
	n     int
	start int64
	total int64
	from  peer.ID
	ack   chan struct{}
}

func (s *teeSink) run() {
	defer close(s.done)
	for j := range s.q {
		if j.ack != nil {
			close(j.ack)
			continue
		}
		if s.failed() != nil {
			s.tee.drop(j.b)
			continue
		}
		// Written, then hashed: a block the disk refused (in part, or
		// whole) is taken out of the file and is not in the hash, so the
		// checkpoint of a get that ends on it is the bytes before it.
		b := (*j.b)[:j.n]
		if _, err := s.w.Write(b); err != nil {
			_ = s.f.Truncate(j.start)
			_, _ = s.f.Seek(j.start, io.SeekStart)
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			s.tee.drop(j.b)
			continue
		}
		s.h.Write(b)
		s.tee.put(j.start, j.b, j.n)
		if s.progress != nil {
			s.progress(j.start+int64(j.n), j.total, j.from)
		}
	}
}

func (s *teeSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *teeSink) buffer(max int64) []byte {
	if s.b == nil {
		s.b = s.tee.take()
		s.fill, s.size = 0, teeBlockSize-int(s.start%teeBlockSize)
	}
	return (*s.b)[s.fill : s.fill+int(min(int64(s.size-s.fill), max))]
}

func (s *teeSink) wrote(n int, total int64, p peer.ID) error {
	s.fill += n
	s.total, s.from = total, p
	if s.fill == s.size {
		s.hand()
	}
	return s.failed()
}

// hand passes the block being filled to run.
func (s *teeSink) hand() {
	b := s.b
	if b == nil {
		return
	}
	s.b = nil
	if s.fill == 0 {
		s.tee.drop(b)
		return
	}
	s.q <- teeJob{b: b, n: s.fill, start: s.start, total: s.total, from: s.from}
	s.start += int64(s.fill)
	s.fill = 0
}

// drain waits for run to finish the jobs handed so far.
func (s *teeSink) drain() {
	ack := make(chan struct{})
	s.q <- teeJob{ack: ack}
	<-ack
}

func (s *teeSink) wait() error {
	s.hand()
	s.drain()
	return s.failed()
}

func (s *teeSink) rewind() error {
	if s.b != nil {
		s.tee.drop(s.b)
		s.b = nil
	}
	s.drain()
	s.tee.reset()
	if err := rewind(s.f); err != nil {
		return err
	}
	w, err := direct.NewWriter(s.f, s.w.Direct())
	if err != nil {
		return err
	}
	s.w, s.start, s.fill = w, 0, 0
	return nil
}

func (s *teeSink) close() error {
	err := s.wait()
	close(s.q)
	<-s.done
	return err
}
