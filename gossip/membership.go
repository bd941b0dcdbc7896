package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2pshare/p2pshare/internal/bg"
	"github.com/p2pshare/p2pshare/internal/oserr"
)

// Facts returns what a heartbeat tells others about this node.
type Facts func() (files int, freeBytes int64)

// Membership owns the members table of one node: it publishes this node's
// heartbeats, validates and applies everyone's membership messages, runs
// the failure timers and the re-dial checks, and emits events. All methods
// are safe for concurrent use; Close stops every goroutine it started.
type Membership struct {
	h     host.Host
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	cfg   Config
	log   *slog.Logger
	facts Facts

	bg        *bg.Group       // the membership's goroutines
	ctx       context.Context // bg's context
	closeOnce sync.Once
	notifee   *network.NotifyBundle
	paused    atomic.Bool // tests: stop heartbeating as if the process hung
	offsets   *Offsets

	pubMu sync.Mutex // held from numbering a message to publishing it; taken before mu

	mu       sync.Mutex // guards everything below
	members  map[peer.ID]*Member
	inc, seq uint64
	lastMsg  map[peer.ID][2]uint64 // newest (inc, seq) accepted per signer
	subs     map[chan Event]struct{}
	probing  map[peer.ID]bool      // members with a probe in flight
	checking map[peer.ID]checkKind // members with a re-dial check in flight
	stalled  time.Time             // when this node last stalled or got a slow pong
	left     bool
	closed   bool
	started  time.Time
	// firstHeard is when this node first heard another member; settled
	// closes one announced heartbeat period later (see Settled).
	firstHeard time.Time
	settled    chan struct{}
	isSettled  bool
}

// New joins the membership topic on ps, serves and reads clock readings
// (see Offsets) and starts heartbeating. facts may be nil. The incarnation
// comes from cfg.Incarnation (see Config).
func New(h host.Host, ps *pubsub.PubSub, cfg Config, facts Facts, log *slog.Logger) (*Membership, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if facts == nil {
		facts = func() (int, int64) { return 0, 0 }
	}
	inc := uint64(cfg.now().UnixNano())
	if cfg.Incarnations != nil {
		if inc, err = cfg.Incarnations.Next(); err != nil {
			return nil, fmt.Errorf("membership: incarnation: %w", err)
		}
	}
	g := bg.New()
	m := &Membership{
		h: h, cfg: cfg, log: log.With("component", "members"), facts: facts,
		bg: g, ctx: g.Context(), offsets: NewOffsets(),
		members: map[peer.ID]*Member{}, lastMsg: map[peer.ID][2]uint64{}, subs: map[chan Event]struct{}{},
		probing: map[peer.ID]bool{}, checking: map[peer.ID]checkKind{}, settled: make(chan struct{}),
		inc: inc, started: time.Now(),
	}
	if err := ps.RegisterTopicValidator(MembersTopic, m.validate); err != nil {
		g.Close()
		return nil, fmt.Errorf("membership: register validator: %w", err)
	}
	if m.topic, err = ps.Join(MembersTopic); err != nil {
		g.Close()
		_ = ps.UnregisterTopicValidator(MembersTopic)
		return nil, fmt.Errorf("membership: join topic: %w", err)
	}
	if m.sub, err = m.topic.Subscribe(); err != nil {
		g.Close()
		_ = m.topic.Close()
		_ = ps.UnregisterTopicValidator(MembersTopic)
		return nil, fmt.Errorf("membership: subscribe: %w", err)
	}
	m.notifee = &network.NotifyBundle{DisconnectedF: m.disconnected}
	h.Network().Notify(m.notifee)
	h.SetStreamHandler(ClockProtocol, m.handleClock)
	for _, loop := range []func(){m.receiveLoop, m.tickLoop, m.clockLoop} {
		g.Go(func(context.Context) { loop() })
	}
	m.publishHeartbeat()
	return m, nil
}

// Close stops heartbeating and every goroutine, without a goodbye (see
// Leave). Safe to call more than once.
func (m *Membership) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.h.Network().StopNotify(m.notifee)
		m.h.RemoveStreamHandler(ClockProtocol)
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.bg.Close()
		m.sub.Cancel()
		err = m.topic.Close()
		m.mu.Lock()
		for ch := range m.subs {
			close(ch)
			delete(m.subs, ch)
		}
		m.mu.Unlock()
	})
	return err
}

