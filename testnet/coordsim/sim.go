// Package coordsim runs gossip/coord's Vivaldi clients for N nodes over a
// synthetic WAN, in virtual time and one goroutine, seeded, so that a seed
// gives the same report every time. It measures how well the coordinates
// estimate the RTT between nodes that never measured each other.
//
// The network: sites with a matrix of RTTs between them (WAN), nodes
// spread evenly over the sites, each node with an access link of its own
// (Access: up to that many milliseconds, on each of its paths), and
// LocalRTT between two nodes of one site. Every sample of an RTT is the
// true RTT plus a uniform delay of 0 to Jitter (a loaded machine: queues
// and scheduling only ever add).
//
// The nodes do what a p2pshare node does: each is connected to about
// Conns others (a random graph; p2pshare keeps at most 32 connections),
// and every PingInterval, at a phase of its own, pings the connected
// peers with fewer than MinSamples samples in the last five minutes and
// PingBatch others at random; and every ClockInterval it reads the clocks
// of the connected peers it has not read yet and of ClockBatch others at
// random, each reading one more RTT sample. Each sample moves the node's
// coordinate, with the peer's coordinate as of the peer's last heartbeat
// (one every Heartbeat, at a phase of its own); a peer not heard yet gives
// no update. At each checkpoint the report compares, for every ordered pair
// of nodes that are not connected, the estimate of the first (its
// coordinate against the second's last heartbeat) with the true RTT.
package coordsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// Params describe one simulation.
type Params struct {
	N    int
	Seed uint64
	// Sites names the sites; WAN[i][j] is the RTT between sites i and j,
	// in milliseconds.
	Sites []string
	WAN   [][]float64
	// LocalRTT is the RTT between two nodes of one site, and Access the
	// most a node's own access link adds to each of its RTTs (each
	// node's is uniform in [0, Access]); milliseconds.
	LocalRTT, Access float64
	// Jitter is the most a sample adds to the true RTT, in milliseconds.
	Jitter float64
	// Conns is how many peers each node is connected to.
	Conns int
	// PingInterval, PingBatch and MinSamples are p2pshare's ping loop.
	PingInterval time.Duration
	PingBatch    int
	MinSamples   int
	// ClockInterval and ClockBatch are membership's clock readings (none
	// when ClockInterval is 0).
	ClockInterval time.Duration
	ClockBatch    int
	// Heartbeat is the period of each node's heartbeats.
	Heartbeat time.Duration
	// Checkpoints are the times at which the estimates are measured; the
	// run ends at the last.
	Checkpoints []time.Duration
	// Coord tunes the clients; Rand is set from Seed.
	Coord coord.Config
}

// World is a WAN of five sites (Frankfurt, London, Ashburn, San Francisco,
// Tokyo) with RTTs near those of the public internet between them.
func World() ([]string, [][]float64) {
	return []string{"fra", "lon", "iad", "sfo", "nrt"}, [][]float64{
		{0, 15, 88, 150, 230},
		{15, 0, 76, 140, 220},
		{88, 76, 0, 62, 150},
		{150, 140, 62, 0, 105},
		{230, 220, 150, 105, 0},
	}
}

// ThreeSites is the WAN of the testnet's emulated internet (testnet's
// SitesTopology): 30, 44 and 60 ms between its three sites.
func ThreeSites() ([]string, [][]float64) {
	return []string{"site1", "site2", "site3"}, [][]float64{
		{0, 30, 44},
		{30, 0, 60},
		{44, 60, 0},
	}
}

// DefaultParams is N nodes on World, each connected to 32 others, samples
// up to 15 ms late, p2pshare's ping loop (every 15 s, 4 peers and the
// unmeasured ones), its clock readings (every 10 s, 4 peers and the
// unread ones) and heartbeat period at N (500 ms · N/3), measured after
// 2, 5, 10 and 20 minutes.
func DefaultParams(n int) Params {
	sites, wan := World()
	return Params{
		N: n, Seed: 1, Sites: sites, WAN: wan,
		LocalRTT: 0.5, Access: 1, Jitter: 15, Conns: 32,
		PingInterval: 15 * time.Second, PingBatch: 4, MinSamples: 3,
		ClockInterval: 10 * time.Second, ClockBatch: 4,
		Heartbeat:   time.Duration(max(n, 3)) * 500 * time.Millisecond / 3,
		Checkpoints: []time.Duration{2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute},
	}
}

