package swim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time                  { return c.t }
func (c *fakeClock) advance(d time.Duration)         { c.t = c.t.Add(d) }
func (c *fakeClock) set(t time.Time)                 { c.t = t }
func (c *fakeClock) since(t time.Time) time.Duration { return c.t.Sub(t) }

type sent struct {
	to ID // "" when published
	m  *Message
}

type recorder struct{ out []sent }

func (r *recorder) Send(to ID, m *Message) { r.out = append(r.out, sent{to, m}) }
func (r *recorder) Publish(m *Message)     { r.out = append(r.out, sent{"", m}) }

// take returns and forgets the recorded messages of kind k.
func (r *recorder) take(k Kind) []sent {
	var got, rest []sent
	for _, s := range r.out {
		if s.m.Kind == k {
			got = append(got, s)
		} else {
			rest = append(rest, s)
		}
	}
	r.out = rest
	return got
}

type fixture struct {
	c     *Core
	clock *fakeClock
	tr    *recorder
	ids   []ID
}

// newFixture returns a started core for "n0" in a table of n alive
// members n0..n(n-1) at incarnation 1, with nothing recorded yet.
func newFixture(t *testing.T, n int, tweak func(*Config)) *fixture {
	t.Helper()
	var es []Entry
	var ids []ID
	for i := range n {
		id := ID(fmt.Sprintf("n%d", i))
		ids = append(ids, id)
		es = append(es, Entry{ID: id, State: StateAlive, Inc: 1})
	}
	f := &fixture{clock: &fakeClock{t: time.Unix(1000, 0)}, tr: &recorder{}, ids: ids}
	cfg := Config{Self: "n0", Inc: 1, Clock: f.clock}
	if tweak != nil {
		tweak(&cfg)
	}
	f.c = New(cfg, f.tr, NewTable(es))
	f.c.Start()
	f.tr.out = nil
	return f
}

func (f *fixture) state(t *testing.T, id ID) Member {
	t.Helper()
	m, ok := f.c.Member(id)
	if !ok {
		t.Fatalf("%s not in the table", id)
	}
	return m
}

// TestTransitions covers the precedence of facts about a member: every
// state against every other, at lower, equal and higher incarnations.
func TestTransitions(t *testing.T) {
	msg := func(k Kind, inc uint64) *Message {
		if k == KindAlive {
			return &Message{Kind: k, From: "n1", Target: "n1", Inc: inc}
		}
		return &Message{Kind: k, From: "n2", Target: "n1", Inc: inc}
	}
	forged := &Message{Kind: KindAlive, From: "n2", Target: "n1", Inc: 5}
	leave := &Message{Kind: KindLeave, From: "n1", Target: "n1", Inc: 1}
	cases := []struct {
		name  string
		setup []*Message
		fact  *Message
		want  State
		inc   uint64
	}{
		{"alive, suspected", nil, msg(KindSuspect, 1), StateSuspect, 1},
		{"alive, stale suspicion", nil, msg(KindSuspect, 0), StateAlive, 1},
		{"alive, newer suspicion", nil, msg(KindSuspect, 2), StateSuspect, 2},
		{"alive, declared dead", nil, msg(KindDead, 1), StateDead, 1},
		{"alive, leaves", nil, leave, StateLeft, 1},
		{"alive, newer alive", nil, msg(KindAlive, 3), StateAlive, 3},
		{"suspect, same-incarnation alive is no refutation", []*Message{msg(KindSuspect, 1)}, msg(KindAlive, 1), StateSuspect, 1},
		{"suspect, refuted", []*Message{msg(KindSuspect, 1)}, msg(KindAlive, 2), StateAlive, 2},
		{"suspect, dead", []*Message{msg(KindSuspect, 1)}, msg(KindDead, 1), StateDead, 1},
		{"suspect, leaves", []*Message{msg(KindSuspect, 1)}, leave, StateLeft, 1},
		{"dead, same-incarnation alive", []*Message{msg(KindDead, 1)}, msg(KindAlive, 1), StateDead, 1},
		{"dead, same-incarnation suspicion", []*Message{msg(KindDead, 1)}, msg(KindSuspect, 1), StateDead, 1},
		{"dead, rejoins", []*Message{msg(KindDead, 1)}, msg(KindAlive, 2), StateAlive, 2},
		{"left is final for its incarnation: alive", []*Message{leave}, msg(KindAlive, 1), StateLeft, 1},
		{"left is final for its incarnation: dead", []*Message{leave}, msg(KindDead, 1), StateLeft, 1},
		{"left is final for its incarnation: suspect", []*Message{leave}, msg(KindSuspect, 1), StateLeft, 1},
		{"left, rejoins with a new incarnation", []*Message{leave}, msg(KindAlive, 2), StateAlive, 2},
		{"suspect, an Alive about it from another member is no refutation", []*Message{msg(KindSuspect, 1)}, forged, StateSuspect, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 5, nil)
			for _, m := range tc.setup {
				f.c.Receive(m.From, m)
			}
			f.c.Receive(tc.fact.From, tc.fact)
			if got := f.state(t, "n1"); got.State != tc.want || got.Inc != tc.inc {
				t.Fatalf("n1 is %s@%d, want %s@%d", got.State, got.Inc, tc.want, tc.inc)
			}
		})
	}
}

func TestJoinedByAlive(t *testing.T) {
	f := newFixture(t, 3, nil)
	var evs []Event
	f.c.cfg.OnEvent = func(e Event) { evs = append(evs, e) }
	f.c.Receive("x", &Message{Kind: KindAlive, From: "x", Target: "x", Inc: 7})
	if m := f.state(t, "x"); m.State != StateAlive || m.Inc != 7 {
		t.Fatalf("joiner is %s@%d", m.State, m.Inc)
	}
	if len(evs) != 1 || !evs[0].New {
		t.Fatalf("events %+v, want one new member", evs)
	}
}

// TestProbes covers a watcher's probe of a member: answered directly,
// answered through a helper, unanswered with helpers' nacks (a
// suspicion), unanswered and the helpers silent too (this node doubts
// itself), and with late timers (an overloaded accuser).
func TestProbes(t *testing.T) {
	cases := []struct {
		name        string
		directLost  bool // the direct ping is lost, the target is up
		silent      bool // the target is down
		helpersNack bool
		lateBy      time.Duration // the tick that ends the direct ping is this late
		lhm         int           // local health before the round
		wantSuspect bool
		wantLHM     int
	}{
		{name: "direct ack", wantLHM: 0},
		{name: "direct ack lowers LHM", lhm: 2, wantLHM: 1},
		{name: "direct ack, helpers never asked", wantLHM: 0},
		{name: "ack through a helper", directLost: true, helpersNack: true, wantLHM: 0},
		{name: "silent, helpers nack: suspicion", silent: true, helpersNack: true, wantSuspect: true},
		{name: "silent, helpers silent too: no accusation, LHM up", silent: true, wantLHM: 1},
		{name: "overloaded accuser: late timers, no accusation", silent: true, helpersNack: true, lateBy: time.Second, wantLHM: 1},
		{name: "overloaded accuser: LHM at the limit, no accusation", silent: true, helpersNack: true, lhm: 4, wantLHM: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, func(c *Config) { c.Watchers = 1 })
			f.c.lhm = tc.lhm
			target := f.c.Watched()[0]
			f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
			f.c.wanted = f.c.Next()
			f.clock.set(f.c.nextProbe)
			f.c.Tick()
			f.c.nextProbe = f.clock.t.Add(time.Hour) // one round only
			f.c.wanted = f.c.Next()
			pings := f.tr.out
			if len(pings) != 1 || pings[0].to != target {
				t.Fatalf("pings %+v, want one to %s", pings, target)
			}
			silent := func(id ID) bool { return id == target && (tc.silent || tc.directLost && len(pings) > 0) }
			for _, s := range f.tr.take(KindPing) {
				if !silent(s.to) {
					f.c.Receive(s.to, &Message{Kind: KindAck, From: s.to, Target: s.to, Seq: s.m.Seq, Inc: 1})
				}
			}
			pings = nil
			f.clock.advance(f.c.cfg.ProbeTimeout*time.Duration(1+f.c.LHM()) + tc.lateBy)
			f.c.Tick()
			reqs := f.tr.take(KindPingReq)
			for _, s := range reqs {
				if s.m.Target != target {
					t.Fatalf("ping-req about %s, want %s", s.m.Target, target)
				}
				switch {
				case !tc.silent:
					f.c.Receive(s.to, &Message{Kind: KindAck, From: s.to, Target: target, Seq: s.m.Seq, Inc: 1})
				case tc.helpersNack:
					f.c.Receive(s.to, &Message{Kind: KindNack, From: s.to, Seq: s.m.Seq})
				}
			}
			f.clock.advance(f.c.cfg.IndirectTimeout * time.Duration(1+f.c.LHM()))
			f.c.Tick()
			sus := f.tr.take(KindSuspect)
			if got := len(sus) > 0; got != tc.wantSuspect {
				t.Fatalf("suspicion published: %v, want %v", got, tc.wantSuspect)
			}
			if tc.wantSuspect {
				if sus[0].to != "" || sus[0].m.Target != target || f.state(t, target).State != StateSuspect {
					t.Fatalf("suspicion %+v, target %s", sus[0].m, f.state(t, target).State)
				}
			}
			if f.c.LHM() != tc.wantLHM {
				t.Fatalf("LHM %d, want %d", f.c.LHM(), tc.wantLHM)
			}
			if !tc.directLost && !tc.silent && len(reqs) != 0 {
				t.Fatalf("%d ping-reqs after a direct ack", len(reqs))
			}
		})
	}
}

