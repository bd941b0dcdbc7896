package share

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/direct"
)

// teeFile returns a file holding head, positioned after it.
func teeFile(t *testing.T, head []byte) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(head); err != nil {
		t.Fatal(err)
	}
	return f
}

// feed writes data through s as a fetch does, in reads of random sizes
// up to max: into the sink's buffer, then taken.
func feed(t *testing.T, s sink, data []byte, total int64, max int) {
	t.Helper()
	for len(data) > 0 {
		b := s.buffer(int64(len(data)))
		n := min(len(b), 1+mrand.IntN(max))
		copy(b, data[:n])
		if err := s.wrote(n, total, peer.ID("p")); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// A teed fetch writes its file in whole blocks, aligned in the file, and
// reports progress only when the bytes it counts are in the file and
// hashed, no more: a checkpoint then is the file's own. A resumed fetch
// from an unaligned offset writes a short block first.
func TestTeeSinkWritesTheFileInBlocks(t *testing.T) {
	for _, start := range []int{0, 12345} {
		t.Run(fmt.Sprint("from ", start), func(t *testing.T) {
			data := make([]byte, directMin+3*teeBlockSize+777)
			rand.Read(data)
			total := int64(len(data))
			f := teeFile(t, data[:start])
			tee := NewTee(3*teeBlockSize, nil)
			defer tee.Close()
			h := sha256.New()
			h.Write(data[:start])
			var dones []int64
			s, err := newSink(WithTee(context.Background(), tee), f, h, int64(start), total, func(done, tot int64, from peer.ID) {
				if tot != total || from != "p" {
					t.Errorf("progress(%d, %d, %s)", done, tot, from)
				}
				if got := sha256.Sum256(data[:done]); !bytes.Equal(h.Sum(nil), got[:]) {
					t.Errorf("at progress %d the hash covers other bytes", done)
				}
				if fi, err := f.Stat(); err != nil || fi.Size() != done {
					t.Errorf("at progress %d the file holds %d bytes (%v)", done, fi.Size(), err)
				}
				dones = append(dones, done)
			})
			if err != nil {
				t.Fatal(err)
			}
			ts := s.(*teeSink)
			t.Logf("around the page cache: %v", ts.w.Direct())
			feed(t, s, data[start:], total, 300_000)
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			for i, d := range dones {
				if d != total && d%teeBlockSize != 0 {
					t.Fatalf("progress %d of %v is inside a block", i, dones)
				}
			}
			if len(dones) == 0 || dones[len(dones)-1] != total {
				t.Fatalf("progress %v does not end at %d", dones, total)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the file differs from the bytes fed (%v)", err)
			}
			// The tee holds the last blocks: a reader there takes them
			// from memory.
			var out bytes.Buffer
			off := total - 100
			if n, err := tee.Send(&out, off, 100); n != 100 || err != nil || !bytes.Equal(out.Bytes(), data[off:]) {
				t.Fatalf("Send of the last 100 bytes: %d, %v", n, err)
			}
		})
	}
}

// blockingWriter takes what it is given only when released, and keeps a
// copy made then.
type blockingWriter struct {
	entered, release chan struct{}
	got              []byte
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	close(w.entered)
	<-w.release
	w.got = bytes.Clone(b)
	return len(b), nil
}

// A reader that falls behind never holds the get up: the get takes the
// oldest blocks back and the reader is told to read those bytes from the
// file; a block being sent is never taken back and rewritten under the
// send.
func TestTeeSlowReaderNeverStallsTheGet(t *testing.T) {
	const blocks = 8
	data := make([]byte, blocks*teeBlockSize)
	rand.Read(data)
	total := int64(len(data))
	f := teeFile(t, nil)
	tee := NewTee(2*teeBlockSize, nil)
	defer tee.Close()
	s, err := newSink(WithTee(context.Background(), tee), f, sha256.New(), 0, total, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two blocks in, the reader starts sending the first and blocks in
	// its write.
	feed(t, s, data[:2*teeBlockSize], total, 1<<20)
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	bw := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	sent := make(chan int64, 1)
	go func() {
		n, _ := tee.Send(bw, 0, teeBlockSize)
		sent <- n
	}()
	select {
	case <-bw.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not write the held block")
	}
	// The get goes on to the end without waiting for the reader.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(t, s, data[2*teeBlockSize:], total, 1<<20)
	}()
	select {
	case <-fed:
	case <-time.After(10 * time.Second):
		t.Fatal("the get waited for a reader that fell behind")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	close(bw.release)
	if n := <-sent; n != teeBlockSize || !bytes.Equal(bw.got, data[:teeBlockSize]) {
		t.Fatalf("the block sent under the get (%d bytes) was rewritten", n)
	}
	if tee.Evicted() == 0 {
		t.Fatal("no block was taken back from a reader that fell behind")
	}
	// Bytes taken back: Send writes nothing, the reader reads the file.
	var out bytes.Buffer
	if n, err := tee.Send(&out, teeBlockSize, teeBlockSize); n != 0 || err != nil {
		t.Fatalf("Send of a block taken back: %d, %v; want 0, nil", n, err)
	}
	last := total - teeBlockSize
	if n, err := tee.Send(&out, last, teeBlockSize); n != teeBlockSize || err != nil || !bytes.Equal(out.Bytes(), data[last:]) {
		t.Fatalf("Send of the last block: %d, %v", n, err)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) {
		t.Fatal("the file differs from the bytes fed")
	}
}

// A get that starts again from zero tells the tee's owner, and the tee
// forgets the bytes of the first try.
func TestTeeRewindForgetsTheFirstTry(t *testing.T) {
	var mu sync.Mutex
	restarts := 0
	tee := NewTee(4*teeBlockSize, func() { mu.Lock(); restarts++; mu.Unlock() })
	defer tee.Close()
	f := teeFile(t, nil)
	total := int64(3 * teeBlockSize)
	h := sha256.New()
	s, err := newSink(WithTee(context.Background(), tee), f, h, 0, total, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, total)
	good := make([]byte, total)
	rand.Read(bad)
	rand.Read(good)
	feed(t, s, bad[:2*teeBlockSize+5], total, 1<<20)
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if err := s.rewind(); err != nil {
		t.Fatal(err)
	}
	if mu.Lock(); restarts != 1 {
		t.Fatalf("%d restarts told, want 1", restarts)
	}
	mu.Unlock()
	var out bytes.Buffer
	if n, _ := tee.Send(&out, 0, 10); n != 0 {
		t.Fatal("the tee still holds bytes of the first try")
	}
	feed(t, s, good, total, 1<<20)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(good); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the hash is not that of the second try's bytes")
	}
	if n, _ := tee.Send(&out, 2*teeBlockSize, teeBlockSize); n != teeBlockSize || !bytes.Equal(out.Bytes(), good[2*teeBlockSize:]) {
		t.Fatal("the last block is not the second try's")
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, good) {
		t.Fatal("the file is not the second try's bytes")
	}
}

// A block the file refuses ends the fetch with the error, and leaves the
// file and the hash at the bytes before it: a checkpoint then is sound.
func TestTeeSinkWriteErrorKeepsFileAndHashTogether(t *testing.T) {
	data := make([]byte, 3*teeBlockSize)
	rand.Read(data)
	total := int64(len(data))
	f := teeFile(t, nil)
	tee := NewTee(4*teeBlockSize, nil)
	defer tee.Close()
	h := sha256.New()
	s, err := newSink(WithTee(context.Background(), tee), f, h, 0, total, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, s, data[:teeBlockSize], total, 1<<20)
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	// The next write fails: the file is now open for reading only.
	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Seek(teeBlockSize, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	ts := s.(*teeSink)
	ts.f = ro
	if ts.w, err = direct.NewWriter(ro, false); err != nil {
		t.Fatal(err)
	}
	b := s.buffer(total)
	copy(b, data[teeBlockSize:])
	s.wrote(len(b), total, "p")
	if err := s.close(); err == nil {
		t.Fatal("a block the file refused ended the fetch without an error")
	}
	want := sha256.Sum256(data[:teeBlockSize])
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the hash covers bytes that are not in the file")
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != teeBlockSize {
		t.Fatalf("the file holds %v bytes (%v), want the first block's %d", fi.Size(), err, teeBlockSize)
	}
}
