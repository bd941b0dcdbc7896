package node

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/internal/bg"
)

// mdnsService is the mDNS service name p2pshare nodes announce.
const mdnsService = "p2pshare"

// pingInterval is how often the peers table re-measures RTTs, and
// pingBatch how many peers that already have an RTT one round re-measures:
// every round pings the peers without one, and pingBatch others picked at
// random, so a node with many peers sends a bounded number of pings (a
// peer's RTT is refreshed every pingInterval·peers/pingBatch on average).
// Membership's clock readings, 4 members every 10 s, are RTT samples too:
// with both, each of 36 connected peers gets about 5 samples in rttWindow,
// more than rttMinSamples.
const (
	pingInterval = 15 * time.Second
	pingBatch    = 4
)

// peering keeps the node connected: it joins through the bootstrap peers
// (and again whenever the node has lost every peer), finds peers on the
// LAN by mDNS, re-dials dead members and silent bootstrap peers to heal
// partitions, and keeps the RTTs of connected peers fresh. It owns its
// loops and the mDNS service; Close stops them.
type peering struct {
	cfg  Config
	host host.Host
	dht  *dht.IpfsDHT
	memb *gossip.Membership
	rtts *rttFilter
	log  *slog.Logger

	bg   *bg.Group       // the loops and mDNS's dials
	ctx  context.Context // bg's context
	mdns mdns.Service    // nil without cfg.MDNS
}

// startPeering starts mDNS (if cfg.MDNS), makes a first bounded attempt
// to join the bootstrap peers, and starts the loops.
func startPeering(cfg Config, h host.Host, d *dht.IpfsDHT, m *gossip.Membership, rtts *rttFilter, log *slog.Logger) (*peering, error) {
	g := bg.New()
	pg := &peering{cfg: cfg, host: h, dht: d, memb: m, rtts: rtts, log: log, bg: g, ctx: g.Context()}
	if cfg.MDNS {
		pg.mdns = mdns.NewMdnsService(h, mdnsService, mdnsNotifee{pg})
		if err := pg.mdns.Start(); err != nil {
			pg.bg.Close()
			return nil, fmt.Errorf("start mDNS: %w", err)
		}
	}
	if len(cfg.Bootstrap) > 0 {
		jctx, jcancel := context.WithTimeout(pg.ctx, 2*time.Second)
		if pg.dialBootstrap(jctx) {
			pg.refreshDHT()
		}
		jcancel()
	}
	for _, loop := range []func(){pg.bootstrapLoop, pg.pingLoop, pg.rejoinLoop} {
		pg.bg.Go(func(context.Context) { loop() })
	}
	return pg, nil
}

// Close stops mDNS and the loops, and waits for them.
func (pg *peering) Close() error {
	var err error
	if pg.mdns != nil {
		err = pg.mdns.Close()
	}
	pg.bg.Close()
	return err
}

// dialBootstrap connects to every bootstrap peer at once and reports whether
// at least one connection succeeded.
func (pg *peering) dialBootstrap(ctx context.Context) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := false
	for _, ai := range pg.cfg.Bootstrap {
		if ai.ID == pg.host.ID() {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := pg.host.Connect(dctx, ai); err != nil {
				// Retried with backoff while the node has no peer.
				pg.log.Warn("bootstrap dial failed", "peer", ai.ID, "addrs", ai.Addrs, "err", err)
				return
			}
			mu.Lock()
			ok = true
			mu.Unlock()
		}(ai)
	}
	wg.Wait()
	return ok
}

// refreshDHT asks the DHT to fill its routing table now, without waiting.
func (pg *peering) refreshDHT() { _ = pg.dht.RefreshRoutingTable() }

