package swim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// State is what a core believes of a member.
type State uint8

// Member states.
const (
	StateAlive   State = iota // answers, or announced itself at its incarnation
	StateSuspect              // a watcher could not reach it, directly or through others
	StateDead                 // suspected until the suspicion timed out
	StateLeft                 // said goodbye: final for that incarnation
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Evidence is what the network layer saw of a member outside the probes.
type Evidence int

// Evidence kinds.
const (
	// EvidenceReset: this node's last connection to the member was reset
	// or closed. The member is probed at once, out of turn.
	EvidenceReset Evidence = iota + 1
	// EvidenceRefused: a re-dial of the member's addresses was refused
	// (no process listens there). This node suspects it at once, as after
	// a failed probe, and its suspicion counts towards Confirmations.
	EvidenceRefused
)

// Clock is the time source of a core.
type Clock interface{ Now() time.Time }

// Transport carries a core's messages. Send and Publish must not call
// back into the core.
type Transport interface {
	// Send sends m to one member (Ping, Ack, Nack, PingReq, table
	// exchange, and a Dead notice to a member declared dead).
	Send(to ID, m *Message)
	// Publish sends m to every member (the membership topic).
	Publish(m *Message)
}

// Event is one change of the table.
type Event struct {
	ID    ID
	State State
	Inc   uint64
	New   bool // first heard of
	// Forgotten: the member, dead or left for ForgetAfter, is no longer
	// in the table (State is the one it had).
	Forgotten bool
	At        time.Time
}

// Config tunes a core. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Self ID
	Inc  uint64 // this node's incarnation at start
	// Watchers is k: each member is watched (pinged every ProbePeriod) by
	// the k members before it on the ring. Default 3.
	Watchers int
	// Helpers is how many members a failed ping is retried through
	// (ping-req). Default 3.
	Helpers int
	// CanRelay, when set, says whether a member can relay a ping-req (a
	// member of an earlier release may not speak the direct protocol);
	// only those are picked as helpers. Default: every alive member.
	CanRelay func(ID) bool
	// Confirmations: refused connections (EvidenceRefused) reported by
	// this many distinct members, or by every live member other than the
	// suspect if fewer, end a suspicion at once: no process listens at
	// the member's address any more. Default 2.
	Confirmations int
	// NextInc, when set, gives the incarnation of a refutation: at least
	// its argument (a node keeps a counter that survives restarts, so its
	// next start is newer still). Default: the argument.
	NextInc func(atLeast uint64) uint64
	// RefusalHold: the Confirmations-1 watchers nearest a member on the
	// ring (at least one) publish a refused connection to it at once.
	// Every member connected to a crashed one sees its connections reset,
	// and every member that hears it suspected checks its port: each
	// counts its own refusal, and with those published it has
	// Confirmations. The next watcher sends its refusal to the first ones
	// directly (each of them has its own and the others', one short) and
	// publishes it RefusalHold/2 later, for members that cannot check the
	// port, unless Confirmations others have published theirs by then: the
	// crash's busiest milliseconds carry as few publications as they can.
	// Any other member holds its refused accusation back for RefusalHold
	// to twice that, at random, and drops it if by then Confirmations
	// others have published theirs or a death was published. The
	// suspicion runs on this node all the same. Without the hold, a crash
	// in a network of N is N publications, each delivered to every
	// member, in the same milliseconds; a hold shorter than a busy network
	// takes to deliver the watchers' refusals brings back part of that
	// storm (at 100 daemons on two cores, deliveries take up to a few
	// hundred milliseconds). Default 500 ms; negative publishes every
	// refusal at once.
	RefusalHold     time.Duration
	ProbePeriod     time.Duration // default 1 s
	ProbeTimeout    time.Duration // direct ping, and a helper's relayed ping; default 400 ms
	IndirectTimeout time.Duration // ping-req round; default 800 ms
	// MaxPingTimeout caps how far the answers this node times stretch a
	// ping's timeout: ProbeTimeout and IndirectTimeout are floors, and a
	// ping waits max(ProbeTimeout·(1+LHM), srtt + 4·rttvar) of the pings
	// answered lately, at most MaxPingTimeout (a ping-req round twice
	// that). Default 2 s.
	MaxPingTimeout time.Duration
	// Connected, when set, says whether a message to a member goes on a
	// connection already open. When it says no, the send dials first,
	// and a ping's timeout (the probe's direct one, a helper's relayed
	// one) allows DialTimeout more, until Dialled says the connection is
	// open; a ping-req round that no helper has nacked by its timeout
	// waits that long more too. Connecting is not
	// answering late, and a machine that is busy (a network starting, a
	// member joining) makes a dial slow for everyone at once, which would
	// otherwise be taken as the member's silence by all its watchers.
	// A member that hangs while connected is pinged on its connection.
	// Default: always connected (a datagram transport). DialTimeout
	// defaults to 2 s.
	Connected   func(ID) bool
	DialTimeout time.Duration
	// SuspicionMin is the shortest suspicion timeout per decade of members
	// (times log10 N, at least 1); SuspicionMaxMult times that is the
	// longest, for a suspicion nobody confirms. Defaults 500 ms and 6.
	SuspicionMin     time.Duration
	SuspicionMaxMult float64
	// MaxLHM caps the local health multiplier; from AccuseLimit on, a
	// node does not accuse. Defaults 8 and 4.
	MaxLHM, AccuseLimit int
	// LateSlack: a timer that fires later than this is a sign this node
	// is overloaded. Default 200 ms.
	LateSlack time.Duration
	// HeartbeatRate is the network's heartbeats per second: each node
	// heartbeats every max(HeartbeatMin, N/HeartbeatRate). Defaults 0.5/s
	// and 10 s.
	HeartbeatRate float64
	HeartbeatMin  time.Duration
	// NewsPerHeartbeat and NewsRepeat: a heartbeat carries up to that
	// many recent changes, each repeated in that many heartbeats.
	// Defaults 8 and 3.
	NewsPerHeartbeat, NewsRepeat int
	// DeadProbeFor: for this long after a member is declared dead, it is
	// pinged by about Watchers nodes every ProbePeriod, so a member cut
	// off by a partition, or wrongly declared dead, hears of it and
	// refutes once it can be reached. Default 30 s.
	DeadProbeFor time.Duration
	// ForgetAfter: a member dead or left for this long is dropped from
	// the table (and from Entries), so a network's table does not grow
	// with every node that ever ran. Default 1 h.
	ForgetAfter time.Duration
	// JoinGrace: for this long after a member joins (new to this node,
	// or back from dead or left), a probe it leaves unanswered accuses it
	// of nothing. A process that has just started is at its busiest
	// (its connections, the table, the DHT, all at once) and answers
	// late; accused then, it refutes, rejoins, and is accused again, and
	// on a busy machine the rejoins of some make others late in turn. A
	// refused connection still makes it suspect at once, so a joiner
	// that crashes is dead as fast as any member; one that hangs is
	// found up to JoinGrace later. The members a node learns in its own
	// first JoinGrace are the network it joined, not joiners. Default
	// 10 s.
	JoinGrace time.Duration
	Clock     Clock
	Rand      *rand.Rand // default seeded from Self
	OnEvent   func(Event)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Watchers: 3, Helpers: 3, Confirmations: 2,
		ProbePeriod: time.Second, ProbeTimeout: 400 * time.Millisecond, IndirectTimeout: 800 * time.Millisecond,
		MaxPingTimeout: 2 * time.Second,
		DialTimeout:    2 * time.Second,
		SuspicionMin:   500 * time.Millisecond, SuspicionMaxMult: 6,
		MaxLHM: 8, AccuseLimit: 4, LateSlack: 200 * time.Millisecond,
		HeartbeatRate: 0.5, HeartbeatMin: 10 * time.Second,
		NewsPerHeartbeat: 8, NewsRepeat: 3, DeadProbeFor: 30 * time.Second,
		ForgetAfter: time.Hour, RefusalHold: 500 * time.Millisecond,
		JoinGrace: 10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	setInt := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	setInt(&c.Watchers, d.Watchers)
	setInt(&c.Helpers, d.Helpers)
	setInt(&c.Confirmations, d.Confirmations)
	setInt(&c.MaxLHM, d.MaxLHM)
	setInt(&c.AccuseLimit, d.AccuseLimit)
	setInt(&c.NewsPerHeartbeat, d.NewsPerHeartbeat)
	setInt(&c.NewsRepeat, d.NewsRepeat)
	setDur(&c.ProbePeriod, d.ProbePeriod)
	setDur(&c.ProbeTimeout, d.ProbeTimeout)
	setDur(&c.IndirectTimeout, d.IndirectTimeout)
	setDur(&c.MaxPingTimeout, d.MaxPingTimeout)
	setDur(&c.DialTimeout, d.DialTimeout)
	setDur(&c.SuspicionMin, d.SuspicionMin)
	setDur(&c.LateSlack, d.LateSlack)
	setDur(&c.HeartbeatMin, d.HeartbeatMin)
	setDur(&c.DeadProbeFor, d.DeadProbeFor)
	setDur(&c.ForgetAfter, d.ForgetAfter)
	setDur(&c.RefusalHold, d.RefusalHold)
	setDur(&c.JoinGrace, d.JoinGrace)
	if c.SuspicionMaxMult == 0 {
		c.SuspicionMaxMult = d.SuspicionMaxMult
	}
	if c.HeartbeatRate == 0 {
		c.HeartbeatRate = d.HeartbeatRate
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(ringKey(c.Self), 1))
	}
	return c
}