// Leave says goodbye on the topic and stops heartbeating; peers mark this
// node left at once. It waits briefly for the message to go out.
func (m *Membership) Leave(ctx context.Context) error {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return nil
	}
	m.left = true
	m.mu.Unlock()
	if err := m.publish(ctx, Message{Kind: KindLeave}); err != nil {
		return fmt.Errorf("leave: publish goodbye: %w", err)
	}
	// Publish queues the message; give the mesh a moment to carry it.
	select {
	case <-time.After(leaveGrace):
	case <-ctx.Done():
	}
	return nil
}

// leaveGrace is how long Leave lets the goodbye travel before returning.
const leaveGrace = 300 * time.Millisecond

// Subscribe returns a channel of membership events and a function that
// ends the subscription. Events are never blocked on: a subscriber that
// falls more than buf events behind loses events (and a warning is logged).
// The channel is closed by the cancel function or by Close.
func (m *Membership) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	m.mu.Lock()
	if m.closed {
		close(ch)
	} else {
		m.subs[ch] = struct{}{}
	}
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	}
}

// Members returns the table, this node included, sorted by peer ID.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members)+1)
	out = append(out, m.selfLocked())
	for _, mem := range m.members {
		out = append(out, copyMember(mem))
	}
	m.mu.Unlock()
	for i := range out {
		if !out[i].Self {
			out[i].RTT = m.h.Peerstore().LatencyEWMA(out[i].ID)
			out[i].Offset, out[i].OffsetKnown = m.offsets.Offset(out[i].ID)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns this node's view of p.
func (m *Membership) Member(p peer.ID) (Member, bool) {
	m.mu.Lock()
	if p == m.h.ID() {
		self := m.selfLocked()
		m.mu.Unlock()
		return self, true
	}
	mem, ok := m.members[p]
	if !ok {
		m.mu.Unlock()
		return Member{}, false
	}
	c := copyMember(mem)
	m.mu.Unlock()
	c.RTT = m.h.Peerstore().LatencyEWMA(p)
	c.Offset, c.OffsetKnown = m.offsets.Offset(p)
	return c, true
}

// selfLocked is this node's own entry of the table.
func (m *Membership) selfLocked() Member {
	self := Member{ID: m.h.ID(), State: StateAlive, Inc: m.inc, Seq: m.seq, LastSeen: time.Now(), Since: m.started,
		Period: m.cfg.period(m.liveLocked()), Self: true}
	if m.left {
		self.State = StateLeft
	}
	return self
}

// copyMember is a copy of mem that shares nothing with the table.
func copyMember(mem *Member) Member {
	c := *mem
	c.accusers = nil
	c.Addrs = append([]string(nil), mem.Addrs...)
	return c
}

// nextIncLocked returns the incarnation that refutes a suspicion of this
// node: from Config.Incarnations, so the next start is newer still.
func (m *Membership) nextIncLocked() uint64 {
	if m.cfg.Incarnations == nil {
		return max(m.inc+1, uint64(m.cfg.now().UnixNano()))
	}
	inc, err := m.cfg.Incarnations.Next()
	if err != nil {
		m.log.Warn("keep the incarnation counter; refuting with the next value in memory only", "err", err)
	}
	return max(m.inc+1, inc)
}

// Incarnation returns this node's current incarnation.
func (m *Membership) Incarnation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inc
}

// validate is the topic validator: it rejects malformed messages and
// messages whose signer is not the peer they speak for, and ignores any
// message not newer than the last one accepted from its signer (replays).
func (m *Membership) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	mm, err := decodeMessage(msg.Data)
	if err != nil {
		m.log.Debug("rejected membership message", "from", msg.ReceivedFrom, "err", err)
		return pubsub.ValidationReject
	}
	if signer := msg.GetFrom(); signer != mm.Peer {
		m.log.Debug("rejected membership message", "signer", signer, "claims", mm.Peer)
		return pubsub.ValidationReject
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last := m.lastMsg[mm.Peer]
	if !newer(mm.Inc, mm.Seq, last[0], last[1]) {
		return pubsub.ValidationIgnore
	}
	m.lastMsg[mm.Peer] = [2]uint64{mm.Inc, mm.Seq}
	msg.ValidatorData = mm
	return pubsub.ValidationAccept
}

func (m *Membership) receiveLoop() {
	for {
		msg, err := m.sub.Next(m.ctx)
		if err != nil {
			return
		}
		mm, ok := msg.ValidatorData.(*Message)
		if !ok || mm.Peer == m.h.ID() {
			continue
		}
		m.handle(mm)
	}
}

// handle applies one validated message to the table.
func (m *Membership) handle(mm *Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	switch mm.Kind {
	case KindHeartbeat:
		m.onHeartbeatLocked(mm, now)
	case KindLeave:
		mem := m.members[mm.Peer]
		if mem == nil {
			mem = &Member{ID: mm.Peer}
			m.members[mm.Peer] = mem
		}
		mem.Inc, mem.Seq, mem.LastSeen = mm.Inc, mm.Seq, now
		if mem.State != StateLeft {
			m.setStateLocked(mem, StateLeft, EventLeft, now)
		}
	case KindSuspect:
		m.onSuspectLocked(mm, now)
	}
}

func (m *Membership) onHeartbeatLocked(mm *Message, now time.Time) {
	mem := m.members[mm.Peer]
	isNew := mem == nil
	if isNew {
		mem = &Member{ID: mm.Peer, State: StateAlive, Since: now}
		m.members[mm.Peer] = mem
	} else if !newer(mm.Inc, mm.Seq, mem.Inc, mem.Seq) {
		return
	}
	prevInc, prev := mem.Inc, mem.State
	mem.Inc, mem.Seq, mem.LastSeen = mm.Inc, mm.Seq, now
	mem.Period = time.Duration(mm.PeriodMillis) * time.Millisecond
	if m.firstHeard.IsZero() {
		m.firstHeard = now
	}
	mem.Addrs, mem.Files, mem.FreeBytes, mem.Coord = mm.Addrs, mm.Files, mm.FreeBytes, mm.Coord
	mem.accusers = nil
	switch {
	case isNew:
		m.emitLocked(Event{Peer: mem.ID, Kind: EventJoined, Inc: mem.Inc, At: now})
	case (prev == StateDead || prev == StateLeft) && mm.Inc > prevInc:
		m.setStateLocked(mem, StateAlive, EventRejoined, now)
	case prev != StateAlive:
		// A fresh heartbeat signed by the member itself is proof of life.
		m.setStateLocked(mem, StateAlive, EventAliveAgain, now)
	}
}

func (m *Membership) onSuspectLocked(mm *Message, now time.Time) {
	if mm.About == m.h.ID() {
		if !m.left && mm.AboutInc >= m.inc {
			// Refute: a higher incarnation, announced at once.
			m.inc = m.nextIncLocked()
			m.seq = 0
			m.log.Info("refuting suspicion", "by", mm.Peer, "inc", m.inc)
			m.bg.Go(func(context.Context) { m.publishHeartbeat() })
		}
		return
	}
	mem := m.members[mm.About]
	if mem == nil || mem.State == StateDead || mem.State == StateLeft {
		return
	}
	if newer(mem.Inc, mem.Seq, mm.AboutInc, mm.AboutSeq) {
		return // we have heard from it since the accuser last did
	}
	// Without a TCP connection to it, this node heard no reset if the
	// member crashed: a QUIC connection to a killed process stays up,
	// silent, and an unanswered probe counts only once the member is
	// overdue (seconds). A TCP dial that its kernel refuses is proof at
	// once; a process that runs, or hangs, is accepted and proves nothing.
	// Once per silence of the member: every suspicion message of it would
	// otherwise send every such node to dial it again.
	conns := m.h.Network().ConnsToPeer(mem.ID)
	if !hasTCP(conns) && !mem.accusers[m.h.ID()] && (mem.checkedInc != mem.Inc || mem.checkedSeq != mem.Seq) {
		mem.checkedInc, mem.checkedSeq = mem.Inc, mem.Seq
		m.redialLocked(mem.ID, checkOnSuspicion)
	}
	m.accuseLocked(mem, mm.Peer, now)
	// Check for ourselves: a connected member that answers stays alive
	// here (and refutes); one that does not gets our confirmation.
	if mem.State == StateSuspect && !mem.accusers[m.h.ID()] && len(conns) > 0 {
		m.probeLocked(mem.ID)
	}
}

// accuseLocked records that by suspects mem, and declares it dead once
// enough distinct peers do.
func (m *Membership) accuseLocked(mem *Member, by peer.ID, now time.Time) {
	if mem.accusers == nil {
		mem.accusers = map[peer.ID]bool{}
	}
	mem.accusers[by] = true
	if mem.State == StateAlive {
		m.setStateLocked(mem, StateSuspect, EventSuspect, now)
	}
	// The confirmations needed are capped at the live members other than
	// the suspect: this node, those alive or suspect in its table, and any
	// accuser it has not heard a heartbeat from yet (its suspicion is a
	// sign of life). Without the last, a node that hears a suspicion
	// before the accuser's first heartbeat counts one member besides
	// itself and takes the accusation alone as proof.
	live := 1 // this node
	for _, o := range m.members {
		if o != mem && (o.State == StateAlive || o.State == StateSuspect) {
			live++
		}
	}
	for by := range mem.accusers {
		if o := m.members[by]; by != m.h.ID() && (o == nil || (o.State != StateAlive && o.State != StateSuspect)) {
			live++
		}
	}
	if len(mem.accusers) >= min(m.cfg.Confirmations, live) {
		m.setStateLocked(mem, StateDead, EventDead, now)
	}
}

func (m *Membership) setStateLocked(mem *Member, s State, k EventKind, now time.Time) {
	mem.State, mem.Since = s, now
	if s != StateSuspect {
		mem.accusers = nil
	}
	m.emitLocked(Event{Peer: mem.ID, Kind: k, Inc: mem.Inc, At: now})
}

func (m *Membership) emitLocked(e Event) {
	m.log.Info("member "+e.Kind.String(), "peer", e.Peer, "inc", e.Inc)
	for ch := range m.subs {
		select {
		case ch <- e:
		default:
			m.log.Warn("membership event dropped: subscriber too slow", "peer", e.Peer, "event", e.Kind)
		}
	}
}

// tickLoop publishes heartbeats, runs the failure timers and, every
// ProbeInterval, probes late members.
func (m *Membership) tickLoop() {
	tick := min(m.cfg.Heartbeat, m.cfg.TFail/10, m.cfg.ProbeInterval)
	t := time.NewTicker(tick)
	defer t.Stop()
	// The next heartbeat is due after the period the last one announced,
	// or the current one if shorter: receivers judge silence by the
	// announced period, so a period that grows with N (ScaleAt) grows one
	// heartbeat at a time, never under a receiver's feet.
	last, lastBeat, lastProbe, announced := time.Now(), time.Now(), time.Now(), m.cfg.Heartbeat
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			// If this process itself was stalled (paused, starved of CPU),
			// the silence of others during the stall is not theirs: shift
			// their last-seen times by the stall before judging them. The
			// tick must stay short for this: a stall that ends before the
			// next tick is due goes unseen.
			if stall := now.Sub(last) - tick; stall > m.cfg.TFail/4 {
				m.forgiveStall(stall, now)
			}
			last = now
			m.checkTimers(now)
			if now.Sub(lastBeat) >= min(m.period(), announced) {
				lastBeat = now
				if p := m.publishHeartbeat(); p > 0 {
					announced = p
				}
			}
			if now.Sub(lastProbe) >= m.cfg.ProbeInterval-tick/2 {
				lastProbe = now
				m.probeLate(now)
			}
		}
	}
}

