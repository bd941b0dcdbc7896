package share

import (
	"context"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/direct"
)

// directMin is the least size of a teed get written around the page
// cache: below it the copy through the cache costs too little to matter.
const directMin = 8 << 20

// A sink takes the bytes a fetch receives, in order, into the fetch's
// file, and reports progress as they are written.
type sink interface {
	// buffer returns where to read the next bytes, at most max of them.
	buffer(max int64) []byte
	// wrote takes the first n bytes of the last buffer, which the fetch
	// has hashed; they came from p, of a file of total bytes.
	wrote(n int, total int64, p peer.ID) error
	// rewind empties the file for a transfer from zero.
	rewind() error
	// close writes what the sink holds back; the sink is not used after.
	close() error
}

// newSink returns the sink of a fetch into f, which holds off bytes
// already, of a file of size bytes (-1: unknown): a fileSink, or a
// teeSink when ctx carries a Tee.
func newSink(ctx context.Context, f *os.File, off, size int64, progress Progress) (sink, error) {
	if t := teeFrom(ctx); t != nil {
		w, err := direct.NewWriter(f, size >= directMin)
		if err != nil {
			return nil, err
		}
		return &teeSink{f: f, w: w, tee: t, start: off, progress: progress}, nil
	}
	return &fileSink{f: f, buf: getCopyBuf(), off: off, progress: progress}, nil
}

// fileSink writes each read to the file as it comes, through the page
// cache.
type fileSink struct {
	f        *os.File
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
	if _, err := s.f.Write((*s.buf)[:n]); err != nil {
		return err
	}
	s.off += int64(n)
	if s.progress != nil {
		s.progress(s.off, total, p)
	}
	return nil
}

func (s *fileSink) rewind() error {
	s.off = 0
	return rewind(s.f)
}

func (s *fileSink) close() error {
	putCopyBuf(s.buf)
	return nil
}

// teeSink fills the blocks of a Tee and writes each to the file when it
// is full (or when the fetch ends), then hands it to the tee: progress
// counts the bytes in the file, which are the bytes hashed whenever it is
// reported, so a checkpoint taken then is consistent. Blocks are aligned
// on teeBlockSize in the file, so all but a first one after an unaligned
// start and the last are written around the page cache when the writer
// can.
type teeSink struct {
	f        *os.File
	w        *direct.Writer
	tee      *Tee
	b        *[]byte // the block being filled, nil between blocks
	fill     int     // bytes in b
	size     int     // bytes b takes before it is written
	start    int64   // file offset of b's first byte
	total    int64
	from     peer.ID
	progress Progress
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
	if s.fill < s.size {
		return nil
	}
	return s.flush()
}

// flush writes the bytes of the block being filled and hands it to the
// tee.
func (s *teeSink) flush() error {
	b := s.b
	if b == nil {
		return nil
	}
	s.b = nil
	if s.fill == 0 {
		s.tee.drop(b)
		return nil
	}
	if _, err := s.w.Write((*b)[:s.fill]); err != nil {
		s.tee.drop(b)
		return err
	}
	s.tee.put(s.start, b, s.fill)
	s.start += int64(s.fill)
	s.fill = 0
	if s.progress != nil {
		s.progress(s.start, s.total, s.from)
	}
	return nil
}

func (s *teeSink) rewind() error {
	if s.b != nil {
		s.tee.drop(s.b)
		s.b = nil
	}
	s.tee.reset()
	if err := rewind(s.f); err != nil {
		return err
	}
	w, err := direct.NewWriter(s.f, s.w.Direct())
	if err != nil {
		return err
	}
	s.w, s.start = w, 0
	return nil
}

func (s *teeSink) close() error { return s.flush() }
