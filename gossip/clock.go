package gossip

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ClockProtocol is the protocol of clock readings: the side that accepts
// the stream writes its wall clock (Unix nanoseconds, 8 bytes big-endian)
// and closes it.
const ClockProtocol = "/p2pshare/clock/1"

// clockSamples is how many recent exchanges Offsets keeps per peer.
const clockSamples = 8

// clockTimeout bounds a clock reading.
const clockTimeout = 2 * time.Second

// offsetSample is one exchange: the peer's clock minus this node's, and
// the round trip it was measured over.
type offsetSample struct {
	offset, rtt time.Duration
}

// Offsets estimates the offset of other nodes' clocks to this node's, the
// way NTP does: an exchange sent at this node's time t0, answered with the
// peer's time r and received at t1 gives the offset r - (t0+t1)/2, wrong by
// at most half the round trip t1-t0. Of the last few exchanges with a peer
// the one with the shortest round trip is the estimate: queueing delays
// only lengthen a round trip, and the shortest is the least asymmetric.
// Methods are safe for concurrent use.
type Offsets struct {
	mu    sync.Mutex
	peers map[peer.ID][]offsetSample
	ver   uint64 // counts the changes to peers
}

// NewOffsets returns an empty estimator.
func NewOffsets() *Offsets { return &Offsets{peers: map[peer.ID][]offsetSample{}} }

// Add records one exchange with p: sent and received are this node's clock
// readings before the request and after the answer, remote is the peer's
// reading in between. An exchange whose round trip is negative (this
// node's clock stepped back meanwhile) is dropped.
func (o *Offsets) Add(p peer.ID, sent, remote, received time.Time) {
	rtt := received.Sub(sent)
	if rtt < 0 {
		return
	}
	s := offsetSample{offset: remote.Sub(sent.Add(rtt / 2)), rtt: rtt}
	o.mu.Lock()
	defer o.mu.Unlock()
	ss := append(o.peers[p], s)
	if len(ss) > clockSamples {
		ss = ss[len(ss)-clockSamples:]
	}
	o.peers[p] = ss
	o.ver++
}

// version changes whenever an estimate may have: an estimate computed from
// Offsets at one version holds until it moves.
func (o *Offsets) version() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ver
}

// Offset returns how far p's clock is ahead of this node's (negative:
// behind), and false if no exchange with p is recorded.
func (o *Offsets) Offset(p peer.ID) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.offsetLocked(p)
}

func (o *Offsets) offsetLocked(p peer.ID) (time.Duration, bool) {
	ss := o.peers[p]
	if len(ss) == 0 {
		return 0, false
	}
	best := ss[0]
	for _, s := range ss[1:] {
		if s.rtt < best.rtt {
			best = s
		}
	}
	return best.offset, true
}

// Reset forgets every exchange: after this node's clock stepped, each
// recorded offset is off by the step.
func (o *Offsets) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.peers)
	o.ver++
}

// Retain forgets every peer for which keep is false.
func (o *Offsets) Retain(keep func(peer.ID) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p := range o.peers {
		if !keep(p) {
			delete(o.peers, p)
			o.ver++
		}
	}
}

// Network returns how far this node's clock is ahead of the network's
// (negative: behind), and how many of peers it has an estimate for: the
// network's clock is the median of the clocks of this node and those
// peers, so a minority of wrong clocks, this node's included, cannot move
// it. With an even count the median is the mean of the middle two: of two
// nodes whose clocks disagree, neither is taken as right.
func (o *Offsets) Network(peers []peer.ID) (time.Duration, int) {
	o.mu.Lock()
	vals := []time.Duration{0}
	for _, p := range peers {
		if d, ok := o.offsetLocked(p); ok {
			vals = append(vals, d)
		}
	}
	o.mu.Unlock()
	return -median(vals), len(vals) - 1
}

// median returns the median of vals (not empty), sorting it.
func median(vals []time.Duration) time.Duration {
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return vals[n/2-1] + (vals[n/2]-vals[n/2-1])/2
}

// handleClock answers a clock reading.
func (m *Membership) handleClock(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(clockTimeout))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(m.cfg.now().UnixNano()))
	_, _ = s.Write(b[:])
}

// readClock measures p's clock once. The reading is one round trip, as a
// libp2p ping is (the protocol's negotiation travels with the request and
// the answer), so it is also a sample of p's RTT for the peerstore, which
// every "closest" choice ranks by.
func (m *Membership) readClock(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, clockTimeout)
	defer cancel()
	start := time.Now()
	sent := m.cfg.now()
	s, err := m.h.NewStream(network.WithNoDial(ctx, "clock reading"), p, ClockProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(clockTimeout))
	var b [8]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return err
	}
	received := m.cfg.now()
	m.h.Peerstore().RecordLatency(p, time.Since(start))
	m.offsets.Add(p, sent, time.Unix(0, int64(binary.BigEndian.Uint64(b[:]))), received)
	return nil
}

