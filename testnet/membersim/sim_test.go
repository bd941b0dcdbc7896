package membersim

import (
	"testing"
	"time"
)

// TestDeterministic: a seed gives the same report, and the silent members
// and joiners of a small network are found everywhere in time.
func TestDeterministic(t *testing.T) {
	p := DefaultParams(200)
	p.Silent, p.Joins, p.Stalls = 3, 2, 2
	p.Warmup, p.Spread, p.Tail = 5*time.Second, 5*time.Second, 12*time.Second
	a, b := Run(p), Run(p)
	if a.String() != b.String() {
		t.Fatalf("same seed, different reports:\n%s\n---\n%s", a, b)
	}
	t.Log("\n" + a.String())
	if a.DeadAll.Count != p.Silent || a.DeadAll.Missing != 0 {
		t.Fatalf("silent members dead everywhere: %s, want all %d", a.DeadAll, p.Silent)
	}
	if a.DeadAll.Max > 10 {
		t.Fatalf("a silent member took %.1f s to be dead everywhere", a.DeadAll.Max)
	}
	if a.JoinAll.Count != p.Joins {
		t.Fatalf("joins known everywhere: %s, want %d", a.JoinAll, p.Joins)
	}
	if a.FalseDead != 0 {
		t.Fatalf("%d false positives", a.FalseDead)
	}
	p.Seed = 2
	if c := Run(p); c.String() == a.String() {
		t.Fatal("another seed gave the same report")
	}
}
