package kv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SyncProtocol is the anti-entropy stream protocol. The initiator sends its
// digest; the responder answers with its digest and then every record of
// the buckets whose digests differ, ended by an empty frame; the initiator
// then sends its own records of those buckets, ended the same way. Both
// keep what wins. Frames are a uvarint length and that many bytes.
const SyncProtocol = "/p2pshare/kv-sync/1.0.0"

// Buckets is the number of digest buckets: a key's bucket is the first byte
// of the SHA-256 of its namespace and key; a bucket's digest is the XOR of
// the SHA-256 of its live records.
const Buckets = 256

// digestSize is the size of a whole digest frame.
const digestSize = Buckets * sha256.Size

// maxSyncRecords bounds the records one exchange may carry each way.
const maxSyncRecords = 1 << 20

// ErrBadSync: the peer broke the anti-entropy protocol.
var ErrBadSync = errors.New("bad anti-entropy exchange")

// SyncStats tells what one exchange moved.
type SyncStats struct {
	Sent     int
	Received int
	Applied  int
}

func bucketOf(id string) byte {
	h := sha256.Sum256([]byte(id))
	return h[0]
}

// differing returns which buckets of two digests differ.
func differing(a, b []byte) map[byte]bool {
	out := map[byte]bool{}
	for i := 0; i < Buckets; i++ {
		x, y := a[i*sha256.Size:(i+1)*sha256.Size], b[i*sha256.Size:(i+1)*sha256.Size]
		if string(x) != string(y) {
			out[byte(i)] = true
		}
	}
	return out
}

// SyncWith runs one anti-entropy exchange with p.
func (s *Store) SyncWith(ctx context.Context, p peer.ID) (SyncStats, error) {
	var st SyncStats
	str, err := s.h.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return st, fmt.Errorf("anti-entropy with %s: open stream: %w", p, err)
	}
	defer str.Close()
	// Reading and writing do not watch ctx: reset the stream when it ends,
	// so Close never waits for a peer that stopped answering.
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	} else {
		_ = str.SetDeadline(time.Now().Add(s.cfg.SyncTimeout))
	}
	st, err = s.exchange(str, true)
	if err != nil {
		str.Reset()
		return st, fmt.Errorf("anti-entropy with %s: %w", p, err)
	}
	s.syncs.Add(1)
	return st, nil
}

// handleSync answers an exchange a peer started, on a goroutine Close
// waits for.
func (s *Store) handleSync(str network.Stream) {
	ok := s.bg.Go(func(ctx context.Context) {
		stop := context.AfterFunc(ctx, func() { str.Reset() })
		defer stop()
		defer str.Close()
		_ = str.SetDeadline(time.Now().Add(s.cfg.SyncTimeout))
		if _, err := s.exchange(str, false); err != nil {
			s.log.Debug("anti-entropy from peer", "peer", str.Conn().RemotePeer(), "err", err)
			str.Reset()
		}
	})
	if !ok {
		str.Reset()
	}
}

// syncBufSize is the size of an exchange's read and write buffers: twice a
// digest. Every node runs an exchange every SyncInterval and answers as
// many, nearly always finding nothing to send, so the buffers are most of
// what an idle store allocates; a frame larger than a buffer (a catch-up's
// batch of records) is read and written past it, in one call.
const syncBufSize = 2 * digestSize

// exchange runs the protocol on str, as the initiator or the responder.
func (s *Store) exchange(str network.Stream, initiator bool) (SyncStats, error) {
	var st SyncStats
	r := bufio.NewReaderSize(str, syncBufSize)
	w := bufio.NewWriterSize(str, syncBufSize)
	mine := s.local.digest(s.cfg.networkNow())
	var theirs []byte
	var err error
	if initiator {
		if err := writeFrame(w, mine); err != nil {
			return st, err
		}
		if err := w.Flush(); err != nil {
			return st, err
		}
	}
	if theirs, err = readFrame(r, digestSize); err != nil {
		return st, fmt.Errorf("read digest: %w", err)
	}
	if len(theirs) != digestSize {
		return st, fmt.Errorf("%w: digest of %d bytes, want %d", ErrBadSync, len(theirs), digestSize)
	}
	diff := differing(mine, theirs)
	// Choose what to send before receiving, so the initiator does not send
	// back what the responder just gave it.
	recs := s.local.recordsIn(diff, s.cfg.networkNow())
	send := func() error {
		for _, b := range recs {
			if err := writeFrame(w, b); err != nil {
				return err
			}
		}
		st.Sent = len(recs)
		if err := writeFrame(w, nil); err != nil {
			return err
		}
		return w.Flush()
	}
	if !initiator {
		if err := writeFrame(w, mine); err != nil {
			return st, err
		}
		if err := send(); err != nil {
			return st, fmt.Errorf("send records: %w", err)
		}
	}
	err = s.receiveInto(str.Conn().RemotePeer(), r, func(rs []*Record) error {
		st.Received += len(rs)
		n, err := s.apply(rs)
		st.Applied += n
		// Counted as applied, not when the exchange ends: a watcher
		// signalled by these records may read Stats at once.
		s.appliedSync.Add(int64(n))
		return err
	})
	if err != nil {
		return st, fmt.Errorf("receive records: %w", err)
	}
	if initiator {
		if err := send(); err != nil {
			return st, fmt.Errorf("send records: %w", err)
		}
	}
	return st, nil
}

// receive reads records until an empty frame and returns the valid ones.
func (s *Store) receive(r *bufio.Reader) ([]*Record, error) {
	var out []*Record
	err := s.receiveInto("", r, func(rs []*Record) error {
		out = append(out, rs...)
		return nil
	})
	return out, err
}

// syncChunk is how many received records are handed on at once, so an
// exchange holds at most this many in memory and applies them in one
// transaction.
const syncChunk = 1000

// receiveInto reads records until an empty frame and hands the valid ones
// (well formed, signed, within the size limit, not from the future, not
// expired, not rejected before as from the future) to sink in chunks of
// syncChunk; the valid records read before an error are handed on too.
// from is the peer sending them.
func (s *Store) receiveInto(from peer.ID, r *bufio.Reader, sink func([]*Record) error) error {
	var chunk []*Record
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := sink(chunk)
		chunk = nil
		return err
	}
	now := s.cfg.networkNow()
	for n := 0; ; n++ {
		if n > maxSyncRecords {
			return fmt.Errorf("%w: more than %d records", ErrBadSync, maxSyncRecords)
		}
		b, err := readFrame(r, MaxRecordSize)
		if err != nil {
			// What arrived intact is signed and checked: keep it, so a
			// broken exchange still makes progress.
			return errors.Join(err, flush())
		}
		if len(b) == 0 {
			return flush()
		}
		rec, err := Unmarshal(b)
		if err != nil {
			s.intake.reject(from, RejectInvalid, err)
			continue
		}
		if err := s.intake.admit(rec, now); err != nil {
			continue
		}
		s.clock.Observe(rec.Time)
		chunk = append(chunk, rec)
		if len(chunk) >= syncChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

func writeFrame(w io.Writer, b []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame of at most max bytes.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, the limit is %d", ErrBadSync, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