// TestSuspicionTimeout: the timeout shrinks with independent
// confirmations, by Lifeguard's log formula, and a suspicion ends in
// dead at its deadline; the accuser publishes it.
func TestSuspicionTimeout(t *testing.T) {
	f := newFixture(t, 100, nil) // log10 N = 2: min 1 s, max 6 s
	want := []time.Duration{6 * time.Second, 2845 * time.Millisecond, time.Second, time.Second}
	for c, w := range want {
		if got := f.c.SuspicionTimeout(c); (got - w).Abs() > 10*time.Millisecond {
			t.Errorf("timeout with %d confirmations %s, want %s", c, got, w)
		}
	}
	start := f.clock.t
	f.c.Evidence("n5", EvidenceRefused) // this node accuses
	if m := f.state(t, "n5"); m.Accusers != 1 || !m.Deadline.Equal(start.Add(6*time.Second)) {
		t.Fatalf("after one accuser: %+v", m)
	}
	f.clock.advance(500 * time.Millisecond)
	f.c.Receive("n7", &Message{Kind: KindSuspect, From: "n7", Target: "n5", Inc: 1})
	f.c.Receive("n7", &Message{Kind: KindSuspect, From: "n7", Target: "n5", Inc: 1}) // not independent
	if m := f.state(t, "n5"); m.Accusers != 2 || (m.Deadline.Sub(start)-2845*time.Millisecond).Abs() > 10*time.Millisecond {
		t.Fatalf("after a confirmation: %d accusers, deadline +%s", m.Accusers, m.Deadline.Sub(start))
	}
	f.c.Receive("n8", &Message{Kind: KindSuspect, From: "n8", Target: "n5", Inc: 1})
	if m := f.state(t, "n5"); !m.Deadline.Equal(start.Add(time.Second)) {
		t.Fatalf("after two confirmations: deadline +%s, want +1s", m.Deadline.Sub(start))
	}
	f.tr.out = nil
	f.clock.set(start.Add(time.Second))
	f.c.Tick()
	if f.state(t, "n5").State != StateDead {
		t.Fatalf("n5 is %s at the deadline", f.state(t, "n5").State)
	}
	if d := f.tr.take(KindDead); len(d) != 1 || d[0].m.Target != "n5" {
		t.Fatalf("dead published %+v, want one by the first accuser", d)
	}
}

// TestRefutedSuspicion: a suspected node refutes with a higher
// incarnation (and doubts itself: LHM up), and the refutation clears the
// suspicion on the accuser, whose timer then never fires.
func TestRefutedSuspicion(t *testing.T) {
	accuser := newFixture(t, 5, nil)
	suspect := newFixture(t, 5, func(c *Config) { c.Self = "n3" })
	accuser.c.Evidence("n3", EvidenceRefused)
	sus := accuser.tr.take(KindSuspect)
	if len(sus) != 1 {
		t.Fatalf("%d suspicions", len(sus))
	}
	suspect.c.Receive("n0", sus[0].m)
	alive := suspect.tr.take(KindAlive)
	if len(alive) != 2 || alive[0].to != "" || alive[1].to != "n0" || alive[0].m.Inc != 2 || suspect.c.Inc() != 2 || suspect.c.LHM() != 1 {
		t.Fatalf("refutation %+v, inc %d, LHM %d", alive, suspect.c.Inc(), suspect.c.LHM())
	}
	accuser.c.Receive("n3", alive[0].m)
	if m := accuser.state(t, "n3"); m.State != StateAlive || m.Inc != 2 || m.Accusers != 0 {
		t.Fatalf("after the refutation n3 is %+v", m)
	}
	accuser.clock.advance(time.Minute)
	accuser.c.Tick()
	if m := accuser.state(t, "n3"); m.State != StateAlive {
		t.Fatalf("refuted suspicion fired: n3 %s", m.State)
	}
	// A stale suspicion (the old incarnation) is not refuted again: its
	// sender is only told the incarnation it missed.
	suspect.c.Receive("n0", sus[0].m)
	if a := suspect.tr.take(KindAlive); len(a) != 1 || a[0].to != "n0" || suspect.c.Inc() != 2 {
		t.Fatalf("stale suspicion answered with %+v, incarnation %d", a, suspect.c.Inc())
	}
	// Declared dead, a node refutes too.
	suspect.c.Receive("n0", &Message{Kind: KindDead, From: "n0", Target: "n3", Inc: 2})
	if suspect.c.Inc() != 3 {
		t.Fatalf("after its death notice the incarnation is %d", suspect.c.Inc())
	}
}

// TestEvidence: a reset connection probes the member at once; a refused
// re-dial accuses it at once, published at once by its nearest watchers
// and held back by others (see TestRefusalPublishedAtOnce and
// TestHeldRefusal); neither delays a running suspicion.
func TestEvidence(t *testing.T) {
	cases := []struct {
		name     string
		ev       Evidence
		first    bool // this node is one of the target's nearest watchers
		lhm      int
		wantKind Kind
		wantSusp bool
	}{
		{"reset: an out-of-turn ping", EvidenceReset, false, 0, KindPing, false},
		{"reset, this node slow: no ping", EvidenceReset, false, 1, 0, false},
		{"refused by a nearest watcher: an accusation", EvidenceRefused, true, 0, KindSuspect, true},
		{"refused, not a nearest watcher: suspect, accusation held", EvidenceRefused, false, 0, 0, true},
		{"refused, overloaded: no accusation", EvidenceRefused, true, 4, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, nil)
			f.c.lhm = tc.lhm
			var target ID
			for _, id := range f.ids[1:] {
				if first, last := f.c.refusers(id); slices.Contains(first, "n0") == tc.first && last != "n0" {
					target = id
				}
			}
			f.c.Evidence(target, tc.ev)
			if got := f.state(t, target).State == StateSuspect; got != tc.wantSusp {
				t.Fatalf("%s suspect: %v, want %v", target, got, tc.wantSusp)
			}
			if len(f.tr.out) == 0 && tc.wantKind == 0 {
				return
			}
			if len(f.tr.out) != 1 || f.tr.out[0].m.Kind != tc.wantKind || f.tr.out[0].m.Target != target {
				t.Fatalf("sent %+v, want one %s about %s", f.tr.out, tc.wantKind, target)
			}
		})
	}
	f := newFixture(t, 8, nil)
	f.c.Receive("n2", &Message{Kind: KindSuspect, From: "n2", Target: "n5", Inc: 1})
	before := f.state(t, "n5").Deadline
	f.clock.advance(100 * time.Millisecond)
	f.c.Evidence("n5", EvidenceReset)
	f.c.Evidence("n5", EvidenceRefused)
	if after := f.state(t, "n5").Deadline; after.After(before) {
		t.Fatalf("evidence moved the deadline from %s to %s", before, after)
	}
}

// TestWatchers: a node watches its k live successors on the ring, a
// joiner included, a dead member skipped.
func TestWatchers(t *testing.T) {
	f := newFixture(t, 10, nil)
	all := append([]Entry(nil), f.c.Entries()...)
	i := slices.IndexFunc(all, func(e Entry) bool { return e.ID == "n0" })
	next := func(j int) ID { return all[(i+j)%len(all)].ID }
	if got, want := f.c.Watched(), []ID{next(1), next(2), next(3)}; !slices.Equal(got, want) {
		t.Fatalf("watched %v, want %v", got, want)
	}
	f.c.Receive("n9", &Message{Kind: KindDead, From: "n9", Target: next(1), Inc: 1})
	if got, want := f.c.Watched(), []ID{next(2), next(3), next(4)}; !slices.Equal(got, want) {
		t.Fatalf("watched %v after a death, want %v", got, want)
	}
	// Find a joiner that lands right after n0.
	var j ID
	for x := 0; ; x++ {
		j = ID(fmt.Sprintf("j%d", x))
		if ringLess("n0", j) && ringLess(j, next(2)) && (ringKey(j) > ringKey("n0")) {
			break
		}
	}
	f.c.Receive(j, &Message{Kind: KindAlive, From: j, Target: j, Inc: 1})
	if got, want := f.c.Watched(), []ID{j, next(2), next(3)}; !slices.Equal(got, want) {
		t.Fatalf("watched %v after a join, want %v", got, want)
	}
}