// liveLocked counts the members that are alive or suspect, this node
// included: the N that sizes the heartbeat period. Dead and left members
// stay in the table for ForgetAfter but send nothing.
func (m *Membership) liveLocked() int {
	n := 1
	for _, mem := range m.members {
		if mem.State == StateAlive || mem.State == StateSuspect {
			n++
		}
	}
	return n
}

func (m *Membership) period() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.period(m.liveLocked())
}

// forgiveStall credits every member with the time this node was stalled,
// but never past now: a heartbeat processed after the stall (from the
// backlog) already counts as fresh, and a last-seen time in the future
// would delay the next detection by the stall.
func (m *Membership) forgiveStall(d time.Duration, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log.Warn("this node was stalled: not counting the stall against others", "stall", d)
	m.stalled = now
	for _, mem := range m.members {
		mem.LastSeen = minTime(mem.LastSeen.Add(d), now)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// checkTimers moves silent members to suspect (TFail) and dead (2·TFail),
// and forgets dead and left members after ForgetAfter.
func (m *Membership) checkTimers(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked(now)
	for id, mem := range m.members {
		tf := m.cfg.tfail(mem.Period)
		silent := now.Sub(mem.LastSeen)
		switch mem.State {
		case StateAlive:
			if silent > 2*tf {
				m.setStateLocked(mem, StateDead, EventDead, now)
			} else if silent > tf {
				m.setStateLocked(mem, StateSuspect, EventSuspect, now)
			}
		case StateSuspect:
			if silent > 2*tf {
				m.setStateLocked(mem, StateDead, EventDead, now)
			}
		case StateDead, StateLeft:
			if now.Sub(mem.Since) > m.cfg.ForgetAfter {
				delete(m.members, id)
			}
		}
	}
}

func (m *Membership) publishHeartbeat() time.Duration {
	if m.paused.Load() {
		return 0
	}
	files, free := m.facts()
	addrs, coordinate := m.h.Addrs(), m.cfg.coordinate()
	m.mu.Lock()
	if m.left || m.closed {
		m.mu.Unlock()
		return 0
	}
	msg := Message{Kind: KindHeartbeat, PeriodMillis: m.cfg.period(m.liveLocked()).Milliseconds(), Files: files, FreeBytes: free, Coord: coordinate}
	for i, a := range addrs {
		if i == maxAddrs {
			break
		}
		msg.Addrs = append(msg.Addrs, a.String())
	}
	m.mu.Unlock()
	if err := m.publish(m.ctx, msg); err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, errGone) {
			m.log.Debug("publish heartbeat", "err", err)
		}
		return 0
	}
	return time.Duration(msg.PeriodMillis) * time.Millisecond
}

