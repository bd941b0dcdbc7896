package kv

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: wall-clock nanoseconds since
// the Unix epoch and a logical counter that orders events within one wall
// reading. Timestamps compare by Wall, then Logical.
type Timestamp struct {
	Wall    int64  `json:"wall"`
	Logical uint32 `json:"logical"`
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Time is the wall part as a time.Time.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Wall).UTC() }

func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d", t.Time().Format(time.RFC3339Nano), t.Logical)
}

// Clock is a hybrid logical clock: its readings never go backwards, follow
// the wall clock when it moves forward, and come after every timestamp it
// has observed, so a write made after seeing another write wins over it
// even when the two machines' clocks disagree a little.
type Clock struct {
	mu   sync.Mutex
	last Timestamp
	now  func() time.Time
}

// NewClock returns a clock that reads now (time.Now when nil).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now returns a timestamp after every earlier reading and observation.
func (c *Clock) Now() Timestamp {
	pt := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case pt > c.last.Wall:
		c.last = Timestamp{Wall: pt}
	case c.last.Logical == math.MaxUint32:
		// The counter is full (an observed record may carry any value):
		// move to the next nanosecond rather than wrap back to 0, which
		// would go before the last reading.
		c.last = Timestamp{Wall: c.last.Wall + 1}
	default:
		c.last.Logical++
	}
	return c.last
}

// Observe moves the clock past t, a timestamp seen on a record from another
// node (the caller has checked that t is not too far in the future).
func (c *Clock) Observe(t Timestamp) {
	c.mu.Lock()
	if t.Compare(c.last) > 0 {
		c.last = t
	}
	c.mu.Unlock()
}
