package gossip

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// input is what reaches the loop from the other goroutines: a message, a
// piece of evidence, or a change of the topic's peers.
type input struct {
	from peer.ID
	msg  *swim.Message // a message of from, or nil
	// topic is the topic message msg was made of (its facts and number),
	// nil for a direct message.
	topic *Message
	// addrs: the addresses of members that came with a direct message.
	addrs map[peer.ID][]ma.Multiaddr
	// pingAck: msg is an Ack made of an answered libp2p ping, and carries
	// no incarnation.
	pingAck bool
	ev      swim.Evidence // evidence about from, when msg is nil
	// topicEvent, when msg is nil and ev 0: from joined or left the topic.
	topicEvent pubsub.EventType
	// dialled, when msg is nil: a ping's dial to from connected.
	dialled bool
}

// deliver hands in to the loop, or drops it if the loop is inboxSize
// behind: no goroutine ever blocks on the loop.
func (m *Membership) deliver(in input) {
	if d := m.inDelay.Load(); d > 0 {
		time.AfterFunc(time.Duration(d), func() { m.deliverNow(in) })
		return
	}
	m.deliverNow(in)
}

func (m *Membership) deliverNow(in input) {
	select {
	case m.inbox <- in:
	default:
		m.counters.inboxDropped.Add(1)
	}
}

const (
	// announceDelay: a node that finds its first peer on the topic
	// announces itself at once and again this much later, once GossipSub
	// has grafted the peer into its mesh (its heartbeat runs every
	// second): published before that, a message reaches nobody.
	announceDelay = 1500 * time.Millisecond
	// addrsSettle is how long after a change of its addresses a node
	// announces them: a change comes in bursts (a reachability verdict,
	// then relay addresses), which one announcement carries.
	addrsSettle = 100 * time.Millisecond
	// joinEvery is how often at most this node exchanges tables with the
	// same peer on its own initiative.
	joinEvery = 5 * time.Second
	// settleSlack is added to a heartbeat period for Settled: heartbeats
	// take a moment to spread.
	settleSlack = 500 * time.Millisecond
	// protectTag tags the connections to the members this node watches
	// in the connection manager.
	protectTag = "p2pshare-members"
)

// loop owns the core and the members table. Only its goroutine (run)
// touches its fields; others reach it through Membership.inbox and cmds.
type loop struct {
	m    *Membership
	core *swim.Core
	self peer.ID

	table map[peer.ID]*Member // every member but this node
	// dirty: the table changed since it was last published; changed: the
	// members whose records changed (touch), which the next table copies
	// while it shares the others with the last one.
	dirty   bool
	changed map[peer.ID]struct{}
	tables  int // tables published

	// What the core sent during the current call, sent by flush after it.
	sends []outgoing
	pubs  []*swim.Message
	// The table's changes, emitted by flush once the table that shows
	// them (and the neighbours they make) is published.
	events []Event

	seq, seqInc uint64       // this node's topic messages are numbered (seqInc, seq)
	left        bool         // Leave was called
	leaveDone   chan<- error // told when the goodbye is published

	watched []peer.ID // protected in the connection manager
	// alone: this node has no peer on the topic, so what it publishes
	// reaches nobody; announceAt: when to announce this node again.
	alone      bool
	announceAt time.Time
	joined     map[peer.ID]time.Time // when this node last sent a peer its table
	checked    map[peer.ID]uint64    // the incarnation of a member whose TCP port a suspicion made this node check
	firstHeard time.Time             // when this node first heard another member
	settled    bool
	started    time.Time
}

type outgoing struct {
	to  peer.ID
	msg *swim.Message
}

// transport is the core's Transport. It only queues: the loop sends
// what the core asked for when the core's call has returned.
type transport struct{ l *loop }

func (t transport) Send(to swim.ID, msg *swim.Message) {
	t.l.sends = append(t.l.sends, outgoing{peerID(to), msg})
}

func (t transport) Publish(msg *swim.Message) { t.l.pubs = append(t.l.pubs, msg) }

