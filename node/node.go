package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
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
// in the topic, not only the mesh) is off for the same reason. Dscore is
// 2: a mesh pruned back to D keeps its 2 best-scoring peers, the nearest
// (see peerScore), and 1 at random.
func gossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout = 3, 2, 4, 2, 0
	p.Dlazy = 2
	// IHAVE to Dlazy peers only, not a quarter of all peers: at 100 peers
	// the default factor sends 24 IHAVEs per topic per heartbeat.
	p.GossipFactor = 0
	return p
}

// Node is a running p2pshare node, the composition root of its parts: it
// builds them in dependency order (repo, host, content store, GossipSub,
// membership, DHT, key-value store, share service, its own loops, peering),
// runs the glue between them, and Close closes them in the reverse order.
// Its API is CoreAPI. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	repo    *Repo
	host    host.Host
	dht     *dht.IpfsDHT
	store   *share.Store
	share   *share.Service
	peering *peering // bootstrap, rejoin, ping and mDNS
	bw      *metrics.BandwidthCounter
	ps      *pubsub.PubSub
	memb    *gossip.Membership
	kv      *kv.Store
	gate    *admit.Gate // nil in an open network
	punch   *punchGate  // the host's connection gater, in front of gate
	clock   func() time.Time
	reach   reachability
	// hostRef is host for the callbacks libp2p may call before New has
	// set host (AutoRelay's relayCandidates).
	hostRef atomic.Value

	transfers transfers // shares and gets in progress
	// rtts holds the RTT samples behind the host peerstore's latency
	// (see rttPeerstore).
	rtts *rttFilter
	// near keeps the node's network coordinate and ranks members by RTT
	// (see nearness).
	near    *nearness
	metrics *nodeMetrics

	started   time.Time
	bg        *bg.Group       // the node's loops, started once every part exists
	ctx       context.Context // bg's context
	closers   []func() error  // of the parts built, in New's order
	closeOnce sync.Once
	closeErr  error
}

