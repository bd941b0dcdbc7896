package gossip

import (
	"fmt"
	"time"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// Config tunes membership. DefaultConfig gives the defaults; zero fields of
// a Config passed to New take them.
//
// Detection time: a crashed process has its connections reset by its
// kernel, so peers connected to it suspect it within one re-dial (a few
// milliseconds on a LAN) and declare it dead as soon as Confirmations peers
// agree, independent of N. A silent member (paused process, cut link) is
// declared dead 2·TFail after its last heartbeat, or sooner by probes:
// every ProbeInterval a node pings one connected member that is late
// (silent for its announced heartbeat period plus ProbeTimeout/4), and a
// ping unanswered for ProbeTimeout, from a member overdue by its heartbeat
// period plus ProbeTimeout, is evidence like a failed re-dial. Peers that
// hear the suspicion ping the member themselves, so a silent member is
// dead about one heartbeat period plus 2·ProbeTimeout after it went
// silent. Punctual members are never probed: their heartbeats already say
// they are alive, so an idle network sends no probes.
//
// Traffic: each node publishes one heartbeat (about 400 bytes, and some
// 110 more with a network coordinate) every
// Heartbeat; GossipSub sends it to its mesh degree D (3 in p2pshare's
// node) peers, and each node forwards it once, so a node sends and
// receives about D·N heartbeats per period, O(N) bytes per second per
// node. To bound that in big networks
// the period grows with N: past ScaleAt members, the period is
// Heartbeat·N/ScaleAt, and each heartbeat announces the sender's period, so
// receivers stretch TFail for it. The default ScaleAt of 3 holds the whole
// network to 6 heartbeats a second (ScaleAt/Heartbeat), whatever N: at
// 100 members each heartbeats every 16.7 s. Each node receives each
// heartbeat about once per mesh peer, and on a machine that runs many
// daemons each delivery costs a process wake-up, so this rate is what
// sets an idle network's CPU (BENCHMARKS.md, Idle daemons). 3 rather than
// more keeps the period at Heartbeat up to 3 members and TFail at its
// default up to 4 (3 periods of 667 ms); probes, not the timers, find
// silent members of a big network.
type Config struct {
	// Heartbeat is the period of a node's heartbeats. Default 500 ms.
	Heartbeat time.Duration
	// TFail is how long a member may be silent before it is suspect; after
	// 2·TFail it is dead. It is at least 3 of the member's announced
	// heartbeat periods. Default 2 s.
	TFail time.Duration
	// Confirmations is how many distinct peers (this node included) must
	// suspect a member, on connection evidence, for it to be dead before
	// 2·TFail. It is capped at the number of other live members. Default 2.
	Confirmations int
	// RedialTimeout bounds the re-dial that checks a member whose last
	// connection dropped. Default 500 ms.
	RedialTimeout time.Duration
	// ScaleAt is the number of members past which the heartbeat period
	// grows linearly with N. Default 3.
	ScaleAt int
	// ForgetAfter is how long dead and left members stay in the table.
	// Default 1 h.
	ForgetAfter time.Duration
	// ProbeInterval is how often a node looks for late members and pings
	// one of them.
	// Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for the pong before it counts
	// as evidence against the member. Default 2 s.
	ProbeTimeout time.Duration
	// ClockInterval is how often a node reads again the clocks of the
	// members it has measured (see Offsets); a member not yet measured is
	// read within a second. Default 10 s.
	ClockInterval time.Duration
	// Clock is the wall clock: clock readings sent to peers, and the
	// incarnation when Incarnations is nil. Default the system clock.
	Clock Clock
	// Incarnations, when set, gives the incarnations (node keeps a counter
	// in its repo). When nil, the incarnation starts at Clock's time in
	// nanoseconds, which a clock set back makes older than the last one.
	Incarnations Incarnations
	// Coordinates, when set, gives this node's network coordinate for
	// each heartbeat to carry; members keep the last one they heard
	// (Member.Coord). When nil, heartbeats carry none.
	Coordinates Coordinates
}

// Clock is a wall clock.
type Clock interface {
	Now() time.Time
}

// Incarnations gives a node's incarnations.
type Incarnations interface {
	// Next returns a new incarnation, greater than every one it returned
	// before, in this process or an earlier one. Membership calls it at
	// start and on every refutation.
	Next() (uint64, error)
}

// now reads the configured clock, the system's when none is.
func (c Config) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

// Coordinates gives a node's network coordinate.
type Coordinates interface {
	// Coordinate returns the node's current coordinate, nil if it has
	// none. Membership calls it for every heartbeat, without locks held;
	// it must not block.
	Coordinate() *coord.Coordinate
}

// coordinate is this node's coordinate for its next heartbeat, if any.
func (c Config) coordinate() *coord.Coordinate {
	if c.Coordinates == nil {
		return nil
	}
	return c.Coordinates.Coordinate()
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Heartbeat:     500 * time.Millisecond,
		TFail:         2 * time.Second,
		Confirmations: 2,
		RedialTimeout: 500 * time.Millisecond,
		ScaleAt:       3,
		ForgetAfter:   time.Hour,
		ProbeInterval: time.Second,
		ProbeTimeout:  2 * time.Second,
		ClockInterval: 10 * time.Second,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.TFail == 0 {
		c.TFail = d.TFail
	}
	if c.Confirmations == 0 {
		c.Confirmations = d.Confirmations
	}
	if c.RedialTimeout == 0 {
		c.RedialTimeout = d.RedialTimeout
	}
	if c.ScaleAt == 0 {
		c.ScaleAt = d.ScaleAt
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = d.ForgetAfter
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = d.ProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = d.ProbeTimeout
	}
	if c.ClockInterval == 0 {
		c.ClockInterval = d.ClockInterval
	}

	switch {
	case c.Heartbeat < 0 || c.TFail < 0 || c.RedialTimeout < 0 || c.ForgetAfter < 0 || c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.ClockInterval < 0:
		return c, fmt.Errorf("gossip config: negative duration")
	case c.TFail < 2*c.Heartbeat:
		return c, fmt.Errorf("gossip config: TFail %s must be at least two heartbeats (%s)", c.TFail, 2*c.Heartbeat)
	case c.Confirmations < 1 || c.ScaleAt < 1:
		return c, fmt.Errorf("gossip config: Confirmations and ScaleAt must be positive")
	}
	return c, nil
}

// period returns the heartbeat period for a network of n members.
func (c Config) period(n int) time.Duration {
	if n <= c.ScaleAt {
		return c.Heartbeat
	}
	return c.Heartbeat * time.Duration(n) / time.Duration(c.ScaleAt)
}

// tfail returns TFail for a member announcing heartbeat period p.
func (c Config) tfail(p time.Duration) time.Duration {
	return max(c.TFail, 3*p)
}
