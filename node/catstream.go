package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// streamCat fetches ref into a private temp directory of the store and
// returns a reader that follows the file as the bytes arrive, so the
// caller receives them while the transfer runs. The last byte is held back
// until the whole file has been verified against its CID: a reader that
// gets every byte got the verified file; a transfer that fails (or starts
// again from zero) ends the reader with an error instead. The answer comes
// once the size is known (the first bytes, or the end of the get).
func (n *Node) streamCat(ctx context.Context, ref string) (api.GetResult, api.CatBody, error) {
	resolved, err := n.share.Resolve(ctx, ref)
	if err != nil {
		return api.GetResult{}, nil, apiError(err)
	}
	tmp, err := n.store.TempDir("cat-*")
	if err != nil {
		return api.GetResult{}, nil, err
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return api.GetResult{}, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	fl := &follower{tmp: tmp, cancel: cancel, log: n.log, total: -1, started: make(chan struct{}),
		cid: resolved.CID.String(), name: resolved.Name}
	fl.cond = sync.NewCond(&fl.mu)
	fl.tee = share.NewTee(catTee, fl.restarted)
	gctx := share.WithTee(share.WithFileObserver(ctx, fl.observe), fl.tee)
	tr, end := n.transfers.start("", "get", ref, -1)
	go func() {
		defer root.Close()
		defer end()
		res, err := n.share.Get(gctx, ref, root, "content", func(done, total int64, from peer.ID) {
			tr.progress(done, total, from)
			fl.progress(done, total, from)
		})
		n.countTransfer(err, res.Size)
		fl.finish(res, err)
	}()
	select {
	case <-fl.started:
	case <-ctx.Done():
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.finished && fl.err != nil {
		err := fl.err
		fl.closeLocked()
		return api.GetResult{}, nil, apiError(err)
	}
	if fl.finished {
		return toAPIResult(fl.res), fl, nil
	}
	if ctx.Err() != nil {
		fl.closeLocked()
		return api.GetResult{}, nil, apiError(ctx.Err())
	}
	return api.GetResult{CID: fl.cid, Name: fl.name, Size: fl.total, Provider: fl.from.String()}, fl, nil
}

// follower is the reader of a cat in progress: it returns the bytes the
// get writes, up to what progress says is written, from the get's tee
// while the tee holds them and from the file otherwise.
type follower struct {
	tmp    string
	cancel context.CancelFunc
	tee    *share.Tee
	log    *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	f        *os.File   // the file being written, opened for reading
	old      []*os.File // files f replaced, closed only by Close: a read may still use one
	off      int64      // bytes returned
	done     int64      // bytes written, per progress
	total    int64      // file size, -1 until known
	from     peer.ID
	cid      string
	name     string
	broken   error // the transfer moved or restarted after bytes were sent
	finished bool
	res      share.GetResult
	err      error
	started  chan struct{} // closed when the size is known or the get ended
	once     sync.Once
	closed   bool
}

var errCatRestarted = errors.New("the transfer started again from zero after bytes were sent: get it again")

func (fl *follower) observe(path string) {
	f, err := os.Open(path)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.off > 0 {
		fl.broken = errCatRestarted
	}
	if fl.f != nil {
		fl.old = append(fl.old, fl.f)
	}
	fl.f, fl.done = f, 0
	if err != nil {
		fl.broken = fmt.Errorf("follow the transfer: %w", err)
	}
	fl.cond.Broadcast()
}

// restarted is told by the tee that the get started again from zero.
func (fl *follower) restarted() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.off > 0 {
		fl.broken = errCatRestarted
	}
	fl.cond.Broadcast()
}

func (fl *follower) progress(done, total int64, from peer.ID) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if done < fl.done && fl.off > 0 {
		fl.broken = errCatRestarted
	}
	fl.done, fl.total, fl.from = done, total, from
	if done-fl.off >= catBatch || done >= total-1 {
		fl.cond.Broadcast()
	}
	fl.once.Do(func() { close(fl.started) })
}

func (fl *follower) finish(res share.GetResult, err error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.finished, fl.res, fl.err = true, res, err
	if err == nil {
		fl.total, fl.done = res.Size, res.Size
		if fl.f == nil {
			// Nothing followed the transfer (a local copy, say): read the
			// verified file where the get put it. A file followed holds
			// the verified bytes already (the get moves it into place),
			// and a read may be using it now.
			if f, oerr := os.Open(filepath.Join(fl.tmp, res.Path)); oerr == nil {
				fl.f = f
			}
		}
	}
	fl.cond.Broadcast()
	fl.once.Do(func() { close(fl.started) })
}