// member is a core's view of a member that differs from its base table.
type member struct {
	Entry
	susp  *suspicion
	since time.Time // when it became dead or left
	gone  bool      // a member of the base table that this core forgot
}

// suspicion is a running suspicion of a member at its incarnation.
type suspicion struct {
	start    time.Time
	deadline time.Time
	accusers []ID // distinct, the first is who raised it
	refusals []ID // the accusers whose accusation rests on a refused connection
	// quiet: this node's accusation was held back (see Config.RefusalHold),
	// so it does not publish the death either.
	quiet bool
	asked bool // this node asked for the refusals it cannot check (CannotCheck)
}

// hold is this node's refused accusation of a member, held back until at
// (see Config.RefusalHold).
type hold struct {
	id    ID
	inc   uint64
	at    time.Time
	heard []ID // the other members that published a refused accusation
	dead  bool // a death was published
}

// probe is one of this node's probes of a member.
type probe struct {
	target   ID
	seq      uint64
	deadline time.Time
	indirect bool      // in the ping-req round
	latest   time.Time // the ping-req round's end if no helper nacks by its deadline
	overtime bool      // past the round's deadline, waiting for a first nack until latest
	dialling bool      // its direct ping waits for a dial (see Dialled)
	sent     time.Time // when its direct ping left (or its dial ended)
	helpers  int
	nacks    int
	late     bool // a timer of this node fired late meanwhile: no conclusion
}

// relay is a ping this node sends for another member's ping-req.
type relay struct {
	requester ID
	target    ID
	reqSeq    uint64
	seq       uint64
	deadline  time.Time
	dialling  bool      // its ping waits for a dial (see Dialled)
	sent      time.Time // when its ping left (or its dial ended)
}

type deadAt struct {
	id ID
	at time.Time
}

type news struct {
	Entry
	left int // heartbeats still to carry it
}

// Core is one node's members table and failure detector: a state machine
// driven by Receive, Evidence and Tick, which the caller serializes (a
// Core is not safe for concurrent use). It never blocks and holds no
// goroutine.
type Core struct {
	cfg      Config
	tr       Transport
	base     *Table
	over     map[ID]*member
	extra    extraRing
	suspects []ID // members with a running suspicion, in the order raised

	inc  uint64
	left bool
	lhm  int
	seq  uint64

	probes []*probe
	relays []*relay
	// rtt times the answers to this node's pings; latePings are the
	// pings of ended probes and relays, whose late answers it times too.
	rtt       rttEstimate
	latePings []sentPing
	holds     []*hold
	// refused: the members whose port this node found refused, at the
	// incarnation it did; a ping-req for one is answered with the refusal.
	refused map[ID]uint64
	news    []news
	// recentDead: members declared dead in the last DeadProbeFor, with when.
	recentDead []deadAt
	// ended: members that became dead or left, with when, oldest first:
	// each is forgotten ForgetAfter later if it has not changed since.
	ended []deadAt
	// joins: members that joined in the last JoinGrace, with when,
	// oldest first.
	joins []deadAt
	// nlive counts the live members, this node included; goneBase the
	// members of the base table this core forgot.
	nlive, goneBase int

	started time.Time // when Start ran

	nextProbe, nextHeartbeat time.Time
	wanted                   time.Time // the Next this core asked for
}

