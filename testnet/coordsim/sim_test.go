package coordsim

import (
	"reflect"
	"testing"
	"time"
)

// smallParams is a quick run: 50 nodes on World, 12 connections each.
func smallParams() Params {
	p := DefaultParams(50)
	p.Conns = 12
	p.Checkpoints = []time.Duration{30 * time.Second, 10 * time.Minute}
	return p
}

// TestEstimatesBetweenSitesConverge: after 10 minutes nearly every
// unconnected pair on two sites is estimated within 20 % and every node
// ranks a site mate first; after 30 s (a few updates) far fewer are.
func TestEstimatesBetweenSitesConverge(t *testing.T) {
	r, err := Run(smallParams())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.String())
	early, late := r.Points[0], r.Points[1]
	if late.Pairs == 0 || late.InterPairs+late.IntraPairs != late.Pairs {
		t.Fatalf("pairs: %d (%d between sites, %d within)", late.Pairs, late.InterPairs, late.IntraPairs)
	}
	if late.Inter20 < 0.9 {
		t.Errorf("after 10 min %.1f %% of pairs between sites within 20 %%, want 90 %%", 100*late.Inter20)
	}
	if late.NearestSite < 0.95 {
		t.Errorf("after 10 min %.1f %% of nodes rank a node of the nearest site first", 100*late.NearestSite)
	}
	if early.Inter20 > late.Inter20-0.2 {
		t.Errorf("no convergence: %.1f %% within 20 %% at %s, %.1f %% at %s", 100*early.Inter20, early.At, 100*late.Inter20, late.At)
	}
	if r.Resets != 0 {
		t.Errorf("%d coordinates reset", r.Resets)
	}
}

// TestSeedGivesTheSameReport: a run replays from its seed; another seed
// gives another run.
func TestSeedGivesTheSameReport(t *testing.T) {
	p := smallParams()
	a, err := Run(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(p)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different reports:\n%s\n%s", a, b)
	}
	p.Seed++
	c, _ := Run(p)
	if reflect.DeepEqual(a.Points, c.Points) {
		t.Fatal("another seed gave the same figures")
	}
}

func TestRunRejectsBadParams(t *testing.T) {
	for _, f := range []func(*Params){
		func(p *Params) { p.N = 1 },
		func(p *Params) { p.WAN = p.WAN[:2] },
		func(p *Params) { p.WAN = [][]float64{{0, 1}, {1, 0}, {2, 2}, {3, 3}, {4, 4}} },
		func(p *Params) { p.Checkpoints = nil },
	} {
		p := smallParams()
		f(&p)
		if _, err := Run(p); err == nil {
			t.Errorf("Run accepted %+v", p)
		}
	}
}