// maxClockReads bounds the clock readings of one round, and clockReReads
// those of members already measured: a reading opens a stream of its own,
// and each such stream costs about six writes on each side, so re-reading
// 16 members every 10 s made clock readings most of the streams an idle
// node opened. Clocks drift by parts per million; a member re-read every
// ClockInterval·peers/clockReReads (90 s among 36 connected peers) is
// still within a few milliseconds of its estimate.
const (
	maxClockReads = 16
	clockReReads  = 4
)

// clockLoop measures the clocks of the connected live members: every
// second those not measured yet, and every ClockInterval a few of the
// others, so a node knows its offset to the network within a second or so
// of meeting its peers.
//
// When this node's wall clock steps (set by hand or by NTP, or a
// machine waking from sleep) every estimate is off by the step, and the
// few re-read each ClockInterval would take minutes to replace them: the
// estimates are dropped, and every member is read again within a second
// or so.
func (m *Membership) clockLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	wall, mono := m.cfg.now(), time.Now()
	for {
		all := time.Since(last) >= m.cfg.ClockInterval
		if all {
			last = time.Now()
		}
		m.clockRound(all)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w, mo := m.cfg.now(), time.Now()
		if step, ok := clockStepped(wall, w, mo.Sub(mono)); ok {
			m.log.Info("this node's clock stepped: reading the members' clocks again", "step", step)
			m.offsets.Reset()
		}
		wall, mono = w, mo
	}
}

// minClockStep is the least jump of the wall clock clockStepped reports:
// more than the slewing of NTP or a loaded machine's timers make between
// two rounds, less than a clock error worth a warning.
const minClockStep = time.Second

// clockStepped returns how far the wall clock moved from wall0 to wall1
// beyond the monotonic time elapsed meanwhile, and whether that is a step
// of at least minClockStep either way. The readings are compared by their
// wall clock only (time.Time.Sub would use their monotonic readings).
func clockStepped(wall0, wall1 time.Time, elapsed time.Duration) (time.Duration, bool) {
	step := time.Duration(wall1.UnixNano()-wall0.UnixNano()) - elapsed
	return step, step >= minClockStep || step <= -minClockStep
}

// clockRound reads the clocks of the live members without an estimate and,
// when all is true, of clockReReads others picked at random, in parallel.
func (m *Membership) clockRound(all bool) {
	t := m.snap.Load()
	// Every second, every live member: nothing here may cost an
	// allocation per member.
	var missing, known []peer.ID
	for _, p := range t.live {
		if m.h.Network().Connectedness(p) != network.Connected {
			continue
		}
		// A member whose clock was read answers readings: the
		// peerstore's protocol list (a copy of it on every call, for
		// every member every second) is asked only of the others.
		if _, ok := m.offsets.Offset(p); ok {
			if all {
				known = append(known, p)
			}
		} else if m.mayReadClock(p) {
			missing = append(missing, p)
		}
	}
	m.offsets.Retain(t.isLive)
	var wg sync.WaitGroup
	for _, p := range clockReads(missing, known, rand.Shuffle) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.readClock(m.ctx, p); err != nil {
				m.log.Debug("clock reading", "peer", p, "err", err)
			}
		}()
	}
	wg.Wait()
}

// clockReads returns the members a round reads the clocks of: those not
// measured yet, then clockReReads of the known ones in the order shuffle
// leaves them, maxClockReads in all.
func clockReads(missing, known []peer.ID, shuffle func(n int, swap func(i, j int))) []peer.ID {
	shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	out := append(missing, known[:min(len(known), clockReReads)]...)
	return out[:min(len(out), maxClockReads)]
}

// mayReadClock reports whether p may answer a clock reading: false once
// identify has listed p's protocols without ClockProtocol (a node of an
// earlier release), so such a peer is not asked every second in vain.
func (m *Membership) mayReadClock(p peer.ID) bool { return m.speaks(p, ClockProtocol) }

// MeasureClocks reads, now, the clocks of the connected live members not
// measured yet (a node that just met its peers, before its first round).
func (m *Membership) MeasureClocks() { m.clockRound(false) }

// ClockOffset returns how far this node's clock is ahead of the network's
// (negative: behind), the median over the live members it has measured,
// and how many those are (0: no estimate yet).
//
// It is asked every second or more (the daemon's clock warning, the
// key-value store's clock check), so the figure is kept until the table
// or an estimate changes.
func (m *Membership) ClockOffset() (time.Duration, int) {
	t, ver := m.snap.Load(), m.offsets.version()
	m.clockMu.Lock()
	defer m.clockMu.Unlock()
	if c := m.clockFig; c.t == t && c.ver == ver {
		return c.off, c.n
	}
	off, n := m.offsets.Network(t.live)
	m.clockFig = clockFigure{t: t, ver: ver, off: off, n: n}
	return off, n
}

// clockFigure is ClockOffset's last answer, from table t and Offsets at
// version ver.
type clockFigure struct {
	t   *table
	ver uint64
	off time.Duration
	n   int
}