// TestJoinByAntiEntropy: a joiner with an empty table catches up from one
// member's table, and the member learns of the joiner.
func TestJoinByAntiEntropy(t *testing.T) {
	seed := newFixture(t, 50, nil)
	seed.c.Receive("n9", &Message{Kind: KindLeave, From: "n9", Target: "n9", Inc: 1})
	clock := &fakeClock{t: seed.clock.t}
	tr := &recorder{}
	j := New(Config{Self: "joiner", Inc: 1, Clock: clock}, tr, nil)
	j.Start()
	j.Announce()
	if a := tr.take(KindAlive); len(a) != 1 || a[0].to != "" || a[0].m.Target != "joiner" {
		t.Fatalf("announcement %+v", a)
	}
	j.Join("n0")
	req := tr.take(KindSyncReq)
	if len(req) != 1 || req[0].to != "n0" {
		t.Fatalf("sync request %+v", req)
	}
	seed.c.Receive("joiner", req[0].m)
	resp := seed.tr.take(KindSyncResp)
	if len(resp) != 1 {
		t.Fatalf("%d sync responses", len(resp))
	}
	j.Receive("n0", resp[0].m)
	if n := len(j.Entries()); n != 51 {
		t.Fatalf("joiner knows %d members, want 51", n)
	}
	if m, _ := j.Member("n9"); m.State != StateLeft {
		t.Fatalf("joiner sees n9 %s, want left", m.State)
	}
	if m, ok := seed.c.Member("joiner"); !ok || m.State != StateAlive {
		t.Fatal("seed did not learn of the joiner")
	}
}

// TestHeartbeatNews: a rare heartbeat carries the sender's incarnation
// and the changes it knows to a node that missed them.
func TestHeartbeatNews(t *testing.T) {
	a := newFixture(t, 20, nil)
	b := newFixture(t, 20, func(c *Config) { c.Self = "n1" })
	a.c.Receive("n2", &Message{Kind: KindDead, From: "n2", Target: "n7", Inc: 1})
	a.c.Receive("x", &Message{Kind: KindAlive, From: "x", Target: "x", Inc: 4})
	a.clock.set(a.c.nextHeartbeat)
	a.c.Tick()
	hb := a.tr.take(KindHeartbeat)
	if len(hb) != 1 || hb[0].to != "" {
		t.Fatalf("heartbeats %+v", hb)
	}
	if p := a.c.HeartbeatPeriod(); p != 40*time.Second {
		t.Fatalf("heartbeat period %s with 20 live members of 21 (n7 dead), want N/HeartbeatRate = 40s", p)
	}
	b.c.Receive("n0", hb[0].m)
	if m, _ := b.c.Member("n7"); m.State != StateDead {
		t.Fatalf("n7 is %s after the news", m.State)
	}
	if m, ok := b.c.Member("x"); !ok || m.Inc != 4 {
		t.Fatal("joiner x not learned from the news")
	}
}

// TestDeadMemberSpeaks: a member declared dead or suspected that is heard
// again is told, so it can refute (a healed partition).
func TestDeadMemberSpeaks(t *testing.T) {
	f := newFixture(t, 5, nil)
	f.c.Receive("n2", &Message{Kind: KindDead, From: "n2", Target: "n4", Inc: 1})
	f.c.Receive("n4", &Message{Kind: KindPing, From: "n4", Target: "n0", Seq: 9})
	if d := f.tr.take(KindDead); len(d) != 1 || d[0].to != "n4" {
		t.Fatalf("dead notices %+v", d)
	}
	f.c.Receive("n2", &Message{Kind: KindSuspect, From: "n2", Target: "n3", Inc: 1})
	f.c.Receive("n3", &Message{Kind: KindAck, From: "n3", Target: "n3", Seq: 99, Inc: 1})
	if d := f.tr.take(KindSuspect); len(d) != 1 || d[0].to != "n3" {
		t.Fatalf("suspicion notices %+v", d)
	}
}

// TestPingDead: a member declared dead lately is pinged by about Watchers
// nodes a period whatever N (each node pings it with probability
// Watchers/(N-1)); when it answers it is told, so it refutes; after
// DeadProbeFor it is left alone.
func TestPingDead(t *testing.T) {
	const periods = 600
	for _, tc := range []struct {
		n      int
		lo, hi int // pings to the dead member in periods
	}{
		{n: 4, lo: periods, hi: periods}, // 3 others, 3 watchers: every period
		{n: 8, lo: 200, hi: 320},         // 3/6 of the periods (the dead one is not live)
		{n: 61, lo: 15, hi: 45},          // 3/59: about 30
		{n: 301, lo: 1, hi: 15},          // 3/299: about 6
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			f := newFixture(t, tc.n, func(c *Config) { c.DeadProbeFor = 2 * periods * time.Second })
			far := f.ids[tc.n-1]
			for _, id := range f.ids[1:] {
				if !slices.Contains(f.c.Watched(), id) {
					far = id
				}
			}
			f.c.Receive("n1", &Message{Kind: KindDead, From: "n1", Target: far, Inc: 1})
			var ping *Message
			pings := 0
			for range periods {
				f.clock.set(f.c.nextProbe)
				f.c.Tick()
				for _, s := range f.tr.take(KindPing) {
					if s.to == far {
						pings++
						ping = s.m
						continue
					}
					// The watched members answer, so none is suspected.
					f.c.Receive(s.to, &Message{Kind: KindAck, From: s.to, Target: s.to, Seq: s.m.Seq, Inc: 1})
				}
				f.tr.out = nil
			}
			if f.c.Live() != tc.n-1 {
				t.Fatalf("%d live members, want %d", f.c.Live(), tc.n-1)
			}
			if pings < tc.lo || pings > tc.hi {
				t.Fatalf("the dead member was pinged in %d of %d periods, want %d to %d", pings, periods, tc.lo, tc.hi)
			}
			t.Logf("N = %d: pinged in %d of %d periods", tc.n, pings, periods)
			f.c.Receive(far, &Message{Kind: KindAck, From: far, Target: far, Seq: ping.Seq, Inc: 1})
			if d := f.tr.take(KindDead); len(d) != 1 || d[0].to != far {
				t.Fatalf("dead notices %+v, want one to %s", d, far)
			}
			f.clock.advance(2 * periods * time.Second)
			f.c.Tick()
			for range 10 {
				f.clock.set(f.c.nextProbe)
				f.c.Tick()
				for _, s := range f.tr.take(KindPing) {
					if s.to == far {
						t.Fatalf("pinged %s after DeadProbeFor", far)
					}
				}
			}
		})
	}
}

// TestLeave: a leaving node announces it, stops probing, and its
// departure is final for its incarnation elsewhere (TestTransitions).
func TestLeave(t *testing.T) {
	f := newFixture(t, 5, nil)
	f.c.Leave()
	if l := f.tr.take(KindLeave); len(l) != 1 || l[0].m.Inc != 1 {
		t.Fatalf("leave %+v", l)
	}
	if !f.c.Next().IsZero() {
		t.Fatal("a node that left still wants ticks")
	}
	f.clock.advance(time.Minute)
	f.c.Tick()
	if len(f.tr.out) != 0 {
		t.Fatalf("sent %+v after leaving", f.tr.out)
	}
}

func TestMessageEncoding(t *testing.T) {
	m := &Message{Kind: KindSyncResp, From: "a", Target: "b", Inc: 3, Seq: 9, News: []Entry{{ID: "c", State: StateLeft, Inc: 2}}, Refused: true}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != m.Size() {
		t.Fatalf("encoded %d bytes, Size %d", len(b), m.Size())
	}
	got, err := Decode(b)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	for i := range b {
		if _, err := Decode(b[:i]); err == nil {
			t.Fatalf("a message cut at %d bytes decoded", i)
		}
	}
	b[1] |= 2
	if _, err := Decode(b); err == nil {
		t.Fatal("a message with an unknown flag decoded")
	}
}

// TestRefusals: refused connections reported by Confirmations distinct
// accusers (or by every other live member, if fewer) end a suspicion at
// once; suspicions without a refusal, or refusals from one accuser
// repeated, wait for the timeout.
func TestRefusals(t *testing.T) {
	sus := func(from ID, refused bool) *Message {
		return &Message{Kind: KindSuspect, From: from, Target: "n5", Inc: 1, Refused: refused}
	}
	cases := []struct {
		name     string
		n        int
		evidence bool       // this node saw a refusal first
		msgs     []*Message // then these arrive
		wantDead bool       // dead at the next tick, without waiting
	}{
		{"one refusal", 8, true, nil, false},
		{"two refusals: this node's and another's", 8, true, []*Message{sus("n2", true)}, true},
		{"two refusals from others", 8, false, []*Message{sus("n2", true), sus("n3", true)}, true},
		{"the same accuser twice", 8, false, []*Message{sus("n2", true), sus("n2", true)}, false},
		{"a refusal and a failed probe", 8, false, []*Message{sus("n2", true), sus("n3", false)}, false},
		{"three failed probes", 8, false, []*Message{sus("n2", false), sus("n3", false), sus("n4", false)}, false},
		{"two members: one refusal is all there can be", 2, true, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every refusal is published at once: who publishes is
			// TestRefusalPublishedAtOnce's.
			f := newFixture(t, max(tc.n, 6), func(c *Config) { c.RefusalHold = -1 })
			if tc.n == 2 {
				for _, id := range f.ids[1:] {
					if id != "n5" {
						f.c.Receive(id, &Message{Kind: KindLeave, From: id, Target: id, Inc: 1})
					}
				}
			}
			if tc.evidence {
				f.c.Evidence("n5", EvidenceRefused)
				if s := f.tr.take(KindSuspect); len(s) != 1 || !s[0].m.Refused {
					t.Fatalf("published %+v, want one suspicion marked refused", s)
				}
			}
			for _, m := range tc.msgs {
				f.c.Receive(m.From, m)
			}
			if f.state(t, "n5").State != StateSuspect {
				t.Fatalf("n5 is %s, want suspect", f.state(t, "n5").State)
			}
			if next := f.c.Next(); next.After(f.clock.t) != !tc.wantDead {
				t.Fatalf("next tick in %s, want dead at once: %v", next.Sub(f.clock.t), tc.wantDead)
			}
			f.c.Tick()
			if got := f.state(t, "n5").State == StateDead; got != tc.wantDead {
				t.Fatalf("dead at once: %v, want %v", got, tc.wantDead)
			}
			if f.c.LHM() != 0 {
				t.Fatalf("LHM %d after a prompt tick", f.c.LHM())
			}
		})
	}
}