// Checkpoint is how the estimates of unconnected pairs stood at one time.
type Checkpoint struct {
	At time.Duration
	// Pairs is how many ordered pairs of unconnected nodes were compared
	// (a pair whose second node has not sent a heartbeat yet counts as
	// not within any bound).
	Pairs, InterPairs, IntraPairs int
	// Within20 is the fraction of Pairs whose estimate is within 20 % of
	// the true RTT; Inter and Intra split it by pairs on two sites and on
	// one.
	Within20, Inter20, Intra20 float64
	// Within20Measured is the fraction of Pairs whose estimate is within
	// 20 % of the RTT the pair would measure before a choice: the least
	// of MinSamples samples.
	Within20Measured float64
	// IntraWithin5ms is the fraction of pairs on one site estimated within
	// 5 ms of the true RTT (20 % of a sub-millisecond RTT is less than a
	// sample's jitter).
	IntraWithin5ms float64
	// RelErr is the median and the 90th percentile of |estimate - RTT| /
	// RTT over Pairs.
	RelErrMedian, RelErrP90 float64
	// NearestSite is the fraction of nodes whose lowest estimate among the
	// members they are not connected to is a node of the site that holds
	// the truly nearest such member.
	NearestSite float64
	// ErrorMedian and ErrorP90 are of the nodes' own error estimates.
	ErrorMedian, ErrorP90 float64
	// Updates is the number of coordinate updates so far, per node.
	Updates float64
}

// Report is what one simulation measured.
type Report struct {
	N, Conns int
	Sites    []string
	Jitter   float64
	Seed     uint64
	Points   []Checkpoint
	Resets   int // coordinates that started again from the origin
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "N = %d on %d sites (%s), %d connections each, samples +0..%g ms, seed %d\n",
		r.N, len(r.Sites), strings.Join(r.Sites, " "), r.Conns, r.Jitter, r.Seed)
	fmt.Fprintf(&b, "%8s %7s %9s %9s %9s %11s %9s %9s %9s %9s %10s %8s\n", "time", "pairs", "within20", "inter20", "intra20", "intra<=5ms", "measured", "rel p50", "rel p90", "nearest", "err p50/90", "updates")
	for _, p := range r.Points {
		fmt.Fprintf(&b, "%8s %7d %8.1f%% %8.1f%% %8.1f%% %10.1f%% %8.1f%% %8.1f%% %8.1f%% %8.1f%% %5.2f/%.2f %8.0f\n",
			p.At, p.Pairs, 100*p.Within20, 100*p.Inter20, 100*p.Intra20, 100*p.IntraWithin5ms, 100*p.Within20Measured,
			100*p.RelErrMedian, 100*p.RelErrP90, 100*p.NearestSite, p.ErrorMedian, p.ErrorP90, p.Updates)
	}
	fmt.Fprintf(&b, "coordinates reset: %d", r.Resets)
	return b.String()
}

// sim is one run's state.
type sim struct {
	p       Params
	r       *rand.Rand
	site    []int
	access  []float64
	conns   [][]int     // each node's connected peers
	linked  [][]bool    // linked[i][j]: i and j are connected
	seen    [][][]int64 // seen[i][k]: times (ns) i sampled conns[i][k]
	read    [][]bool    // read[i][k]: i read the clock of conns[i][k]
	clients []*coord.Client
	pub     []*coord.Coordinate // each node's last heartbeat's coordinate
	updates int
}