// newLoop makes the core of this node at incarnation inc, starts it and
// announces this node, and publishes the first table.
func newLoop(m *Membership, inc uint64) *loop {
	l := &loop{m: m, self: m.h.ID(), table: map[peer.ID]*Member{}, changed: map[peer.ID]struct{}{}, alone: true,
		joined: map[peer.ID]time.Time{}, checked: map[peer.ID]uint64{}, started: time.Now()}
	cfg := m.cfg.swimConfig(swimID(l.self), inc)
	cfg.OnEvent = l.onEvent
	cfg.NextInc = m.nextInc
	cfg.CanRelay = func(id swim.ID) bool { return m.speaks(peerID(id), SwimProtocol) }
	cfg.Connected = func(id swim.ID) bool { return m.connected(peerID(id)) }
	cfg.DialTimeout = dialAllowance
	l.core = swim.New(cfg, transport{l}, nil)
	l.core.Start()
	l.core.Announce()
	l.publishTable()
	return l
}

// run is the loop: it hands the core what arrives and what is due, one
// at a time, and sends what the core asked for after each.
func (l *loop) run(ctx context.Context) {
	defer l.unprotect(l.watched)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.flush()
		timer.Reset(time.Until(l.wake()))
		select {
		case <-ctx.Done():
			return
		case in := <-l.m.inbox:
			l.handle(in)
		case f := <-l.m.cmds:
			f(l)
		case <-timer.C:
			// What arrived before the timer fired counts first: an
			// answer that waited in the queue is not a timeout.
			for n := len(l.m.inbox); n > 0; n-- {
				l.handle(<-l.m.inbox)
			}
			l.timers(time.Now())
		}
	}
}

// announceSoon has this node announced again at t, or sooner if it was to
// be already.
func (l *loop) announceSoon(t time.Time) {
	if l.announceAt.IsZero() || t.Before(l.announceAt) {
		l.announceAt = t
	}
}