// TestConfirmationAfterTheDeadline: a confirmation that moves a
// suspicion's deadline before now ends it at the next tick, which is not
// late: this node's health does not suffer.
func TestConfirmationAfterTheDeadline(t *testing.T) {
	f := newFixture(t, 10, nil)
	f.c.nextProbe, f.c.nextHeartbeat = f.clock.t.Add(time.Hour), f.clock.t.Add(time.Hour) // no other timer
	f.c.Receive("n2", &Message{Kind: KindSuspect, From: "n2", Target: "n5", Inc: 1})
	f.clock.advance(f.c.SuspicionTimeout(2) + time.Second) // before the unconfirmed deadline
	f.c.Receive("n3", &Message{Kind: KindSuspect, From: "n3", Target: "n5", Inc: 1})
	f.c.Receive("n4", &Message{Kind: KindSuspect, From: "n4", Target: "n5", Inc: 1})
	if next := f.c.Next(); next.After(f.clock.t) {
		t.Fatalf("next tick in %s, want now", next.Sub(f.clock.t))
	}
	f.c.Tick()
	if f.state(t, "n5").State != StateDead || f.c.LHM() != 0 {
		t.Fatalf("n5 %s, LHM %d", f.state(t, "n5").State, f.c.LHM())
	}
}

// TestNextInc: a refutation takes its incarnation from NextInc when that
// is higher than the suspicion's plus one.
func TestNextInc(t *testing.T) {
	for _, tc := range []struct {
		counter, want uint64
	}{{100, 100}, {0, 2}} {
		f := newFixture(t, 5, func(c *Config) { c.NextInc = func(at uint64) uint64 { return max(at, tc.counter) } })
		f.c.Receive("n1", &Message{Kind: KindSuspect, From: "n1", Target: "n0", Inc: 1})
		a := f.tr.take(KindAlive)
		if len(a) != 2 || a[0].to != "" || a[1].to != "n1" {
			t.Fatalf("refuted with %+v, want a publication and a copy to the accuser n1", a)
		}
		if a[0].m.Inc != tc.want || a[1].m.Inc != tc.want || f.c.Inc() != tc.want {
			t.Fatalf("counter at %d: refuted with %+v, inc %d, want %d", tc.counter, a, f.c.Inc(), tc.want)
		}
	}
}

// TestCanRelay: ping-reqs go only to members that can relay them; with
// none, the probe ends at once, as without helpers.
func TestCanRelay(t *testing.T) {
	for _, allowed := range [][]ID{{"n3", "n4"}, nil} {
		f := newFixture(t, 8, func(c *Config) {
			c.Watchers = 1
			c.CanRelay = func(id ID) bool { return slices.Contains(allowed, id) }
		})
		target := f.c.Watched()[0]
		f.clock.set(f.c.nextProbe)
		f.c.Tick()
		f.tr.out = nil
		f.clock.advance(f.c.cfg.ProbeTimeout)
		f.c.Tick()
		reqs := f.tr.take(KindPingReq)
		for _, r := range reqs {
			if !slices.Contains(allowed, r.to) {
				t.Fatalf("ping-req to %s, allowed %v", r.to, allowed)
			}
		}
		wantReqs := len(allowed)
		if slices.Contains(allowed, target) {
			wantReqs--
		}
		if len(reqs) != wantReqs {
			t.Fatalf("%d ping-reqs, want %d", len(reqs), wantReqs)
		}
		if sus := f.tr.take(KindSuspect); (len(sus) > 0) != (len(allowed) == 0) {
			t.Fatalf("allowed %v: suspicions %+v", allowed, sus)
		}
	}
}

// TestLiveCount: the heartbeat period and the suspicion timeouts grow
// with the live members only; dead and left members linger in the table
// for ForgetAfter but send nothing.
func TestLiveCount(t *testing.T) {
	f := newFixture(t, 30, func(c *Config) { c.HeartbeatMin = time.Second })
	if f.c.Live() != 30 || f.c.HeartbeatPeriod() != 60*time.Second {
		t.Fatalf("30 alive: live %d, period %s", f.c.Live(), f.c.HeartbeatPeriod())
	}
	before := f.c.SuspicionTimeout(0)
	for _, id := range f.ids[10:] {
		f.c.Receive("n1", &Message{Kind: KindDead, From: "n1", Target: id, Inc: 1})
	}
	f.c.Receive("n2", &Message{Kind: KindLeave, From: "n2", Target: "n2", Inc: 1})
	f.c.Receive("n3", &Message{Kind: KindSuspect, From: "n4", Target: "n3", Inc: 1})
	f.c.Receive("j", &Message{Kind: KindAlive, From: "j", Target: "j", Inc: 1})
	if got := len(f.c.Entries()); got != 31 {
		t.Fatalf("table of %d, want 31", got)
	}
	if f.c.Live() != 10 || f.c.HeartbeatPeriod() != 20*time.Second {
		t.Fatalf("10 live of 31: live %d, period %s", f.c.Live(), f.c.HeartbeatPeriod())
	}
	if after := f.c.SuspicionTimeout(0); after >= before {
		t.Fatalf("suspicion timeout %s with 10 live, %s with 30", after, before)
	}
	f.c.Receive("n2", &Message{Kind: KindAlive, From: "n2", Target: "n2", Inc: 2})
	if f.c.Live() != 11 {
		t.Fatalf("after a rejoin: live %d, want 11", f.c.Live())
	}
}

