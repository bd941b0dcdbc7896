package coord

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// MaxRTT is the longest RTT sample Update takes.
const MaxRTT = 10 * time.Second

// zeroThreshold (milliseconds) is how close two positions or values must
// be to count as equal.
const zeroThreshold = 1e-3

// Config tunes a Client. Zero fields take the defaults of DefaultConfig,
// which are Serf's but for the latency filter.
type Config struct {
	// Dimensionality is the length of the vector. Beyond about 7
	// dimensions accuracy stops improving (Ledlie et al.). Default 8.
	Dimensionality int
	// MaxError is the error estimate of a new coordinate and the cap of
	// every error estimate. Default 1.5.
	MaxError float64
	// CE bounds how far one sample moves the error estimate (Vivaldi's
	// c_e): larger reacts faster and settles less. Default 0.25.
	CE float64
	// CC bounds how far one sample moves the coordinate (Vivaldi's c_c),
	// as a fraction of the sample's residual. Default 0.25.
	CC float64
	// AdjustmentWindow is how many recent residuals the adjustment term
	// averages. Default 20.
	AdjustmentWindow int
	// HeightMin is the least height, in milliseconds. Default 0.01.
	HeightMin float64
	// LatencyFilterSize is how many recent RTT samples of each peer the
	// filter keeps; an update uses the least of them. Queues and a busy
	// CPU only ever add to an RTT, so the least of a few samples is close
	// to the path's propagation delay where Serf's median of three keeps
	// half the noise. Default 5.
	LatencyFilterSize int
	// GravityRho, in milliseconds, sets the pull towards the origin: a
	// force of (distance to the origin / GravityRho)² per update, which
	// is negligible near the origin and stops a slow drift of every
	// coordinate. Default 150,000.
	GravityRho float64
	// Rand returns a number in [0, 1). It picks a direction when two
	// coordinates coincide (every coordinate starts at the origin).
	// Default math/rand/v2's Float64.
	Rand func() float64
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Dimensionality:    8,
		MaxError:          1.5,
		CE:                0.25,
		CC:                0.25,
		AdjustmentWindow:  20,
		HeightMin:         0.01,
		LatencyFilterSize: 5,
		GravityRho:        150_000,
		Rand:              rand.Float64,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Dimensionality == 0 {
		c.Dimensionality = d.Dimensionality
	}
	if c.MaxError == 0 {
		c.MaxError = d.MaxError
	}
	if c.CE == 0 {
		c.CE = d.CE
	}
	if c.CC == 0 {
		c.CC = d.CC
	}
	if c.AdjustmentWindow == 0 {
		c.AdjustmentWindow = d.AdjustmentWindow
	}
	if c.HeightMin == 0 {
		c.HeightMin = d.HeightMin
	}
	if c.LatencyFilterSize == 0 {
		c.LatencyFilterSize = d.LatencyFilterSize
	}
	if c.GravityRho == 0 {
		c.GravityRho = d.GravityRho
	}
	if c.Rand == nil {
		c.Rand = d.Rand
	}
	switch {
	case c.Dimensionality < 1 || c.Dimensionality > MaxDimensions:
		return c, fmt.Errorf("coordinate config: Dimensionality %d, want 1 to %d", c.Dimensionality, MaxDimensions)
	case !within(c.MaxError, zeroThreshold, MaxErrorValue):
		return c, fmt.Errorf("coordinate config: MaxError %g, want a positive number up to %d", c.MaxError, MaxErrorValue)
	case !within(c.CE, 0, 1) || !within(c.CC, 0, 1):
		return c, fmt.Errorf("coordinate config: CE %g and CC %g must be in (0, 1]", c.CE, c.CC)
	case c.AdjustmentWindow < 0 || c.LatencyFilterSize < 0:
		return c, fmt.Errorf("coordinate config: AdjustmentWindow and LatencyFilterSize must be positive")
	case !within(c.HeightMin, 0, MaxMillis) || !within(c.GravityRho, 1, 1e12):
		return c, fmt.Errorf("coordinate config: HeightMin %g ms or GravityRho %g ms out of range", c.HeightMin, c.GravityRho)
	}
	return c, nil
}

// Client keeps one node's coordinate and moves it with each RTT sample to
// a peer whose coordinate it knows. Its methods are safe for concurrent
// use.
type Client struct {
	cfg    Config
	origin Coordinate

	mu      sync.Mutex           // guards everything below
	coord   Coordinate           // this node's
	adj     []float64            // recent residuals (RTT - raw distance), a ring
	adjNext int                  // the ring's next slot
	samples map[string][]float64 // each peer's recent RTT samples (ms), oldest first
	resets  int
}

// NewClient returns a Client whose coordinate is at the origin with the
// maximum error.
func NewClient(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, origin: cfg.newCoordinate(), adj: make([]float64, cfg.AdjustmentWindow), samples: map[string][]float64{}}
	c.coord = cfg.newCoordinate()
	return c, nil
}

// newCoordinate is a coordinate at the origin with the maximum error.
func (c Config) newCoordinate() Coordinate {
	return Coordinate{Vec: make([]float64, c.Dimensionality), Error: c.MaxError, Height: c.HeightMin}
}

// Coordinate returns a copy of this node's coordinate.
func (c *Client) Coordinate() Coordinate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.coord.Clone()
}

