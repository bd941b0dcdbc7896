package node

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// The RTT of a peer, as every "closest" choice of the node sees it (the
// holder a get asks first, replica targets, relocation on leave, rtt_ms in
// peers and members), is the minimum of its RTT samples of the last
// rttWindow, as TCP and BBR estimate a path's propagation delay. A sample
// is never below the propagation delay, while queues, a busy CPU and
// handshakes only add to it: an average of samples drifts with the load
// of the moment, the minimum of a few does not.
const (
	// rttWindow is how long a sample counts. A route that got longer is
	// seen once the shorter samples have aged out.
	rttWindow = 5 * time.Minute
	// rttKeep caps the samples kept per peer.
	rttKeep = 32
	// rttMinSamples is how many samples in the window a peer needs before
	// a choice ranks it; measure pings the others first.
	rttMinSamples = 3
	// measureTimeout bounds the pings measure sends before a choice.
	measureTimeout = 2 * time.Second
)

// rttSample is one RTT measurement and when it was taken.
type rttSample struct {
	at  time.Time
	rtt time.Duration
}

// rttFilter keeps the recent RTT samples of each peer and answers their
// windowed minimum. It is safe for concurrent use.
type rttFilter struct {
	now    func() time.Time
	window time.Duration
	keep   int

	mu    sync.Mutex
	peers map[peer.ID][]rttSample // oldest first
}

func newRTTFilter(now func() time.Time, window time.Duration, keep int) *rttFilter {
	return &rttFilter{now: now, window: window, keep: keep, peers: map[peer.ID][]rttSample{}}
}

// record adds a sample of p. Samples that are not positive are ignored.
func (f *rttFilter) record(p peer.ID, rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := append(f.trim(p, now), rttSample{at: now, rtt: rtt})
	if len(s) > f.keep {
		s = s[len(s)-f.keep:]
	}
	f.peers[p] = s
}

// trim drops the samples of p older than the window, except the newest:
// a peer not measured for a while keeps its last figure until the next
// sample replaces it. Call with mu held.
func (f *rttFilter) trim(p peer.ID, now time.Time) []rttSample {
	s := f.peers[p]
	i := 0
	for i < len(s)-1 && now.Sub(s[i].at) > f.window {
		i++
	}
	if i > 0 {
		s = append(s[:0], s[i:]...)
		f.peers[p] = s
	}
	return s
}

// rtt returns the minimum RTT sample of p in the window (its newest
// sample if all are older), and how many samples of the window that is
// drawn from; 0, 0 if p was never measured.
func (f *rttFilter) rtt(p peer.ID) (time.Duration, int) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.trim(p, now)
	if len(s) == 0 {
		return 0, 0
	}
	best, n := s[len(s)-1].rtt, 0
	for _, x := range s {
		if now.Sub(x.at) <= f.window {
			n++
			best = min(best, x.rtt)
		}
	}
	return best, n
}

// forget drops the samples of p.
func (f *rttFilter) forget(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.peers, p)
}

// rttPeerstore is the host's peerstore with its latency metric replaced
// by an rttFilter: libp2p's ping records every RTT it measures in the
// peerstore (the node's own pings, membership's probes, share's pings of
// providers), and every reader of LatencyEWMA (share, gossip, the DHT,
// the API) gets the windowed minimum instead of a moving average. Each
// sample also moves the node's network coordinate (near, when set).
type rttPeerstore struct {
	certifiedPeerstore
	f    *rttFilter
	near *nearness
}

// certifiedPeerstore is what libp2p's in-memory peerstore implements:
// identify looks for the certified address book by type assertion, so the
// wrapper must keep it.
type certifiedPeerstore interface {
	peerstore.Peerstore
	peerstore.CertifiedAddrBook
}

// RecordLatency records a sample in the filter and in the wrapped
// peerstore, and gives it to the network coordinate.
func (ps *rttPeerstore) RecordLatency(p peer.ID, rtt time.Duration) {
	ps.f.record(p, rtt)
	ps.certifiedPeerstore.RecordLatency(p, rtt)
	if ps.near != nil && rtt > 0 {
		ps.near.sample(p, rtt)
	}
}