// New returns a core for cfg.Self. base, when not nil, is the table it
// starts from (shared, never modified). Call Start next, and Announce
// and Join when this node is new to the network.
func New(cfg Config, tr Transport, base *Table) *Core {
	cfg = cfg.withDefaults()
	if base == nil {
		base = NewTable(nil)
	}
	c := &Core{cfg: cfg, tr: tr, base: base, over: map[ID]*member{}, refused: map[ID]uint64{}, inc: cfg.Inc, nlive: base.live}
	c.put(Entry{ID: cfg.Self, State: StateAlive, Inc: cfg.Inc})
	return c
}

// Start starts the probe and heartbeat timers, at a random phase.
func (c *Core) Start() {
	now := c.cfg.Clock.Now()
	c.started = now
	c.nextProbe = now.Add(time.Duration(c.cfg.Rand.Int64N(int64(c.cfg.ProbePeriod))))
	c.nextHeartbeat = now.Add(time.Duration(c.cfg.Rand.Int64N(int64(c.HeartbeatPeriod()))))
	c.wanted = c.Next()
}

// Announce publishes this node's incarnation (an Alive): a joiner's or a
// restarted node's first message.
func (c *Core) Announce() {
	c.tr.Publish(&Message{Kind: KindAlive, From: c.cfg.Self, Target: c.cfg.Self, Inc: c.inc})
}

// Join asks seed for its table (anti-entropy), sending this node's.
func (c *Core) Join(seed ID) {
	c.tr.Send(seed, &Message{Kind: KindSyncReq, From: c.cfg.Self, News: c.Entries()})
}

// Leave announces that this node leaves for good and stops its probes.
func (c *Core) Leave() {
	c.left = true
	c.apply(Entry{ID: c.cfg.Self, State: StateLeft, Inc: c.inc}, "", false, c.cfg.Clock.Now())
	c.tr.Publish(&Message{Kind: KindLeave, From: c.cfg.Self, Target: c.cfg.Self, Inc: c.inc})
}

// Inc is this node's incarnation.
func (c *Core) Inc() uint64 { return c.inc }

// LHM is the local health multiplier: 0 when healthy; timeouts are
// stretched by 1+LHM.
func (c *Core) LHM() int { return c.lhm }

// Member is a core's view of one member.
type Member struct {
	Entry
	Accusers int       // distinct accusers of a running suspicion
	Deadline time.Time // when a running suspicion ends
}

// Member returns this core's view of id.
func (c *Core) Member(id ID) (Member, bool) {
	e, ok := c.get(id)
	if !ok {
		return Member{}, false
	}
	m := Member{Entry: e}
	if o := c.over[id]; o != nil && o.susp != nil {
		m.Accusers, m.Deadline = len(o.susp.accusers), o.susp.deadline
	}
	return m, true
}

// Entries returns the whole table in ring order.
func (c *Core) Entries() []Entry {
	out := make([]Entry, 0, c.size())
	for _, e := range c.base.entries {
		if o := c.over[e.ID]; o != nil {
			if o.gone {
				continue
			}
			e = o.Entry
		}
		out = append(out, e)
	}
	for _, id := range c.extra.ids {
		out = append(out, c.over[id].Entry)
	}
	sortRing(out)
	return out
}

// size is the number of members in the table.
func (c *Core) size() int { return c.slots() - c.goneBase }

// slots is the range of at's index: base and extra entries, forgotten
// members of the base included.
func (c *Core) slots() int { return c.base.Len() + len(c.extra.ids) }

// Live is the number of live (alive or suspect) members, this node
// included: the N that sizes the heartbeat period and the suspicion
// timeouts. Dead and left members stay in the table for ForgetAfter but
// send nothing.
func (c *Core) Live() int { return c.nlive }

func (c *Core) get(id ID) (Entry, bool) {
	if o := c.over[id]; o != nil {
		if o.gone {
			return Entry{}, false
		}
		return o.Entry, true
	}
	if i, ok := c.base.index[id]; ok {
		return c.base.entries[i], true
	}
	return Entry{}, false
}

func (c *Core) put(e Entry) *member {
	if cur, ok := c.get(e.ID); ok && live(cur.State) {
		c.nlive--
	}
	if live(e.State) {
		c.nlive++
	}
	o := c.over[e.ID]
	if o == nil {
		o = &member{}
		c.over[e.ID] = o
		if _, ok := c.base.index[e.ID]; !ok {
			c.extra.insert(e.ID)
		}
	}
	if o.gone {
		o.gone = false
		c.goneBase--
	}
	o.Entry = e
	return o
}

// forget drops id, dead or left, from the table.
func (c *Core) forget(id ID, now time.Time) {
	e, ok := c.get(id)
	if !ok || live(e.State) || id == c.cfg.Self {
		return
	}
	delete(c.refused, id)
	if _, inBase := c.base.index[id]; inBase {
		c.over[id] = &member{gone: true}
		c.goneBase++
	} else {
		delete(c.over, id)
		c.extra.remove(id)
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(Event{ID: id, State: e.State, Inc: e.Inc, Forgotten: true, At: now})
	}
}

// forgetEnded forgets the members dead or left for ForgetAfter that have
// not changed since.
func (c *Core) forgetEnded(now time.Time) {
	i := 0
	for ; i < len(c.ended) && now.Sub(c.ended[i].at) >= c.cfg.ForgetAfter; i++ {
		if o := c.over[c.ended[i].id]; o != nil && !o.gone && o.since.Equal(c.ended[i].at) {
			c.forget(c.ended[i].id, now)
		}
	}
	c.ended = c.ended[i:]
}

func live(s State) bool { return s == StateAlive || s == StateSuspect }

// Watched returns the members this node watches: its Watchers live
// successors on the ring.
func (c *Core) Watched() []ID { return c.neighbours(c.cfg.Self, false) }

// WatchedBy returns the members that watch this node, as far as this
// node's table tells: its Watchers live predecessors on the ring.
func (c *Core) WatchedBy() []ID { return c.neighbours(c.cfg.Self, true) }