// TestForget: a member dead or left for ForgetAfter leaves the table
// (with an event), unless it changed meanwhile; one heard of again later
// comes back as a new member. Members of the shared base table and
// members this core learned are both forgotten.
func TestForget(t *testing.T) {
	type step struct {
		at   time.Duration // from the start
		msg  *Message
		want map[ID]string // member -> state, or "" for not in the table
	}
	dead := func(id ID) *Message { return &Message{Kind: KindDead, From: "n1", Target: id, Inc: 1} }
	cases := []struct {
		name  string
		steps []step
	}{
		{"a dead member of the base table", []step{
			{0, dead("n4"), map[ID]string{"n4": "dead"}},
			{59 * time.Minute, nil, map[ID]string{"n4": "dead"}},
			{61 * time.Minute, nil, map[ID]string{"n4": ""}},
			{62 * time.Minute, &Message{Kind: KindAlive, From: "n4", Target: "n4", Inc: 2}, map[ID]string{"n4": "alive"}},
		}},
		{"a joiner that left", []step{
			{0, &Message{Kind: KindAlive, From: "j", Target: "j", Inc: 1}, map[ID]string{"j": "alive"}},
			{time.Second, &Message{Kind: KindLeave, From: "j", Target: "j", Inc: 1}, map[ID]string{"j": "left"}},
			{62 * time.Minute, nil, map[ID]string{"j": ""}},
		}},
		{"dead, then back and dead again: the clock starts again", []step{
			{0, dead("n4"), map[ID]string{"n4": "dead"}},
			{30 * time.Minute, &Message{Kind: KindAlive, From: "n4", Target: "n4", Inc: 2}, map[ID]string{"n4": "alive"}},
			{40 * time.Minute, &Message{Kind: KindDead, From: "n1", Target: "n4", Inc: 2}, map[ID]string{"n4": "dead"}},
			{61 * time.Minute, nil, map[ID]string{"n4": "dead"}},
			{101 * time.Minute, nil, map[ID]string{"n4": ""}},
		}},
		{"alive members stay", []step{
			{0, nil, nil},
			{5 * time.Hour, nil, map[ID]string{"n1": "alive", "n2": "alive"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, nil)
			var forgotten []ID
			f.c.cfg.OnEvent = func(e Event) {
				if e.Forgotten {
					forgotten = append(forgotten, e.ID)
				}
			}
			start := f.clock.t
			for _, s := range tc.steps {
				for f.clock.set(f.c.Next()); f.clock.t.Before(start.Add(s.at)); f.clock.set(f.c.Next()) {
					f.c.Tick()
				}
				f.clock.set(start.Add(s.at))
				f.c.Tick()
				if s.msg != nil {
					f.c.Receive(s.msg.From, s.msg)
				}
				for id, want := range s.want {
					m, ok := f.c.Member(id)
					got := ""
					if ok {
						got = m.State.String()
					}
					inEntries := slices.ContainsFunc(f.c.Entries(), func(e Entry) bool { return e.ID == id })
					if got != want || inEntries != (want != "") {
						t.Fatalf("at +%s %s is %q (in Entries: %v), want %q", s.at, id, got, inEntries, want)
					}
					if want == "" && !slices.Contains(forgotten, id) {
						t.Fatalf("no forgotten event for %s", id)
					}
				}
			}
			if got := len(f.c.Entries()); got != f.c.size() {
				t.Fatalf("Entries has %d, size %d", got, f.c.size())
			}
			for _, id := range f.c.Watched() {
				if m, ok := f.c.Member(id); !ok || !live(m.State) {
					t.Fatalf("watches %s, which is %v", id, m.State)
				}
			}
		})
	}
}

// dialFixture returns a core with Watchers 1, a DialTimeout of dial and
// Connected answering connected, and its one watched member, after the
// tick that sends the first ping (no other probe or heartbeat due for an
// hour; nothing recorded).
func dialFixture(t *testing.T, dial time.Duration, connected bool) (*fixture, ID) {
	t.Helper()
	f := newFixture(t, 8, func(c *Config) {
		c.Watchers = 1
		c.DialTimeout = dial
		c.Connected = func(ID) bool { return connected }
	})
	target := f.c.Watched()[0]
	f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	f.c.nextProbe = f.clock.t.Add(time.Hour)
	f.c.wanted = f.c.Next()
	f.tr.out = nil
	return f, target
}

// TestDialAllowance: a ping that must dial first (no connection to the
// target is open) is given DialTimeout more, in the probe's direct round,
// its ping-req round and a helper's relayed ping; one on an open
// connection is not.
func TestDialAllowance(t *testing.T) {
	const dial = 2 * time.Second
	cases := []struct {
		name      string
		connected bool
		wait      time.Duration // after the direct ping, and again after the ping-reqs
		wantReqs  bool          // the direct round ended
		wantSusp  bool          // the indirect round ended, helpers nacking
	}{
		{name: "connected: the probe timeout alone", connected: true, wait: 400*time.Millisecond + 400*time.Millisecond, wantReqs: true, wantSusp: true},
		{name: "dialling: not timed out at the probe timeout", wait: 800 * time.Millisecond},
		{name: "dialling: timed out once the dial's allowance is spent", wait: 800*time.Millisecond + dial, wantReqs: true, wantSusp: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, target := dialFixture(t, dial, tc.connected)
			f.clock.advance(tc.wait)
			f.c.wanted = f.clock.t
			f.c.Tick()
			reqs := f.tr.take(KindPingReq)
			if got := len(reqs) > 0; got != tc.wantReqs {
				t.Fatalf("ping-reqs after %v: %d, want any: %v", tc.wait, len(reqs), tc.wantReqs)
			}
			for _, r := range reqs {
				if r.m.Target != target {
					t.Fatalf("ping-req about %s, want %s", r.m.Target, target)
				}
				f.c.Receive(r.to, &Message{Kind: KindNack, From: r.to, Seq: r.m.Seq})
			}
			if got := len(f.tr.take(KindSuspect)) > 0; got != tc.wantSusp {
				t.Fatalf("suspected: %v, want %v", got, tc.wantSusp)
			}
		})
	}

	// A helper's relayed ping: it nacks at the probe timeout on an open
	// connection, at the probe timeout plus the allowance when it dials.
	for _, connected := range []bool{true, false} {
		f := newFixture(t, 8, func(c *Config) {
			c.DialTimeout = dial
			c.Connected = func(ID) bool { return connected }
		})
		f.c.nextProbe, f.c.nextHeartbeat = f.clock.t.Add(time.Hour), f.clock.t.Add(time.Hour)
		f.c.wanted = f.c.Next()
		f.c.Receive("n1", &Message{Kind: KindPingReq, From: "n1", Target: "n2", Seq: 7})
		f.tr.out = nil
		f.clock.advance(400 * time.Millisecond)
		f.c.wanted = f.clock.t
		f.c.Tick()
		if nacks := f.tr.take(KindNack); (len(nacks) == 1) != connected {
			t.Fatalf("connected %v: nacks at the probe timeout %+v", connected, nacks)
		}
		f.clock.advance(dial)
		f.c.wanted = f.clock.t
		f.c.Tick()
		if nacks := f.tr.take(KindNack); (len(nacks) == 1) == connected {
			t.Fatalf("connected %v: nacks after the dial's allowance %+v", connected, nacks)
		}
	}
}

// TestWatchedBy: with the same table on every node, a member watches X
// exactly when X counts it among its watchers, whether the members are
// in the base table or joined since (the extra entries), and with a dead
// member left out of both.
func TestWatchedBy(t *testing.T) {
	var base []Entry
	for i := range 10 {
		base = append(base, Entry{ID: ID(fmt.Sprintf("n%d", i)), State: StateAlive, Inc: 1})
	}
	tbl := NewTable(base)
	var ids []ID
	for _, e := range base {
		ids = append(ids, e.ID)
	}
	for i := range 6 {
		ids = append(ids, ID(fmt.Sprintf("j%d", i)))
	}
	dead := ID("n4")
	cores := map[ID]*Core{}
	for _, self := range ids {
		c := New(Config{Self: self, Inc: 1, Clock: &fakeClock{t: time.Unix(1000, 0)}}, &recorder{}, tbl)
		for _, j := range ids[10:] {
			c.Receive(j, &Message{Kind: KindAlive, From: j, Target: j, Inc: 1})
		}
		c.Receive("n1", &Message{Kind: KindDead, From: "n1", Target: dead, Inc: 1})
		cores[self] = c
	}
	for _, x := range ids {
		if x == dead {
			continue
		}
		var want []ID
		for _, y := range ids {
			if y != dead && slices.Contains(cores[y].Watched(), x) {
				want = append(want, y)
			}
		}
		got := cores[x].WatchedBy()
		if len(got) != 3 || !sameSet(got, want) {
			t.Fatalf("%s is watched by %v, its WatchedBy says %v", x, want, got)
		}
		if slices.Contains(got, dead) || slices.Contains(cores[x].Watched(), dead) {
			t.Fatalf("%s: the dead %s among watchers %v or watched %v", x, dead, got, cores[x].Watched())
		}
	}
}

func sameSet(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// TestBuddySystem: a suspect hears of its suspicion directly, from its
// accuser and with every ping of its watchers (Lifeguard's buddy
// system), and its refutation goes directly to the accuser as well as to
// all; a member accused on a refused connection is not told (no process
// listens there).
func TestBuddySystem(t *testing.T) {
	f := newFixture(t, 8, func(c *Config) { c.Watchers = 1 })
	target := f.c.Watched()[0]
	f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	f.tr.take(KindPing)
	f.clock.advance(f.c.cfg.ProbeTimeout)
	f.c.wanted = f.clock.t
	f.c.Tick()
	for _, r := range f.tr.take(KindPingReq) {
		f.c.Receive(r.to, &Message{Kind: KindNack, From: r.to, Seq: r.m.Seq})
	}
	sus := f.tr.take(KindSuspect)
	if len(sus) != 2 || sus[0].to != "" || sus[1].to != target || sus[1].m.Target != target {
		t.Fatalf("accusation sent as %+v, want published and sent to %s", sus, target)
	}
	// The next probe of the suspect carries the notice.
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	if sus := f.tr.take(KindSuspect); len(sus) != 1 || sus[0].to != target || sus[0].m.Inc != 1 {
		t.Fatalf("probe of a suspect sent %+v, want a notice to %s", sus, target)
	}
	if p := f.tr.take(KindPing); len(p) != 1 || p[0].to != target {
		t.Fatalf("pings %+v, want one to %s", p, target)
	}
	// A notice at an incarnation already refuted is answered with an
	// Alive to the accuser only.
	g := newFixture(t, 4, nil)
	g.c.Receive("n1", &Message{Kind: KindSuspect, From: "n1", Target: "n0", Inc: 1})
	g.tr.out = nil
	g.c.Receive("n2", &Message{Kind: KindSuspect, From: "n2", Target: "n0", Inc: 1})
	if a := g.tr.take(KindAlive); len(g.tr.out) != 0 || len(a) != 1 || a[0].to != "n2" || a[0].m.Inc != g.c.Inc() {
		t.Fatalf("stale notice answered with %+v (and %+v), want an Alive at %d to n2", a, g.tr.out, g.c.Inc())
	}
	// On a refused connection, the accusation is published only.
	h := newFixture(t, 8, func(c *Config) { c.RefusalHold = -1 })
	h.c.Evidence("n5", EvidenceRefused)
	if sus := h.tr.take(KindSuspect); len(sus) != 1 || sus[0].to != "" {
		t.Fatalf("refused: accusation sent as %+v, want published only", sus)
	}
}

// TestPingReqRoundWaitsForDiallingHelpers: a ping-req round with no nack
// by its timeout waits DialTimeout more (its helpers may be dialling the
// target), concludes at the first nack after, and with none accuses
// nobody; a round with a nack by its timeout concludes then.
func TestPingReqRoundWaitsForDiallingHelpers(t *testing.T) {
	const dial = 2 * time.Second
	for _, tc := range []struct {
		name     string
		nackAt   time.Duration // after the ping-reqs; 0: none
		wantSusp bool
		wantAt   time.Duration // when the round ends
	}{
		{name: "a nack in time", nackAt: 500 * time.Millisecond, wantSusp: true, wantAt: 800 * time.Millisecond},
		{name: "a late nack", nackAt: 1500 * time.Millisecond, wantSusp: true, wantAt: 1500 * time.Millisecond},
		{name: "no nack", wantAt: 800*time.Millisecond + dial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, target := dialFixture(t, dial, true)
			f.clock.advance(400 * time.Millisecond)
			f.c.wanted = f.clock.t
			f.c.Tick()
			reqs := f.tr.take(KindPingReq)
			if len(reqs) == 0 {
				t.Fatal("no ping-req")
			}
			start := f.clock.t
			ended := func() bool {
				return !slices.ContainsFunc(f.c.probes, func(p *probe) bool { return p.target == target })
			}
			for !ended() {
				next := f.c.Next()
				if tc.nackAt > 0 && next.After(start.Add(tc.nackAt)) && f.clock.t.Before(start.Add(tc.nackAt)) {
					f.clock.set(start.Add(tc.nackAt))
					f.c.Receive(reqs[0].to, &Message{Kind: KindNack, From: reqs[0].to, Seq: reqs[0].m.Seq})
					continue
				}
				if f.clock.since(start) > time.Minute {
					t.Fatal("the round never ended")
				}
				f.clock.set(next)
				f.c.wanted = next
				f.c.Tick()
			}
			if got := f.clock.since(start); got != tc.wantAt {
				t.Fatalf("round ended %v after the ping-reqs, want %v", got, tc.wantAt)
			}
			if got := len(f.tr.take(KindSuspect)) > 0; got != tc.wantSusp {
				t.Fatalf("suspected: %v, want %v", got, tc.wantSusp)
			}
		})
	}
}