// LatencyEWMA returns the windowed minimum RTT of p, 0 if unmeasured.
func (ps *rttPeerstore) LatencyEWMA(p peer.ID) time.Duration {
	rtt, _ := ps.f.rtt(p)
	return rtt
}

// RemovePeer drops p's samples with the rest of what is stored of it.
func (ps *rttPeerstore) RemovePeer(p peer.ID) {
	ps.f.forget(p)
	if ps.near != nil {
		ps.near.forget(p)
	}
	ps.certifiedPeerstore.RemovePeer(p)
}

// measure makes sure each of peers can be ranked by RTT before a choice
// ranks them: it pings those pingList picks, in parallel, until they have
// rttMinSamples samples or measureTimeout passes, dialling first those it
// is not connected to.
func (n *Node) measure(ctx context.Context, peers []peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, measureTimeout)
	defer cancel()
	need := func(p peer.ID) int {
		if p == n.host.ID() {
			return 0
		}
		_, have := n.rtts.rtt(p)
		return max(rttMinSamples-have, 0)
	}
	estimate := func(p peer.ID) (time.Duration, bool) {
		if n.host.Network().Connectedness(p) == network.Connected {
			return 0, false
		}
		m, ok := n.memb.Member(p)
		if !ok {
			return 0, false
		}
		return n.near.estimate(m.Coord)
	}
	var wg sync.WaitGroup
	for _, p := range pingList(peers, need, estimate, measureShortlist) {
		wg.Add(1)
		go func(p peer.ID, need int) {
			defer wg.Done()
			// A member not yet connected is dialled at the addresses
			// its heartbeats announce: the peerstore may not know them
			// yet (a node that just joined).
			if n.host.Network().Connectedness(p) != network.Connected {
				if err := n.host.Connect(ctx, memberAddrInfo(n.memb, p)); err != nil {
					n.log.Debug("measure RTT: dial failed", "peer", p, "err", err)
					return
				}
			}
			pctx, cancel := context.WithCancel(ctx)
			defer cancel() // stops ping.Ping's loop
			results := ping.Ping(pctx, n.host, p)
			for range need {
				select {
				case r := <-results:
					if r.Error != nil {
						return
					}
				case <-pctx.Done():
					return
				}
			}
		}(p, need(p))
	}
	wg.Wait()
}

// measureShortlist is how many of the members a choice would rank by
// their coordinates' estimate are pinged all the same: those estimated
// nearest. An estimate is off by a fifth for one pair in ten, and by more
// for a node whose coordinate has settled against some sites only (one
// that just joined, sampled by the members it happened to meet): the
// shortlist makes the winner of a choice a measured RTT whenever the
// nearest member is among the few estimated nearest, for a handful of
// dials.
const measureShortlist = 4

// pingList returns the peers a choice must ping before it ranks them:
// those that need samples (need > 0) and have no estimate from the
// coordinates, and of those that have one, the shortlist estimated
// nearest.
func pingList(peers []peer.ID, need func(peer.ID) int, estimate func(peer.ID) (time.Duration, bool), shortlist int) []peer.ID {
	type est struct {
		p   peer.ID
		rtt time.Duration
	}
	var out []peer.ID
	var ests []est
	seen := map[peer.ID]bool{}
	for _, p := range peers {
		if seen[p] || need(p) == 0 {
			continue
		}
		seen[p] = true
		if rtt, ok := estimate(p); ok {
			ests = append(ests, est{p, rtt})
			continue
		}
		out = append(out, p)
	}
	sort.Slice(ests, func(i, j int) bool {
		if ests[i].rtt != ests[j].rtt {
			return ests[i].rtt < ests[j].rtt
		}
		return ests[i].p < ests[j].p
	})
	for _, e := range ests[:min(shortlist, len(ests))] {
		out = append(out, e.p)
	}
	return out
}
