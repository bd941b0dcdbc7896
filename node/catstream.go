package node

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	fl := &follower{tmp: tmp, cancel: cancel, total: -1, started: make(chan struct{}),
		cid: resolved.CID.String(), name: resolved.Name}
	fl.cond = sync.NewCond(&fl.mu)
	gctx := share.WithFileObserver(ctx, fl.observe)
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

// follower is the reader of a cat in progress: it reads the file the get
// writes, up to what progress says is written.
type follower struct {
	tmp    string
	cancel context.CancelFunc

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

// catBatch is the least a cat in progress sends at once.
const catBatch = 4 << 20

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
	got, err := f.ReadAt(p[:min(int64(len(p)), n)], off)
	fl.advance(f, int64(got))
	if got > 0 || errors.Is(err, io.EOF) {
		return got, nil
	}
	return got, err
}

// WriteTo sends the bytes to w as Read would return them; to a writer
// that can take a file (the HTTP server's connection), the kernel copies
// them from the file (sendfile) without passing them through this process.
func (fl *follower) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return io.CopyBuffer(w, struct{ io.Reader }{fl}, make([]byte, 1<<20))
	}
	var total int64
	for {
		f, off, n, err := fl.next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return total, err
		}
		m, err := rf.ReadFrom(&io.LimitedReader{R: f, N: n})
		fl.advance(f, m)
		total += m
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
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
		os.RemoveAll(fl.tmp)
	}()
}