// errGone: this node left, or its membership is closed; it publishes no
// more heartbeats or suspicions.
var errGone = errors.New("membership left or closed")

// publish numbers msg as this node's next message (its incarnation and
// sequence number) and publishes it. Numbering and publishing are one step
// under pubMu, so messages leave in the order of their numbers: receivers
// ignore a message older than the last they accepted from its sender, and
// a suspicion numbered just before a heartbeat, but published after it,
// would be lost.
func (m *Membership) publish(ctx context.Context, msg Message) error {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.mu.Lock()
	if m.closed || (m.left && msg.Kind != KindLeave) {
		m.mu.Unlock()
		return errGone
	}
	m.seq++
	msg.Peer, msg.Inc, msg.Seq = m.h.ID(), m.inc, m.seq
	m.mu.Unlock()
	return m.topic.Publish(ctx, msg.encode())
}

// disconnected checks a member whose last connection just dropped: a failed
// re-dial is evidence, shared on the topic.
func (m *Membership) disconnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	// Another connection to p says p runs, unless the one that dropped was
	// TCP and only QUIC ones remain: QUIC keeps no kernel state that a
	// crash resets, so a QUIC connection to a killed process lives on,
	// silent, until its idle timeout, and would hide the crash that the
	// TCP reset just told of.
	if hasTCP(m.h.Network().ConnsToPeer(p)) || (!isTCP(c.RemoteMultiaddr()) && m.h.Network().Connectedness(p) == network.Connected) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem := m.members[p]; mem != nil && (mem.State == StateAlive || mem.State == StateSuspect) {
		m.redialLocked(p, checkOnDisconnect)
	}
}

