package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// ReportProtocol tells a provider that the bytes it sent did not hash to
// the CID asked for: one JSON line, {"cid": "..."}, no answer. The
// provider does not take the claim on trust: it re-hashes its copy and
// quarantines it only if it really is bad.
const ReportProtocol = "/p2pshare/badcopy/1.0.0"

// scrubChunk is the largest read of the scrub, and its token bucket's burst.
const scrubChunk = 64 << 10

// penaltyTTL is how long a provider that sent corrupt bytes is tried after
// every other provider.
const penaltyTTL = 10 * time.Minute

// reportGrace: a report about a copy verified this recently is not acted
// on again (each report would otherwise cost its reader a full re-hash).
const reportGrace = time.Minute

// scrubLoop re-verifies every held file, the one verified longest ago
// first, reading at most ScrubRate bytes a second; a file verified less
// than ScrubInterval ago waits.
func (s *Service) scrubLoop() {
	burst := int(min(s.cfg.ScrubRate, scrubChunk))
	lim := rate.NewLimiter(rate.Limit(s.cfg.ScrubRate), burst)
	for {
		held, wait := s.scrubNext(time.Now())
		if held == nil {
			t := time.NewTimer(min(wait, time.Minute))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if err := s.scrubOne(s.ctx, lim, burst, *held); err != nil && s.ctx.Err() == nil {
			s.log.Debug("scrub", "cid", held.CID, "err", err)
		}
		if s.ctx.Err() != nil {
			return
		}
	}
}

// scrubNext returns the held file due for verification that was verified
// longest ago, or nil and how long until one is due.
func (s *Service) scrubNext(now time.Time) (*Held, time.Duration) {
	var next *Held
	for _, h := range s.store.List() {
		if next == nil || h.Verified.Before(next.Verified) {
			next = &h
		}
	}
	if next == nil {
		return nil, s.cfg.ScrubInterval
	}
	if due := next.Verified.Add(s.cfg.ScrubInterval); due.After(now) {
		return nil, due.Sub(now)
	}
	return next, 0
}

// scrubOne re-hashes held through lim; a copy that does not match is
// quarantined and replaced.
func (s *Service) scrubOne(ctx context.Context, lim *rate.Limiter, chunk int, held Held) error {
	f, _, err := s.store.Open(held.CID)
	if err != nil {
		return err // removed meanwhile
	}
	defer f.Close()
	h := newHasher()
	buf := make([]byte, chunk)
	var n int64
	for {
		k, rerr := f.Read(buf)
		if k > 0 {
			if err := lim.WaitN(ctx, k); err != nil {
				return err
			}
			h.Write(buf[:k])
			n += int64(k)
			s.stats.ScrubbedBytes.Add(int64(k))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("scrub %s: read: %w", held.CID, rerr)
		}
	}
	s.stats.ScrubbedFiles.Add(1)
	if got := cidFromDigest(h.Sum(nil)); n != held.Size || !got.Equals(held.CID) {
		s.quarantine(held.CID, "scrub")
		return nil
	}
	return s.store.MarkVerified(held.CID, time.Now())
}

// markVerified records a whole-file verification of c made while serving
// it, unless a recent one is already recorded (the mark is a disk write).
func (s *Service) markVerified(c cid.Cid) {
	now := time.Now()
	if h, ok := s.store.Held(c); ok && now.Sub(h.Verified) > s.cfg.ScrubInterval/24 {
		_ = s.store.MarkVerified(c, now)
	}
}

// verifyHeld makes sure this node's copy of c was verified within fresh:
// it re-hashes it if not, and quarantines it (and returns ErrHashMismatch)
// if it does not match.
func (s *Service) verifyHeld(c cid.Cid, fresh time.Duration, why string) error {
	h, ok := s.store.Held(c)
	if !ok {
		return fmt.Errorf("%s: %w", c, ErrNotFound)
	}
	if time.Since(h.Verified) <= fresh {
		return nil
	}
	if !s.verifying.start(c) {
		return nil // being verified now
	}
	defer s.verifying.done(c)
	start := time.Now()
	err := s.store.Verify(c)
	if errors.Is(err, ErrHashMismatch) {
		s.quarantine(c, why)
		return err
	}
	if err != nil {
		return err
	}
	return s.store.MarkVerified(c, start)
}

// quarantine takes this node's copy of c out of service after it failed
// verification (found by why): moves it to the store's quarantine, records
// it, withdraws this node's holding from the catalog (the DHT provider
// record is no longer renewed, and a getter asking is told "not held"), and
// fetches a good copy from another holder.
func (s *Service) quarantine(c cid.Cid, why string) {
	held, ok := s.store.Held(c)
	if !ok {
		return
	}
	d := s.dir
	var custody peer.ID
	if d != nil {
		for _, h := range d.Holdings(c) {
			if h.Peer == s.h.ID() {
				custody = h.CustodyFor
			}
		}
	}
	path, err := s.store.Quarantine(c)
	if errors.Is(err, ErrNotFound) {
		return // quarantined by another path meanwhile
	}
	s.stats.Quarantined.Add(1)
	s.log.Warn("held copy failed verification: quarantined", "cid", c, "path", path, "found_by", why, "err", err)
	if d != nil {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
		if err := d.Unhold(ctx, c); err != nil {
			s.log.Warn("withdraw holding of a quarantined copy", "cid", c, "err", err)
		}
		cancel()
	}
	s.bg.Go(func(context.Context) { s.restore(c, held.Size, custody, path) })
}

// restore fetches a good copy of c, quarantined here, from another holder,
// and holds it again as before.
func (s *Service) restore(c cid.Cid, size int64, custody peer.ID, quarantined string) {
	if !s.restoring.start(c) {
		return
	}
	defer s.restoring.done(c)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReplicateTimeout)
	defer cancel()
	if _, ok := s.store.Has(c); !ok {
		if err := s.fetchIntoStore(ctx, c, size); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("no good copy to replace a quarantined one (replication may bring one)", "cid", c, "quarantined", quarantined, "err", err)
			}
			return
		}
	}
	if d := s.dir; d != nil {
		if err := d.Hold(ctx, c, custody); err != nil {
			s.log.Warn("record holding of a restored copy", "cid", c, "err", err)
		}
	}
	s.stats.Restored.Add(1)
	s.log.Info("replaced a quarantined copy with a good one", "cid", c)
	s.provideLater(c)
}

