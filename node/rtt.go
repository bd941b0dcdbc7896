package node

import (
	"context"
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
// ranks them: it pings those with fewer than rttMinSamples samples in the
// window, in parallel, until they have them or measureTimeout passes. A
// member it is not connected to and whose RTT the network coordinates
// estimate (see nearness) is ranked by the estimate, not dialled; others
// are dialled first.
func (n *Node) measure(ctx context.Context, peers []peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, measureTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range peers {
		_, have := n.rtts.rtt(p)
		if p == n.host.ID() || have >= rttMinSamples {
			continue
		}
		if n.host.Network().Connectedness(p) != network.Connected {
			if m, ok := n.memb.Member(p); ok {
				if _, ok := n.near.estimate(m.Coord); ok {
					continue
				}
			}
		}
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
		}(p, rttMinSamples-have)
	}
	wg.Wait()
}
