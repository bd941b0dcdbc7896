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

	"github.com/libp2p/go-libp2p/core/network"

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
	// (The reader waiting above may take the last byte at once: that
	// the result waits for it is TestCatResultOnlyAfterTheLastByte's.)
	fl.finish(share.GetResult{Size: int64(len(data)), Path: "content", Via: "direct"}, nil)
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

// The get's result is there only once every byte, the last included,
// was read: a reader that stopped one byte short has not had it all.
func TestCatResultOnlyAfterTheLastByte(t *testing.T) {
	fl, f := newTestFollower(t)
	data := []byte("a short file, followed to its end")
	f.Write(data)
	fl.progress(int64(len(data)), int64(len(data)), "")
	if b := readN(t, fl, len(data)-1); !bytes.Equal(b, data[:len(data)-1]) {
		t.Fatal("all but the last byte differ")
	}
	fl.finish(share.GetResult{Size: int64(len(data)), Path: "content", Via: "direct"}, nil)
	if _, ok := fl.Result(); ok {
		t.Fatal("the result is there before the last byte was read")
	}
	if b := readN(t, fl, 1); !bytes.Equal(b, data[len(data)-1:]) {
		t.Fatalf("the last byte: %q", b)
	}
	if res, ok := fl.Result(); !ok || res.Size != int64(len(data)) {
		t.Fatalf("the result after the last byte: %+v, %v", res, ok)
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

	// A get that starts again and reaches the same count (a file of one
	// block, written whole both times): the tee says so.
	fl3, f3 := newTestFollower(t)
	f3.Write(data)
	fl3.progress(int64(len(data)), int64(len(data))+1, "")
	readN(t, fl3, len(data))
	fl3.restarted()
	fl3.progress(int64(len(data)), int64(len(data))+1, "")
	if _, err := fl3.Read(make([]byte, 1)); !errors.Is(err, errCatRestarted) {
		t.Fatalf("after a restart told by the tee: %v, want errCatRestarted", err)
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

// catSize is the size of the files the cats below get: more than a cat's
// tee holds, and large enough (8 MiB) to be written around the page cache
// where the file system can.
const catSize = catTee + catBatch + 12345

// A reader that falls behind a cat of a large file (here, reads nothing
// until the get is over) gets every byte: those the tee let go from the
// file, the rest from the tee.
func TestCatOfALargeFileUnderASlowReader(t *testing.T) {
	nodes := newTestNetwork(t, 2)
	data := randomBytes(t, catSize)
	shareBytes(t, nodes[0], "large.bin", data)
	_, rc, err := nodes[1].API().Cat(context.Background(), "large.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the get to end", func() bool { return len(nodes[1].transfers.list()) == 0 })
	var rest bytes.Buffer
	if _, err := rc.(io.WriterTo).WriteTo(&rest); err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest.Bytes()...); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes that differ from the %d shared", len(got), len(data))
	}
	if n := rc.(*follower).tee.Evicted(); n == 0 {
		t.Fatal("the tee let no block go although the reader fell behind")
	}
	if _, ok := rc.Result(); !ok {
		t.Fatal("no result after every byte")
	}
}

// A cat whose first provider is cut inside a block continues from the
// next where the first stopped; one whose first provider sends a corrupt
// file starts again from zero, and a reader never takes bytes that are
// not the file's for a whole cat.
func TestCatAcrossProviders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(st network.Stream, req share.Request, data []byte)
	}{
		{"cut inside a block", func(st network.Stream, req share.Request, data []byte) {
			_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(data))}))
			// Asked again from past the cut (a resume that came back to
			// it), it sends nothing before it cuts.
			if cut := int64(3<<20 + 777); req.Offset < cut {
				_, _ = st.Write(data[req.Offset:cut])
			}
			_ = st.Reset()
		}},
		{"corrupt", func(st network.Stream, req share.Request, data []byte) {
			corrupt := bytes.Clone(data)
			corrupt[len(corrupt)-5] ^= 0xff
			_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(data))}))
			_, _ = st.Write(corrupt[req.Offset:])
			_ = st.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newTestNetwork(t, 3)
			good, bad, getter := nodes[0], nodes[1], nodes[2]
			data := randomBytes(t, catSize)
			sr := shareBytes(t, good, "across.bin", data)
			misbehave(bad, tc.serve, data)
			provideAs(t, bad, sr.CID, getter)
			preferPeer(getter, bad, good)
			_, rc, err := getter.API().Cat(context.Background(), sr.CID)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var got bytes.Buffer
			_, err = rc.(io.WriterTo).WriteTo(&got)
			switch {
			case err == nil && !bytes.Equal(got.Bytes(), data):
				t.Fatalf("the cat passed %d bytes that are not the file for whole", got.Len())
			case err != nil && (tc.name != "corrupt" || !errors.Is(err, errCatRestarted)):
				t.Fatalf("cat: %v", err)
			case err == nil:
				fin, ok := rc.Result()
				if !ok || len(fin.Attempts) != 2 || fin.Provider != good.Host().ID().String() {
					t.Fatalf("result %+v, %v: want two attempts, the second from the good provider", fin, ok)
				}
			}
		})
	}
}
