// Package membersim runs gossip/swim's core for thousands of members over
// a simulated network, in virtual time and one goroutine: an event queue
// of message deliveries and timer ticks, seeded, so that a seed gives the
// same report every time.
//
// The network: members on a unit square, one-way latency from
// LatencyMin to LatencyMax with the distance, plus up to 10 % jitter;
// each transmission lost with probability Loss. Direct messages (ping,
// ack, nack, ping-req, table exchange) go straight to their member.
// Published messages are flooded the way GossipSub does within its
// mesh: every member has D mesh peers, forwards a message the
// first time it sees it to all of them but the one it came from, and
// drops duplicates, so a message reaches everyone in O(log N) hops and
// each member receives it about D times. Bytes are the core's encoding
// plus DirectOverhead or PublishOverhead for libp2p's framing (stream,
// Noise, GossipSub envelope and signature); TCP/IP headers are not
// counted.
//
// The scenario: N members that all know each other start at a random
// phase; after Warmup, Silent members go silent (a hung process, a cut
// cable: no reset, no answer) and Joins new members join through one
// member each, spread over the next Spread; Stalls members stall for
// StallFor at random times (a paused process: its messages wait, its
// timers fire late); an optional partition cuts a fraction of the members
// off for a while. The report gives the time from silence to dead on the
// first and on every member, the false positives (a member declared dead
// that was not silent), the traffic per member, and the time for a join
// to be known everywhere.
package membersim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// Params describe one simulation.
type Params struct {
	N                      int
	Seed                   uint64
	D                      int // GossipSub mesh degree
	Loss                   float64
	LatencyMin, LatencyMax time.Duration
	Silent, Joins, Stalls  int
	StallFor               time.Duration
	Warmup, Spread, Tail   time.Duration // before the events, over which they are spread, after them
	// PartitionFrac of the members are cut off from the others from
	// Warmup for PartitionFor (0: no partition).
	PartitionFrac float64
	PartitionFor  time.Duration
	// DirectOverhead and PublishOverhead are the bytes libp2p adds to a
	// direct and to a published message.
	DirectOverhead, PublishOverhead int
	Core                            swim.Config // tuning; Self, Inc, Clock, Rand, OnEvent are set per member
}

// DefaultParams returns the scenario of BENCHMARKS.md for n members.
func DefaultParams(n int) Params {
	return Params{
		N: n, Seed: 1, D: 6, Loss: 0.01,
		LatencyMin: 2 * time.Millisecond, LatencyMax: 80 * time.Millisecond,
		Silent: 10, Joins: 10, Stalls: max(1, n/100), StallFor: time.Second,
		Warmup: 20 * time.Second, Spread: 10 * time.Second, Tail: 20 * time.Second,
		DirectOverhead: 60, PublishOverhead: 180,
	}
}

// Dist summarizes durations.
type Dist struct {
	Count            int     // measured
	Missing          int     // never reached before the end
	Median, P99, Max float64 // seconds
}

func dist(ds []time.Duration, missing int) Dist {
	d := Dist{Count: len(ds), Missing: missing}
	if len(ds) == 0 {
		return d
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))].Seconds()
	}
	d.Median, d.P99, d.Max = at(0.5), at(0.99), ds[len(ds)-1].Seconds()
	return d
}

func (d Dist) String() string {
	s := fmt.Sprintf("median %.2f s, p99 %.2f s, max %.2f s (%d)", d.Median, d.P99, d.Max, d.Count)
	if d.Missing > 0 {
		s += fmt.Sprintf(", %d never", d.Missing)
	}
	return s
}

// Report is what a simulation measured.
type Report struct {
	N, D    int
	Seed    uint64
	Loss    float64
	Virtual float64 // seconds simulated
	// DeadFirst and DeadAll: from a member's silence to dead on the
	// first member, and on every member that is up.
	DeadFirst, DeadAll Dist
	// FalseDead: declarations of dead (one per observer and member) of a
	// member that was neither silent nor cut off; FalseDeadMembers: how
	// many members those were. FalseSuspicions: how many such members
	// were suspected somewhere (refuted unless they became false deaths).
	FalseDead, FalseDeadMembers, FalseSuspicions int
	// CutDead: declarations of dead across a partition.
	CutDead int
	// WrongAtEnd of CheckedAtEnd: at the end, (observer, member) pairs in
	// which the observer sees a member that is up as dead or left, over
	// up to 200 observers spread over the members.
	WrongAtEnd, CheckedAtEnd int
	// JoinAll: from a joiner's start to alive on every member.
	JoinAll Dist
	// Per member per second, over the whole run: messages and bytes
	// sent and received, median and maximum over the members.
	MsgsOut, BytesOut, BytesIn float64
	BytesOutMax, BytesInMax    float64
	// The same over the warm-up, when no member fails, joins or stalls:
	// an idle network's cost.
	IdleMsgsOut, IdleBytesOut, IdleBytesIn float64
	Events                                 int // events processed
}

