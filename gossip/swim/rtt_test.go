package swim

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// TestRTTEstimate: srtt + 4·rttvar by RFC 6298's gains, never under the
// floor nor over the cap.
func TestRTTEstimate(t *testing.T) {
	cases := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"no answer timed: the floor", nil, 400 * ms},
		{"fast answers: the floor", []time.Duration{2 * ms, 3 * ms, 1 * ms}, 400 * ms},
		{"one answer: rtt + 2·rtt", []time.Duration{200 * ms}, 600 * ms},
		{"steady answers narrow the deviation", []time.Duration{200 * ms, 200 * ms}, 200*ms + 4*75*ms},
		{"one slow answer moves srtt by an eighth", []time.Duration{200 * ms, 1000 * ms}, 300*ms + 4*275*ms},
		{"answers slower than the cap: the cap", []time.Duration{800 * ms}, 2 * time.Second},
		{"negative (a clock step): counted as 0", []time.Duration{-time.Second}, 400 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e rttEstimate
			for _, s := range tc.samples {
				e.sample(s)
			}
			if got := e.timeout(400*ms, 2*time.Second); got != tc.want {
				t.Fatalf("timeout %v, want %v", got, tc.want)
			}
		})
	}
}

// probeRound starts one probe of f's single watched member, answers it
// after answerAfter (never if negative), ticking every 10 ms for 3 s
// with no other probe started, and returns the ping-reqs the round sent;
// helpers nack them 400 ms later (their own relayed pings unanswered) if
// nack is set, else they stay silent.
func probeRound(t *testing.T, f *fixture, target ID, answerAfter time.Duration, nack bool) []sent {
	t.Helper()
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	f.c.nextProbe = f.clock.t.Add(time.Hour)
	pings := f.tr.take(KindPing)
	if len(pings) != 1 || pings[0].to != target {
		t.Fatalf("pings %+v, want one to %s", pings, target)
	}
	start := f.clock.t
	var reqs []sent
	var reqsAt time.Time
	for f.clock.since(start) < 3*time.Second {
		f.clock.advance(10 * ms)
		f.c.wanted = f.clock.t
		if answerAfter >= 0 && f.clock.since(start) == answerAfter {
			f.c.Receive(target, &Message{Kind: KindAck, From: target, Target: target, Seq: pings[0].m.Seq, Inc: 1})
		}
		if nack && len(reqs) > 0 && f.clock.since(reqsAt) == 400*ms {
			for _, r := range reqs {
				f.c.Receive(r.to, &Message{Kind: KindNack, From: r.to, Seq: r.m.Seq})
			}
		}
		f.c.Tick()
		if rs := f.tr.take(KindPingReq); len(rs) > 0 {
			reqs, reqsAt = append(reqs, rs...), f.clock.t
		}
	}
	f.tr.out = nil
	f.c.nextProbe = f.clock.t.Add(10 * ms)
	return reqs
}

// TestSlowAnswersStretchTheProbe: a member that always answers in
// 700 ms (a machine so loaded that every process waits its turn) is
// retried through helpers at first, which is how a probe meets a late
// answer it cannot yet expect; once the late answers are timed, the
// probe waits for them, and neither asks helpers nor accuses.
func TestSlowAnswersStretchTheProbe(t *testing.T) {
	f := newFixture(t, 8, func(c *Config) { c.Watchers = 1; c.LateSlack = time.Hour })
	target := f.c.Watched()[0]
	f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
	if reqs := probeRound(t, f, target, 700*ms, true); len(reqs) == 0 {
		t.Fatal("the first 700 ms answer did not outlast the 400 ms probe timeout: nothing tested")
	}
	for range 4 {
		probeRound(t, f, target, 700*ms, true)
	}
	if got := f.c.PingTimeout(); got <= 700*ms || got > f.c.cfg.MaxPingTimeout {
		t.Fatalf("ping timeout %v after answers of 700 ms, want over 700 ms and at most %v", got, f.c.cfg.MaxPingTimeout)
	}
	if got, want := f.c.indirectTimeout(), 2*f.c.PingTimeout(); got != want {
		t.Fatalf("ping-req round %v, want two pings' worth, %v", got, want)
	}
	if reqs := probeRound(t, f, target, 700*ms, true); len(reqs) != 0 {
		t.Fatalf("%d ping-reqs for an answer as late as the last five", len(reqs))
	}
	if m := f.state(t, target); m.State != StateAlive {
		t.Fatalf("the slow member is %s", m.State)
	}
}