// checkKind says what sent this node to re-dial a member.
type checkKind int

const (
	checkOnDisconnect checkKind = iota + 1 // its last TCP connection dropped
	checkOnSuspicion                       // another node suspects it
)

// redialLocked starts a re-dial check of p. If one is in flight, a check
// after a disconnect runs again when it ends: the member may have crashed
// after the first check found it up.
func (m *Membership) redialLocked(p peer.ID, kind checkKind) {
	if m.closed {
		return
	}
	if _, busy := m.checking[p]; busy {
		if kind == checkOnDisconnect {
			m.checking[p] = checkOnDisconnect // run again
		}
		return
	}
	m.checking[p] = 0
	m.bg.Go(func(context.Context) {
		for {
			m.redialCheck(p, kind)
			m.mu.Lock()
			again := m.checking[p]
			if again == 0 || m.closed {
				delete(m.checking, p)
				m.mu.Unlock()
				return
			}
			m.checking[p] = 0
			kind = again
			m.mu.Unlock()
		}
	})
}

// redialCheck re-dials p and, when that is evidence, suspects it.
//
// After a disconnect it dials p's TCP addresses in the peerstore (fresh:
// p was connected a moment ago), or makes a full libp2p dial where there
// are none. On a suspicion it dials only the TCP addresses p announced in
// its last heartbeat (the peerstore may hold those of an earlier run on
// other ports), and counts only a refusal: this node may never have been
// connected to p, and a dial that fails for want of an address, or finds
// nobody in time, says nothing about p.
func (m *Membership) redialCheck(p peer.ID, kind checkKind) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RedialTimeout)
	defer cancel()
	var (
		tcp bool
		err error
	)
	if kind == checkOnSuspicion {
		m.mu.Lock()
		var addrs []ma.Multiaddr
		if mem := m.members[p]; mem != nil {
			addrs = mem.AddrInfo().Addrs
		}
		m.mu.Unlock()
		if tcp, err = checkTCP(ctx, addrs, m.cfg.RedialTimeout); !tcp || !errors.Is(err, errRefused) {
			return
		}
	} else {
		tcp, err = checkTCP(ctx, m.h.Peerstore().Addrs(p), m.cfg.RedialTimeout)
		if !tcp {
			// No TCP address to look at: a full libp2p re-dial.
			if sw, ok := m.h.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(p)
			}
			err = m.h.Connect(network.WithForceDirectDial(ctx, "membership check"), peer.AddrInfo{ID: p})
			if errors.Is(err, swarm.ErrNoAddresses) {
				return // nothing to dial: no evidence
			}
		}
	}
	if err == nil || m.ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	mem := m.members[p]
	if mem == nil || (mem.State != StateAlive && mem.State != StateSuspect) {
		m.mu.Unlock()
		return
	}
	if !errors.Is(err, errRefused) && !m.healthyLocked(time.Now()) {
		// A dial that got no answer in time says as much about this
		// node (starved of CPU) as about the member; a refusal does not.
		m.log.Debug("unanswered re-dial not counted: this node is not healthy", "peer", p, "err", err)
		m.mu.Unlock()
		return
	}
	if kind == checkOnSuspicion {
		m.log.Info("member unreachable when checked after a suspicion", "peer", p, "err", err)
	} else {
		m.log.Info("member unreachable after its connection dropped", "peer", p, "err", err)
	}
	msg := m.suspectLocked(mem, mem.Inc, mem.Seq)
	m.mu.Unlock()
	m.publishSuspicion(msg)
}