// bootstrapLoop re-dials the bootstrap peers, with exponential backoff,
// whenever the node has no peer at all. While it has peers it sleeps until
// the last connection drops (or BootstrapBackoffMax passes), so an idle
// node that is connected never wakes for it.
func (pg *peering) bootstrapLoop() {
	if len(pg.cfg.Bootstrap) == 0 {
		return
	}
	alone := make(chan struct{}, 1)
	nb := &network.NotifyBundle{DisconnectedF: func(nw network.Network, _ network.Conn) {
		if len(nw.Peers()) == 0 {
			select {
			case alone <- struct{}{}:
			default:
			}
		}
	}}
	pg.host.Network().Notify(nb)
	defer pg.host.Network().StopNotify(nb)
	backoff := pg.cfg.BootstrapBackoff
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-pg.ctx.Done():
			return
		case <-t.C:
		case <-alone:
			// Give the peer that just left a moment: a connection
			// replaced by another to the same peer drops the count to 0
			// only for an instant.
			t.Reset(pg.cfg.BootstrapBackoff)
			continue
		}
		if len(pg.host.Network().Peers()) > 0 {
			backoff = pg.cfg.BootstrapBackoff
			t.Reset(pg.cfg.BootstrapBackoffMax)
			continue
		}
		if pg.dialBootstrap(pg.ctx) {
			pg.log.Info("joined through bootstrap peers")
			pg.refreshDHT()
			backoff = pg.cfg.BootstrapBackoff
			t.Reset(pg.cfg.BootstrapBackoffMax)
			continue
		}
		pg.log.Debug("no bootstrap peer reachable, retrying", "in", backoff)
		t.Reset(backoff)
		backoff = min(2*backoff, pg.cfg.BootstrapBackoffMax)
	}
}

// rejoinInterval is how often rejoinLoop re-dials the dead members and the
// silent bootstrap peers, and rejoinDialTimeout bounds one such dial.
const (
	rejoinInterval    = 5 * time.Second
	rejoinDialTimeout = 2 * time.Second
)

// rejoinDialers is about how many nodes dial each dead member in a round
// of rejoinLoop.
const rejoinDialers = 3.0

// rejoinLoop heals partitions. bootstrapLoop dials only a node that has no
// peer at all, and the two sides of a partition each keep their own peers:
// when the cut is mended nobody would dial across and the sides would stay
// apart for good. So every rejoinInterval this node dials the dead members
// (at the addresses their last heartbeat announced) and the bootstrap peers
// it hears no heartbeat from, if it is not connected to them. Once one
// connection crosses, heartbeats flow again and the other side is alive.
// A few dials across are enough: each node dials a dead member in a round
// with probability rejoinDialers/(live members - 1), so about
// rejoinDialers nodes do, whatever N. A member wrongly declared dead (a
// busy one, most often) is then not dialled by every node at once, which
// would keep it too busy to refute, and past MaxPeers would only have its
// connection manager close most of those connections again.
func (pg *peering) rejoinLoop() {
	pg.every(rejoinInterval, false, func() { pg.rejoin(pg.ctx) })
}

// rejoin makes one round of rejoinLoop's dials, in parallel, and waits for
// them. Dead members are dialed past the swarm's dial backoff, which the
// failed dials of a long cut would have stretched to minutes, for as long
// as they stay in the members table (gossip.Config.ForgetAfter). A
// bootstrap peer that is not a dead member (it left, or this node never
// heard of it or forgot it) keeps the backoff, so one gone for good costs a
// dial every few minutes; one that is alive or suspect is not dialed, as
// its heartbeats arrive: the connection manager may have trimmed the
// connection to it, and a re-dial every round would fight that.
func (pg *peering) rejoin(ctx context.Context) {
	targets, dead := rejoinTargets(pg.memb.Each, pg.cfg.Bootstrap, pg.host.ID(), rand.Float64)
	var wg sync.WaitGroup
	for _, ai := range targets {
		if pg.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, rejoinDialTimeout)
			defer cancel()
			if dead[ai.ID] {
				dctx = network.WithForceDirectDial(dctx, "rejoin a dead member")
			}
			if err := pg.host.Connect(dctx, ai); err != nil {
				pg.log.Debug("rejoin dial failed", "peer", ai.ID, "dead", dead[ai.ID], "err", err)
				return
			}
			pg.log.Info("reconnected", "peer", ai.ID, "dead_member", dead[ai.ID])
		}()
	}
	wg.Wait()
}