// TestCappedTimeoutStillFindsTheSilent: answers slower than
// MaxPingTimeout stretch the probe to the cap and no further (its
// ping-req round to twice that), so a member that stops answering is
// still suspected within the capped rounds.
func TestCappedTimeoutStillFindsTheSilent(t *testing.T) {
	f := newFixture(t, 8, func(c *Config) { c.Watchers = 1; c.LateSlack = time.Hour; c.MaxPingTimeout = 800 * ms })
	target := f.c.Watched()[0]
	f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
	for range 3 {
		probeRound(t, f, target, 2*time.Second, false) // answered after the round ended
	}
	f.c.lhm = 0 // raised by the helpers' silence; the cap alone is under test
	if got := f.c.PingTimeout(); got != 800*ms {
		t.Fatalf("ping timeout %v after answers of 2 s, want the cap, 800 ms", got)
	}
	f.clock.set(f.c.nextProbe)
	f.c.wanted = f.clock.t
	f.c.Tick()
	f.c.nextProbe = f.clock.t.Add(time.Hour)
	start := f.clock.t
	f.tr.out = nil
	var suspectedAfter time.Duration
	for f.clock.since(start) < 5*time.Second && suspectedAfter == 0 {
		f.clock.advance(10 * ms)
		f.c.wanted = f.clock.t
		f.c.Tick()
		if reqs := f.tr.take(KindPingReq); len(reqs) > 0 {
			if f.clock.since(start) < 800*ms {
				t.Fatalf("ping-req %v after the ping, before the capped timeout", f.clock.since(start))
			}
			// One helper nacks, the others stay silent: the round
			// runs to its deadline.
			f.c.Receive(reqs[0].to, &Message{Kind: KindNack, From: reqs[0].to, Seq: reqs[0].m.Seq})
		}
		if len(f.tr.take(KindSuspect)) > 0 {
			suspectedAfter = f.clock.since(start)
		}
	}
	if suspectedAfter == 0 || suspectedAfter > 800*ms+2*800*ms {
		t.Fatalf("silent member suspected after %v, want within %v", suspectedAfter, 800*ms+2*800*ms)
	}
}

// TestWhichAnswersAreTimed: the target's own answer to a probe or a
// relayed ping is timed, even after its probe or relay ended; a helper's
// answer (two pings deep), the answer of a member held dead and the
// answer to a ping that waited for a dial are not.
func TestWhichAnswersAreTimed(t *testing.T) {
	// relayed: a ping-req from n1 about n2; answerer answers the relayed
	// ping after wait, ticking first.
	relayed := func(wait time.Duration, answerer ID) func(f *fixture) {
		return func(f *fixture) {
			f.c.Receive("n1", &Message{Kind: KindPingReq, From: "n1", Target: "n2", Seq: 7})
			ping := f.tr.take(KindPing)[0]
			f.clock.advance(wait)
			f.c.wanted = f.clock.t
			f.c.Tick()
			if nacks := len(f.tr.take(KindNack)); (nacks == 1) != (wait >= 400*ms) {
				t.Fatalf("%d nacks after %v", nacks, wait)
			}
			f.c.Receive(answerer, &Message{Kind: KindAck, From: answerer, Target: answerer, Seq: ping.m.Seq, Inc: 1})
		}
	}
	cases := []struct {
		name  string
		run   func(f *fixture)
		timed bool
	}{
		{"late answer to a relayed ping, after the nack", relayed(time.Second, "n2"), true},
		{"answer to a relayed ping in time", relayed(300*ms, "n2"), true},
		{"a late answer from another member than the one pinged", relayed(time.Second, "n3"), false},
		{"a late answer from a member held dead (a stopped process resumed)", func(f *fixture) {
			f.c.Receive("n1", &Message{Kind: KindPingReq, From: "n1", Target: "n2", Seq: 7})
			ping := f.tr.take(KindPing)[0]
			f.c.Receive("n3", &Message{Kind: KindDead, From: "n3", Target: "n2", Inc: 1})
			f.clock.advance(30 * time.Second)
			f.c.Receive("n2", &Message{Kind: KindAck, From: "n2", Target: "n2", Seq: ping.m.Seq, Inc: 1})
		}, false},
		{"the late answer of a member this node accused", func(f *fixture) {
			target := f.c.Watched()[0]
			probeRound(t, f, target, 2*time.Second, true) // the helpers' nacks end the round at 800 ms
			if m := f.state(t, target); m.State != StateSuspect {
				t.Fatalf("the accused member is %s", m.State)
			}
		}, false},
		{"a helper's answer to a probe", func(f *fixture) {
			f.clock.set(f.c.nextProbe)
			f.c.wanted = f.clock.t
			f.c.Tick()
			ping := f.tr.take(KindPing)[0]
			f.clock.advance(time.Second)
			f.c.Receive("n5", &Message{Kind: KindAck, From: "n5", Target: ping.to, Seq: ping.m.Seq, Inc: 1})
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8, func(c *Config) { c.Watchers = 1; c.LateSlack = time.Hour })
			f.c.nextHeartbeat = f.clock.t.Add(time.Hour)
			tc.run(f)
			if got := f.c.rtt.n > 0; got != tc.timed {
				t.Fatalf("answer timed: %v, want %v", got, tc.timed)
			}
		})
	}

	// A probe that waited for its dial is timed from the dial's end.
	f, target := dialFixture(t, 2*time.Second, false)
	f.clock.advance(1500 * ms) // the dial
	f.c.Dialled(target)
	f.clock.advance(100 * ms)
	seq := f.c.probes[0].seq
	f.c.Receive(target, &Message{Kind: KindAck, From: target, Target: target, Seq: seq, Inc: 1})
	if f.c.rtt.n != 1 || f.c.rtt.srtt != 100*ms {
		t.Fatalf("dialled probe timed %d times, srtt %v; want once, 100 ms", f.c.rtt.n, f.c.rtt.srtt)
	}
}
