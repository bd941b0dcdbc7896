package gossip

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/coord"
	"github.com/p2pshare/p2pshare/gossip/swim"
)

// Config tunes membership. DefaultConfig gives the defaults; zero fields of
// a Config passed to New take them.
//
// Failure detection is SWIM with Lifeguard's extensions (package
// gossip/swim, whose comment gives the reasoning). Each node pings the
// Watchers members after it on a ring every ProbeInterval; a ping
// unanswered for ProbeTimeout is retried through Helpers others, and one
// still unanswered after IndirectTimeout makes the watcher suspect the
// member and say so on the topic. The suspicion ends in dead after a
// timeout that shrinks as other watchers confirm it (SuspicionMin times
// log10 N when every watcher does, SuspicionMaxMult times that when none
// does) unless the member refutes it first. With the defaults a silent
// member (a paused process, a cut link) is dead everywhere about
// 2 to 3 s after it went silent, whatever N: each node pings Watchers
// members a second, however big the network.
//
// A crashed process has its connections reset by its kernel: a peer that
// loses its last TCP connection to a member dials the member's TCP
// addresses, and a refusal is proof that no process listens there. Such
// refusals from Confirmations peers make the member dead at once, within
// milliseconds of the crash.
//
// Heartbeats are rare, every max(HeartbeatMin, N/HeartbeatRate): they
// carry the facts of a node (addresses, files, free space, its network
// coordinate when Coordinates gives one) and the latest
// changes it knows, for nodes that missed a message; the whole network
// sends HeartbeatRate of them a second.
type Config struct {
	// ProbeInterval is how often a node pings each member it watches.
	// Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a ping waits for its answer before it is
	// retried through other members, at least; a helper waits as long for
	// the target's. A node whose pings are answered late waits longer, up
	// to 2 s, by the answers it timed (see package swim). Default 400 ms.
	ProbeTimeout time.Duration
	// IndirectTimeout bounds the retry through other members, at least
	// (twice the stretched ping timeout when that is longer). Default
	// 800 ms.
	IndirectTimeout time.Duration
	// SuspicionMin is the shortest suspicion timeout per decade of
	// members (times log10 N, at least once); SuspicionMaxMult times that
	// is the longest, for a suspicion nobody confirms, which leaves a
	// member that runs time to refute. Defaults 500 ms and 6.
	SuspicionMin     time.Duration
	SuspicionMaxMult float64
	// Watchers is how many members ping each member (its predecessors on
	// the ring); Helpers how many members a failed ping is retried
	// through. Defaults 3 and 3.
	Watchers, Helpers int
	// Confirmations is how many distinct peers (this node included) must
	// find a member's TCP port refused for it to be dead at once. It is
	// capped at the number of other live members. Default 2.
	Confirmations int
	// HeartbeatMin and HeartbeatRate set the heartbeat period: each node
	// heartbeats every max(HeartbeatMin, N/HeartbeatRate), N the live
	// members. Defaults 10 s and 0.5 a second.
	HeartbeatMin  time.Duration
	HeartbeatRate float64
	// RedialTimeout bounds the re-dial that checks a member whose last
	// connection dropped. Default 500 ms.
	RedialTimeout time.Duration
	// ForgetAfter is how long dead and left members stay in the table.
	// Default 1 h.
	ForgetAfter time.Duration
	// ClockInterval is how often a node reads again the clocks of a few
	// of the members it has measured, picked at random (see Offsets and
	// clockReReads); a member not yet measured is read within a second.
	// Default 10 s.
	ClockInterval time.Duration
	// Clock is the wall clock: clock readings sent to peers, and the
	// incarnation when Incarnations is nil. Default the system clock. (The
	// failure detector's timers run on the system's monotonic clock.)
	Clock Clock
	// Incarnations, when set, gives the incarnations (node keeps a counter
	// in its repo). When nil, the incarnation starts at Clock's time in
	// nanoseconds, which a clock set back makes older than the last one.
	Incarnations Incarnations
	// Coordinates, when set, gives this node's network coordinate for
	// each heartbeat to carry; members keep the last one they heard
	// (Member.Coord). When nil, heartbeats carry none.
	Coordinates Coordinates
	// Addrs, when set, gives the addresses this node announces to
	// members, in its heartbeats and direct messages: those they may
	// dial it at. When nil, the host's addresses. Call
	// Membership.AddrsChanged when they change.
	Addrs func() []ma.Multiaddr

	// refusalHold is the core's RefusalHold, for tests; 0: its default.
	refusalHold time.Duration
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

// addrs is what this node announces to members as its addresses.
func (c Config) addrs(h host.Host) []ma.Multiaddr {
	if c.Addrs == nil {
		return h.Addrs()
	}
	return c.Addrs()
}

// now reads the configured clock, the system's when none is.
func (c Config) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	d := swim.DefaultConfig()
	return Config{
		ProbeInterval:    d.ProbePeriod,
		ProbeTimeout:     d.ProbeTimeout,
		IndirectTimeout:  d.IndirectTimeout,
		SuspicionMin:     d.SuspicionMin,
		SuspicionMaxMult: d.SuspicionMaxMult,
		Watchers:         d.Watchers,
		Helpers:          d.Helpers,
		Confirmations:    d.Confirmations,
		HeartbeatMin:     d.HeartbeatMin,
		HeartbeatRate:    d.HeartbeatRate,
		RedialTimeout:    500 * time.Millisecond,
		ForgetAfter:      time.Hour,
		ClockInterval:    10 * time.Second,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.ProbeInterval, &d.ProbeInterval}, {&c.ProbeTimeout, &d.ProbeTimeout}, {&c.IndirectTimeout, &d.IndirectTimeout},
		{&c.SuspicionMin, &d.SuspicionMin}, {&c.HeartbeatMin, &d.HeartbeatMin}, {&c.RedialTimeout, &d.RedialTimeout},
		{&c.ForgetAfter, &d.ForgetAfter}, {&c.ClockInterval, &d.ClockInterval},
	} {
		if *f.v < 0 {
			return c, fmt.Errorf("gossip config: negative duration %s", *f.v)
		}
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *int }{{&c.Watchers, &d.Watchers}, {&c.Helpers, &d.Helpers}, {&c.Confirmations, &d.Confirmations}} {
		if *f.v < 0 {
			return c, fmt.Errorf("gossip config: Watchers, Helpers and Confirmations must be positive")
		}
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if c.SuspicionMaxMult == 0 {
		c.SuspicionMaxMult = d.SuspicionMaxMult
	}
	if c.HeartbeatRate == 0 {
		c.HeartbeatRate = d.HeartbeatRate
	}
	switch {
	case c.SuspicionMaxMult < 1:
		return c, fmt.Errorf("gossip config: SuspicionMaxMult %g must be at least 1", c.SuspicionMaxMult)
	case c.HeartbeatRate < 0:
		return c, fmt.Errorf("gossip config: negative HeartbeatRate")
	}
	return c, nil
}

// swimConfig is the core's configuration for this node.
func (c Config) swimConfig(self swim.ID, inc uint64) swim.Config {
	return swim.Config{
		Self: self, Inc: inc,
		Watchers: c.Watchers, Helpers: c.Helpers, Confirmations: c.Confirmations,
		ProbePeriod: c.ProbeInterval, ProbeTimeout: c.ProbeTimeout, IndirectTimeout: c.IndirectTimeout,
		SuspicionMin: c.SuspicionMin, SuspicionMaxMult: c.SuspicionMaxMult,
		HeartbeatRate: c.HeartbeatRate, HeartbeatMin: c.HeartbeatMin,
		ForgetAfter: c.ForgetAfter, RefusalHold: c.refusalHold,
		Clock: systemClock{},
	}
}

// systemClock is the system clock, monotonic: the core's timers.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
