package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/share"
)

// newTestFollower is a follower of a get writing into dir/content.
func newTestFollower(t *testing.T) (*follower, *os.File) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	_, cancel := context.WithCancel(context.Background())
	fl := &follower{tmp: dir, cancel: cancel, total: -1, started: make(chan struct{})}
	fl.cond = sync.NewCond(&fl.mu)
	fl.observe(f.Name())
	return fl, f
}

// readN reads n bytes from fl within a second.
func readN(t *testing.T, fl *follower, n int) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(fl, b)
		if err != nil {
			b = nil
		}
		got <- b
	}()
	select {
	case b := <-got:
		return b
	case <-time.After(time.Second):
		t.Fatalf("%d bytes did not come", n)
		return nil
	}
}

func TestCatFollowsAndHoldsTheLastByte(t *testing.T) {
	fl, f := newTestFollower(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), catBatch/8) // two batches
	half := int64(len(data) / 2)
	f.Write(data[:half])
	fl.progress(half, int64(len(data)), "")
	if b := readN(t, fl, int(half)); !bytes.Equal(b, data[:half]) {
		t.Fatal("the first half differs")
	}
	f.Write(data[half:])
	fl.progress(int64(len(data)), int64(len(data)), "")
	buf := make([]byte, len(data))
	n, err := fl.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], data[half:len(data)-1]) {
		t.Fatalf("the second half: %d bytes (%v), want all but the last byte", n, err)
	}
	// The last byte waits for the verification.
	last := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := io.ReadFull(fl, b)
		last <- err
	}()
	select {
	case <-last:
		t.Fatal("the last byte came before the get verified the file")
	case <-time.After(50 * time.Millisecond):
	}
	fl.finish(share.GetResult{Size: int64(len(data)), Path: "content", Via: "direct"}, nil)
	if _, ok := fl.Result(); ok {
		t.Fatal("the result is there before the last byte was read")
	}
	if err := <-last; err != nil {
		t.Fatal(err)
	}
	if n, err := fl.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d, %v", n, err)
	}
	if res, ok := fl.Result(); !ok || res.Size != int64(len(data)) || res.Via != "direct" {
		t.Fatalf("the result after the end: %+v, %v", res, ok)
	}
}

func TestCatEndsWithTheGetsError(t *testing.T) {
	fl, f := newTestFollower(t)
	data := bytes.Repeat([]byte("x"), catBatch+10)
	f.Write(data)
	fl.progress(int64(len(data)), 2*int64(len(data)), "")
	readN(t, fl, len(data))
	// The transfer starts again from zero after bytes were sent.
	fl.progress(10, 2*int64(len(data)), "")
	if _, err := fl.Read(make([]byte, 1)); !errors.Is(err, errCatRestarted) {
		t.Fatalf("after a restart: %v, want errCatRestarted", err)
	}

	fl2, _ := newTestFollower(t)
	failed := errors.New("every provider failed")
	fl2.finish(share.GetResult{}, failed)
	if _, err := fl2.Read(make([]byte, 1)); !errors.Is(err, failed) {
		t.Fatalf("a failed get: %v", err)
	}
	if _, ok := fl2.Result(); ok {
		t.Fatal("a failed get has a result")
	}
}

// A get that ends while a read of the file is under way (a small file:
// the whole of it but the last byte) does not close the file under the
// read: the read completes, and the reader goes on to the last byte.
func TestCatFinishDuringARead(t *testing.T) {
	fl, f := newTestFollower(t)
	data := []byte("a small file, fetched in one chunk")
	f.Write(data)
	fl.progress(int64(len(data)), int64(len(data)), "")
	rf, off, n, err := fl.next() // what a Read holds while it reads
	if err != nil {
		t.Fatal(err)
	}
	fl.finish(share.GetResult{Size: int64(len(data)), Path: "content"}, nil)
	b := make([]byte, n)
	if _, err := rf.ReadAt(b, off); err != nil {
		t.Fatalf("the read under way: %v", err)
	}
	fl.advance(rf, n)
	rest, err := io.ReadAll(fl)
	if got := append(b, rest...); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %q (%v), want %q", got, err, data)
	}
}
