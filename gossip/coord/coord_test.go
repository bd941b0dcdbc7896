package coord

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func vec(xs ...float64) []float64 { return xs }

func TestValidate(t *testing.T) {
	ok := Coordinate{Vec: vec(1, -2, 3), Error: 0.4, Adjustment: -0.5, Height: 0.2}
	with := func(f func(*Coordinate)) Coordinate {
		c := ok.Clone()
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Coordinate
		ok   bool
	}{
		{"valid", ok, true},
		{"at the bounds", Coordinate{Vec: make([]float64, MaxDimensions), Error: MaxErrorValue, Adjustment: -MaxMillis, Height: MaxMillis}, true},
		{"no vector", with(func(c *Coordinate) { c.Vec = nil }), false},
		{"too many dimensions", with(func(c *Coordinate) { c.Vec = make([]float64, MaxDimensions+1) }), false},
		{"NaN component", with(func(c *Coordinate) { c.Vec[1] = math.NaN() }), false},
		{"infinite component", with(func(c *Coordinate) { c.Vec[0] = math.Inf(1) }), false},
		{"1e308 component", with(func(c *Coordinate) { c.Vec[2] = 1e308 }), false},
		{"-1e308 component", with(func(c *Coordinate) { c.Vec[2] = -1e308 }), false},
		{"component past MaxMillis", with(func(c *Coordinate) { c.Vec[0] = MaxMillis + 1 }), false},
		{"NaN height", with(func(c *Coordinate) { c.Height = math.NaN() }), false},
		{"negative height", with(func(c *Coordinate) { c.Height = -1 }), false},
		{"1e308 height", with(func(c *Coordinate) { c.Height = 1e308 }), false},
		{"infinite adjustment", with(func(c *Coordinate) { c.Adjustment = math.Inf(-1) }), false},
		{"NaN error", with(func(c *Coordinate) { c.Error = math.NaN() }), false},
		{"negative error", with(func(c *Coordinate) { c.Error = -0.1 }), false},
		{"error past MaxErrorValue", with(func(c *Coordinate) { c.Error = MaxErrorValue + 1 }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tc.c, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// TestValidateFromWire: what a hostile peer can put in JSON either fails to
// decode or fails Validate.
func TestValidateFromWire(t *testing.T) {
	for _, s := range []string{
		`{"vec":[1e308,0],"err":0.1,"adj":0,"height":0.1}`,
		`{"vec":[0,0],"err":0.1,"adj":-1e300,"height":0.1}`,
		`{"vec":[0,0],"err":1e308,"adj":0,"height":0.1}`,
		`{"vec":[],"err":0.1,"adj":0,"height":0.1}`,
		`{"err":0.1}`,
		`{"vec":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"err":0.1}`,
		`{"vec":[NaN],"err":0.1}`,
		`{"vec":[1e309],"err":0.1}`,
	} {
		var c Coordinate
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			continue // not even a number: refused by the decoder
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", s, c)
		}
	}
}

func TestDistanceTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Coordinate
		want time.Duration
		ok   bool
	}{
		{"vector and heights", Coordinate{Vec: vec(0, 0), Height: 1}, Coordinate{Vec: vec(3, 4), Height: 2}, 8 * time.Millisecond, true},
		{"adjustments add", Coordinate{Vec: vec(0, 0), Height: 1, Adjustment: 1}, Coordinate{Vec: vec(3, 4), Height: 2, Adjustment: 0.5}, 9500 * time.Microsecond, true},
		{"adjustments that would make it negative are left out", Coordinate{Vec: vec(0, 0), Height: 1, Adjustment: -5}, Coordinate{Vec: vec(3, 4), Height: 2, Adjustment: -5}, 8 * time.Millisecond, true},
		{"same point: the heights", Coordinate{Vec: vec(2, 2), Height: 0.5}, Coordinate{Vec: vec(2, 2), Height: 0.25}, 750 * time.Microsecond, true},
		{"other dimensionality", Coordinate{Vec: vec(0, 0)}, Coordinate{Vec: vec(0, 0, 0)}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.a.DistanceTo(tc.b)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("DistanceTo = %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
			if back, _ := tc.b.DistanceTo(tc.a); back != got {
				t.Fatalf("not symmetric: %s one way, %s the other", got, back)
			}
		})
	}
}

func TestJSONRoundsToMicroseconds(t *testing.T) {
	c := Coordinate{Vec: vec(12.3456789, -0.0004), Error: 0.123456, Adjustment: -1.0000001, Height: 0.01}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"vec":[12.346,-0],"err":0.123,"adj":-1,"height":0.01}`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	var back Coordinate
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	d1, _ := c.DistanceTo(Coordinate{Vec: vec(0, 0)})
	d2, _ := back.DistanceTo(Coordinate{Vec: vec(0, 0)})
	if diff := d1 - d2; diff > 5*time.Microsecond || diff < -5*time.Microsecond {
		t.Fatalf("rounding moved the distance by %s", diff)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, cfg := range []Config{
		{Dimensionality: MaxDimensions + 1},
		{Dimensionality: -1},
		{CE: 2},
		{CC: -0.5},
		{MaxError: -1},
		{AdjustmentWindow: -1},
		{LatencyFilterSize: -3},
		{HeightMin: math.NaN()},
		{GravityRho: -1},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
	if _, err := NewClient(Config{}); err != nil {
		t.Fatalf("the zero Config: %v", err)
	}
}

func newTestClient(t *testing.T, seed uint64) *Client {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	c, err := NewClient(Config{Rand: r.Float64})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUpdateRefuses(t *testing.T) {
	good := DefaultConfig().newCoordinate()
	nan := good.Clone()
	nan.Vec[3] = math.NaN()
	huge := good.Clone()
	huge.Vec[0] = 1e308
	for _, tc := range []struct {
		name  string
		other Coordinate
		rtt   time.Duration
		want  error
	}{
		{"NaN coordinate", nan, 10 * time.Millisecond, ErrInvalid},
		{"1e308 coordinate", huge, 10 * time.Millisecond, ErrInvalid},
		{"other dimensionality", Coordinate{Vec: vec(1, 2, 3)}, 10 * time.Millisecond, ErrDimensions},
		{"zero RTT", good, 0, ErrRTT},
		{"negative RTT", good, -time.Millisecond, ErrRTT},
		{"RTT past MaxRTT", good, MaxRTT + time.Millisecond, ErrRTT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, 1)
			before := c.Coordinate()
			if _, err := c.Update("p", tc.other, tc.rtt); !errors.Is(err, tc.want) {
				t.Fatalf("Update: %v, want %v", err, tc.want)
			}
			after := c.Coordinate()
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused update moved the coordinate: %+v -> %+v", before, after)
			}
			if c.Resets() != 0 {
				t.Fatal("a refused update reset the coordinate")
			}
		})
	}
}

func TestLatencyFilterKeepsTheLeast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		samples []float64
		want    []float64 // the filter's answer after each sample
	}{
		{"one", 1, []float64{30, 20, 25}, []float64{30, 20, 25}},
		{"three", 3, []float64{30, 20, 25, 26, 27, 10}, []float64{30, 20, 20, 20, 25, 10}},
		{"a spike passes", 3, []float64{10, 200, 11}, []float64{10, 10, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(Config{LatencyFilterSize: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.samples {
				if got := c.filterLocked("p", s); got != tc.want[i] {
					t.Fatalf("after sample %d (%g): %g, want %g", i, s, got, tc.want[i])
				}
			}
			if got := c.filterLocked("q", 99); got != 99 {
				t.Fatalf("another peer's filter: %g, want its own sample", got)
			}
			c.Forget("p")
			if got := c.filterLocked("p", 50); got != 50 {
				t.Fatalf("after Forget: %g, want the new sample alone", got)
			}
		})
	}
}

// TestUpdateMovesTowardsTheRTT: from the origin, repeated samples of one
// RTT to a fixed peer bring the estimate to that RTT and the error
// estimate down.
func TestUpdateMovesTowardsTheRTT(t *testing.T) {
	for _, rtt := range []time.Duration{500 * time.Microsecond, 10 * time.Millisecond, 150 * time.Millisecond} {
		t.Run(rtt.String(), func(t *testing.T) {
			c := newTestClient(t, 2)
			peer := DefaultConfig().newCoordinate()
			peer.Error = 0.1 // a settled peer
			for range 200 {
				if _, err := c.Update("p", peer, rtt); err != nil {
					t.Fatal(err)
				}
			}
			est, _ := c.DistanceTo(peer)
			if rel := math.Abs(float64(est-rtt)) / float64(rtt); rel > 0.05 {
				t.Fatalf("estimate %s for an RTT of %s (%.0f %% off)", est, rtt, 100*rel)
			}
			if e := c.Coordinate().Error; e > 0.2 {
				t.Fatalf("error estimate %g after 200 exact samples", e)
			}
		})
	}
}

// wan is a synthetic network of sites: the RTT between two sites, and
// within a site.
type wan struct {
	siteRTT [][]float64 // ms
	local   float64     // ms, within a site
	perSite int
}

func (w wan) site(i int) int { return i / w.perSite }

func (w wan) rtt(i, j int) float64 {
	if w.site(i) == w.site(j) {
		return w.local
	}
	return w.siteRTT[w.site(i)][w.site(j)]
}

// TestConvergesOnThreeSites: 12 nodes on three sites 30, 44 and 60 ms
// apart (1 ms within a site), every sample up to 15 ms late (a loaded
// machine), each node sampling a random other node each round with the
// coordinate that node had at the last round. After 300 rounds every
// estimate between sites is within 20 % of the true RTT, every node
// ranks its site mates first, and the error estimates have settled.
func TestConvergesOnThreeSites(t *testing.T) {
	w := wan{siteRTT: [][]float64{{0, 30, 44}, {30, 0, 60}, {44, 60, 0}}, local: 1, perSite: 4}
	const n, rounds, jitter = 12, 300, 15.0
	r := rand.New(rand.NewPCG(7, 7))
	clients := make([]*Client, n)
	for i := range clients {
		var err error
		if clients[i], err = NewClient(Config{Rand: r.Float64}); err != nil {
			t.Fatal(err)
		}
	}
	published := make([]Coordinate, n)
	for round := range rounds {
		for i := range published {
			published[i] = clients[i].Coordinate()
		}
		for i, c := range clients {
			j := (i + 1 + r.IntN(n-1)) % n
			sample := w.rtt(i, j) + jitter*r.Float64()
			if _, err := c.Update(string(rune('a'+j)), published[j], millisToDuration(sample)); err != nil {
				t.Fatalf("round %d: node %d: %v", round, i, err)
			}
		}
	}
	worst := 0.0
	var errs []float64
	for i, c := range clients {
		// The error estimate is a smoothed relative error, and samples
		// within a site are mostly jitter (1 ms against up to 15): a
		// settled node's estimate jumps after each such sample.
		e := c.Coordinate().Error
		if e > DefaultConfig().MaxError/2 {
			t.Errorf("node %d: error estimate %.2f after %d rounds", i, e, rounds)
		}
		errs = append(errs, e)
		farthestMate, nearestOther := time.Duration(0), time.Duration(math.MaxInt64)
		for j := range clients {
			if i == j {
				continue
			}
			est, _ := c.DistanceTo(clients[j].Coordinate())
			if w.site(i) == w.site(j) {
				farthestMate = max(farthestMate, est)
				continue
			}
			nearestOther = min(nearestOther, est)
			truth := w.rtt(i, j)
			rel := math.Abs(durationToMillis(est)-truth) / truth
			worst = max(worst, rel)
			if rel > 0.2 {
				t.Errorf("node %d -> %d: estimate %s, true RTT %g ms (%.0f %% off)", i, j, est, truth, 100*rel)
			}
		}
		if farthestMate >= nearestOther {
			t.Errorf("node %d: a site mate estimated at %s, another site's node at %s", i, farthestMate, nearestOther)
		}
	}
	slices.Sort(errs)
	if med := errs[len(errs)/2]; med > 0.25 {
		t.Errorf("median error estimate %.2f after %d rounds", med, rounds)
	}
	t.Logf("worst relative error between sites: %.1f %%; error estimates %.2f", 100*worst, errs)
}

// TestResetOnInvalid: an update whose arithmetic leaves the coordinate out
// of bounds starts it again from the origin and says so.
func TestResetOnInvalid(t *testing.T) {
	c := newTestClient(t, 3)
	// This node at the edge of the space, a settled peer 1 ms inside it,
	// and an RTT of MaxRTT: the step pushes this node past the edge.
	near := DefaultConfig().newCoordinate()
	near.Vec[0], near.Error = MaxMillis-1, 0
	c.coord.Vec[0] = MaxMillis
	if _, err := c.Update("p", near, MaxRTT); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("Update: %v, want a reset", err)
	}
	if c.Resets() != 1 {
		t.Fatalf("resets %d", c.Resets())
	}
	if err := c.Coordinate().Validate(); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
}