// TestDialled: once the dial of a ping is done, the ping is timed by
// ProbeTimeout from then, not by the dial's whole allowance: the probe's
// direct ping and a helper's relayed one.
func TestDialled(t *testing.T) {
	const dial = 2 * time.Second
	f, target := dialFixture(t, dial, false)
	f.c.Receive("n1", &Message{Kind: KindPingReq, From: "n1", Target: "n2", Seq: 7})
	f.tr.out = nil
	f.clock.advance(300 * time.Millisecond)
	f.c.Dialled(target)
	f.c.Dialled("n2")
	if got, want := f.c.Next(), f.clock.t.Add(400*time.Millisecond); !got.Equal(want) {
		t.Fatalf("next timer at %v after the dials, want %v", got.Sub(f.clock.t), want.Sub(f.clock.t))
	}
	f.clock.advance(400 * time.Millisecond)
	f.c.wanted = f.clock.t
	f.c.Tick()
	if reqs := f.tr.take(KindPingReq); len(reqs) == 0 {
		t.Fatal("the direct ping did not time out 400 ms after its dial")
	}
	if nacks := f.tr.take(KindNack); len(nacks) != 1 || nacks[0].to != "n1" {
		t.Fatalf("nacks %+v, want one to n1 400 ms after the dial", nacks)
	}
}

// TestHelpers: a ping-req goes first to the target's other watchers
// (connected to it), then to members this node is connected to, then to
// any; never to this node or the target.
func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connected int // members (not the target's watchers) this node is connected to
	}{
		{name: "watchers and a connected member", connected: 1},
		{name: "watchers and any member", connected: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conn []ID
			f := newFixture(t, 12, func(c *Config) {
				c.Watchers = 3
				c.Connected = func(id ID) bool { return slices.Contains(conn, id) }
			})
			target := f.c.Watched()[0]
			watchers := f.c.neighbours(target, true)
			if !slices.Contains(watchers, "n0") || len(watchers) != 3 {
				t.Fatalf("the target's watchers %v do not include n0", watchers)
			}
			for _, id := range f.ids[1:] {
				if len(conn) < tc.connected && id != target && !slices.Contains(watchers, id) {
					conn = append(conn, id)
				}
			}
			f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
			f.clock.set(f.c.nextProbe)
			f.c.wanted = f.clock.t
			f.c.Tick()
			for _, s := range f.tr.take(KindPing) {
				if s.to != target {
					f.c.Receive(s.to, &Message{Kind: KindAck, From: s.to, Target: s.to, Seq: s.m.Seq, Inc: 1})
				}
			}
			f.clock.advance(400*time.Millisecond + f.c.cfg.DialTimeout) // not connected to the target either
			f.c.wanted = f.clock.t
			f.c.Tick()
			var got []ID
			for _, r := range f.tr.take(KindPingReq) {
				got = append(got, r.to)
			}
			if len(got) != 3 {
				t.Fatalf("ping-reqs to %v, want 3", got)
			}
			for _, w := range watchers {
				if w != "n0" && !slices.Contains(got, w) {
					t.Fatalf("ping-reqs to %v: the target's watcher %s left out", got, w)
				}
			}
			for _, id := range conn {
				if !slices.Contains(got, id) {
					t.Fatalf("ping-reqs to %v: connected %s left out", got, id)
				}
			}
			if slices.Contains(got, "n0") || slices.Contains(got, target) {
				t.Fatalf("ping-reqs to %v", got)
			}
		})
	}
}

// TestNoBuddyNoticeAfterARefusal: the watchers of a member suspected on a
// refused connection ping it as before but send no notice with the ping.
func TestNoBuddyNoticeAfterARefusal(t *testing.T) {
	f := newFixture(t, 8, func(c *Config) { c.Watchers = 1; c.SuspicionMin = time.Minute })
	target := f.c.Watched()[0]
	f.c.Evidence(target, EvidenceRefused)
	if f.state(t, target).State != StateSuspect {
		t.Fatalf("%s not suspect after a refusal", target)
	}
	f.tr.out = nil
	f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	if p := f.tr.take(KindPing); len(p) != 1 || p[0].to != target {
		t.Fatalf("pings %+v, want one to %s", p, target)
	}
	if sus := f.tr.take(KindSuspect); len(sus) != 0 {
		t.Fatalf("notices %+v to a member whose port refused", sus)
	}
}

// TestRefusalPublishedAtOnce: of a member's watchers, the Confirmations-1
// nearest it on the ring (at least one) publish a refusal at once; each
// member that checked the port counts its own, which makes Confirmations.
// The next watcher sends its refusal to them directly, which they need,
// and publishes it RefusalHold/2 later, for the members that cannot
// check; the member's other watchers hold theirs back, as members that do
// not watch it do. A suspicion that the refusals ended needs no death
// published; one that timed out does.
func TestRefusalPublishedAtOnce(t *testing.T) {
	const hold = 400 * time.Millisecond
	const (
		atOnce = "at once"
		later  = "told the first watchers, published later"
		held   = "held"
	)
	for _, tc := range []struct {
		name          string
		place         int // this node's place among the target's watchers, -1: not one
		confirmations int
		want          string
	}{
		{"nearest watcher", 0, 2, atOnce},
		{"second watcher", 1, 2, later},
		{"third watcher", 2, 2, held},
		{"not a watcher", -1, 2, held},
		{"second watcher, three confirmations", 1, 3, atOnce},
		{"third watcher, three confirmations", 2, 3, later},
		{"nearest watcher, one confirmation", 0, 1, atOnce},
		{"second watcher, one confirmation", 1, 1, held},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tweak := func(c *Config) { c.Watchers, c.Confirmations, c.RefusalHold = 3, tc.confirmations, hold }
			f := newFixture(t, 16, tweak)
			var target ID
			var watchers []ID
			for _, id := range f.ids[1:] {
				if w := f.c.neighbours(id, true); slices.Index(w, "n0") == tc.place && len(w) == 3 {
					target, watchers = id, w
					break
				}
			}
			if target == "" {
				t.Fatalf("no member has n0 at place %d among its watchers", tc.place)
			}
			f.c.Evidence(target, EvidenceRefused)
			if st := f.state(t, target).State; st != StateSuspect {
				t.Fatalf("%s is %s after a refusal, want suspect", target, st)
			}
			published, direct := 0, []ID{}
			for _, o := range f.tr.take(KindSuspect) {
				if !o.m.Refused || o.m.Target != target || o.m.From != "n0" {
					t.Fatalf("sent %+v, want only refused accusations of %s by n0", o, target)
				}
				if o.to == "" {
					published++
				} else {
					direct = append(direct, o.to)
				}
			}
			if got := published == 1; got != (tc.want == atOnce) || published > 1 {
				t.Fatalf("published %d refusals at once, want one: %v", published, tc.want == atOnce)
			}
			wantDirect := []ID{}
			if tc.want == later {
				wantDirect = watchers[:tc.place]
			}
			if !slices.Equal(direct, wantDirect) {
				t.Fatalf("sent its refusal directly to %v, want %v (the watchers %v)", direct, wantDirect, watchers)
			}
			if tc.want == later {
				// Overloaded, it accuses nobody, directly or not.
				o := newFixture(t, 16, tweak)
				o.c.lhm = o.c.cfg.AccuseLimit
				o.c.Evidence(target, EvidenceRefused)
				if len(o.tr.out) != 0 {
					t.Fatalf("overloaded, sent %+v, want nothing", o.tr.out)
				}
			}
			f.clock.advance(hold / 2)
			f.c.Tick()
			wantLater := 0
			if tc.want == later {
				wantLater = 1
			}
			if got := len(f.tr.take(KindSuspect)); got != wantLater {
				t.Fatalf("published %d refusals after %v, want %d", got, hold/2, wantLater)
			}
			if tc.want != atOnce {
				return
			}
			if tc.confirmations == 1 {
				// Its own refusal is proof enough: dead, and the
				// accusation published says so everywhere.
				if st, d := f.state(t, target).State, f.tr.take(KindDead); st != StateDead || len(d) != 0 {
					t.Fatalf("%s is %s, deaths published %+v; want dead, none", target, st, d)
				}
				return
			}
			// With no other refusal, the suspicion times out, and this
			// node, its first accuser, publishes the death.
			g := newFixture(t, 16, tweak)
			g.c.Evidence(target, EvidenceRefused)
			g.clock.set(g.state(t, target).Deadline)
			g.c.Tick()
			if d := g.tr.take(KindDead); g.state(t, target).State != StateDead || len(d) != 1 || d[0].m.Target != target {
				t.Fatalf("after the timeout %s is %s, deaths published %+v, want one", target, g.state(t, target).State, d)
			}
			// The other refusals arrive: dead at once, nothing published.
			for _, id := range f.ids[1:] {
				if e, _ := f.c.get(target); e.State == StateDead {
					break
				}
				if id != target {
					f.c.Receive(id, &Message{Kind: KindSuspect, From: id, Target: target, Inc: 1, Refused: true})
					f.c.Tick()
				}
			}
			if st := f.state(t, target).State; st != StateDead {
				t.Fatalf("%s is %s after %d refusals, want dead", target, st, tc.confirmations)
			}
			if d := f.tr.take(KindDead); len(d) != 0 {
				t.Fatalf("death published %+v after the refusals ended the suspicion", d)
			}
		})
	}
}