func (r *Report) String() string {
	return fmt.Sprintf(`N = %d, D = %d, loss %.1f %%, seed %d, %.0f s simulated, %d events
silent member dead on the first member: %s
silent member dead on every member:     %s
join known on every member:             %s
false positives: %d declarations of dead about %d members (%d members suspected and not dead); across the partition: %d
at the end, %d of %d views of a member that is up say dead
per member per second, idle (warm-up): %.1f messages out, %.0f B out, %.0f B in (median)
per member per second, whole run:      %.1f messages out, %.0f B out, %.0f B in (median); busiest %.0f B out, %.0f B in`,
		r.N, r.D, 100*r.Loss, r.Seed, r.Virtual, r.Events,
		r.DeadFirst, r.DeadAll, r.JoinAll,
		r.FalseDead, r.FalseDeadMembers, r.FalseSuspicions-r.FalseDeadMembers, r.CutDead,
		r.WrongAtEnd, r.CheckedAtEnd,
		r.IdleMsgsOut, r.IdleBytesOut, r.IdleBytesIn,
		r.MsgsOut, r.BytesOut, r.BytesIn, r.BytesOutMax, r.BytesInMax)
}

type evKind uint8

const (
	evTick evKind = iota
	evDirect
	evHop // a published message's transmission within the mesh
	evSilence
	evJoin
	evStall
)

type event struct {
	at   int64 // virtual nanoseconds
	seq  uint64
	kind evKind
	node int32
	from int32
	msg  *swim.Message
	pub  int32 // index of the publication, for evHop
}

type pub struct {
	msg  *swim.Message
	size int
	seen []uint64 // bitset of members that have it
}

type node struct {
	id         swim.ID
	core       *swim.Core
	x, y       float64
	mesh       []int32
	up         bool // started and not silent
	silent     bool
	cut        bool // on the small side of the partition
	stallUntil int64
	tickAt     int64 // the tick scheduled, 0 if none
	msgsOut    int
	bytesOut   int
	bytesIn    int
}

// Sim is one simulation.
type Sim struct {
	p                  Params
	rng                *rand.Rand
	now                int64
	epoch              time.Time
	seq                uint64
	q                  []event
	nodes              []*node
	index              map[swim.ID]int32
	pubs               []*pub
	events             int
	partStart, partEnd int64

	silentAt  map[int32]int64
	deadFirst map[int32]int64
	deadCount map[int32]int
	deadAll   map[int32]int64
	joinAt    map[int32]int64
	joinCount map[int32]int
	joinAll   map[int32]int64
	falseDead map[int32]bool
	falseSusp map[int32]bool
	idle      [][3]int // per member at the end of the warm-up: messages out, bytes out, bytes in
	rep       Report
}

// clock is the virtual clock of the cores.
type clock struct{ s *Sim }

func (c clock) Now() time.Time { return c.s.epoch.Add(time.Duration(c.s.now)) }

// transport is one member's side of the simulated network.
type transport struct {
	s *Sim
	i int32
}

func (t transport) Send(to swim.ID, m *swim.Message) {
	s := t.s
	j, ok := s.index[to]
	if !ok {
		return
	}
	size := m.Size() + s.p.DirectOverhead
	n := s.nodes[t.i]
	n.msgsOut++
	n.bytesOut += size
	if s.lost(t.i, j) {
		return
	}
	s.push(event{at: s.now + s.latency(t.i, j), kind: evDirect, node: j, from: t.i, msg: m})
}