// wake is when the loop must next run its timers.
func (l *loop) wake() time.Time {
	t := l.core.Next()
	for _, u := range []time.Time{l.announceAt, l.settleAt()} {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if t.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return t
}

func (l *loop) timers(now time.Time) {
	if !l.announceAt.IsZero() && !now.Before(l.announceAt) {
		l.announceAt = time.Time{}
		if !l.left {
			l.core.Announce()
		}
	}
	if at := l.settleAt(); !at.IsZero() && !now.Before(at) {
		l.settle()
	}
	if next := l.core.Next(); !next.IsZero() && !now.Before(next) {
		l.core.Tick()
	}
}

func (l *loop) handle(in input) {
	switch {
	case in.msg != nil:
		l.receive(in)
	case in.ev != 0:
		if rec := l.table[in.from]; rec != nil && in.ev == swim.EvidenceRefused {
			// This node found the member's port refused already: the
			// suspicions that its refusal and the others' bring need no
			// check of it again (a kill wakes every connected member at
			// once, and each dial is one more wake-up in that crowd).
			l.checked[in.from] = rec.Inc
		}
		if in.ev == swim.EvidenceRefused {
			l.m.checkMu.Lock()
			delete(l.m.refusedUnread, in.from)
			l.m.checkMu.Unlock()
		}
		l.core.Evidence(swimID(in.from), in.ev)
	case in.dialled:
		l.core.Dialled(swimID(in.from))
	default:
		l.topicPeer(in.from, in.topicEvent)
	}
}

// receive hands the core a message, then notes what the table keeps of
// it that the core does not: when the member was last heard, and the
// facts of its heartbeats.
func (l *loop) receive(in input) {
	msg, now := in.msg, time.Now()
	if in.pingAck {
		if e, ok := l.core.Member(swimID(in.from)); ok {
			msg.Inc = e.Inc
		}
	}
	l.core.Receive(swimID(in.from), msg)
	if rec := l.table[in.from]; rec != nil {
		rec.seen.Store(now.UnixNano())
		if t := in.topic; t != nil {
			rec.Seq = t.Seq
			l.touch(in.from)
			if t.Kind == KindHeartbeat {
				rec.Period = time.Duration(t.PeriodMillis) * time.Millisecond
				rec.Addrs, rec.ownAddrs, rec.Files, rec.FreeBytes, rec.Coord = t.Addrs, true, t.Files, t.FreeBytes, t.Coord
			}
		}
		if l.firstHeard.IsZero() {
			l.firstHeard = now
			l.dirty = true
		}
	}
	for p, as := range in.addrs {
		// A member's own word on its addresses wins; others' only fill a
		// gap until the member's heartbeat.
		if rec := l.table[p]; rec != nil && (p == in.from || len(rec.Addrs) == 0) {
			rec.Addrs, rec.ownAddrs = addrStrings(as), p == in.from
			l.touch(p)
		}
	}
	switch msg.Kind {
	case swim.KindSuspect, swim.KindDead:
		if p := peerID(msg.Target); p != l.self {
			l.checkSuspect(p)
		}
	case swim.KindSyncResp:
		if msg.Seq == 0 { // the last part of a table
			l.settle()
		}
	}
}

// checkSuspect dials the TCP addresses a suspected member announced,
// once per incarnation of the member, if this node has no TCP connection
// to it: without one it heard no reset if the member crashed (a QUIC
// connection to a killed process stays up, silent), and a refusal is
// proof at once. A member whose addresses this node has only from
// others (maybe of an earlier run) is not dialled: the core asks the
// member's neighbours for their refusals instead (CannotCheck).
func (l *loop) checkSuspect(p peer.ID) {
	rec := l.table[p]
	if rec == nil || !live(rec.State) || hasTCP(l.m.h.Network().ConnsToPeer(p)) {
		return
	}
	if inc, ok := l.checked[p]; ok && inc == rec.Inc {
		return // checked already
	}
	if !rec.ownAddrs {
		l.core.CannotCheck(swimID(p))
		return
	}
	l.checked[p] = rec.Inc
	l.m.startCheck(p, checkOnSuspicion, rec.AddrInfo().Addrs)
}

// topicPeer handles a peer that joined or left the membership topic.
// A node that had no peer there announces itself again. A peer that this
// node does not know as live gets its table (anti-entropy, answered with
// the peer's): a joiner catches up at once, and across a healed
// partition each side learns that the other declared it dead, and
// refutes.
func (l *loop) topicPeer(p peer.ID, ev pubsub.EventType) {
	if ev == pubsub.PeerLeave {
		l.alone = len(l.m.topic.ListPeers()) == 0
		return
	}
	now := time.Now()
	if l.left {
		return
	}
	if l.alone {
		l.alone = false
		l.core.Announce()
		l.announceAt = now.Add(announceDelay)
	}
	if e, ok := l.core.Member(swimID(p)); ok && e.State == swim.StateAlive {
		return
	}
	if now.Sub(l.joined[p]) < joinEvery {
		return
	}
	if len(l.joined) > 256 {
		for q, t := range l.joined {
			if now.Sub(t) >= joinEvery {
				delete(l.joined, q)
			}
		}
	}
	l.joined[p] = now
	l.core.Join(swimID(p))
}

// settleAt is when Settled closes without a table exchange: the longest
// heartbeat period announced by a live member after this node first
// heard one. Zero when settled or alone.
func (l *loop) settleAt() time.Time {
	if l.settled || l.firstHeard.IsZero() {
		return time.Time{}
	}
	var longest time.Duration
	for _, rec := range l.table {
		if live(rec.State) {
			longest = max(longest, rec.Period)
		}
	}
	if longest == 0 {
		return time.Time{} // nobody has announced a period yet
	}
	return l.firstHeard.Add(longest + settleSlack)
}

func (l *loop) settle() {
	if !l.settled {
		l.settled = true
		close(l.m.settled)
	}
}

// leave says goodbye and stops the core; published is told when the
// goodbye is out.
func (l *loop) leave(published chan<- error) {
	if l.left {
		published <- nil
		return
	}
	l.left, l.leaveDone, l.dirty = true, published, true
	l.core.Leave()
}

// onEvent maps a change of the core's table onto the members table and
// the events of Subscribe.
func (l *loop) onEvent(e swim.Event) {
	p := peerID(e.ID)
	if p == l.self {
		return // this node's own entry is made by publishTable
	}
	l.touch(p)
	if e.Forgotten || e.State == swim.StateAlive {
		// Forgotten, or alive at a new incarnation: a refusal still
		// unread then (its input dropped from a full inbox) is of the
		// past.
		l.m.checkMu.Lock()
		delete(l.m.refusedUnread, p)
		l.m.checkMu.Unlock()
	}
	if e.Forgotten {
		delete(l.table, p)
		delete(l.checked, p)
		return
	}
	st := State(e.State)
	rec, known := l.table[p]
	if !known {
		rec = &Member{ID: p, Since: e.At, seen: new(atomic.Int64)}
		l.table[p] = rec
	}
	prev := rec.State
	rec.State, rec.Inc = st, e.Inc
	var kinds []EventKind
	switch {
	case !known:
		kinds = []EventKind{map[State]EventKind{StateAlive: EventJoined, StateSuspect: EventJoined, StateDead: EventDead, StateLeft: EventLeft}[st]}
		if st == StateSuspect {
			kinds = append(kinds, EventSuspect)
		}
	case st == prev:
		return // a new incarnation, same state
	case st == StateAlive && prev == StateSuspect:
		kinds = []EventKind{EventAliveAgain}
	case live(st) && !live(prev):
		kinds = []EventKind{EventRejoined}
		if st == StateSuspect {
			kinds = append(kinds, EventSuspect)
		}
	case st == StateSuspect:
		kinds = []EventKind{EventSuspect}
	case st == StateDead:
		kinds = []EventKind{EventDead}
	case st == StateLeft:
		kinds = []EventKind{EventLeft}
	}
	if st != prev {
		rec.Since = e.At
	}
	for _, k := range kinds {
		l.events = append(l.events, Event{Peer: p, Kind: k, Inc: e.Inc, At: e.At})
	}
}

// flush sends and publishes what the core asked for, keeps the
// connections to the watched members, and publishes the table if it
// changed.
func (l *loop) flush() {
	sends, pubs := l.sends, l.pubs
	l.sends, l.pubs = nil, nil
	for _, o := range sends {
		d := direct{msg: o.msg, addrs: map[peer.ID][]ma.Multiaddr{}}
		switch o.msg.Kind {
		case swim.KindSyncReq, swim.KindSyncResp:
			for _, e := range o.msg.News {
				if swimLive(e.State) {
					l.shareAddrs(d.addrs, peerID(e.ID))
				}
			}
		case swim.KindPingReq:
			l.shareAddrs(d.addrs, peerID(o.msg.Target))
		}
		var addrs []string // parsed only if the send must dial
		if rec := l.table[o.to]; rec != nil {
			addrs = rec.Addrs
		}
		l.m.send(o.to, d, addrs)
	}
	for _, msg := range pubs {
		if msg.Kind == swim.KindSuspect && msg.From == swimID(l.self) {
			// Why a member is suspected is worth a line: the accuser
			// says so, the others log only the state change.
			l.m.log.Info("suspecting member", "peer", peerID(msg.Target), "refused", msg.Refused, "lhm", l.core.LHM(), "timeout", l.core.PingTimeout(),
				"connected", l.m.connected(peerID(msg.Target)))
		}
		l.publish(msg)
	}
	l.keepWatched()
	if l.dirty {
		l.publishTable()
	}
	events := l.events
	l.events = nil
	for _, e := range events {
		l.m.emit(e)
	}
}

// addrsOf returns the addresses this node knows of p.
func (l *loop) addrsOf(p peer.ID) []ma.Multiaddr {
	if p == l.self {
		return l.m.cfg.addrs(l.m.h)
	}
	if rec := l.table[p]; rec != nil {
		return rec.AddrInfo().Addrs
	}
	return nil
}

// shareAddrs adds to to the addresses this node knows of p, if any.
func (l *loop) shareAddrs(to map[peer.ID][]ma.Multiaddr, p peer.ID) {
	if as := l.addrsOf(p); len(as) > 0 {
		to[p] = as[:min(len(as), maxSharedAddrs)]
	}
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func swimLive(s swim.State) bool { return s == swim.StateAlive || s == swim.StateSuspect }

// publish numbers a message of the core as this node's next message on
// the topic and queues it for the publisher. Numbering and queueing are
// one step, and one goroutine publishes the queue in order: receivers
// ignore a message older than the last they accepted from its sender.
func (l *loop) publish(msg *swim.Message) {
	mm := l.toTopic(msg)
	if mm == nil {
		return
	}
	inc := l.core.Inc()
	if inc != l.seqInc {
		l.seqInc, l.seq = inc, 0
	}
	l.seq++
	mm.Peer, mm.Inc, mm.Seq = l.self, inc, l.seq
	l.dirty = true
	p := publication{msg: mm}
	if mm.Kind == KindLeave {
		p.done = l.leaveDone
		select { // the goodbye waits for room: Leave waits for it
		case l.m.pubq <- p:
		case <-l.m.ctx.Done():
		}
		return
	}
	select {
	case l.m.pubq <- p:
	default:
		l.m.counters.publishDropped.Add(1)
	}
}

// touch notes that the record of member p changed (or appeared, or was
// deleted): the next table copies it.
func (l *loop) touch(p peer.ID) {
	l.changed[p] = struct{}{}
	l.dirty = true
}

// publishTable publishes a copy of the table for readers. A table shares
// with the last one the records that did not change: most messages
// change one member, and a copy of every record on each would cost a
// 100-member network more than the messages themselves.
func (l *loop) publishTable() {
	t := &table{lhm: l.core.LHM(), near: l.watched}
	if prev := l.m.snap.Load(); prev != nil {
		t.members, t.live = prev.members, prev.live
	}
	// Every record came with a touch, so the first table (of none)
	// copies them all too.
	cloned, liveChanged := false, false
	for p := range l.changed {
		rec, old := l.table[p], t.members[p]
		switch {
		case rec == nil && old == nil:
			continue
		case rec != nil && old != nil && sameMember(old, rec):
			continue
		}
		if !cloned {
			t.members, cloned = maps.Clone(t.members), true
			if t.members == nil {
				t.members = make(map[peer.ID]*Member, len(l.table))
			}
		}
		if rec == nil {
			delete(t.members, p)
		} else {
			cp := *rec
			t.members[p] = &cp
		}
		if old == nil || rec == nil || live(old.State) != live(rec.State) {
			liveChanged = true
		}
	}
	if liveChanged {
		t.live = liveOf(t.members)
	}
	clear(l.changed)
	t.self = Member{ID: l.self, State: StateAlive, Inc: l.core.Inc(), Since: l.started, Period: l.core.HeartbeatPeriod(), Self: true}
	if l.seqInc == t.self.Inc {
		t.self.Seq = l.seq
	}
	if l.left {
		t.self.State = StateLeft
	}
	l.m.snap.Store(t)
	l.dirty = false
	l.tables++
}

// liveOf lists the members alive or suspect.
func liveOf(members map[peer.ID]*Member) []peer.ID {
	var out []peer.ID
	for p, mem := range members {
		if live(mem.State) {
			out = append(out, p)
		}
	}
	return out
}

// keepWatched protects the connections to the members this node watches,
// and to those that watch it, from the connection manager: a connection
// that either side trims is dialled again by the next ping, and each
// trim sends both sides to check the other (disconnected). The probes
// keep a connection to each member watched: a ping to one this node has
// no connection to dials it, every ProbeInterval (a relayed connection
// will do, so this node does not dial a member it reaches through a
// relay).
func (l *loop) keepWatched() {
	var w []peer.ID
	if !l.left {
		for _, id := range append(l.core.Watched(), l.core.WatchedBy()...) {
			if p := peerID(id); !slices.Contains(w, p) {
				w = append(w, p)
			}
		}
	}
	if slices.Equal(w, l.watched) {
		return
	}
	var gone []peer.ID
	for _, p := range l.watched {
		if !slices.Contains(w, p) {
			gone = append(gone, p)
		}
	}
	l.unprotect(gone)
	for _, p := range w {
		if slices.Contains(l.watched, p) {
			continue
		}
		l.m.h.ConnManager().Protect(p, protectTag)
	}
	l.watched = w
	l.dirty = true // the table's neighbours
}

func (l *loop) unprotect(ps []peer.ID) {
	for _, p := range ps {
		l.m.h.ConnManager().Unprotect(p, protectTag)
	}
}

// nextInc is the core's NextInc: a refutation's incarnation, from the
// repo's counter when there is one.
func (m *Membership) nextInc(atLeast uint64) uint64 {
	inc := atLeast
	if m.cfg.Incarnations == nil {
		inc = max(inc, uint64(m.cfg.now().UnixNano()))
	} else if next, err := m.cfg.Incarnations.Next(); err != nil {
		m.log.Warn("keep the incarnation counter; refuting with the next value in memory only", "err", err)
	} else {
		inc = max(inc, next)
	}
	m.log.Info("refuting suspicion", "inc", inc)
	return inc
}