// Run simulates p and reports each checkpoint.
func Run(p Params) (*Report, error) {
	square := len(p.WAN) == len(p.Sites)
	for _, row := range p.WAN {
		square = square && len(row) == len(p.Sites)
	}
	if p.N < 2 || len(p.Sites) == 0 || !square || len(p.Checkpoints) == 0 {
		return nil, fmt.Errorf("coordsim: want N of at least 2, a square WAN matrix of every site and at least one checkpoint")
	}
	s := &sim{p: p, r: rand.New(rand.NewPCG(p.Seed, 0x636f6f7264))}
	cc := p.Coord
	cc.Rand = s.r.Float64
	s.site = make([]int, p.N)
	s.access = make([]float64, p.N)
	s.clients = make([]*coord.Client, p.N)
	s.pub = make([]*coord.Coordinate, p.N)
	for i := range p.N {
		s.site[i] = i * len(p.Sites) / p.N
		s.access[i] = p.Access * s.r.Float64()
		var err error
		if s.clients[i], err = coord.NewClient(cc); err != nil {
			return nil, err
		}
	}
	s.connect()
	rep := &Report{N: p.N, Conns: p.Conns, Sites: p.Sites, Jitter: p.Jitter, Seed: p.Seed}
	// The events: each node's ping rounds, clock rounds and heartbeats,
	// at phases of their own, in time order.
	const (
		ping = iota
		beat
		clock
	)
	type event struct {
		at   int64
		node int
		kind int
	}
	end := int64(slices.Max(p.Checkpoints))
	var evs []event
	every := func(i, kind int, d time.Duration) {
		if d <= 0 {
			return
		}
		for t := int64(s.r.Float64() * float64(d)); t <= end; t += int64(d) {
			evs = append(evs, event{at: t, node: i, kind: kind})
		}
	}
	for i := range p.N {
		every(i, beat, p.Heartbeat)
		every(i, ping, p.PingInterval)
		every(i, clock, p.ClockInterval)
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	cps := slices.Clone(p.Checkpoints)
	slices.Sort(cps)
	for _, e := range evs {
		for len(cps) > 0 && e.at > int64(cps[0]) {
			rep.Points = append(rep.Points, s.measure(cps[0]))
			cps = cps[1:]
		}
		switch e.kind {
		case beat:
			c := s.clients[e.node].Coordinate()
			s.pub[e.node] = &c
		case ping:
			s.pingRound(e.node, e.at)
		case clock:
			s.clockRound(e.node, e.at)
		}
	}
	for _, cp := range cps {
		rep.Points = append(rep.Points, s.measure(cp))
	}
	for _, c := range s.clients {
		rep.Resets += c.Resets()
	}
	return rep, nil
}

// connect builds a random graph in which each node has about Conns
// peers: each node in turn links to random nodes that still have room
// until it has Conns or none has room.
func (s *sim) connect() {
	n := s.p.N
	s.conns = make([][]int, n)
	s.linked = make([][]bool, n)
	for i := range s.linked {
		s.linked[i] = make([]bool, n)
	}
	want := min(s.p.Conns, n-1)
	for _, i := range s.r.Perm(n) {
		for _, j := range s.r.Perm(n) {
			if len(s.conns[i]) >= want {
				break
			}
			if j != i && !s.linked[i][j] && len(s.conns[j]) < want {
				s.linked[i][j], s.linked[j][i] = true, true
				s.conns[i] = append(s.conns[i], j)
				s.conns[j] = append(s.conns[j], i)
			}
		}
	}
	s.seen = make([][][]int64, n)
	s.read = make([][]bool, n)
	for i := range s.seen {
		s.seen[i] = make([][]int64, len(s.conns[i]))
		s.read[i] = make([]bool, len(s.conns[i]))
	}
}

// rtt is the true RTT between i and j in milliseconds.
func (s *sim) rtt(i, j int) float64 {
	base := s.p.LocalRTT
	if s.site[i] != s.site[j] {
		base = s.p.WAN[s.site[i]][s.site[j]]
	}
	return base + s.access[i] + s.access[j]
}

// sampleWindow is how long a sample counts towards MinSamples (node's
// rttWindow).
const sampleWindow = int64(5 * time.Minute)

// pingRound is one round of node i's ping loop at time at: the peers with
// fewer than MinSamples samples in the window, and PingBatch others.
func (s *sim) pingRound(i int, at int64) {
	var missing, known []int
	for k := range s.conns[i] {
		n := 0
		for _, t := range s.seen[i][k] {
			if at-t <= sampleWindow {
				n++
			}
		}
		if n >= s.p.MinSamples {
			known = append(known, k)
		} else {
			missing = append(missing, k)
		}
	}
	s.r.Shuffle(len(known), func(a, b int) { known[a], known[b] = known[b], known[a] })
	for _, k := range append(missing, known[:min(len(known), s.p.PingBatch)]...) {
		s.sample(i, k, at)
	}
}

// maxClockReads bounds the readings of a clock round, as gossip's does.
const maxClockReads = 16

// clockRound is one clock round of node i at time at: the peers whose
// clock it has not read, and ClockBatch others (as gossip's clockReads),
// maxClockReads at most.
func (s *sim) clockRound(i int, at int64) {
	var missing, known []int
	for k := range s.conns[i] {
		if s.read[i][k] {
			known = append(known, k)
		} else {
			missing = append(missing, k)
		}
	}
	s.r.Shuffle(len(known), func(a, b int) { known[a], known[b] = known[b], known[a] })
	ks := append(missing, known[:min(len(known), s.p.ClockBatch)]...)
	for _, k := range ks[:min(len(ks), maxClockReads)] {
		s.read[i][k] = true
		s.sample(i, k, at)
	}
}

// sample is one RTT sample of node i of its peer conns[i][k] at time at.
func (s *sim) sample(i, k int, at int64) {
	j := s.conns[i][k]
	// Keep the samples of the window only.
	ts := s.seen[i][k]
	for len(ts) > 0 && at-ts[0] > sampleWindow {
		ts = ts[1:]
	}
	s.seen[i][k] = append(ts, at)
	if s.pub[j] == nil {
		return // not heard yet: a node updates only with a heartbeat's coordinate
	}
	sample := s.rtt(i, j) + s.p.Jitter*s.r.Float64()
	// Errors cannot happen here: the coordinate came from a client of the
	// same configuration, and the sample is in range.
	if _, err := s.clients[i].Update(fmt.Sprint(j), *s.pub[j], time.Duration(sample*float64(time.Millisecond))); err == nil {
		s.updates++
	}
}

// measure compares the estimates of every ordered unconnected pair with
// the true RTTs.
func (s *sim) measure(at time.Duration) Checkpoint {
	cp := Checkpoint{At: at, Updates: float64(s.updates) / float64(s.p.N)}
	var rels, errs []float64
	var in20, inter20, intra20, intra5, nearest, inMeasured int
	for i := range s.p.N {
		own := s.clients[i].Coordinate()
		errs = append(errs, own.Error)
		bestEst, bestSite := math.Inf(1), -1
		trueBest, trueSite := math.Inf(1), -1
		for j := range s.p.N {
			if i == j || s.linked[i][j] {
				continue
			}
			truth := s.rtt(i, j)
			if truth < trueBest {
				trueBest, trueSite = truth, s.site[j]
			}
			intra := s.site[i] == s.site[j]
			cp.Pairs++
			if intra {
				cp.IntraPairs++
			} else {
				cp.InterPairs++
			}
			if s.pub[j] == nil {
				rels = append(rels, math.Inf(1))
				continue
			}
			d, _ := own.DistanceTo(*s.pub[j])
			est := float64(d) / float64(time.Millisecond)
			if est < bestEst {
				bestEst, bestSite = est, s.site[j]
			}
			rel := math.Abs(est-truth) / truth
			rels = append(rels, rel)
			if rel <= 0.2 {
				in20++
				if intra {
					intra20++
				} else {
					inter20++
				}
			}
			if intra && math.Abs(est-truth) <= 5 {
				intra5++
			}
			jitter := s.p.Jitter
			for range s.p.MinSamples {
				jitter = min(jitter, s.p.Jitter*s.r.Float64())
			}
			if measured := truth + jitter; math.Abs(est-measured) <= 0.2*measured {
				inMeasured++
			}
		}
		if bestSite == trueSite && trueSite >= 0 {
			nearest++
		}
	}
	frac := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	cp.Within20, cp.Inter20, cp.Intra20 = frac(in20, cp.Pairs), frac(inter20, cp.InterPairs), frac(intra20, cp.IntraPairs)
	cp.IntraWithin5ms = frac(intra5, cp.IntraPairs)
	cp.Within20Measured = frac(inMeasured, cp.Pairs)
	cp.NearestSite = frac(nearest, s.p.N)
	cp.RelErrMedian, cp.RelErrP90 = quantile(rels, 0.5), quantile(rels, 0.9)
	cp.ErrorMedian, cp.ErrorP90 = quantile(errs, 0.5), quantile(errs, 0.9)
	return cp
}

// quantile returns the q-quantile of xs (nearest rank), 0 if empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}