// neighbours walks the ring from member of, forward (successors) or back
// (predecessors), and returns the first Watchers live members other than
// of.
func (c *Core) neighbours(of ID, back bool) []ID {
	k := c.cfg.Watchers
	nb, ne := len(c.base.entries), len(c.extra.ids)
	// Positions in the base and the extra entries are unbounded: the
	// entry at position i is i mod n, on lap floor(i/n), and a walk
	// takes the nearer of the two next entries, by (lap, ring order).
	bi := sort.Search(nb, func(i int) bool { return !ringLess(c.base.entries[i].ID, of) })
	ei := sort.Search(ne, func(i int) bool { return !ringLess(c.extra.ids[i], of) })
	step := 1
	if back {
		bi, ei, step = bi-1, ei-1, -1
	}
	at := func(i, n int) (lap, idx int) {
		lap = i / n
		if i%n < 0 {
			lap--
		}
		return lap, i - lap*n
	}
	var out []ID
	for range nb + ne {
		if len(out) == k {
			break
		}
		var id ID
		switch {
		case ne == 0:
			_, j := at(bi, nb)
			id, bi = c.base.entries[j].ID, bi+step
		case nb == 0:
			_, j := at(ei, ne)
			id, ei = c.extra.ids[j], ei+step
		default:
			lb, jb := at(bi, nb)
			le, je := at(ei, ne)
			b, e := c.base.entries[jb].ID, c.extra.ids[je]
			baseFirst := lb < le || lb == le && ringLess(b, e)
			if back {
				baseFirst = lb > le || lb == le && ringLess(e, b)
			}
			if baseFirst {
				id, bi = b, bi+step
			} else {
				id, ei = e, ei+step
			}
		}
		if id == of || slices.Contains(out, id) {
			continue
		}
		if e, ok := c.get(id); ok && live(e.State) {
			out = append(out, id)
		}
	}
	return out
}

func (c *Core) stretch(d time.Duration) time.Duration { return d * time.Duration(1+c.lhm) }

// PingTimeout is how long a ping waits for its answer now: ProbeTimeout
// stretched by the local health multiplier, or what the answers timed
// lately call for (see Config.MaxPingTimeout), whichever is longer.
func (c *Core) PingTimeout() time.Duration {
	return max(c.stretch(c.cfg.ProbeTimeout), c.rtt.timeout(c.cfg.ProbeTimeout, c.cfg.MaxPingTimeout))
}

// indirectTimeout is how long a ping-req round waits: IndirectTimeout
// stretched by the local health multiplier, or twice what the answers
// timed lately call for (the round is two pings deep).
func (c *Core) indirectTimeout() time.Duration {
	return max(c.stretch(c.cfg.IndirectTimeout), 2*c.rtt.timeout(c.cfg.ProbeTimeout, c.cfg.MaxPingTimeout))
}

// pingTimeout is the timeout of a ping to id (PingTimeout), with the
// dial's allowance if no connection to id is open (dialling).
func (c *Core) pingTimeout(id ID) (_ time.Duration, dialling bool) {
	d := c.PingTimeout()
	if c.cfg.Connected != nil && !c.cfg.Connected(id) {
		return d + c.cfg.DialTimeout, true
	}
	return d, false
}

// Dialled tells the core that a connection to id is open now: the pings
// to id that waited for it are timed from now by ProbeTimeout alone.
func (c *Core) Dialled(id ID) {
	now := c.cfg.Clock.Now()
	defer func() { c.wanted = c.Next() }()
	d := c.PingTimeout()
	for _, p := range c.probes {
		if p.target == id && p.dialling && !p.indirect {
			p.dialling, p.sent = false, now
			p.deadline = minTime(p.deadline, now.Add(d))
		}
	}
	for _, r := range c.relays {
		if r.target == id && r.dialling {
			r.dialling, r.sent = false, now
			r.deadline = minTime(r.deadline, now.Add(d))
		}
	}
}

func (c *Core) raiseLHM() { c.lhm = min(c.lhm+1, c.cfg.MaxLHM) }

func (c *Core) healthy() bool { return c.lhm < c.cfg.AccuseLimit }

// HeartbeatPeriod is this node's heartbeat period at the current number
// of live members: max(HeartbeatMin, N/HeartbeatRate). The next heartbeat
// comes at most this long after the last one, unless N grows.
func (c *Core) HeartbeatPeriod() time.Duration {
	p := time.Duration(float64(c.nlive) / c.cfg.HeartbeatRate * float64(time.Second))
	return max(c.cfg.HeartbeatMin, p)
}

// SuspicionTimeout is Lifeguard's timeout of a suspicion with the given
// number of independent confirmations (accusers after the first): from
// max = SuspicionMaxMult·min down to min = SuspicionMin·log10 N (N the
// live members) as confirmations reach Watchers-1, on a log scale,
// stretched by 1+LHM.
func (c *Core) SuspicionTimeout(confirmations int) time.Duration {
	lo := float64(c.cfg.SuspicionMin) * max(1, math.Log10(float64(c.nlive)))
	hi := lo * c.cfg.SuspicionMaxMult
	k := float64(max(1, c.cfg.Watchers-1))
	t := hi - (hi-lo)*math.Log(float64(confirmations)+1)/math.Log(k+1)
	return c.stretch(time.Duration(max(lo, t)))
}