// TestHeldRefusal: a member that is not the target's watcher holds its
// refused accusation back for RefusalHold to twice that, and publishes it
// then only if it is still needed: fewer than Confirmations others
// published theirs, no death was published, the member did not refute.
// The suspicion runs on this node all the while, and a node whose
// accusation was not published does not publish the death.
func TestHeldRefusal(t *testing.T) {
	const hold = 200 * time.Millisecond
	refused := func(from ID) *Message {
		return &Message{Kind: KindSuspect, From: from, Target: "", Inc: 1, Refused: true}
	}
	cases := []struct {
		name string
		// before and after are received before and after this node's
		// own refusal (Target filled in).
		before, after []*Message
		wantPublished bool
		wantDead      bool // dead on this node at once
		wantAlive     bool // alive in the end (it refuted)
	}{
		{"nobody else refused: published", nil, nil, true, false, false},
		{"one other refusal: published", []*Message{refused("n2")}, nil, true, true, false},
		{"two refusals heard first: dropped", []*Message{refused("n2"), refused("n3")}, nil, false, true, false},
		{"two refusals heard during the hold: dropped", nil, []*Message{refused("n2"), refused("n3")}, false, true, false},
		{"one refusal before, one during: dropped", []*Message{refused("n2")}, []*Message{refused("n3")}, false, true, false},
		{"the same member twice: published", nil, []*Message{refused("n2"), refused("n2")}, true, true, false},
		{"a plain suspicion is no refusal: published", nil, []*Message{
			{Kind: KindSuspect, From: "n2", Inc: 1}, {Kind: KindSuspect, From: "n3", Inc: 1}}, true, false, false},
		{"a death published: dropped", nil, []*Message{{Kind: KindDead, From: "n2", Inc: 1}}, false, true, false},
		{"the member refuted: dropped", nil, []*Message{{Kind: KindAlive, Inc: 2}}, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, func(c *Config) { c.RefusalHold = hold })
			var target ID
			for _, id := range f.ids[1:] {
				if !slices.Contains(f.c.Watched(), id) && id != "n2" && id != "n3" {
					target = id
				}
			}
			feed := func(ms []*Message) {
				for _, m := range ms {
					m := *m
					m.Target = target
					from := m.From
					if m.Kind == KindAlive {
						m.From, from = target, target
					}
					f.c.Receive(from, &m)
				}
			}
			start := f.clock.t
			feed(tc.before)
			f.c.Evidence(target, EvidenceRefused)
			if st := f.state(t, target).State; st != StateSuspect {
				t.Fatalf("%s is %s after this node's refusal, want suspect", target, st)
			}
			if s := f.tr.take(KindSuspect); len(s) != 0 {
				t.Fatalf("published at once: %+v", s)
			}
			feed(tc.after)
			if tc.wantDead {
				f.c.Tick()
				if st := f.state(t, target).State; st != StateDead {
					t.Fatalf("%s is %s, want dead at once", target, st)
				}
			}
			if next := f.c.Next(); next.Before(start.Add(hold)) {
				t.Fatalf("next timer in %s, before the hold's %s", next.Sub(start), hold)
			}
			f.clock.set(start.Add(2 * hold))
			f.c.wanted = f.clock.t
			f.c.Tick()
			s := f.tr.take(KindSuspect)
			if got := len(s) == 1 && s[0].to == "" && s[0].m.Refused && s[0].m.Target == target && s[0].m.From == "n0"; got != tc.wantPublished || len(s) > 1 {
				t.Fatalf("published %+v, want a refused accusation: %v", s, tc.wantPublished)
			}
			// The death, on this node, and who publishes it.
			f.clock.advance(time.Minute)
			f.c.wanted = f.clock.t
			f.c.Tick()
			d := f.tr.take(KindDead)
			if tc.wantAlive {
				if st := f.state(t, target).State; st != StateAlive || len(d) != 0 {
					t.Fatalf("after the refutation %s is %s, deaths published %+v", target, st, d)
				}
				return
			}
			if st := f.state(t, target).State; st != StateDead {
				t.Fatalf("%s is %s a minute on", target, st)
			}
			if len(d) != 0 && !tc.wantPublished {
				t.Fatalf("death published %+v by a node whose accusation was held back", d)
			}
		})
	}
}

// runSilent runs f's core, its timers firing on time, until the clock
// reads until or this node suspects target, which leaves every ping
// unanswered while every other member acks and every helper nacks (a
// member that is up but silent to this node). It returns when this node
// suspected target, or the zero time.
func runSilent(t *testing.T, f *fixture, target ID, until time.Time) time.Time {
	t.Helper()
	for {
		next := f.c.Next()
		if next.After(until) {
			f.clock.set(until)
			return time.Time{}
		}
		f.clock.set(next)
		f.c.Tick()
		for _, s := range f.tr.take(KindPing) {
			if s.to != target {
				f.c.Receive(s.to, &Message{Kind: KindAck, From: s.to, Target: s.to, Seq: s.m.Seq, Inc: 1})
			}
		}
		for _, s := range f.tr.take(KindPingReq) {
			f.c.Receive(s.to, &Message{Kind: KindNack, From: s.to, Seq: s.m.Seq})
		}
		for _, s := range f.tr.take(KindSuspect) {
			if s.m.Target == target && s.m.From == "n0" {
				return f.clock.t
			}
		}
		f.tr.out = nil
	}
}

// TestJoinGrace: a member that joined (new, or back from dead) is not
// accused on unanswered probes for JoinGrace, but is on a refused
// connection; members that this node learnt in its own first JoinGrace,
// and a member alive again after a refuted suspicion, have no grace.
func TestJoinGrace(t *testing.T) {
	const grace = 10 * time.Second
	// A member silent from the start is suspected within this of it on
	// a node that watches it (a probe period, its timeouts).
	const detect = 3 * time.Second
	cases := []struct {
		name     string
		runFirst time.Duration // how long this node runs before the join
		join     func(f *fixture, id ID)
		refused  bool // the member's port refuses this node's re-dial
		grace    bool // not suspected on probes within the grace
	}{
		{name: "a new member", runFirst: grace, grace: true, join: func(f *fixture, id ID) {
			f.c.Receive(id, &Message{Kind: KindAlive, From: id, Target: id, Inc: 1})
		}},
		{name: "a member back from dead", runFirst: grace, grace: true, join: func(f *fixture, id ID) {
			f.c.Receive("n1", &Message{Kind: KindDead, From: "n1", Target: id, Inc: 1})
			f.c.Receive(id, &Message{Kind: KindAlive, From: id, Target: id, Inc: 2})
		}},
		{name: "a new member learnt in a table exchange", runFirst: grace, grace: true, join: func(f *fixture, id ID) {
			f.c.Receive("n1", &Message{Kind: KindSyncResp, From: "n1", News: []Entry{{ID: id, State: StateAlive, Inc: 1}}})
		}},
		{name: "a new member whose port refused", runFirst: grace, refused: true, join: func(f *fixture, id ID) {
			f.c.Receive(id, &Message{Kind: KindAlive, From: id, Target: id, Inc: 1})
		}},
		{name: "a new member learnt in this node's first seconds", runFirst: grace - 2*time.Second, join: func(f *fixture, id ID) {
			f.c.Receive(id, &Message{Kind: KindAlive, From: id, Target: id, Inc: 1})
		}},
		{name: "a member alive again after a refuted suspicion", runFirst: grace, join: func(f *fixture, id ID) {
			f.c.Receive("n1", &Message{Kind: KindSuspect, From: "n1", Target: id, Inc: 1})
			f.c.Receive(id, &Message{Kind: KindAlive, From: id, Target: id, Inc: 2})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 5, func(c *Config) { c.Watchers = 8; c.JoinGrace = grace })
			id := ID("x")
			if !strings.HasPrefix(tc.name, "a new") {
				id = "n3"
			}
			runSilent(t, f, "", f.clock.t.Add(tc.runFirst))
			tc.join(f, id)
			if !slices.Contains(f.c.Watched(), id) {
				t.Fatalf("%s is not watched: %v", id, f.c.Watched())
			}
			joined := f.clock.t
			if tc.refused {
				f.c.Evidence(id, EvidenceRefused)
				if st := f.state(t, id).State; st != StateSuspect {
					t.Fatalf("%s is %s after its port refused, want suspect", id, st)
				}
				return
			}
			if !tc.grace {
				if at := runSilent(t, f, id, joined.Add(detect)); at.IsZero() {
					t.Fatalf("not suspected within %s of its join", detect)
				}
				return
			}
			if at := runSilent(t, f, id, joined.Add(grace)); !at.IsZero() {
				t.Fatalf("suspected %s after its join, within the grace", at.Sub(joined))
			}
			if at := runSilent(t, f, id, joined.Add(grace+detect)); at.IsZero() {
				t.Fatalf("not suspected within %s of the grace's end", detect)
			}
			if f.c.LHM() != 0 {
				t.Fatalf("LHM %d: the rounds were not those of a healthy node", f.c.LHM())
			}
		})
	}
}

