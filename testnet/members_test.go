package testnet

import (
	"context"
	"sort"
	"testing"
	"time"
)

type memberOut struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	LastSeen    string `json:"last_seen"`
	Incarnation uint64 `json:"incarnation"`
	Self        bool   `json:"self"`
	// OffsetMS is how far the member's clock is ahead of d's; nil until
	// measured.
	OffsetMS *float64 `json:"offset_ms"`
}

// stateOn returns what node d's `members --json` says of peer id.
func stateOn(d *Daemon, id string) (memberOut, bool) {
	var ms []memberOut
	if err := d.JSON(&ms, "members", "--json"); err != nil {
		return memberOut{}, false
	}
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return memberOut{}, false
}

// waitAllSee polls every running node but skip until each shows id in
// state want, and returns how long the slowest took.
func waitAllSee(t *testing.T, nw *Network, skip *Daemon, id, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for _, d := range nw.Nodes {
		if d == skip || !d.Running() {
			continue
		}
		for {
			if m, ok := stateOn(d, id); ok && m.State == want {
				break
			}
			if time.Since(start) > limit {
				m, _ := stateOn(d, id)
				t.Fatalf("node %d sees %s as %q after %s, want %q", d.Index, id, m.State, limit, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// waitAllAlive waits until every running node sees every node alive, each
// within limit.
func waitAllAlive(t *testing.T, nw *Network, limit time.Duration) {
	t.Helper()
	for _, d := range nw.Nodes {
		waitAllSee(t, nw, nil, d.ID, "alive", limit)
	}
}

func TestE2EMembersKillAndRestart(t *testing.T) {
	nw := startNetwork(t, 5)
	victim := nw.Node(4)
	waitAllAlive(t, nw, 15*time.Second)
	before, _ := stateOn(nw.Node(1), victim.ID)
	victim.Kill() // kill -9
	// Its peers' re-dials are refused: dead everywhere within
	// milliseconds; the limit is a silent member's, with room.
	d := waitAllSee(t, nw, victim, victim.ID, "dead", 5*time.Second)
	t.Logf("kill -9 seen dead on every node after %s", d)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := victim.Start(ctx, nw.Node(1).TCPAddr()); err != nil {
		t.Fatal(err)
	}
	waitAllSee(t, nw, victim, victim.ID, "alive", 10*time.Second)
	after, _ := stateOn(nw.Node(1), victim.ID)
	if after.Incarnation <= before.Incarnation {
		t.Fatalf("incarnation %d after restart, was %d", after.Incarnation, before.Incarnation)
	}
}

func TestE2EMembersSIGSTOPAndLeave(t *testing.T) {
	nw := startNetwork(t, 4)
	waitAllAlive(t, nw, 15*time.Second)
	stopped := nw.Node(2)
	if err := stopped.Pause(); err != nil {
		t.Fatal(err)
	}
	d := waitAllSee(t, nw, stopped, stopped.ID, "dead", 5*time.Second)
	t.Logf("SIGSTOP seen dead on every node after %s", d)
	if err := stopped.Resume(); err != nil {
		t.Fatal(err)
	}
	waitAllSee(t, nw, stopped, stopped.ID, "alive", 10*time.Second)
	// The stopped node itself must not hold its own stall against the others.
	var ms []memberOut
	if err := stopped.JSON(&ms, "members", "--json"); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, m := range ms {
		states = append(states, m.State)
	}
	sort.Strings(states)
	for _, s := range states {
		if s == "dead" {
			t.Fatalf("after SIGCONT node 2 sees states %v: its own stall made others dead", states)
		}
	}

	leaver := nw.Node(3)
	r := leaver.Run("leave")
	if r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	if err := leaver.Wait(15 * time.Second); err != nil {
		t.Fatalf("daemon did not stop after leave: %v", err)
	}
	waitAllSee(t, nw, leaver, leaver.ID, "left", 2*time.Second)
}