// Next returns when Tick must next be called.
func (c *Core) Next() time.Time {
	if c.left {
		return time.Time{}
	}
	t := minTime(c.nextProbe, c.nextHeartbeat)
	for _, p := range c.probes {
		t = minTime(t, p.deadline)
	}
	for _, r := range c.relays {
		t = minTime(t, r.deadline)
	}
	for _, id := range c.suspects {
		t = minTime(t, c.over[id].susp.deadline)
	}
	for _, h := range c.holds {
		t = minTime(t, h.at)
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Tick runs the timers that are due.
func (c *Core) Tick() {
	now := c.cfg.Clock.Now()
	defer func() { c.wanted = c.Next() }()
	if c.left {
		return
	}
	if !c.wanted.IsZero() && now.Sub(c.wanted) > c.cfg.LateSlack {
		// This node's timers fire late: it is overloaded, and a probe it
		// timed out may have been answered while it was not looking.
		c.raiseLHM()
		for _, p := range c.probes {
			p.late = true
		}
	}
	for _, r := range slices.Clone(c.relays) {
		if !now.Before(r.deadline) {
			c.relays = slices.DeleteFunc(c.relays, func(x *relay) bool { return x == r })
			if !r.dialling {
				c.keepLate(sentPing{seq: r.seq, target: r.target, at: r.sent})
			}
			c.tr.Send(r.requester, &Message{Kind: KindNack, From: c.cfg.Self, Seq: r.reqSeq})
		}
	}
	for _, p := range slices.Clone(c.probes) {
		if now.Before(p.deadline) {
			continue
		}
		switch {
		case !p.indirect:
			c.pingReq(p, now)
		case p.nacks == 0 && now.Before(p.latest):
			p.deadline, p.overtime = p.latest, true
		default:
			c.conclude(p)
		}
	}
	for _, h := range slices.Clone(c.holds) {
		if !now.Before(h.at) {
			c.holds = slices.DeleteFunc(c.holds, func(x *hold) bool { return x == h })
			c.release(h)
		}
	}
	for _, id := range slices.Clone(c.suspects) {
		o := c.over[id]
		if !now.Before(o.susp.deadline) {
			// A suspicion that refusals ended needs no death published:
			// they were published, and end it wherever they arrive.
			mine := o.susp.accusers[0] == c.cfg.Self && !o.susp.quiet && !c.proven(o.susp)
			c.apply(Entry{ID: id, State: StateDead, Inc: o.Inc}, "", false, now)
			if mine {
				c.tr.Publish(&Message{Kind: KindDead, From: c.cfg.Self, Target: id, Inc: o.Inc})
			}
		}
	}
	if !now.Before(c.nextProbe) {
		for _, id := range c.Watched() {
			c.startProbe(id, now)
		}
		c.pingDead(now)
		c.forgetEnded(now)
		c.pruneJoins(now)
		c.nextProbe = c.nextProbe.Add(c.cfg.ProbePeriod)
		if !c.nextProbe.After(now) {
			c.nextProbe = now.Add(c.cfg.ProbePeriod)
		}
	}
	if !now.Before(c.nextHeartbeat) {
		c.heartbeat()
		c.nextHeartbeat = now.Add(c.HeartbeatPeriod())
	}
}

func (c *Core) startProbe(id ID, now time.Time) {
	if slices.ContainsFunc(c.probes, func(p *probe) bool { return p.target == id }) {
		return
	}
	c.seq++
	d, dialling := c.pingTimeout(id)
	c.probes = append(c.probes, &probe{target: id, seq: c.seq, deadline: now.Add(d), dialling: dialling, sent: now})
	if o := c.over[id]; o != nil && o.susp != nil && len(o.susp.refusals) == 0 {
		// Lifeguard's buddy system: a suspect's watchers tell it, with
		// each ping, that it is suspected, so a member that is slow but
		// running refutes even if the suspicion's message is lost or late.
		// (Not one whose port refused: no process listens there.)
		c.tr.Send(id, &Message{Kind: KindSuspect, From: c.cfg.Self, Target: id, Inc: o.Inc})
	}
	c.tr.Send(id, &Message{Kind: KindPing, From: c.cfg.Self, Target: id, Seq: c.seq, Inc: c.inc})
}

// pingDead pings each member declared dead lately with probability
// Watchers/(live members - 1), so each is pinged by about Watchers nodes a
// period, whatever N: if it answers, Receive tells it it was declared
// dead, and it refutes. A few pings a period are enough for that; one
// from every node, as the network grows, would bury a member wrongly
// declared dead (a busy one, most often) in dials and handshakes, and
// keep it too busy to refute.
func (c *Core) pingDead(now time.Time) {
	c.recentDead = slices.DeleteFunc(c.recentDead, func(d deadAt) bool {
		e, _ := c.get(d.id)
		return e.State != StateDead || now.Sub(d.at) > c.cfg.DeadProbeFor
	})
	p := float64(c.cfg.Watchers) / float64(max(1, c.nlive-1))
	for _, d := range c.recentDead {
		if p >= 1 || c.cfg.Rand.Float64() < p {
			c.tr.Send(d.id, &Message{Kind: KindPing, From: c.cfg.Self, Target: d.id, Inc: c.inc})
		}
	}
}

// pingReq moves an unanswered probe to its indirect round.
func (c *Core) pingReq(p *probe, now time.Time) {
	p.indirect = true
	p.deadline = now.Add(c.indirectTimeout())
	p.latest = p.deadline
	if c.cfg.Connected != nil {
		// A helper that has to dial the target answers later (see
		// Connected): without a nack by the deadline, wait for one that
		// long more.
		p.latest = p.deadline.Add(c.cfg.DialTimeout)
	}
	// Helpers: first the target's other watchers, which keep a
	// connection to it (and, its neighbours on the ring as this node is,
	// often to this node too), then members this node is connected to,
	// then any: a ping-req that makes helpers dial, on a machine too busy
	// to answer in time, adds connections and handshakes to the load
	// that made the ping late.
	tried := map[ID]bool{c.cfg.Self: true, p.target: true}
	ask := func(id ID) {
		if tried[id] || p.helpers == c.cfg.Helpers {
			return
		}
		tried[id] = true
		if e, ok := c.get(id); !ok || e.State != StateAlive || c.cfg.CanRelay != nil && !c.cfg.CanRelay(id) {
			return
		}
		p.helpers++
		c.tr.Send(id, &Message{Kind: KindPingReq, From: c.cfg.Self, Target: p.target, Seq: p.seq})
	}
	for _, id := range c.neighbours(p.target, true) {
		ask(id)
	}
	// random asks members drawn at random that ok accepts (nil: any).
	random := func(ok func(ID) bool) {
		n := c.slots()
		for range 8 * c.cfg.Helpers {
			if p.helpers == c.cfg.Helpers || n == 0 {
				return
			}
			if id := c.at(c.cfg.Rand.IntN(n)); ok == nil || !tried[id] && ok(id) {
				ask(id)
			}
		}
	}
	if c.cfg.Connected != nil {
		random(c.cfg.Connected)
	}
	random(nil)
	if p.helpers == 0 {
		c.conclude(p)
	}
}

// at returns the i-th ID of the table (base, then extra), forgotten
// members of the base included.
func (c *Core) at(i int) ID {
	if i < c.base.Len() {
		return c.base.entries[i].ID
	}
	return c.extra.ids[i-c.base.Len()]
}

// conclude ends a probe that nobody answered. The target is suspected
// only if this node is healthy and the evidence is about the target, not
// this node: its timers were on time and at least one helper said it
// could not reach the target either (a nack). A helper silent even of a
// nack points at this node's own network: the local health multiplier
// rises instead (Lifeguard).
func (c *Core) conclude(p *probe) {
	c.probes = slices.DeleteFunc(c.probes, func(x *probe) bool { return x == p })
	if !p.dialling {
		c.keepLate(sentPing{seq: p.seq, target: p.target, at: p.sent})
	}
	if p.late {
		return
	}
	if p.nacks < p.helpers {
		c.raiseLHM()
	}
	if p.helpers > 0 && p.nacks == 0 {
		return
	}
	if c.joining(p.target, c.cfg.Clock.Now()) {
		return
	}
	c.accuse(p.target, false)
}

// timeAnswer times the answer of id to a ping sent at sent, unless this
// node holds id suspect or dead: such a member answers late because it
// stalled (a process stopped and resumed, a partition healed), not
// because answers take long, and its queued answers, seconds old, would
// hold every timeout at its cap for many probes after.
func (c *Core) timeAnswer(id ID, sent, now time.Time) {
	if e, ok := c.get(id); ok && e.State == StateAlive {
		c.rtt.sample(now.Sub(sent))
	}
}

// keepLate remembers an ended ping whose answer may still come: the
// last lateWindow of them.
func (c *Core) keepLate(s sentPing) {
	c.latePings = append(c.latePings, s)
	if len(c.latePings) > lateWindow {
		c.latePings = slices.Delete(c.latePings, 0, len(c.latePings)-lateWindow)
	}
}

// joining says whether id joined less than JoinGrace ago (see
// Config.JoinGrace).
func (c *Core) joining(id ID, now time.Time) bool {
	return slices.ContainsFunc(c.joins, func(j deadAt) bool { return j.id == id && now.Sub(j.at) < c.cfg.JoinGrace })
}

// pruneJoins drops the joins older than JoinGrace (Tick, every period).
func (c *Core) pruneJoins(now time.Time) {
	i := 0
	for i < len(c.joins) && now.Sub(c.joins[i].at) >= c.cfg.JoinGrace {
		i++
	}
	c.joins = c.joins[i:]
}

// accuse suspects id, if this node is healthy, and publishes it; refused
// says the accusation rests on a refused connection.
func (c *Core) accuse(id ID, refused bool) {
	e, ok := c.get(id)
	if !ok || !live(e.State) || !c.healthy() || c.left {
		return
	}
	if o := c.over[id]; o != nil && o.susp != nil && slices.Contains(o.susp.accusers, c.cfg.Self) &&
		(!refused || slices.Contains(o.susp.refusals, c.cfg.Self)) {
		return
	}
	c.apply(Entry{ID: id, State: StateSuspect, Inc: e.Inc}, c.cfg.Self, refused, c.cfg.Clock.Now())
	m := &Message{Kind: KindSuspect, From: c.cfg.Self, Target: id, Inc: e.Inc, Refused: refused}
	c.tr.Publish(m)
	if !refused {
		c.tr.Send(id, m) // the suspect hears it at once, not a dissemination later
	}
}

// Evidence feeds what the network layer saw of id. It may only hasten
// a suspicion: it starts a probe or an accusation now, and changes no
// running timer.
func (c *Core) Evidence(id ID, ev Evidence) {
	e, ok := c.get(id)
	if !ok || !live(e.State) || id == c.cfg.Self || c.left {
		return
	}
	defer func() { c.wanted = c.Next() }()
	switch ev {
	case EvidenceReset:
		if c.lhm > 0 {
			// A re-dial that found nobody in time on a node that is
			// itself slow says more of this node than of the member;
			// its watchers' probes come anyway. (Probing at once would
			// dial the member, on a machine already too busy.)
			return
		}
		c.startProbe(id, c.cfg.Clock.Now())
	case EvidenceRefused:
		c.refused[id] = e.Inc
		// A ping-req for id that came before the refusal (a member that
		// cannot check the port asked this one at once) gets it now.
		if c.healthy() {
			for _, r := range c.relays {
				if r.target == id {
					c.tr.Send(r.requester, c.refusal(id, e.Inc))
				}
			}
			c.relays = slices.DeleteFunc(c.relays, func(r *relay) bool { return r.target == id })
		}
		first, last := c.refusers(id)
		switch {
		case c.cfg.RefusalHold < 0 || slices.Contains(first, c.cfg.Self):
			c.accuse(id, true)
		case last == c.cfg.Self:
			// The first watchers hear this refusal at once, which they
			// need: theirs and the others' published make Confirmations
			// on them. The members that cannot check the port hear it
			// after the crash's busiest moment.
			if c.healthy() {
				for _, w := range first {
					c.tr.Send(w, c.refusal(id, e.Inc))
				}
			}
			c.holdAccusation(id, e.Inc, c.cfg.RefusalHold/2)
		default:
			c.holdAccusation(id, e.Inc, c.cfg.RefusalHold+time.Duration(c.cfg.Rand.Int64N(int64(c.cfg.RefusalHold)+1)))
		}
	}
}

// refusers returns the watchers nearest to id on the ring that publish
// a refused connection to it at once (first: Confirmations-1 of them,
// at least one) and the next one (last; "" if Confirmations is 1), which
// tells them its refusal directly and publishes it RefusalHold/2 later
// (see Config.RefusalHold).
func (c *Core) refusers(id ID) (first []ID, last ID) {
	w := c.neighbours(id, true)
	k := max(c.cfg.Confirmations-1, 1)
	first = w[:min(len(w), k)]
	if c.cfg.Confirmations > 1 && len(w) > k {
		last = w[k]
	}
	return first, last
}

// refusal is this node's refused accusation of id at inc, as published
// or told directly.
func (c *Core) refusal(id ID, inc uint64) *Message {
	return &Message{Kind: KindSuspect, From: c.cfg.Self, Target: id, Inc: inc, Refused: true}
}

// refusedAt reports whether this node found id's port refused at inc.
func (c *Core) refusedAt(id ID, inc uint64) bool {
	at, ok := c.refused[id]
	return ok && at == inc
}

// CannotCheck tells the core that the network layer cannot check id's
// port itself: it has no connection to id, and no address that id
// announced to it (only others' word, which may be of an earlier run). A
// suspicion of id that rests on a refusal, and lacks the others needed
// for proof, then asks for them, once: a ping-req, which a member that
// found the port refused answers with its refusal, and any other by
// pinging id as usual. It asks up to Helpers of id's neighbours on the
// ring that it is connected to (each is connected to id, so a crash
// refused it too): first the watchers that publish their refusals, the
// last of which publishes only RefusalHold/2 after the crash (see
// Config.RefusalHold), then id's other watchers and the members id
// watches. With none connected it asks that last watcher all the same.
func (c *Core) CannotCheck(id ID) {
	e, ok := c.get(id)
	if !ok || e.State != StateSuspect || c.left {
		return
	}
	s := c.over[id].susp
	if len(s.refusals) == 0 || c.proven(s) || s.asked {
		return
	}
	s.asked = true
	_, last := c.refusers(id)
	// The watchers, nearest first (those that publish, then the others),
	// then the members id watches.
	candidates := append(c.neighbours(id, true), c.neighbours(id, false)...)
	var ask []ID
	for _, w := range candidates {
		if len(ask) == c.cfg.Helpers {
			break
		}
		if w == "" || w == c.cfg.Self || slices.Contains(s.refusals, w) || slices.Contains(ask, w) {
			continue
		}
		if e, ok := c.get(w); !ok || e.State != StateAlive || c.cfg.CanRelay != nil && !c.cfg.CanRelay(w) ||
			c.cfg.Connected != nil && !c.cfg.Connected(w) {
			continue
		}
		ask = append(ask, w)
	}
	if len(ask) == 0 && last != "" && last != c.cfg.Self && !slices.Contains(s.refusals, last) {
		ask = []ID{last}
	}
	for _, w := range ask {
		c.seq++
		c.tr.Send(w, &Message{Kind: KindPingReq, From: c.cfg.Self, Target: id, Seq: c.seq})
	}
}

// holdAccusation suspects id on this node's refused connection, as accuse
// does, but holds the publication back for wait (see Config.RefusalHold).
func (c *Core) holdAccusation(id ID, inc uint64, wait time.Duration) {
	if !c.healthy() || slices.ContainsFunc(c.holds, func(h *hold) bool { return h.id == id && h.inc == inc }) {
		return
	}
	o := c.over[id]
	published := o != nil && o.susp != nil && slices.Contains(o.susp.accusers, c.cfg.Self)
	now := c.cfg.Clock.Now()
	c.apply(Entry{ID: id, State: StateSuspect, Inc: inc}, c.cfg.Self, true, now)
	h := &hold{id: id, inc: inc, at: now.Add(wait)}
	if o = c.over[id]; o != nil && o.susp != nil {
		o.susp.quiet = o.susp.quiet || !published
		for _, by := range o.susp.refusals {
			if by != c.cfg.Self {
				h.heard = append(h.heard, by)
			}
		}
	}
	c.holds = append(c.holds, h)
}

// heard counts a published accusation or death of id at inc, from by,
// against this node's held accusations of id.
func (c *Core) heard(id, by ID, inc uint64, refused, dead bool) {
	for _, h := range c.holds {
		if h.id != id || inc < h.inc {
			continue
		}
		h.dead = h.dead || dead
		if refused && !slices.Contains(h.heard, by) {
			h.heard = append(h.heard, by)
		}
	}
}

// release publishes a held accusation that is still needed: the member is
// still suspect or dead at the incarnation accused, no death was
// published, and fewer than Confirmations others published theirs.
func (c *Core) release(h *hold) {
	e, ok := c.get(h.id)
	if !ok || e.Inc != h.inc || (e.State != StateSuspect && e.State != StateDead) || h.dead ||
		len(h.heard) >= min(c.cfg.Confirmations, c.nlive-1) || !c.healthy() {
		return
	}
	if o := c.over[h.id]; o != nil && o.susp != nil {
		o.susp.quiet = false
	}
	c.tr.Publish(c.refusal(h.id, h.inc))
}

// Receive handles a message from a member.
func (c *Core) Receive(from ID, m *Message) {
	now := c.cfg.Clock.Now()
	defer func() { c.wanted = c.Next() }()
	if c.left {
		return
	}
	self := c.cfg.Self
	if e, ok := c.get(from); ok && (e.State == StateSuspect || e.State == StateDead) && from != self && m.Kind != KindAlive && m.Kind != KindLeave {
		// A member this node suspects or declared dead speaks: tell it,
		// so it refutes (it may never have heard the suspicion: a
		// partition, a lost message).
		k := KindDead
		if e.State == StateSuspect {
			k = KindSuspect
		}
		c.tr.Send(from, &Message{Kind: k, From: self, Target: from, Inc: e.Inc})
	}
	switch m.Kind {
	case KindPing:
		c.tr.Send(from, &Message{Kind: KindAck, From: self, Target: self, Seq: m.Seq, Inc: c.inc})
	case KindAck:
		if i := slices.IndexFunc(c.probes, func(p *probe) bool { return p.seq == m.Seq }); i >= 0 {
			p := c.probes[i]
			c.probes = slices.Delete(c.probes, i, i+1)
			c.lhm = max(0, c.lhm-1)
			if m.From == p.target && !p.dialling { // the target's own answer, not a helper's
				c.timeAnswer(m.From, p.sent, now)
			}
			return
		}
		if i := slices.IndexFunc(c.relays, func(r *relay) bool { return r.seq == m.Seq }); i >= 0 {
			r := c.relays[i]
			c.relays = slices.Delete(c.relays, i, i+1)
			if !r.dialling {
				c.timeAnswer(m.From, r.sent, now)
			}
			c.tr.Send(r.requester, &Message{Kind: KindAck, From: self, Target: m.From, Seq: r.reqSeq, Inc: m.Inc})
		} else if i := slices.IndexFunc(c.latePings, func(s sentPing) bool { return s.seq == m.Seq && s.target == m.From }); m.Seq != 0 && i >= 0 {
			c.timeAnswer(m.From, c.latePings[i].at, now)
			c.latePings = slices.Delete(c.latePings, i, i+1)
		}
		if m.From == m.Target {
			c.apply(Entry{ID: m.From, State: StateAlive, Inc: m.Inc}, "", false, now)
		}
	case KindNack:
		if i := slices.IndexFunc(c.probes, func(p *probe) bool { return p.seq == m.Seq && p.indirect }); i >= 0 {
			p := c.probes[i]
			p.nacks++
			if p.nacks == p.helpers || p.overtime {
				c.conclude(p)
			}
		}
	case KindPingReq:
		if e, ok := c.get(m.Target); ok && (e.State == StateSuspect || e.State == StateDead) && c.refusedAt(m.Target, e.Inc) && c.healthy() {
			// This node found the member's port refused: a ping would
			// find nobody, and the requester is after the refusal. (An
			// overloaded node accuses nobody, this way neither.)
			c.tr.Send(from, c.refusal(m.Target, e.Inc))
			return
		}
		c.seq++
		d, dialling := c.pingTimeout(m.Target)
		c.relays = append(c.relays, &relay{requester: from, target: m.Target, reqSeq: m.Seq, seq: c.seq, deadline: now.Add(d), dialling: dialling, sent: now})
		c.tr.Send(m.Target, &Message{Kind: KindPing, From: self, Target: m.Target, Seq: c.seq, Inc: c.inc})
	case KindSuspect, KindDead:
		if m.Target == self {
			if m.Inc >= c.inc {
				c.refute(m.Inc)
			}
			if m.Inc < c.inc && from != self {
				// The accuser hears the refutation at once: it is
				// the one that would publish the death.
				c.tr.Send(from, &Message{Kind: KindAlive, From: self, Target: self, Inc: c.inc})
			}
			return
		}
		st := StateSuspect
		if m.Kind == KindDead {
			st = StateDead
		}
		if len(c.holds) > 0 {
			c.heard(m.Target, from, m.Inc, m.Refused, m.Kind == KindDead)
		}
		c.apply(Entry{ID: m.Target, State: st, Inc: m.Inc}, from, m.Refused, now)
	case KindAlive:
		if m.Target != from {
			return // only a member raises its own incarnation
		}
		c.apply(Entry{ID: m.Target, State: StateAlive, Inc: m.Inc}, "", false, now)
	case KindLeave:
		c.apply(Entry{ID: from, State: StateLeft, Inc: m.Inc}, "", false, now)
	case KindHeartbeat:
		c.apply(Entry{ID: from, State: StateAlive, Inc: m.Inc}, "", false, now)
		c.merge(m.News, now)
	case KindSyncReq:
		c.merge(m.News, now)
		c.tr.Send(from, &Message{Kind: KindSyncResp, From: self, News: c.Entries()})
	case KindSyncResp:
		c.merge(m.News, now)
	}
}

// merge applies a table exchange's or a heartbeat's entries. A suspicion
// there has no accuser to count: it is taken only as news of the
// incarnation.
func (c *Core) merge(es []Entry, now time.Time) {
	for _, e := range es {
		if e.ID == c.cfg.Self {
			if (e.State == StateDead || e.State == StateSuspect) && e.Inc >= c.inc {
				c.refute(e.Inc)
			}
			continue
		}
		if e.State == StateSuspect {
			e.State = StateAlive
		}
		c.apply(e, "", false, now)
	}
}

// refute answers a suspicion or death of this node at incarnation inc
// with a higher incarnation. Being suspected is also a hint that this
// node is slow: the local health multiplier rises (Lifeguard).
func (c *Core) refute(inc uint64) {
	c.inc = inc + 1
	if c.cfg.NextInc != nil {
		c.inc = max(c.inc, c.cfg.NextInc(c.inc))
	}
	c.raiseLHM()
	c.put(Entry{ID: c.cfg.Self, State: StateAlive, Inc: c.inc})
	c.tr.Publish(&Message{Kind: KindAlive, From: c.cfg.Self, Target: c.cfg.Self, Inc: c.inc})
}

// apply merges one fact about a member, by SWIM's precedence: a higher
// incarnation wins; at the same incarnation left > dead > suspect >
// alive, and left is final. by is the accuser of a suspicion, refused
// whether its accusation rests on a refused connection.
func (c *Core) apply(e Entry, by ID, refused bool, now time.Time) {
	cur, known := c.get(e.ID)
	if e.ID == c.cfg.Self && e.State != StateLeft {
		return
	}
	if known {
		switch {
		case e.Inc < cur.Inc:
			return
		case e.Inc == cur.Inc && e.State < cur.State:
			return
		case e.Inc == cur.Inc && e.State == cur.State:
			if e.State == StateSuspect && by != "" {
				c.confirm(e.ID, by, refused, now)
			}
			return
		}
	}
	c.setState(e, by, refused, now, !known)
}

func (c *Core) setState(e Entry, by ID, refused bool, now time.Time, isNew bool) {
	if prev, _ := c.get(e.ID); e.State == StateAlive && (isNew || !live(prev.State)) &&
		!c.started.IsZero() && now.Sub(c.started) >= c.cfg.JoinGrace {
		c.joins = append(c.joins, deadAt{e.ID, now})
	}
	o := c.put(e)
	if e.State == StateAlive {
		delete(c.refused, e.ID)
	}
	if o.susp != nil {
		o.susp = nil
		c.suspects = slices.DeleteFunc(c.suspects, func(id ID) bool { return id == e.ID })
	}
	if e.State == StateSuspect {
		o.susp = &suspicion{start: now}
		c.suspects = append(c.suspects, e.ID)
		if by == "" {
			by = "?"
		}
		c.confirm(e.ID, by, refused, now)
	}
	if e.State != StateAlive || isNew {
		c.addNews(e)
	}
	if e.State == StateDead {
		c.recentDead = append(c.recentDead, deadAt{e.ID, now})
	}
	if !live(e.State) {
		o.since = now
		c.ended = append(c.ended, deadAt{e.ID, now})
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(Event{ID: e.ID, State: e.State, Inc: e.Inc, New: isNew, At: now})
	}
}

// confirm counts by as an accuser of id's running suspicion and moves its
// deadline by Lifeguard's formula, or to now once refusals from
// Confirmations distinct accusers (at most the live members other than
// id) prove that no process listens at id's address. A deadline never
// falls before now: a timer that Next asked for in the past would look
// late to Tick, and a late timer raises the local health multiplier.
func (c *Core) confirm(id, by ID, refused bool, now time.Time) {
	s := c.over[id].susp
	if !slices.Contains(s.accusers, by) {
		s.accusers = append(s.accusers, by)
		s.deadline = maxTime(s.start.Add(c.SuspicionTimeout(len(s.accusers)-1)), now)
	}
	if refused && !slices.Contains(s.refusals, by) {
		s.refusals = append(s.refusals, by)
	}
	if c.proven(s) {
		s.deadline = minTime(s.deadline, now)
	}
}

// proven reports whether refusals from Confirmations distinct accusers
// (at most the live members other than the suspect) prove that no process
// listens at the suspect's address.
func (c *Core) proven(s *suspicion) bool {
	return len(s.refusals) > 0 && len(s.refusals) >= min(c.cfg.Confirmations, c.nlive-1)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *Core) addNews(e Entry) {
	c.news = slices.DeleteFunc(c.news, func(n news) bool { return n.ID == e.ID })
	c.news = append(c.news, news{Entry: e, left: c.cfg.NewsRepeat})
	if len(c.news) > 4*c.cfg.NewsPerHeartbeat {
		c.news = c.news[len(c.news)-4*c.cfg.NewsPerHeartbeat:]
	}
}

// heartbeat publishes this node's incarnation with the newest changes it
// knows.
func (c *Core) heartbeat() {
	m := &Message{Kind: KindHeartbeat, From: c.cfg.Self, Target: c.cfg.Self, Inc: c.inc}
	for i := len(c.news) - 1; i >= 0 && len(m.News) < c.cfg.NewsPerHeartbeat; i-- {
		m.News = append(m.News, c.news[i].Entry)
		c.news[i].left--
	}
	c.news = slices.DeleteFunc(c.news, func(n news) bool { return n.left <= 0 })
	c.tr.Publish(m)
}