// TestCannotCheckAsksForRefusals: a member that heard a refusal but
// cannot check the port itself asks, once, the suspect's neighbours it is
// connected to for theirs (the last publishing watcher first, which
// publishes only RefusalHold/2 later), or that watcher alone when it is
// connected to none; a refusal that comes back ends the suspicion with no
// death published. Without a refusal to build on, or with proof already,
// it asks nobody.
func TestCannotCheckAsksForRefusals(t *testing.T) {
	cases := []struct {
		name      string
		refusals  int // refused accusations heard first: from the first watcher, then the last
		plain     bool
		connected func(f *fixture, target ID) []ID // nil: every member
		want      func(f *fixture, target ID) []ID
	}{
		{"connected to every member: the last watcher, then the others", 1, false, nil, func(f *fixture, target ID) []ID {
			_, last := f.c.refusers(target)
			w := f.c.neighbours(target, true)
			return []ID{last, w[2], f.c.neighbours(target, false)[0]}
		}},
		{"connected to none: the last watcher all the same", 1, false, func(*fixture, ID) []ID { return nil }, func(f *fixture, target ID) []ID {
			_, last := f.c.refusers(target)
			return []ID{last}
		}},
		{"connected to one member the suspect watches", 1, false, func(f *fixture, target ID) []ID {
			return []ID{f.c.neighbours(target, false)[1]}
		}, func(f *fixture, target ID) []ID { return []ID{f.c.neighbours(target, false)[1]} }},
		{"a plain suspicion: nobody", 0, true, nil, func(*fixture, ID) []ID { return nil }},
		{"proven already: nobody", 2, false, nil, func(*fixture, ID) []ID { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var connected []ID
			all := true
			f := newFixture(t, 16, func(c *Config) {
				c.Watchers, c.Confirmations, c.Helpers, c.RefusalHold = 3, 2, 3, 400*time.Millisecond
				c.Connected = func(id ID) bool { return all || slices.Contains(connected, id) }
			})
			var target ID
			for _, id := range f.ids[1:] {
				if !slices.Contains(f.c.neighbours(id, true), "n0") && !slices.Contains(f.c.neighbours(id, false), "n0") {
					target = id
					break
				}
			}
			first, last := f.c.refusers(target)
			if tc.connected != nil {
				all, connected = false, tc.connected(f, target)
			}
			if tc.plain {
				f.c.Receive(first[0], &Message{Kind: KindSuspect, From: first[0], Target: target, Inc: 1})
			}
			for i, by := range append(slices.Clone(first), last)[:tc.refusals] {
				f.c.Receive(by, &Message{Kind: KindSuspect, From: by, Target: target, Inc: 1, Refused: true})
				if i == 0 && f.state(t, target).State != StateSuspect {
					t.Fatalf("%s is %s after one refusal, want suspect", target, f.state(t, target).State)
				}
			}
			f.c.Tick()
			f.tr.out = nil
			f.c.CannotCheck(target)
			var asked []ID
			for _, o := range f.tr.out {
				if o.m.Kind != KindPingReq || o.to == "" || o.m.Target != target {
					t.Fatalf("sent %+v, want only ping-reqs about %s", o, target)
				}
				asked = append(asked, o.to)
			}
			if want := tc.want(f, target); !slices.Equal(asked, want) {
				t.Fatalf("asked %v, want %v (watchers %v, watched %v)", asked, want, f.c.neighbours(target, true), f.c.neighbours(target, false))
			}
			f.tr.out = nil
			f.c.CannotCheck(target)
			if len(f.tr.out) != 0 {
				t.Fatalf("asked again: %+v", f.tr.out)
			}
			if len(asked) == 0 {
				return
			}
			// The answer: a refusal, sent to this node alone.
			f.c.Receive(asked[0], &Message{Kind: KindSuspect, From: asked[0], Target: target, Inc: 1, Refused: true})
			f.c.Tick()
			if st, d := f.state(t, target).State, f.tr.take(KindDead); st != StateDead || len(d) != 0 {
				t.Fatalf("after the answer %s is %s, deaths published %+v; want dead, none", target, st, d)
			}
		})
	}
}

// TestPingReqAnsweredWithRefusal: a member that found the target's port
// refused answers a ping-req with its refusal, at once and to the
// requester alone, and pings nobody; without a refusal of the target's
// current incarnation it pings the target for the requester as before,
// and answers with the refusal (not a nack) if the port refuses it
// meanwhile.
func TestPingReqAnsweredWithRefusal(t *testing.T) {
	for _, tc := range []struct {
		name          string
		refusedBefore bool // this node found n3's port refused before the ping-req
		refuted       bool // then n3 refuted, at a higher incarnation
		overloaded    bool // this node, when it answers
		refusedAfter  bool // this node finds the port refused after it pinged n3
		wantRefusal   bool // n5 gets n3's refusal at incarnation 1
	}{
		{"port refused: the refusal", true, false, false, false, true},
		{"no refusal: a ping", false, false, false, false, false},
		{"refused, then the member refuted: a ping", true, true, false, false, false},
		{"port refused, this node overloaded: a ping", true, false, true, false, false},
		{"asked first, refused then: the refusal when it comes", false, false, false, true, true},
		{"asked first, refused then, this node overloaded: a nack", false, false, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, nil)
			if tc.refusedBefore {
				f.c.Evidence("n3", EvidenceRefused)
			}
			if tc.refuted {
				f.c.Receive("n3", &Message{Kind: KindAlive, From: "n3", Target: "n3", Inc: 2})
				if _, kept := f.c.refused["n3"]; kept {
					t.Fatal("the refusal of an incarnation refuted is kept")
				}
			}
			if tc.overloaded {
				f.c.lhm = f.c.cfg.AccuseLimit
			}
			f.tr.out = nil
			f.c.Receive("n5", &Message{Kind: KindPingReq, From: "n5", Target: "n3", Seq: 7})
			got := f.tr.out
			if tc.refusedBefore && tc.wantRefusal {
				if len(got) != 1 || got[0].to != "n5" || got[0].m.Kind != KindSuspect || !got[0].m.Refused || got[0].m.Target != "n3" || got[0].m.Inc != 1 {
					t.Fatalf("sent %+v, want n3's refusal at incarnation 1 to n5 alone, no ping", got)
				}
				return
			}
			if len(got) != 1 || got[0].to != "n3" || got[0].m.Kind != KindPing {
				t.Fatalf("sent %+v, want a ping to n3", got)
			}
			if !tc.refusedAfter {
				return
			}
			f.tr.out = nil
			f.c.Evidence("n3", EvidenceRefused)
			var toN5 []sent
			for _, o := range f.tr.out { // besides, it may publish, or tell other watchers
				if o.to == "n5" {
					toN5 = append(toN5, o)
				}
			}
			f.clock.advance(time.Minute)
			f.c.Tick()
			nacks := f.tr.take(KindNack)
			if tc.wantRefusal {
				if len(toN5) != 1 || toN5[0].m.Kind != KindSuspect || !toN5[0].m.Refused || toN5[0].m.Target != "n3" || toN5[0].m.Inc != 1 {
					t.Fatalf("sent n5 %+v after the refusal, want n3's refusal at incarnation 1", toN5)
				}
				if len(nacks) != 0 {
					t.Fatalf("nacked %+v after answering with the refusal", nacks)
				}
				return
			}
			if len(toN5) != 0 {
				t.Fatalf("overloaded, sent n5 %+v after the refusal, want nothing", toN5)
			}
			// The relayed ping ends as any other: a nack at its deadline.
			if len(nacks) != 1 || nacks[0].to != "n5" {
				t.Fatalf("nacked %+v, want one nack to n5", nacks)
			}
		})
	}
}
