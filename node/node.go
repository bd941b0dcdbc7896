package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/internal/bg"
	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/node/boltcheck"
	"github.com/p2pshare/p2pshare/share"
)

// DHTPrefix is the protocol prefix of p2pshare's private Kademlia DHT.
const DHTPrefix = "/p2pshare"

// dhtBucketSize is the K of p2pshare's DHT; every node must use the same.
const dhtBucketSize = 10

// mdnsService is the mDNS service name p2pshare nodes announce.
const mdnsService = "p2pshare"

// pingInterval is how often the peers table re-measures RTTs, and
// pingBatch how many peers that already have an RTT one round re-measures:
// every round pings the peers without one, and pingBatch others picked at
// random, so a node with many peers sends a bounded number of pings (a
// peer's RTT is refreshed every pingInterval·peers/pingBatch on average).
const (
	pingInterval = 15 * time.Second
	pingBatch    = 8
)

// gossipSubParams are GossipSub's defaults with a smaller mesh and less
// gossip. Every node receives each message about once per mesh peer, and
// sends each one to its mesh peers and IHAVEs to its gossip peers every
// heartbeat, so at idle a node's CPU is roughly proportional to D, Dlazy
// and the network's message rate (see BENCHMARKS.md, Idle daemons).
// Networks of trusted nodes on a LAN do not need the default mesh of 6 for
// resilience against attackers: a mesh of 3 still reaches every node of a
// 100-node network in a few hops, and anti-entropy (kv) and the heartbeat
// timers and probes (membership) cover a message lost to a broken mesh
// link. Dout, the quota of outbound connections in the mesh (a defence
// against eclipse attacks by peers that dial in), is 0: GossipSub requires
// it below D/2. Flood publishing (sending one's own messages to every peer
// in the topic, not only the mesh) is off for the same reason.
func gossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout = 3, 2, 4, 1, 0
	p.Dlazy = 2
	// IHAVE to Dlazy peers only, not a quarter of all peers: at 100 peers
	// the default factor sends 24 IHAVEs per topic per heartbeat.
	p.GossipFactor = 0
	return p
}

// Node is a running p2pshare node: repo, host, DHT, discovery and the share
// service. Its methods are safe for concurrent use. Close stops everything
// it started.
type Node struct {
	cfg   Config
	log   *slog.Logger
	repo  *Repo
	host  host.Host
	dht   *dht.IpfsDHT
	store *share.Store
	share *share.Service
	mdns  mdns.Service
	bw    *metrics.BandwidthCounter
	ps    *pubsub.PubSub
	memb  *gossip.Membership
	kv    *kv.Store
	gate  *admit.Gate // nil in an open network
	punch *punchGate  // the host's connection gater, in front of gate
	clock func() time.Time
	// membRef is memb for the DHT's validators, which run before memb is
	// set and concurrently with New.
	membRef atomic.Pointer[gossip.Membership]
	reach   reachability
	// hostRef is host for the callbacks libp2p may call before New has
	// set host (AutoRelay's relayCandidates).
	hostRef atomic.Value

	transfers transfers // shares and gets in progress
	// rtts holds the RTT samples behind the host peerstore's latency
	// (see rttPeerstore).
	rtts    *rttFilter
	metrics *nodeMetrics

	started   time.Time
	bg        *bg.Group       // the node's goroutines
	ctx       context.Context // bg's context
	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex // guards apiURL and onShutdown
	apiURL     string
	onShutdown func()
}