// rejoinTargets lists the peers a round of rejoinLoop dials, and which of
// them are dead members: a sample of the dead members (sampleDead; draw
// gives uniform numbers in [0, 1)) and the bootstrap peers, but self,
// that each(fn), which calls fn on every member, shows neither alive nor
// suspect nor dead.
func rejoinTargets(each func(func(gossip.Member)), bootstrap []peer.AddrInfo, self peer.ID, draw func() float64) (map[peer.ID]peer.AddrInfo, map[peer.ID]bool) {
	targets := map[peer.ID]peer.AddrInfo{}
	dead := map[peer.ID]bool{}
	heard := map[peer.ID]bool{}
	each(func(m gossip.Member) {
		switch m.State {
		case gossip.StateAlive, gossip.StateSuspect:
			heard[m.ID] = true
		case gossip.StateDead:
			targets[m.ID] = m.AddrInfo()
			dead[m.ID] = true
		}
	})
	sampleDead(targets, dead, len(heard), draw)
	for _, ai := range bootstrap {
		t, kept := targets[ai.ID]
		if ai.ID == self || heard[ai.ID] || dead[ai.ID] && !kept {
			// A dead bootstrap peer is a dead member like any other:
			// sampleDead left it to a few other nodes.
			continue
		}
		t.ID, t.Addrs = ai.ID, append(t.Addrs, ai.Addrs...)
		targets[ai.ID] = t
	}
	return targets, dead
}

// sampleDead keeps each dead member in targets with probability
// rejoinDialers/others (draw gives uniform numbers in [0, 1)), others the
// live members but this node, so about rejoinDialers nodes dial each.
func sampleDead(targets map[peer.ID]peer.AddrInfo, dead map[peer.ID]bool, others int, draw func() float64) {
	p := rejoinDialers / float64(max(1, others))
	if p >= 1 {
		return
	}
	for id := range dead {
		if draw() >= p {
			delete(targets, id)
		}
	}
}

// pingLoop keeps the RTT samples of every connected peer fresh.
func (pg *peering) pingLoop() {
	pg.every(pingInterval, true, func() { pg.pingSome(pg.ctx) })
}

// every calls f every d (and at once first if now) until the peering
// closes.
func (pg *peering) every(d time.Duration, now bool, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	if now {
		f()
	}
	for {
		select {
		case <-pg.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// pingSome is one round of pingLoop: the connected peers with fewer than
// rttMinSamples RTT samples in the window, and pingBatch others at random.
func (pg *peering) pingSome(ctx context.Context) {
	var missing, known []peer.ID
	for _, p := range pg.host.Network().Peers() {
		if _, have := pg.rtts.rtt(p); have >= rttMinSamples {
			known = append(known, p)
		} else {
			missing = append(missing, p)
		}
	}
	rand.Shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	pg.ping(ctx, append(missing, known[:min(len(known), pingBatch)]...))
}

// pingMissing measures the RTT of the connected peers without one.
func (pg *peering) pingMissing(ctx context.Context) {
	var missing []peer.ID
	for _, p := range pg.host.Network().Peers() {
		if pg.host.Peerstore().LatencyEWMA(p) == 0 {
			missing = append(missing, p)
		}
	}
	pg.ping(ctx, missing)
}

// ping measures the RTT of peers, one ping each, in parallel, within a
// second.
func (pg *peering) ping(ctx context.Context, peers []peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func(p peer.ID) {
			defer wg.Done()
			select {
			case <-ping.Ping(ctx, pg.host, p):
			case <-ctx.Done():
			}
		}(p)
	}
	wg.Wait()
}

// mdnsNotifee connects to peers found by mDNS.
type mdnsNotifee struct{ pg *peering }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	pg := m.pg
	if ai.ID == pg.host.ID() {
		return
	}
	// mDNS calls HandlePeerFound on goroutines its Close does not wait
	// for: the dial runs in the peering's group, or not at all once Close
	// has begun.
	pg.bg.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := pg.host.Connect(ctx, ai); err == nil {
			pg.log.Debug("connected to mDNS peer", "peer", ai.ID)
		}
	})
}
