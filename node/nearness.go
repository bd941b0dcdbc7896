package node

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/coord"
)

// coordMaxError is the error estimate below which a network coordinate
// counts as settled: an estimate between two coordinates is used only if
// both have settled. A new coordinate starts at 1.5. In the simulation of
// 100 nodes on five sites (BENCHMARKS.md, Network coordinates) the median
// node's falls below this within two minutes and nine in ten within five;
// a settled one sits near 0.1, nine in ten below 0.4, lifted for a while
// by each sample of a site mate taken under load (1 ms against up to
// 15 ms of queueing).
const coordMaxError = 0.75

// nearness keeps this node's network coordinate (package gossip/coord)
// and answers the RTT a "closest" choice ranks a member by: the measured
// RTT when there is a recent one, else the estimate from the member's
// coordinate. The coordinate moves with every RTT sample the peerstore
// records of a member whose heartbeat carried a coordinate, and every
// heartbeat of this node carries it (it implements gossip.Coordinates).
// Its methods are safe for concurrent use.
type nearness struct {
	client *coord.Client
	rtts   *rttFilter
	log    *slog.Logger
	// memb gives the members' coordinates, once the membership runs
	// (samples come in from the moment the host starts).
	memb atomic.Pointer[gossip.Membership]
}

func newNearness(rtts *rttFilter, log *slog.Logger) (*nearness, error) {
	c, err := coord.NewClient(coord.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return &nearness{client: c, rtts: rtts, log: log}, nil
}

// Coordinate implements gossip.Coordinates.
func (nr *nearness) Coordinate() *coord.Coordinate {
	c := nr.client.Coordinate()
	return &c
}

// sample moves this node's coordinate by one RTT sample of p, if p is a
// member whose last heartbeat carried a coordinate.
func (nr *nearness) sample(p peer.ID, rtt time.Duration) {
	m := nr.memb.Load()
	if m == nil {
		return
	}
	mem, ok := m.Member(p)
	if !ok || mem.Self || mem.Coord == nil {
		return
	}
	if _, err := nr.client.Update(string(p), *mem.Coord, rtt); err != nil {
		nr.log.Debug("network coordinate: sample not used", "peer", p, "rtt", rtt, "err", err)
	}
}

// forget drops what the coordinate's latency filter keeps of p.
func (nr *nearness) forget(p peer.ID) { nr.client.Forget(string(p)) }

// estimate is the RTT to a node at c estimated from the coordinates;
// false if c is nil, of another dimensionality, or either coordinate has
// not settled (coordMaxError).
func (nr *nearness) estimate(c *coord.Coordinate) (time.Duration, bool) {
	if c == nil || c.Error >= coordMaxError {
		return 0, false
	}
	own := nr.client.Coordinate()
	if own.Error >= coordMaxError {
		return 0, false
	}
	return own.DistanceTo(*c)
}

// rankRTT is the RTT a choice ranks member p (coordinate c, nil if none)
// by: its measured RTT if it has a sample in the window (a connected peer
// is pinged well within it), else the estimate from the coordinates,
// else its last sample, however old; 0 if none of these is known.
func (nr *nearness) rankRTT(p peer.ID, c *coord.Coordinate) time.Duration {
	rtt, recent := nr.rtts.rtt(p)
	if recent > 0 {
		return rtt
	}
	if est, ok := nr.estimate(c); ok {
		return est
	}
	return rtt
}