// New opens and locks the repo, starts the host, the DHT, discovery and the
// share service, and makes a first bounded attempt to join the bootstrap
// peers (retried in the background until it succeeds).
func New(cfg Config) (n *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	repo, err := OpenRepo(cfg.RepoDir)
	if err != nil {
		return nil, err
	}
	g := bg.New()
	ctx := g.Context()
	n = &Node{cfg: cfg, log: log.With("component", "node"), repo: repo, bg: g, ctx: ctx, started: time.Now(), clock: cfg.Now}
	if n.clock == nil {
		n.clock = time.Now
	}
	// Close what was started on an error. Through a copy: every error
	// return below is "return nil, err", which sets n to nil before this
	// runs.
	created := n
	defer func() {
		if err != nil {
			_ = created.Close()
		}
	}()
	key, err := repo.LoadIdentity(cfg.NewIdentity)
	if err != nil {
		return nil, err
	}
	cleanPartials(repo, n.log)
	// A ticket that does not admit this node (another peer's, expired, not
	// signed by the authority) fails here, before anything is logged or
	// bound, like every other bad setting; the gate checks it again.
	if a := cfg.Admission; a.Authority != nil && a.Ticket != nil {
		self, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := admit.VerifyTicket(a.Authority, a.Ticket, self, n.now()); err != nil {
			return nil, fmt.Errorf("admission: this node's own ticket: %w", err)
		}
	}
	// The connection manager keeps its low water of connections on top
	// of the protected ones (the DHT's nearest buckets, GossipSub meshes):
	// a quarter of MaxPeers leaves room for those under MaxPeers.
	cm, err := connmgr.NewConnManager(max(cfg.MaxPeers/4, 1), cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	listen := cfg.ListenAddrs
	n.bw = metrics.NewBandwidthCounter()
	opts := []libp2p.Option{libp2p.Transport(tcpTransportFor(n.listenAddrs, n.observer)), libp2p.BandwidthReporter(n.bw)}
	if cfg.SwarmKey != nil {
		listen = tcpOnly(listen)
		if len(listen) == 0 {
			return nil, errors.New("a swarm key needs a TCP listen address (private networks do not work over QUIC)")
		}
		opts = append(opts, libp2p.PrivateNetwork(cfg.SwarmKey))
		n.log.Info("private network: swarm key set, listening on TCP only (QUIC cannot carry a swarm key)")
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	switch {
	case cfg.Admission.Authority != nil:
		n.log.Info("admission: peers must present a ticket signed by the network authority", "allowlisted", len(cfg.Admission.Allow))
	case len(cfg.Admission.Allow) > 0:
		n.log.Info("admission: only allowlisted peers may connect", "allowlisted", len(cfg.Admission.Allow))
	case cfg.SwarmKey == nil:
		n.log.Warn("open network: no swarm key, no authority, no allowlist; any node that can reach this one may join")
	}
	n.metrics = newMetrics()
	opts = append(opts, libp2p.PrometheusRegisterer(n.metrics.reg))
	rm, err := newResourceManager()
	if err != nil {
		return nil, err
	}
	opts = append(opts, libp2p.ResourceManager(rm))
	if cfg.Admission.Enabled() {
		ac := cfg.Admission
		ac.Logger = log
		ac.Now = n.now
		if n.gate, err = admit.New(ac); err != nil {
			return nil, err
		}
	}
	mem, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	n.rtts = newRTTFilter(time.Now, rttWindow, rttKeep)
	opts = append(opts, libp2p.Peerstore(&rttPeerstore{certifiedPeerstore: mem, f: n.rtts}))
	n.punch = newPunchGate(mem.Addrs)
	if n.gate != nil {
		n.punch.next = n.gate
	}
	opts = append(opts, libp2p.ConnectionGater(n.punch))
	opts = append(opts, n.reachOptions()...)
	n.host, err = libp2p.New(append(opts,
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		// TLS first: Go's AES-GCM is hardware accelerated and moves more
		// bytes per second than Noise's ChaCha20 on common machines.
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.DialRanker(tcpFirstRanker),
		libp2p.UserAgent("p2pshare/"+Version),
	)...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.hostRef.Store(n.host)
	if err := checkBound(listen, n.host.Network().ListenAddresses()); err != nil {
		return nil, err
	}
	reachSub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtAutoRelayAddrsUpdated)})
	if err != nil {
		return nil, fmt.Errorf("subscribe to reachability: %w", err)
	}
	n.bg.Go(func(context.Context) { n.watchReachability(reachSub) })
	// gh is the host every protocol of p2pshare's uses: with admission on,
	// its streams wait until the remote peer has shown a valid ticket.
	gh := n.host
	if n.gate != nil {
		if err := n.gate.Attach(n.host); err != nil {
			return nil, err
		}
		gh = n.gate.Host()
	}
	n.dht, err = dht.New(gh,
		// A server while this node's reachability is public or unknown
		// (a LAN, where AutoNAT cannot tell), a client while it is
		// private: peers behind a NAT would only be dead ends in
		// others' routing tables.
		dht.Mode(dht.ModeAutoServer),
		// K: the DHT keeps its routing table's two nearest buckets (up to
		// 2·K peers) connected, protected from the connection manager,
		// which with the default K of 20 pins 40 connections and defeats
		// MaxPeers. 10 still stores each provider record on 10 nodes.
		dht.BucketSize(dhtBucketSize),
		dht.ProtocolPrefix(DHTPrefix),
		dht.Validator(record.NamespacedValidator{
			kv.DHTNamespace:     kv.Validator{Skew: cfg.KV.MaxClockSkew, Now: n.networkNow},
			oldNameDHTNamespace: &oldNameValidator{log: n.log},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	metaMoved, err := boltcheck.Salvage(filepath.Join(repo.Path(repoStoreDir), share.MetaFile),
		"rebuilding the list of held files from the content store ("+repo.Path(repoStoreDir)+"/blocks), which is the truth", n.log)
	if err != nil {
		return nil, err
	}
	n.store, err = share.OpenStore(repo.Path(repoStoreDir), log)
	if err != nil {
		return nil, err
	}
	n.share, err = share.New(gh, n.dht, n.store, cfg.Share, log)
	if err != nil {
		return nil, err
	}
	n.ps, err = pubsub.NewGossipSub(ctx, gh,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(1<<20),
		pubsub.WithGossipSubParams(gossipSubParams()),
		pubsub.WithFloodPublish(false))
	if err != nil {
		return nil, fmt.Errorf("start GossipSub: %w", err)
	}
	gc := cfg.Gossip
	gc.Clock = &wallClock{n.now}
	gc.Incarnations = &incarnations{path: repo.Path(repoIncarnationFile), now: n.now}
	n.memb, err = gossip.New(gh, n.ps, gc, n.facts, log)
	if err != nil {
		return nil, err
	}
	n.membRef.Store(n.memb)
	kvc := cfg.KV
	kvc.Check = n.checkKVRecord
	kvc.Now = n.now
	kvc.ClockOffset = n.clockOffset
	if _, err := boltcheck.Salvage(repo.Path(repoKVFile),
		"starting with an empty key-value store and catalog, which catch up from peers by anti-entropy sync", n.log); err != nil {
		return nil, err
	}
	n.kv, err = kv.Open(gh, n.ps, n.dht, repo.Path(repoKVFile), kvc, log)
	if err != nil {
		return nil, err
	}
	n.share.SetDirectory(catalogDirectory{n.kv})
	if metaMoved != "" {
		n.restoreNames()
	}
	n.metrics.register(n)
	// The first replication check waits until this node has caught up
	// with the catalog and heard every member (ReplicationDelay at most).
	ready := make(chan struct{})
	n.bg.Go(func(context.Context) {
		for _, ch := range []<-chan struct{}{n.kv.Synced(), n.memb.Settled()} {
			select {
			case <-ch:
			case <-n.ctx.Done():
				return
			}
		}
		close(ready)
	})
	n.share.SetReplicationReady(ready)
	n.share.StartReplication(membershipCluster{m: n.memb, n: n})
	events, _ := n.memb.Subscribe(64) // closed by the membership's Close
	if n.gate != nil && cfg.Admission.Authority != nil {
		revoked, _ := n.kv.Watch(kv.NSRevoke, "") // closed by the store's Close
		n.bg.Go(func(ctx context.Context) { n.revocationLoop(ctx, revoked) })
	}
	for _, loop := range []func(){n.announceCatalog, func() { n.watchMembers(events) }, n.watchClock} {
		n.bg.Go(func(context.Context) { loop() })
	}
	if cfg.MDNS {
		n.mdns = mdns.NewMdnsService(n.host, mdnsService, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			return nil, fmt.Errorf("start mDNS: %w", err)
		}
	}
	if len(cfg.Bootstrap) > 0 {
		jctx, jcancel := context.WithTimeout(ctx, 2*time.Second)
		if n.dialBootstrap(jctx) {
			n.refreshDHT()
		}
		jcancel()
	}
	for _, loop := range []func(){n.bootstrapLoop, n.pingLoop, n.rejoinLoop} {
		n.bg.Go(func(context.Context) { loop() })
	}
	n.log.Info("node started", "peer", n.host.ID(), "addrs", n.host.Addrs(), "mdns", cfg.MDNS, "bootstrap", len(cfg.Bootstrap))
	return n, nil
}

// checkBound fails if a listen address with an explicit port is not among
// the bound ones: libp2p starts as long as one address binds, and a node
// silently missing its QUIC or TCP listener is hard to diagnose.
func checkBound(want, bound []ma.Multiaddr) error {
	for _, w := range want {
		port, err := portOf(w)
		if err != nil || port == "0" {
			continue
		}
		found := false
		for _, b := range bound {
			if b.Equal(w) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("listen on %s: not bound (is the port in use?)", w)
		}
	}
	return nil
}

func portOf(a ma.Multiaddr) (string, error) {
	if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
		return p, nil
	}
	return a.ValueForProtocol(ma.P_UDP)
}

// tcpOnly keeps the addresses that do not use UDP (QUIC, WebTransport).
func tcpOnly(as []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range as {
		if _, err := a.ValueForProtocol(ma.P_UDP); err != nil {
			out = append(out, a)
		}
	}
	return out
}

// facts is what this node's heartbeats tell others.
func (n *Node) facts() (int, int64) {
	files := n.store.Count()
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.repo.Dir, &st); err != nil {
		return files, 0
	}
	return files, int64(st.Bavail) * int64(st.Bsize)
}

// Membership returns the node's members table.
func (n *Node) Membership() *gossip.Membership { return n.memb }

// Version is the p2pshare version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the node's DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// Share returns the share service.
func (n *Node) ShareService() *share.Service { return n.share }

// Repo returns the node's repo.
func (n *Node) Repo() *Repo { return n.repo }

// SetAPIURL records where the daemon serves the API, for ID.
func (n *Node) SetAPIURL(u string) {
	n.mu.Lock()
	n.apiURL = u
	n.mu.Unlock()
}

// Close stops discovery, the background loops, the share service, the DHT
// and the host, closes the store and releases the repo. Safe to call more
// than once; later calls return the first call's error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		if n.kv != nil {
			errs = append(errs, n.kv.Close())
		}
		if n.memb != nil {
			errs = append(errs, n.memb.Close())
		}
		n.bg.Close()
		if n.share != nil {
			errs = append(errs, n.share.Close())
		}
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.gate != nil {
			errs = append(errs, n.gate.Close())
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		errs = append(errs, n.repo.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// dialBootstrap connects to every bootstrap peer at once and reports whether
// at least one connection succeeded.
func (n *Node) dialBootstrap(ctx context.Context) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := false
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID == n.host.ID() {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := n.host.Connect(dctx, ai); err != nil {
				// Retried with backoff while the node has no peer.
				n.log.Warn("bootstrap dial failed", "peer", ai.ID, "addrs", ai.Addrs, "err", err)
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
func (n *Node) refreshDHT() { _ = n.dht.RefreshRoutingTable() }

// bootstrapLoop re-dials the bootstrap peers, with exponential backoff,
// whenever the node has no peer at all. While it has peers it sleeps until
// the last connection drops (or BootstrapBackoffMax passes), so an idle
// node that is connected never wakes for it.
func (n *Node) bootstrapLoop() {
	if len(n.cfg.Bootstrap) == 0 {
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
	n.host.Network().Notify(nb)
	defer n.host.Network().StopNotify(nb)
	backoff := n.cfg.BootstrapBackoff
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-alone:
			// Give the peer that just left a moment: a connection
			// replaced by another to the same peer drops the count to 0
			// only for an instant.
			t.Reset(n.cfg.BootstrapBackoff)
			continue
		}
		if len(n.host.Network().Peers()) > 0 {
			backoff = n.cfg.BootstrapBackoff
			t.Reset(n.cfg.BootstrapBackoffMax)
			continue
		}
		if n.dialBootstrap(n.ctx) {
			n.log.Info("joined through bootstrap peers")
			n.refreshDHT()
			backoff = n.cfg.BootstrapBackoff
			t.Reset(n.cfg.BootstrapBackoffMax)
			continue
		}
		n.log.Debug("no bootstrap peer reachable, retrying", "in", backoff)
		t.Reset(backoff)
		backoff = min(2*backoff, n.cfg.BootstrapBackoffMax)
	}
}

// rejoinInterval is how often rejoinLoop re-dials the dead members and the
// silent bootstrap peers, and rejoinDialTimeout bounds one such dial.
const (
	rejoinInterval    = 5 * time.Second
	rejoinDialTimeout = 2 * time.Second
)

// rejoinLoop heals partitions. bootstrapLoop dials only a node that has no
// peer at all, and the two sides of a partition each keep their own peers:
// when the cut is mended nobody would dial across and the sides would stay
// apart for good. So every rejoinInterval this node dials the dead members
// (at the addresses their last heartbeat announced) and the bootstrap peers
// it hears no heartbeat from, if it is not connected to them. Once one
// connection crosses, heartbeats flow again and the other side is alive.
func (n *Node) rejoinLoop() {
	t := time.NewTicker(rejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.rejoin(n.ctx)
	}
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
func (n *Node) rejoin(ctx context.Context) {
	targets := map[peer.ID]peer.AddrInfo{}
	dead := map[peer.ID]bool{}
	heard := map[peer.ID]bool{}
	for _, m := range n.memb.Members() {
		switch {
		case m.Self:
		case m.State == gossip.StateAlive || m.State == gossip.StateSuspect:
			heard[m.ID] = true
		case m.State == gossip.StateDead:
			targets[m.ID] = m.AddrInfo()
			dead[m.ID] = true
		}
	}
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID != n.host.ID() && !heard[ai.ID] {
			t := targets[ai.ID]
			t.ID, t.Addrs = ai.ID, append(t.Addrs, ai.Addrs...)
			targets[ai.ID] = t
		}
	}
	var wg sync.WaitGroup
	for _, ai := range targets {
		if n.host.Network().Connectedness(ai.ID) == network.Connected {
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
			if err := n.host.Connect(dctx, ai); err != nil {
				n.log.Debug("rejoin dial failed", "peer", ai.ID, "dead", dead[ai.ID], "err", err)
				return
			}
			n.log.Info("reconnected", "peer", ai.ID, "dead_member", dead[ai.ID])
		}()
	}
	wg.Wait()
}

// memberAddrInfo is p with the addresses its last heartbeat announced, if
// it is in the members table.
func (n *Node) memberAddrInfo(p peer.ID) peer.AddrInfo {
	if m, ok := n.memb.Member(p); ok {
		return m.AddrInfo()
	}
	return peer.AddrInfo{ID: p}
}

// pingLoop keeps the RTT samples of every connected peer fresh.
func (n *Node) pingLoop() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		n.pingSome(n.ctx)
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pingSome is one round of pingLoop: the connected peers with fewer than
// rttMinSamples RTT samples in the window, and pingBatch others at random.
func (n *Node) pingSome(ctx context.Context) {
	var missing, known []peer.ID
	for _, p := range n.host.Network().Peers() {
		if _, have := n.rtts.rtt(p); have >= rttMinSamples {
			known = append(known, p)
		} else {
			missing = append(missing, p)
		}
	}
	rand.Shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	n.ping(ctx, append(missing, known[:min(len(known), pingBatch)]...))
}

// pingMissing measures the RTT of the connected peers without one.
func (n *Node) pingMissing(ctx context.Context) {
	var missing []peer.ID
	for _, p := range n.host.Network().Peers() {
		if n.host.Peerstore().LatencyEWMA(p) == 0 {
			missing = append(missing, p)
		}
	}
	n.ping(ctx, missing)
}

// ping measures the RTT of peers, one ping each, in parallel, within a
// second.
func (n *Node) ping(ctx context.Context, peers []peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func(p peer.ID) {
			defer wg.Done()
			select {
			case <-ping.Ping(ctx, n.host, p):
			case <-ctx.Done():
			}
		}(p)
	}
	wg.Wait()
}

// mdnsNotifee connects to peers found by mDNS.
type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.host.ID() {
		return
	}
	// mDNS calls HandlePeerFound on goroutines its Close does not wait
	// for: the dial runs in the node's group, or not at all once Close
	// has begun.
	n.bg.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := n.host.Connect(ctx, ai); err == nil {
			n.log.Debug("connected to mDNS peer", "peer", ai.ID)
		}
	})
}