// suspectLocked counts this node's own suspicion of mem, whose newest
// (Inc, Seq) it had seen as (inc, seq), and returns the message that
// shares it.
func (m *Membership) suspectLocked(mem *Member, inc, seq uint64) Message {
	m.accuseLocked(mem, m.h.ID(), time.Now())
	return Message{Kind: KindSuspect, About: mem.ID, AboutInc: inc, AboutSeq: seq}
}

// publishSuspicion publishes a message of suspectLocked; call it unlocked.
func (m *Membership) publishSuspicion(msg Message) {
	if err := m.publish(m.ctx, msg); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errGone) {
		m.log.Debug("publish suspicion", "err", err)
	}
}

// probeLate pings one connected member that is late: silent for longer
// than its announced heartbeat period plus lateSlack. tickLoop calls it
// every ProbeInterval. A punctual member's heartbeats already say it is
// alive, and an unanswered probe only counts against a member overdue by
// its period plus ProbeTimeout (probeConclusiveLocked), so a probe of a
// punctual member could never be evidence: an idle network sends no
// probes at all. A member that stops is late at every one of its
// connected peers at about the same moment, so each of them probes it
// within ProbeInterval.
func (m *Membership) probeLate(now time.Time) {
	if m.paused.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var late []peer.ID
	for id, mem := range m.members {
		if (mem.State == StateAlive || mem.State == StateSuspect) && !m.probing[id] &&
			now.Sub(mem.LastSeen) > mem.Period+m.lateSlack() &&
			m.h.Network().Connectedness(id) == network.Connected {
			late = append(late, id)
		}
	}
	if len(late) > 0 {
		m.probeLocked(late[rand.IntN(len(late))])
	}
}