func (t transport) Publish(m *swim.Message) {
	s := t.s
	p := &pub{msg: m, size: m.Size() + s.p.PublishOverhead, seen: make([]uint64, (len(s.nodes)+63)/64)}
	s.pubs = append(s.pubs, p)
	pi := int32(len(s.pubs) - 1)
	p.mark(t.i)
	s.forward(pi, t.i, -1)
}

func (p *pub) mark(i int32) bool {
	w, b := i/64, uint64(1)<<(i%64)
	had := p.seen[w]&b != 0
	p.seen[w] |= b
	return had
}

// forward sends publication pi from member i to its mesh peers but from.
func (s *Sim) forward(pi, i, from int32) {
	n := s.nodes[i]
	p := s.pubs[pi]
	for _, j := range n.mesh {
		if j == from {
			continue
		}
		n.msgsOut++
		n.bytesOut += p.size
		if s.lost(i, j) {
			continue
		}
		s.push(event{at: s.now + s.latency(i, j), kind: evHop, node: j, from: i, pub: pi})
	}
}

func (s *Sim) lost(i, j int32) bool {
	if s.now >= s.partStart && s.now < s.partEnd && s.nodes[i].cut != s.nodes[j].cut {
		return true
	}
	return s.rng.Float64() < s.p.Loss
}

func (s *Sim) latency(i, j int32) int64 {
	a, b := s.nodes[i], s.nodes[j]
	d := math.Hypot(a.x-b.x, a.y-b.y) / math.Sqrt2
	l := float64(s.p.LatencyMin) + d*float64(s.p.LatencyMax-s.p.LatencyMin)
	return int64(l * (1 + 0.1*s.rng.Float64()))
}

// push adds e to the queue (a binary heap ordered by time, then by
// insertion).
func (s *Sim) push(e event) {
	s.seq++
	e.seq = s.seq
	s.q = append(s.q, e)
	i := len(s.q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.q[i].before(&s.q[p]) {
			break
		}
		s.q[i], s.q[p] = s.q[p], s.q[i]
		i = p
	}
}