// next waits for bytes to return: the file and the range [off, off+n) of
// it, or io.EOF at the end, or the error that ended the transfer.
func (fl *follower) next() (f *os.File, off, n int64, err error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for {
		switch {
		case fl.closed:
			return nil, 0, 0, os.ErrClosed
		case fl.broken != nil:
			return nil, 0, 0, fl.broken
		case fl.finished && fl.err != nil:
			return nil, 0, 0, fl.err
		case fl.finished && fl.off >= fl.total:
			return nil, 0, 0, io.EOF
		}
		limit := fl.done
		if !fl.finished {
			limit = min(limit, fl.total-1) // held back until verified
		}
		// While the get runs, wait for a batch: one wake-up per chunk
		// the fetch writes would cost more than the copy.
		if fl.f != nil && limit > fl.off && (fl.finished || limit-fl.off >= catBatch || limit == fl.total-1) {
			return fl.f, fl.off, limit - fl.off, nil
		}
		fl.cond.Wait()
	}
}

// catBatch is the least a cat in progress sends at once; catTee is how
// much of the file it holds in memory for its reader: four batches, which
// a reader that keeps up (a command hashing and writing what it reads)
// does not fall behind of.
const (
	catBatch = 4 << 20
	catTee   = 4 * catBatch
)

// advance records n more bytes returned from f. Bytes returned from a
// file the transfer has since replaced (it started again) cannot be
// continued from the new one: the reader ends with errCatRestarted.
func (fl *follower) advance(f *os.File, n int64) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	switch {
	case fl.closed || n == 0:
	case fl.f == f:
		fl.off += n
	default:
		fl.broken = errCatRestarted
		fl.cond.Broadcast()
	}
}

// Read returns the bytes written so far, the last one only once the get
// has verified the file.
func (fl *follower) Read(p []byte) (int, error) {
	f, off, n, err := fl.next()
	if err != nil {
		return 0, err
	}
	n = min(int64(len(p)), n)
	got, _ := fl.tee.Send(&sliceWriter{p: p[:n]}, off, n)
	if got == 0 {
		var m int
		m, err = f.ReadAt(p[:n], off)
		got = int64(m)
	}
	fl.advance(f, got)
	if got > 0 || errors.Is(err, io.EOF) {
		return int(got), nil
	}
	return int(got), err
}

// sliceWriter copies what is written to it into p.
type sliceWriter struct {
	p []byte
	n int
}

func (s *sliceWriter) Write(b []byte) (int, error) {
	n := copy(s.p[s.n:], b)
	s.n += n
	return n, nil
}

// WriteTo sends the bytes to w as Read would return them, without a copy
// of its own: from the tee's blocks while it holds them, else from the
// file, which the kernel copies to a writer that can take a file (the
// HTTP server's connection, sendfile) without passing it through this
// process.
func (fl *follower) WriteTo(w io.Writer) (int64, error) {
	var buf []byte
	var total int64
	for {
		f, off, n, err := fl.next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		m, err := fl.tee.Send(w, off, n)
		if m == 0 && err == nil {
			m, err = copyFileRange(w, f, off, n, &buf)
			if m == 0 && err == nil {
				return total, io.ErrUnexpectedEOF
			}
		}
		fl.advance(f, m)
		total += m
		if err != nil {
			return total, err
		}
	}
}

// copyFileRange writes n bytes of f from off to w: with w's ReadFrom if it
// has one, else through *buf (allocated on first use).
func copyFileRange(w io.Writer, f *os.File, off, n int64, buf *[]byte) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0, err
		}
		return rf.ReadFrom(&io.LimitedReader{R: f, N: n})
	}
	if *buf == nil {
		*buf = make([]byte, 1<<20)
	}
	m, err := f.ReadAt((*buf)[:min(int64(len(*buf)), n)], off)
	if m == 0 {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return 0, err
	}
	k, err := w.Write((*buf)[:m])
	return int64(k), err
}

// Result implements api.CatBody: the get's answer, once every byte was
// returned.
func (fl *follower) Result() (api.GetResult, bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.finished || fl.err != nil || fl.off < fl.total {
		return api.GetResult{}, false
	}
	return toAPIResult(fl.res), true
}

// Close stops the get if it still runs and removes its temp directory
// once it has ended.
func (fl *follower) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.closeLocked()
	return nil
}

func (fl *follower) closeLocked() {
	if fl.closed {
		return
	}
	fl.closed = true
	fl.cancel()
	if fl.f != nil {
		fl.f.Close()
	}
	for _, f := range fl.old {
		f.Close()
	}
	fl.cond.Broadcast()
	go func() {
		// The get ends soon after the cancel; then its files can go.
		fl.mu.Lock()
		for !fl.finished {
			fl.cond.Wait()
		}
		fl.mu.Unlock()
		if n := fl.tee.Evicted(); n > 0 && fl.log != nil {
			fl.log.Debug("cat: the reader fell behind, bytes read back from the file", "name", fl.name, "blocks", n)
		}
		fl.tee.Close()
		os.RemoveAll(fl.tmp)
	}()
}