// Settled returns a channel closed once this node has heard every live
// member: one announced heartbeat period (the longest among the members
// heard, plus lateSlack) after it first heard one. A node alone never
// settles.
func (m *Membership) Settled() <-chan struct{} { return m.settled }

// settleLocked closes settled when its time has come; checkTimers calls it
// on every tick.
func (m *Membership) settleLocked(now time.Time) {
	if m.isSettled || m.firstHeard.IsZero() {
		return
	}
	longest := m.cfg.Heartbeat
	for _, mem := range m.members {
		if mem.State == StateAlive || mem.State == StateSuspect {
			longest = max(longest, mem.Period)
		}
	}
	if now.Sub(m.firstHeard) > longest+m.lateSlack() {
		m.isSettled = true
		close(m.settled)
	}
}

// lateSlack is how long past its announced period a member's heartbeat may
// come before the member is probed: heartbeats leave on the sender's timer
// tick (TFail/10 at most) and take a few milliseconds to spread.
func (m *Membership) lateSlack() time.Duration {
	return m.cfg.ProbeTimeout / 4
}

// probeLocked starts a probe of p unless one is in flight.
func (m *Membership) probeLocked(p peer.ID) {
	if m.closed || m.probing[p] {
		return
	}
	m.probing[p] = true
	m.bg.Go(func(context.Context) { m.probe(p) })
}

// probe pings p once. No pong within ProbeTimeout, on a connection that is
// still up, from a member not heard from meanwhile, is evidence shared on
// the topic like a failed re-dial. Any other failure is left to the
// disconnect check and the timers: an error that is not a timeout says
// nothing about whether p's process runs, and a probe that took far longer
// than its timeout means this node itself was stalled.
func (m *Membership) probe(p peer.ID) {
	defer func() {
		m.mu.Lock()
		delete(m.probing, p)
		m.mu.Unlock()
	}()
	m.mu.Lock()
	mem := m.members[p]
	if mem == nil {
		m.mu.Unlock()
		return
	}
	inc, seq := mem.Inc, mem.Seq
	m.mu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.ProbeTimeout)
	var res ping.Result
	select {
	case res = <-ping.Ping(ctx, m.h, p): // a pong, or an error: a timeout is told by ctx
	case <-ctx.Done():
	}
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	if !timedOut && res.Error == nil && time.Since(start) > m.cfg.ProbeTimeout/4 {
		// A pong this slow on a LAN means the machine is overloaded: the
		// next unanswered probe may be this node's fault, not the member's.
		m.mu.Lock()
		m.stalled = time.Now()
		m.mu.Unlock()
	}
	if !timedOut || time.Since(start) > 2*m.cfg.ProbeTimeout || m.ctx.Err() != nil {
		return
	}
	if m.h.Network().Connectedness(p) != network.Connected {
		return
	}
	m.mu.Lock()
	mem = m.members[p]
	if m.closed || m.left || mem == nil || (mem.State != StateAlive && mem.State != StateSuspect) || mem.Inc != inc || mem.Seq != seq {
		m.mu.Unlock()
		return
	}
	if now := time.Now(); !m.probeConclusiveLocked(mem, now) {
		m.log.Debug("unanswered probe not counted: the member is not overdue or this node is not healthy", "peer", p)
		m.mu.Unlock()
		return
	}
	m.log.Info("member did not answer a probe", "peer", p, "timeout", m.cfg.ProbeTimeout)
	msg := m.suspectLocked(mem, inc, seq)
	m.mu.Unlock()
	m.publishSuspicion(msg)
}