func (e *event) before(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

func (s *Sim) pop() event {
	e := s.q[0]
	last := len(s.q) - 1
	s.q[0] = s.q[last]
	s.q = s.q[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && s.q[l].before(&s.q[m]) {
			m = l
		}
		if r < last && s.q[r].before(&s.q[m]) {
			m = r
		}
		if m == i {
			return e
		}
		s.q[i], s.q[m] = s.q[m], s.q[i]
		i = m
	}
}

// schedule asks for a tick of member i when its core wants one.
func (s *Sim) schedule(i int32) {
	n := s.nodes[i]
	next := n.core.Next()
	if next.IsZero() {
		return
	}
	at := max(s.now, int64(next.Sub(s.epoch)))
	if n.tickAt != 0 && n.tickAt <= at {
		return
	}
	n.tickAt = at
	s.push(event{at: at, kind: evTick, node: i})
}

func (s *Sim) newCore(i int32, base *swim.Table) *swim.Core {
	n := s.nodes[i]
	cfg := s.p.Core
	cfg.Self, cfg.Inc, cfg.Clock = n.id, 1, clock{s}
	cfg.Rand = rand.New(rand.NewPCG(s.p.Seed, uint64(i)))
	cfg.OnEvent = func(e swim.Event) { s.observe(i, e) }
	return swim.New(cfg, transport{s, i}, base)
}

// observe records member i's view changes that the report measures.
func (s *Sim) observe(i int32, e swim.Event) {
	j, ok := s.index[e.ID]
	if !ok || s.nodes[i].silent || e.Forgotten {
		return
	}
	observer := i < int32(s.p.N) // joiners are not counted in "every member"
	switch e.State {
	case swim.StateDead:
		if t, ok := s.silentAt[j]; ok {
			if _, ok := s.deadFirst[j]; !ok {
				s.deadFirst[j] = s.now - t
			}
			if observer {
				s.deadCount[j]++
				s.checkAll()
			}
			return
		}
		if s.now < s.partEnd+int64(10*time.Second) && s.nodes[i].cut != s.nodes[j].cut && s.p.PartitionFrac > 0 {
			s.rep.CutDead++
			return
		}
		s.rep.FalseDead++
		s.falseDead[j] = true
	case swim.StateSuspect:
		if _, ok := s.silentAt[j]; !ok {
			s.falseSusp[j] = true
		}
	case swim.StateAlive:
		if _, ok := s.joinAt[j]; ok && e.New && observer {
			s.joinCount[j]++
			s.checkAll()
		}
	}
}

// Run simulates p and returns its report.
func Run(p Params) *Report {
	s := &Sim{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x5eed)), epoch: time.Unix(0, 0), index: map[swim.ID]int32{},
		silentAt: map[int32]int64{}, deadFirst: map[int32]int64{}, deadCount: map[int32]int{}, deadAll: map[int32]int64{},
		joinAt: map[int32]int64{}, joinCount: map[int32]int{}, joinAll: map[int32]int64{}, falseDead: map[int32]bool{}, falseSusp: map[int32]bool{}}
	total := p.N + p.Joins
	var entries []swim.Entry
	for i := range total {
		n := &node{id: swim.ID(fmt.Sprintf("m%05d", i)), x: s.rng.Float64(), y: s.rng.Float64()}
		s.nodes = append(s.nodes, n)
		s.index[n.id] = int32(i)
		if i < p.N {
			entries = append(entries, swim.Entry{ID: n.id, State: swim.StateAlive, Inc: 1})
		}
	}
	s.mesh(p.N)
	base := swim.NewTable(entries)
	for i := range p.N {
		n := s.nodes[i]
		n.core, n.up = s.newCore(int32(i), base), true
		n.core.Start()
		s.schedule(int32(i))
	}
	if p.PartitionFrac > 0 {
		for i := range int(p.PartitionFrac * float64(p.N)) {
			s.nodes[i].cut = true
		}
		s.partStart, s.partEnd = int64(p.Warmup), int64(p.Warmup+p.PartitionFor)
	}
	at := func() int64 { return int64(p.Warmup) + s.rng.Int64N(int64(p.Spread)) }
	perm := s.rng.Perm(p.N)
	for k := range p.Silent {
		s.push(event{at: at(), kind: evSilence, node: int32(perm[k])})
	}
	for k := range p.Stalls {
		s.push(event{at: at(), kind: evStall, node: int32(perm[p.Silent+k])})
	}
	for k := range p.Joins {
		s.push(event{at: at(), kind: evJoin, node: int32(p.N + k)})
	}
	end := int64(p.Warmup + p.Spread + p.Tail)
	for len(s.q) > 0 && s.q[0].at <= end {
		if s.idle == nil && s.q[0].at >= int64(p.Warmup) {
			for _, n := range s.nodes {
				s.idle = append(s.idle, [3]int{n.msgsOut, n.bytesOut, n.bytesIn})
			}
		}
		s.step(s.pop())
	}
	s.now = end
	return s.report()
}

// mesh links the first n members at random, each to D others (a random
// D-regular graph, as GossipSub keeps each mesh at D peers; a pairing
// that would repeat a link or loop is dropped, so a few have D-1).
func (s *Sim) mesh(n int) {
	stubs := make([]int32, 0, n*s.p.D)
	for i := range n {
		for range s.p.D {
			stubs = append(stubs, int32(i))
		}
	}
	s.rng.Shuffle(len(stubs), func(i, j int) { stubs[i], stubs[j] = stubs[j], stubs[i] })
	for k := 0; k+1 < len(stubs); k += 2 {
		s.link(stubs[k], stubs[k+1])
	}
}

func (s *Sim) link(i, j int32) {
	if i == j || slices.Contains(s.nodes[i].mesh, j) {
		return
	}
	s.nodes[i].mesh = append(s.nodes[i].mesh, j)
	s.nodes[j].mesh = append(s.nodes[j].mesh, i)
}

func (s *Sim) step(e event) {
	s.now = e.at
	s.events++
	n := s.nodes[e.node]
	if n.stallUntil > s.now && (e.kind == evTick || e.kind == evDirect || e.kind == evHop) {
		e.at = n.stallUntil // a paused process: everything waits
		if e.kind == evTick {
			n.tickAt = e.at
		}
		s.push(e)
		return
	}
	switch e.kind {
	case evTick:
		if n.tickAt != e.at || !n.up {
			return
		}
		n.tickAt = 0
		n.core.Tick()
	case evDirect:
		if !n.up {
			return
		}
		n.bytesIn += e.msg.Size() + s.p.DirectOverhead
		n.core.Receive(e.msg.From, e.msg)
	case evHop:
		if !n.up {
			return
		}
		p := s.pubs[e.pub]
		n.bytesIn += p.size
		if p.mark(e.node) {
			return // a duplicate
		}
		n.core.Receive(p.msg.From, p.msg)
		s.forward(e.pub, e.node, e.from)
	case evSilence:
		n.up, n.silent = false, true
		s.silentAt[e.node] = s.now
		s.checkAll()
	case evStall:
		n.stallUntil = s.now + int64(s.p.StallFor)
	case evJoin:
		s.join(e.node)
	}
	s.schedule(e.node)
}