// blame demotes p, which sent bytes of c that did not hash to c, in the
// fetch order for penaltyTTL, and tells it.
func (s *Service) blame(p peer.ID, c cid.Cid) {
	s.penalties.add(p, time.Now())
	s.bg.Go(func(context.Context) {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
		defer cancel()
		st, err := s.h.NewStream(ctx, p, ReportProtocol)
		if err != nil {
			return
		}
		defer st.Close()
		_ = st.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
		b, _ := json.Marshal(badCopyReport{CID: c.String()})
		_, _ = st.Write(append(b, '\n'))
	})
}

type badCopyReport struct {
	CID string `json:"cid"`
}

// handleReport serves ReportProtocol: re-hash the copy named, if held, not
// verified within reportGrace, and no other report is being checked.
func (s *Service) handleReport(st network.Stream) {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	var r badCopyReport
	if err := readJSONLine(st, &r); err != nil {
		return
	}
	c, err := ParseCID(r.CID)
	if err != nil {
		return
	}
	if _, ok := s.store.Has(c); !ok {
		return
	}
	from := st.Conn().RemotePeer()
	// One report-driven re-hash at a time: reports about many files cost
	// their sender nothing and this node a full read each.
	if !s.reportBusy.CompareAndSwap(false, true) {
		return
	}
	s.bg.Go(func(context.Context) {
		defer s.reportBusy.Store(false)
		if err := s.verifyHeld(c, reportGrace, "a getter's report"); err == nil {
			s.log.Info("a getter reported a bad copy, but this node's copy verifies", "cid", c, "peer", from)
		}
	})
}

// cidSet is a set of CIDs being worked on, so that one CID is verified or
// restored by one goroutine at a time.
type cidSet struct {
	mu sync.Mutex
	m  map[cid.Cid]bool
}

func (s *cidSet) start(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[c] {
		return false
	}
	if s.m == nil {
		s.m = map[cid.Cid]bool{}
	}
	s.m[c] = true
	return true
}

func (s *cidSet) done(c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
}

// penaltyList remembers providers that sent corrupt bytes, for penaltyTTL.
type penaltyList struct {
	mu sync.Mutex
	m  map[peer.ID]time.Time // peer -> when its penalty ends
}

func (l *penaltyList) add(p peer.ID, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[peer.ID]time.Time{}
	}
	for q, until := range l.m {
		if !until.After(now) {
			delete(l.m, q)
		}
	}
	l.m[p] = now.Add(penaltyTTL)
}

func (l *penaltyList) has(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.m[p]
	return ok && until.After(now)
}

// pushBackoff spaces out the copies of a file to a node that failed: the
// first retry waits minBackoff, each failure doubles the wait up to
// maxBackoff, a success forgets it.
type pushBackoff struct {
	mu sync.Mutex
	m  map[pushKey]backoffState
}

type pushKey struct {
	c cid.Cid
	p peer.ID
}

type backoffState struct {
	until time.Time
	wait  time.Duration
}

const (
	minBackoff = 10 * time.Second
	maxBackoff = 10 * time.Minute
)

// ready reports whether a copy of c to p may be tried at now.
func (b *pushBackoff) ready(c cid.Cid, p peer.ID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.m[pushKey{c, p}]
	return !ok || !now.Before(st.until)
}

// failed records a failed copy of c to p at now and returns how long the
// next try waits.
func (b *pushBackoff) failed(c cid.Cid, p peer.ID, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[pushKey]backoffState{}
	}
	for k, st := range b.m {
		if now.Sub(st.until) > maxBackoff {
			delete(b.m, k) // long ready and not tried again
		}
	}
	k := pushKey{c, p}
	st := b.m[k]
	st.wait = min(max(2*st.wait, minBackoff), maxBackoff)
	st.until = now.Add(st.wait)
	b.m[k] = st
	return st.wait
}

// succeeded forgets the failures of copies of c to p.
func (b *pushBackoff) succeeded(c cid.Cid, p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, pushKey{c, p})
}