// probeConclusiveLocked reports whether an unanswered probe of mem counts
// as evidence. A machine so loaded that pongs take seconds also delays
// heartbeats and this node's own timers, and a detector that accuses on
// every slow pong turns overload into a storm of false deaths, refutations
// and the work they trigger (memberlist's Lifeguard makes the same point).
// So it counts only if mem is overdue, nothing heard from it for its
// heartbeat period plus ProbeTimeout; and if this node is healthy: it has
// been up for 5·ProbeTimeout (starting is the busiest time of a process),
// and within the last 5·ProbeTimeout it has not itself stalled nor waited
// more than ProbeTimeout/4 for a pong that came.
func (m *Membership) probeConclusiveLocked(mem *Member, now time.Time) bool {
	return now.Sub(mem.LastSeen) > mem.Period+m.cfg.ProbeTimeout && m.healthyLocked(now)
}

// healthyLocked reports whether this node's own timing can be trusted.
func (m *Membership) healthyLocked(now time.Time) bool {
	return now.Sub(m.started) > 5*m.cfg.ProbeTimeout && now.Sub(m.stalled) > 5*m.cfg.ProbeTimeout
}

// isTCP reports whether a runs over TCP.
func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}

// hasTCP reports whether any of conns runs over TCP.
func hasTCP(conns []network.Conn) bool {
	for _, c := range conns {
		if isTCP(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

// tcpSettle is how long checkTCP holds a connection the member's kernel
// accepted, to see whether it is reset. A process killed a moment ago may
// still be closing its file descriptors: its connections are reset (which
// sent this node to check) while its listener still accepts, for a few
// milliseconds, into a queue that nobody will read; when the listener
// closes, the kernel resets what is queued.
var tcpSettle = 250 * time.Millisecond // a variable for tests only

// dialTCP connects to addr and, if the connection is accepted, waits up to
// tcpSettle (or until ctx ends) for it to be reset. It returns the dial's
// error, ECONNRESET if the accepted connection was reset, or nil: the
// connection was accepted and stood, or the process wrote to it or closed
// it (a process that runs).
func dialTCP(ctx context.Context, d *net.Dialer, addr string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(tcpSettle)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) }) // Close does not wait
	defer stop()
	var b [1]byte
	if _, err := c.Read(b[:]); oserr.ConnReset(err) {
		return err
	}
	return nil
}

// errRefused: every TCP address of a member refused a connection, or
// reset it as soon as it was accepted.
var errRefused = errors.New("connection refused")

// checkTCP dials the TCP addresses among addrs once, in parallel, without
// libp2p, and says whether there were any. Its error is evidence against
// the member: every address refused (no process listens there any more:
// the kernel of a crashed process closed its listener), or none answered
// within timeout (unreachable). An accepted connection is no evidence
// either way: the member's process runs (the last connection closed
// normally, or a connection manager trimmed it), it hangs (its kernel still
// accepts; probes and timers find that), or it is dying this very moment
// and its listener is not closed yet (the other peers' checks and the
// probes find that). A running member is not re-dialled by libp2p here,
// which would undo the trims, and not dialled again and again, which
// would fill its accept queue in a big network.
func checkTCP(ctx context.Context, addrs []ma.Multiaddr, timeout time.Duration) (bool, error) {
	var nas []string
	for _, a := range addrs {
		if !isTCP(a) {
			continue
		}
		if na, err := manet.ToNetAddr(a); err == nil {
			nas = append(nas, na.String())
		}
	}
	if len(nas) == 0 {
		return false, nil
	}
	var d net.Dialer
	errs := make(chan error, len(nas))
	for _, a := range nas {
		go func() { errs <- dialTCP(ctx, &d, a) }()
	}
	refused, accepted := 0, 0
	for range nas {
		switch err := <-errs; {
		case err == nil:
			accepted++
		case oserr.ConnRefused(err), oserr.ConnReset(err):
			refused++
		}
	}
	switch {
	case refused == len(nas):
		return true, fmt.Errorf("%w on all %d TCP addresses", errRefused, len(nas))
	case accepted == 0 && ctx.Err() != nil:
		return true, fmt.Errorf("no answer on its TCP addresses within %s", timeout)
	}
	return true, nil
}