// New opens and locks the repo and builds the node's parts in dependency
// order, each with everything it needs: the host (behind the admission
// gate), the content store, GossipSub, the membership, the DHT, the
// key-value store and the share service. Then it starts the node's loops
// and discovery, and makes a first bounded attempt to join the bootstrap
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
	n = &Node{cfg: cfg, log: log.With("component", "node"), repo: repo, started: time.Now(), clock: cfg.Now}
	n.closing(repo.Close)
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
	if repo.Upgraded != 0 {
		n.log.Info("repo upgraded in place", "repo", repo.Dir, "from_version", repo.Upgraded, "to_version", RepoVersion)
	}
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
	// Past MaxPeers the connection manager trims to three quarters of
	// it: each connection it closes sends both sides to check the other
	// (gossip's disconnect check) and is often dialled again soon (a
	// DHT query, a mesh, a watcher), so a trim closes a few at a time
	// rather than most of them at once.
	cm, err := connmgr.NewConnManager(max(cfg.MaxPeers*3/4, 1), cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
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
		n.closing(n.gate.Close) // after the host, which calls it
	}
	mem, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	n.rtts = newRTTFilter(time.Now, rttWindow, rttKeep)
	if n.near, err = newNearness(n.rtts, n.log); err != nil {
		return nil, err
	}
	opts = append(opts, libp2p.Peerstore(&rttPeerstore{certifiedPeerstore: mem, f: n.rtts, near: n.near}))
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
		libp2p.ConnectionManager(boundedConns{cm}),
		libp2p.DialRanker(tcpFirstRanker),
		libp2p.UserAgent("p2pshare/"+Version),
	)...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.closing(n.host.Close)
	n.hostRef.Store(n.host)
	if err := checkBound(listen, n.host.Network().ListenAddresses()); err != nil {
		return nil, err
	}
	// gh is the host every protocol of p2pshare's uses: with admission on,
	// its streams wait until the remote peer has shown a valid ticket.
	gh := n.host
	if n.gate != nil {
		if err := n.gate.Attach(n.host); err != nil {
			return nil, err
		}
		gh = n.gate.Host()
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
	n.closing(n.store.Close)
	psCtx, psCancel := context.WithCancel(context.Background())
	n.closing(func() error { psCancel(); return nil })
	psOpts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(1 << 20),
		pubsub.WithGossipSubParams(gossipSubParams()),
		pubsub.WithFloodPublish(false),
	}
	if gossipRTTScore {
		psOpts = append(psOpts, pubsub.WithPeerScore(peerScore(func(p peer.ID) time.Duration { rtt, _ := n.rtts.rtt(p); return rtt })))
	}
	n.ps, err = pubsub.NewGossipSub(psCtx, gh, psOpts...)
	if err != nil {
		return nil, fmt.Errorf("start GossipSub: %w", err)
	}
	gc := cfg.Gossip
	gc.Clock = &wallClock{n.now}
	gc.Incarnations = &incarnations{path: repo.Path(repoIncarnationFile), now: n.now}
	gc.Coordinates = n.near
	gc.Addrs = n.memberAddrs
	n.memb, err = gossip.New(gh, n.ps, gc, n.facts, log)
	if err != nil {
		return nil, err
	}
	n.near.memb.Store(n.memb)
	n.punch.setMembers(func(p peer.ID) ([]ma.Multiaddr, bool) {
		m, ok := n.memb.Member(p)
		if !ok || m.Self || len(m.Addrs) == 0 {
			return nil, false
		}
		return m.AddrInfo().Addrs, true
	})
	n.closing(n.memb.Close)
	n.dht, err = dht.New(gh,
		// A server while this node's reachability is public or unknown
		// (a LAN, where AutoNAT cannot tell), a client while it is
		// private: peers behind a NAT would only be dead ends in
		// others' routing tables.
		dht.Mode(dht.ModeAutoServer),
		// K: 10 keeps the routing table, and the connections its
		// queries and refreshes open, to half the default's; it still
		// stores each provider record on 10 nodes. (The DHT asks the
		// connection manager to keep its two widest buckets connected;
		// boundedConns values them instead.)
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
	n.closing(n.dht.Close)
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
	n.closing(n.kv.Close)
	if metaMoved != "" {
		n.restoreNames()
	}
	n.share, err = share.New(gh, n.dht, n.store, share.Deps{
		Directory: catalogDirectory{n.kv},
		Cluster:   membershipCluster{m: n.memb, n: n},
		// The first replication check waits until this node has caught
		// up with the catalog and heard every member (ReplicationDelay
		// at most).
		Ready:    []<-chan struct{}{n.kv.Synced(), n.memb.Settled()},
		Observer: n.metrics.observeLookup,
	}, cfg.Share, log)
	if err != nil {
		return nil, err
	}
	n.closing(n.share.Close)
	n.metrics.register(n)

	// Every part exists: the node's loops start, and close first.
	n.bg = bg.New()
	n.ctx = n.bg.Context()
	n.closing(func() error { n.bg.Close(); return nil })
	// The reachability events are kept by the bus: a late subscriber
	// gets the current one.
	reachSub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtAutoRelayAddrsUpdated),
		new(event.EvtLocalAddressesUpdated), new(event.EvtHostReachableAddrsChanged)})
	if err != nil {
		return nil, fmt.Errorf("subscribe to reachability: %w", err)
	}
	n.bg.Go(func(context.Context) { n.watchReachability(reachSub) })
	events, _ := n.memb.Subscribe(64) // closed by the membership's Close
	if n.gate != nil && cfg.Admission.Authority != nil {
		revoked, _ := n.kv.Watch(kv.NSRevoke, "") // closed by the store's Close
		n.bg.Go(func(ctx context.Context) { n.revocationLoop(ctx, revoked) })
	}
	for _, loop := range []func(){n.announceCatalog, func() { n.watchMembers(events) }, n.watchClock} {
		n.bg.Go(func(context.Context) { loop() })
	}
	n.peering, err = startPeering(cfg, n.host, n.dht, n.memb, n.rtts, n.log)
	if err != nil {
		return nil, err
	}
	n.closing(n.peering.Close)
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
	free, err := freeSpace(n.repo.Dir)
	if err != nil {
		return files, 0
	}
	return files, free
}

// Membership returns the node's members table.
func (n *Node) Membership() *gossip.Membership { return n.memb }

// DevVersion is the version of a build that no release build stamped:
// the next release's number, marked as in development.
const DevVersion = "0.2.0-dev"

// Version is the p2pshare version, set at build time with -ldflags.
var Version = DevVersion

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the node's DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// Share returns the share service.
func (n *Node) ShareService() *share.Service { return n.share }

// Repo returns the node's repo.
func (n *Node) Repo() *Repo { return n.repo }

// closing records how to close a part New just built: Close closes the
// parts in exactly the reverse order, so nothing is closed while a part
// built after it (and that may call it) still runs.
func (n *Node) closing(f func() error) { n.closers = append(n.closers, f) }

// Close stops the peering (bootstrap, rejoin, ping, mDNS) and the node's
// loops, then closes the share service, the key-value store, the DHT, the
// membership, GossipSub, the content store, the host and the admission
// gate, and releases the repo: the reverse of New's order. Safe to call more than once; later calls return
// the first call's error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		for i := len(n.closers) - 1; i >= 0; i-- {
			errs = append(errs, n.closers[i]())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
