package coord

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Coordinate is a node's position in the coordinate space. The estimated
// RTT between two nodes is the Euclidean distance between their vectors
// plus both heights, plus both adjustments when the sum stays positive.
// All values but Error are in milliseconds.
type Coordinate struct {
	// Vec is the Euclidean part.
	Vec []float64 `json:"vec"`
	// Error is the node's own estimate of its relative error (|estimate -
	// RTT| / RTT, smoothed): near 0 for a settled coordinate,
	// Config.MaxError for a new one. Dimensionless.
	Error float64 `json:"err"`
	// Adjustment is half the mean of the node's recent (RTT - distance)
	// residuals: what the Euclidean part and the height do not explain.
	Adjustment float64 `json:"adj"`
	// Height is the part of every RTT to this node spent on its own
	// access link; never below Config.HeightMin for a Client's own
	// coordinate.
	Height float64 `json:"height"`
}

// Bounds of a Coordinate that Validate accepts. They are generous: a
// coordinate within them gives finite distances, whatever its sender
// meant by it.
const (
	// MaxDimensions caps the length of Vec.
	MaxDimensions = 16
	// MaxMillis caps the magnitude of each component of Vec, of Height and
	// of Adjustment: 100 s, far beyond any RTT a coordinate describes.
	MaxMillis = 100_000
	// MaxErrorValue caps Error.
	MaxErrorValue = 10
)

// Errors of the package.
var (
	// ErrInvalid: a coordinate that is not finite or is out of bounds.
	ErrInvalid = errors.New("invalid network coordinate")
	// ErrDimensions: a coordinate whose dimensionality differs from the
	// client's.
	ErrDimensions = errors.New("network coordinate of another dimensionality")
	// ErrRTT: an RTT sample that is not positive or is longer than MaxRTT.
	ErrRTT = errors.New("RTT sample out of range")
)

// Validate checks a coordinate received from another node: every value
// finite, Vec of 1 to MaxDimensions components, each component, Height
// and Adjustment within MaxMillis, Height and Error not negative, Error at
// most MaxErrorValue. A hostile or broken peer's NaN or 1e308 is refused
// here, before any arithmetic sees it.
func (c Coordinate) Validate() error {
	if n := len(c.Vec); n == 0 || n > MaxDimensions {
		return fmt.Errorf("%w: %d dimensions, want 1 to %d", ErrInvalid, n, MaxDimensions)
	}
	for i, x := range c.Vec {
		if !within(x, -MaxMillis, MaxMillis) {
			return fmt.Errorf("%w: component %d is %g", ErrInvalid, i, x)
		}
	}
	switch {
	case !within(c.Height, 0, MaxMillis):
		return fmt.Errorf("%w: height %g", ErrInvalid, c.Height)
	case !within(c.Adjustment, -MaxMillis, MaxMillis):
		return fmt.Errorf("%w: adjustment %g", ErrInvalid, c.Adjustment)
	case !within(c.Error, 0, MaxErrorValue):
		return fmt.Errorf("%w: error estimate %g", ErrInvalid, c.Error)
	}
	return nil
}

// within reports whether x is a number in [lo, hi] (NaN is not).
func within(x, lo, hi float64) bool { return x >= lo && x <= hi }

// Clone returns a copy of c that shares nothing with it.
func (c Coordinate) Clone() Coordinate {
	c.Vec = append([]float64(nil), c.Vec...)
	return c
}

// DistanceTo estimates the RTT between c and o. It returns false if their
// dimensionalities differ.
func (c Coordinate) DistanceTo(o Coordinate) (time.Duration, bool) {
	if len(c.Vec) != len(o.Vec) {
		return 0, false
	}
	return millisToDuration(c.distance(o)), true
}

// distance is DistanceTo in milliseconds, for coordinates of the same
// dimensionality: the raw distance plus both adjustments, or the raw
// distance alone if the adjustments would make it non-positive.
func (c Coordinate) distance(o Coordinate) float64 {
	raw := c.rawDistance(o)
	if adj := raw + c.Adjustment + o.Adjustment; adj > 0 {
		return adj
	}
	return raw
}

// rawDistance is the Euclidean distance plus both heights, without
// adjustments.
func (c Coordinate) rawDistance(o Coordinate) float64 {
	return norm(sub(c.Vec, o.Vec)) + c.Height + o.Height
}

// MarshalJSON encodes c with its values rounded to the microsecond (and
// Error to a thousandth): what an estimate can use, in about a third of
// the bytes of full float64 precision.
func (c Coordinate) MarshalJSON() ([]byte, error) {
	type plain Coordinate // without this method
	r := plain{Vec: make([]float64, len(c.Vec)), Error: round3(c.Error), Adjustment: round3(c.Adjustment), Height: round3(c.Height)}
	for i, x := range c.Vec {
		r.Vec[i] = round3(x)
	}
	return json.Marshal(r)
}

// round3 rounds x to three decimals.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func millisToDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func durationToMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Vector arithmetic on equal-length vectors; each returns a new slice.

func sub(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func addScaled(a, b []float64, f float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + f*b[i]
	}
	return out
}

func norm(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}