// DistanceTo estimates the RTT from this node to a node at o; false if o
// has another dimensionality.
func (c *Client) DistanceTo(o Coordinate) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.coord.DistanceTo(o)
}

// Resets returns how many times an update left the coordinate invalid and
// it started again from the origin.
func (c *Client) Resets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// Update takes one RTT sample to the peer named peer, whose coordinate is
// other, and returns this node's new coordinate. The sample goes through
// the peer's latency filter; the filtered RTT then moves the coordinate
// (Vivaldi), the adjustment term and the pull of gravity. An invalid
// other (see Validate), one of another dimensionality, or an RTT that is
// not positive or longer than MaxRTT is refused with an error and changes
// nothing. If the update leaves the coordinate invalid (it never should),
// the coordinate starts again from the origin and Update says so.
func (c *Client) Update(peer string, other Coordinate, rtt time.Duration) (Coordinate, error) {
	if err := other.Validate(); err != nil {
		return Coordinate{}, err
	}
	if len(other.Vec) != c.cfg.Dimensionality {
		return Coordinate{}, fmt.Errorf("%w: %d dimensions, this node's have %d", ErrDimensions, len(other.Vec), c.cfg.Dimensionality)
	}
	if rtt <= 0 || rtt > MaxRTT {
		return Coordinate{}, fmt.Errorf("%w: %s", ErrRTT, rtt)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := c.filterLocked(peer, durationToMillis(rtt))
	c.vivaldiLocked(other, ms)
	c.adjustLocked(other, ms)
	c.gravityLocked()
	if err := c.coord.Validate(); err != nil {
		c.resets++
		c.coord = c.cfg.newCoordinate()
		return c.coord.Clone(), fmt.Errorf("coordinate started again from the origin: %w", err)
	}
	return c.coord.Clone(), nil
}

// Forget drops the RTT samples kept for peer.
func (c *Client) Forget(peer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.samples, peer)
}

// filterLocked adds a sample of peer and returns the least of its recent
// samples.
func (c *Client) filterLocked(peer string, ms float64) float64 {
	s := append(c.samples[peer], ms)
	if n := c.cfg.LatencyFilterSize; len(s) > n {
		s = append(s[:0], s[len(s)-n:]...)
	}
	c.samples[peer] = s
	least := s[0]
	for _, x := range s[1:] {
		least = min(least, x)
	}
	return least
}

// vivaldiLocked is one Vivaldi step: the error estimate moves towards this
// sample's relative error, and the coordinate moves along the line to
// other by a share of the residual; both by the weight of this node's
// error against the sum of both errors, so a settled node moves little
// for a peer that has not settled.
func (c *Client) vivaldiLocked(other Coordinate, rtt float64) {
	rtt = max(rtt, zeroThreshold)
	dist := c.coord.distance(other)
	wrongness := abs(dist-rtt) / rtt
	weight := c.coord.Error / max(c.coord.Error+other.Error, zeroThreshold)
	c.coord.Error = min(c.cfg.CE*weight*wrongness+c.coord.Error*(1-c.cfg.CE*weight), c.cfg.MaxError)
	c.coord = c.applyForce(c.coord, c.cfg.CC*weight*(rtt-dist), other)
}

// adjustLocked records this sample's residual and sets the adjustment to
// half the mean of the recent ones: each end of a pair carries half.
func (c *Client) adjustLocked(other Coordinate, rtt float64) {
	if len(c.adj) == 0 {
		return
	}
	c.adj[c.adjNext] = rtt - c.coord.rawDistance(other)
	c.adjNext = (c.adjNext + 1) % len(c.adj)
	sum := 0.0
	for _, r := range c.adj {
		sum += r
	}
	c.coord.Adjustment = sum / (2 * float64(len(c.adj)))
}

// gravityLocked pulls the coordinate towards the origin.
func (c *Client) gravityLocked() {
	d := c.origin.distance(c.coord) / c.cfg.GravityRho
	c.coord = c.applyForce(c.coord, -d*d, c.origin)
}

// applyForce returns from moved by force milliseconds away from other
// (towards it if force is negative). The height takes its share of the
// move in proportion to the heights against the Euclidean distance.
func (c *Client) applyForce(from Coordinate, force float64, other Coordinate) Coordinate {
	out := from.Clone()
	unit, dist := c.unitVectorAt(from.Vec, other.Vec)
	out.Vec = addScaled(from.Vec, unit, force)
	if dist > zeroThreshold {
		out.Height = max(from.Height+force*(from.Height+other.Height)/dist, c.cfg.HeightMin)
	}
	return out
}

// unitVectorAt returns the unit vector from b towards a and the distance
// between them; a random direction (and distance 0) if they coincide.
func (c *Client) unitVectorAt(a, b []float64) ([]float64, float64) {
	v := sub(a, b)
	if d := norm(v); d > zeroThreshold {
		return scale(v, 1/d), d
	}
	for i := range v {
		v[i] = c.cfg.Rand() - 0.5
	}
	if d := norm(v); d > zeroThreshold {
		return scale(v, 1/d), 0
	}
	v = make([]float64, len(a))
	v[0] = 1
	return v, 0
}

func scale(v []float64, f float64) []float64 {
	for i := range v {
		v[i] *= f
	}
	return v
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