// join starts a new member: linked into the mesh, it announces itself
// and asks a random member for its table.
func (s *Sim) join(i int32) {
	n := s.nodes[i]
	for len(n.mesh) < s.p.D {
		if j := int32(s.rng.IntN(s.p.N)); s.nodes[j].up {
			s.link(i, j)
		}
	}
	s.joinAt[i] = s.now
	n.core, n.up = s.newCore(i, nil), true
	n.core.Start()
	n.core.Announce()
	for {
		if j := int32(s.rng.IntN(s.p.N)); s.nodes[j].up {
			n.core.Join(s.nodes[j].id)
			break
		}
	}
}

// observers is the number of members up that a silent member's death or
// a join must reach: the first N, less the silent ones.
func (s *Sim) observers() int { return s.p.N - len(s.silentAt) }

// checkAll records when a silent member is dead, or a joiner alive, on
// every observer.
func (s *Sim) checkAll() {
	obs := s.observers()
	for j, c := range s.deadCount {
		if _, done := s.deadAll[j]; !done && c >= obs {
			s.deadAll[j] = s.now - s.silentAt[j]
		}
	}
	for j, c := range s.joinCount {
		if _, done := s.joinAll[j]; !done && c >= obs {
			s.joinAll[j] = s.now - s.joinAt[j]
		}
	}
}

func (s *Sim) report() *Report {
	r := &s.rep
	r.N, r.D, r.Seed, r.Loss, r.Events = s.p.N, s.p.D, s.p.Seed, s.p.Loss, s.events
	r.Virtual = time.Duration(s.now).Seconds()
	collect := func(from map[int32]int64, of map[int32]int64) Dist {
		var ds []time.Duration
		missing := 0
		for j := range of {
			if d, ok := from[j]; ok {
				ds = append(ds, time.Duration(d))
			} else {
				missing++
			}
		}
		return dist(ds, missing)
	}
	r.DeadFirst = collect(s.deadFirst, s.silentAt)
	r.DeadAll = collect(s.deadAll, s.silentAt)
	r.JoinAll = collect(s.joinAll, s.joinAt)
	r.FalseDeadMembers, r.FalseSuspicions = len(s.falseDead), len(s.falseSusp)
	step := max(1, s.p.N/200)
	for i := 0; i < s.p.N; i += step {
		if !s.nodes[i].up {
			continue
		}
		for _, n := range s.nodes {
			if n.up && n != s.nodes[i] {
				r.CheckedAtEnd++
				if m, _ := s.nodes[i].core.Member(n.id); m.State == swim.StateDead || m.State == swim.StateLeft {
					r.WrongAtEnd++
				}
			}
		}
	}
	var out, in, msgs []float64
	for _, n := range s.nodes[:s.p.N] {
		if n.silent {
			continue
		}
		out = append(out, float64(n.bytesOut)/r.Virtual)
		in = append(in, float64(n.bytesIn)/r.Virtual)
		msgs = append(msgs, float64(n.msgsOut)/r.Virtual)
	}
	med := func(v []float64) (float64, float64) {
		slices.Sort(v)
		return v[len(v)/2], v[len(v)-1]
	}
	r.BytesOut, r.BytesOutMax = med(out)
	r.BytesIn, r.BytesInMax = med(in)
	r.MsgsOut, _ = med(msgs)
	if s.idle != nil {
		w := s.p.Warmup.Seconds()
		var im, io, ii []float64
		for _, c := range s.idle[:s.p.N] {
			im = append(im, float64(c[0])/w)
			io = append(io, float64(c[1])/w)
			ii = append(ii, float64(c[2])/w)
		}
		r.IdleMsgsOut, _ = med(im)
		r.IdleBytesOut, _ = med(io)
		r.IdleBytesIn, _ = med(ii)
	}
	return r
}
