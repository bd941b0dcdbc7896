package share

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/p2pshare/p2pshare/catalog"
	"github.com/p2pshare/p2pshare/internal/bg"
)

// Routing is what share needs of the DHT: provider records, peers'
// current addresses and values. *dht.IpfsDHT satisfies it.
type Routing interface {
	routing.ContentRouting
	routing.PeerRouting
	routing.ValueStore
}

// Service shares files from a Store over ProtocolID, publishes and resolves
// names, and fetches files from providers. It owns its background
// reprovider and the serving slots; Close stops both.
type Service struct {
	h     host.Host
	rt    Routing
	store *Store
	cfg   Config
	log   *slog.Logger

	bg        *bg.Group       // the service's goroutines
	ctx       context.Context // bg's context
	closeOnce sync.Once
	notifee   *network.NotifyBundle
	kick      chan struct{}
	pending   atomic.Bool // records wait for a peer to be announced to

	dir      Directory // nil: no catalog (names neither shared nor resolved)
	cluster  Cluster   // nil: no replication
	repReady []<-chan struct{}
	repKick  chan struct{}

	copies  recentCopies // copies made that the catalog may not list yet
	surplus surplusSeen  // files seen with more than R live holders

	verifying  cidSet      // held copies being re-hashed
	restoring  cidSet      // quarantined copies being fetched again
	penalties  penaltyList // providers that sent corrupt bytes
	backoff    pushBackoff // failed copies to other nodes, by file and target
	reportBusy atomic.Bool // a getter's report is being checked

	partials lazyPartials // interrupted gets, kept to resume
	stats    Stats
	up, down *rate.Limiter                      // MaxUploadRate, MaxDownloadRate; nil: no limit
	observer func(what string, d time.Duration) // nil: not told

	servesMu    sync.Mutex // guards servesTotal and servesPer
	servesTotal int
	servesPer   map[peer.ID]int
}

// Deps are a Service's collaborators, all given to New: the service never
// runs without them, and none changes while it runs.
type Deps struct {
	// Directory is the network's catalog. Without one, Share fails,
	// names do not resolve and nothing is recorded as held.
	Directory Directory
	// Cluster is who is up. With one (and a Directory), the service
	// keeps Replicas copies of what it holds and serves ReplicateProtocol.
	Cluster Cluster
	// Ready, if set, are channels that have all closed once this node has
	// heard the members and caught up with the catalog: the first
	// replication check then runs at once, instead of ReplicationDelay
	// after start.
	Ready []<-chan struct{}
	// Observer, if set, is told how long each DHT lookup took (what is
	// "name" or "providers").
	Observer func(what string, d time.Duration)
}

// New starts a Service on h with its collaborators: it registers the
// transfer protocol and starts the reprovider, which provides every held
// CID and republishes this node's names as soon as a peer is connected and
// then every ReprovideInterval, and, with a Cluster, replication.
func New(h host.Host, rt Routing, store *Store, deps Deps, cfg Config, log *slog.Logger) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if h.Peerstore().PrivKey(h.ID()) == nil {
		return nil, errors.New("share: host has no private key")
	}
	g := bg.New()
	s := &Service{
		h: h, rt: rt, store: store, cfg: cfg, log: log.With("component", "share"),
		bg: g, ctx: g.Context(), kick: make(chan struct{}, 1), repKick: make(chan struct{}, 1), servesPer: map[peer.ID]int{},
		up: newBandwidth(cfg.MaxUploadRate), down: newBandwidth(cfg.MaxDownloadRate),
		dir: deps.Directory, cluster: deps.Cluster, repReady: deps.Ready, observer: deps.Observer,
	}
	h.SetStreamHandler(ProtocolID, s.handleGet)
	h.SetStreamHandler(ReportProtocol, s.handleReport)
	s.notifee = &network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { s.Kick() }}
	h.Network().Notify(s.notifee)
	s.bg.Go(func(context.Context) { s.reprovideLoop() })
	if cfg.ScrubRate > 0 {
		s.bg.Go(func(context.Context) { s.scrubLoop() })
	}
	if s.cluster != nil {
		h.SetStreamHandler(ReplicateProtocol, s.handleReplicate)
		s.bg.Go(func(context.Context) { s.replicationLoop() })
	}
	return s, nil
}

// Directory is the network's catalog as share sees it: the one record of
// each name (which file it stands for, who published it and when) and who
// holds a file. node wires gossip/kv's catalog to it. A name's record is
// the catalog's, spread by gossip, with a copy in the DHT for a node that
// has not heard of it by gossip.
type Directory interface {
	// LookupName returns the file a name stands for, as this node's
	// catalog knows it (no network traffic).
	LookupName(name string) (Resolved, bool)
	// FindName looks up a name this node's catalog does not know in the
	// record's copy in the DHT; ErrNotFound when there is none.
	FindName(ctx context.Context, name string) (Resolved, error)
	// PublishName records that name stands for the file c of size bytes,
	// published by this node: in the catalog, and its copy in the DHT. It
	// returns the record's time.
	PublishName(ctx context.Context, name string, c cid.Cid, size int64) (time.Time, error)
	// RepublishNames puts again in the DHT the copy of every name this
	// node published; it returns how many, and how many of those failed.
	RepublishNames(ctx context.Context) (n, failed int)
	// Holdings returns who holds c, and for whom.
	Holdings(c cid.Cid) []catalog.Holder
	// Publishers returns the peers whose names in the catalog stand for c.
	Publishers(c cid.Cid) []peer.ID
	// Hold records that this node holds c (in custody for another peer
	// when custodyFor is set); Unhold that it no longer does.
	Hold(ctx context.Context, c cid.Cid, custodyFor peer.ID) error
	Unhold(ctx context.Context, c cid.Cid) error
}

// Stats counts what the service did since start (for metrics).
type Stats struct {
	ServedOK, ServedFailed, ServedBytes atomic.Int64
	Repairs, Relocations, GiveBacks     atomic.Int64
	// Trimmed counts copies this node dropped because more than R live
	// nodes held the file.
	Trimmed atomic.Int64
	// Quarantined counts held copies found bad (by serving, the scrub, a
	// push or a getter's report); Restored those replaced by a good copy.
	Quarantined, Restored atomic.Int64
	// ScrubbedFiles and ScrubbedBytes count what the scrub re-hashed.
	ScrubbedFiles, ScrubbedBytes atomic.Int64
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

func (s *Service) observe(what string, start time.Time) {
	if s.observer != nil {
		s.observer(what, time.Since(start))
	}
}

// Store returns the content store the service serves from.
func (s *Service) Store() *Store { return s.store }

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Close unregisters the protocol and stops the reprovider. It does not close
// the Store, which its opener owns. Safe to call more than once.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.h.RemoveStreamHandler(ProtocolID)
		s.h.RemoveStreamHandler(ReplicateProtocol)
		s.h.RemoveStreamHandler(ReportProtocol)
		s.h.Network().StopNotify(s.notifee)
		s.bg.Close()
	})
	return nil
}

// ShareResult describes a shared file.
type ShareResult struct {
	Name string
	CID  cid.Cid
	Size int64
	// Time is the time of the name's record in the catalog.
	Time time.Time
	// Published is true when the name and provider records reached at least
	// the DHT's lookup of the closest peers; false when this node had no
	// peer yet (the records are then kept and announced when one connects).
	Published bool
}

// Share stores r's bytes under their CID, records name for them in the
// Directory (the catalog and its copy in the DHT) and provides the CID. It
// returns once both are in the DHT, so the name is findable when Share
// returns.
func (s *Service) Share(ctx context.Context, r io.Reader, name string) (ShareResult, error) {
	if err := catalog.ValidateName(name); err != nil {
		return ShareResult{}, err
	}
	d := s.dir
	if d == nil {
		return ShareResult{}, fmt.Errorf("share %q: no catalog to record the name in", name)
	}
	c, size, err := s.store.Put(ctx, r, s.cfg.MaxFileSize)
	if err != nil {
		return ShareResult{}, err
	}
	res := ShareResult{Name: name, CID: c, Size: size}
	res.Time, err = s.publish(ctx, d, name, c, size)
	if res.Time.IsZero() {
		return res, &CatalogError{Name: name, Err: err}
	}
	if err := s.store.PutName(PublishedName{Name: name, CID: c, Size: size, Time: res.Time}); err != nil {
		return res, fmt.Errorf("share %q: keep the published name: %w", name, err)
	}
	switch {
	case err == nil:
		res.Published = true
	case len(s.h.Network().Peers()) == 0:
		s.log.Info("no peers yet: name and provider records kept locally until one connects", "name", name, "cid", c)
		s.needReprovide()
	default:
		return res, fmt.Errorf("share %q: publish: %w", name, err)
	}
	s.log.Info("shared", "name", name, "cid", c, "size", size, "published", res.Published)
	return res, nil
}

// publish records name in d (which puts its copy in the DHT) and provides
// c, both at once. It returns the name record's time, zero if d refused
// it; with no peer to put the copy on, it returns the time and an error.
func (s *Service) publish(ctx context.Context, d Directory, name string, c cid.Cid, size int64) (time.Time, error) {
	var wg sync.WaitGroup
	var at time.Time
	var nameErr, provErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		at, nameErr = d.PublishName(ctx, name, c, size)
		if nameErr == nil && len(s.h.Network().Peers()) == 0 {
			nameErr = errors.New("put name record: no peer to put it on")
		}
	}()
	go func() {
		defer wg.Done()
		provErr = s.rt.Provide(ctx, c, true)
		if provErr != nil {
			provErr = fmt.Errorf("provide %s: %w", c, provErr)
		}
	}()
	wg.Wait()
	return at, errors.Join(nameErr, provErr)
}

// Resolved is what a name or CID stands for.
type Resolved struct {
	Name      string // empty when resolved from a bare CID
	CID       cid.Cid
	Size      int64 // -1 when unknown (a bare CID)
	Publisher peer.ID
	Time      time.Time // of the name record; zero for a bare CID
}

// Resolve turns ref, a CID or a name, into a CID. A name is looked up in
// the Directory (the local catalog) first, then in the DHT; an unknown name
// is answered with ErrNotFound within LookupTimeout.
func (s *Service) Resolve(ctx context.Context, ref string) (Resolved, error) {
	if c, err := cid.Decode(ref); err == nil {
		if err := checkCID(c); err != nil {
			return Resolved{}, err
		}
		return Resolved{CID: c, Size: -1}, nil
	} else if looksLikeCID(ref) {
		return Resolved{}, fmt.Errorf("%w %q: %v", ErrBadCID, ref, err)
	}
	if err := catalog.ValidateName(ref); err != nil {
		return Resolved{}, err
	}
	// The catalog answers at once: a share pushes its new name to every
	// live member's catalog before it returns. A name the catalog does not
	// know is looked up in the copy of its record in the DHT, which every
	// share waits for.
	d := s.dir
	if d == nil {
		return Resolved{}, fmt.Errorf("no file named %q: %w (no catalog)", ref, ErrNotFound)
	}
	if cat, ok := d.LookupName(ref); ok {
		return cat, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	lookupStart := time.Now()
	res, err := d.FindName(ctx, ref)
	s.observe("name", lookupStart)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
			return Resolved{}, fmt.Errorf("no file named %q: %w (searched the catalog and the DHT through %d connected peers)",
				ref, ErrNotFound, len(s.h.Network().Peers()))
		}
		return Resolved{}, fmt.Errorf("resolve %q: %w", ref, err)
	}
	return res, nil
}

// looksLikeCID reports whether s was meant as a CID (a multibase-base32
// CIDv1 or a base58 CIDv0), so a mistyped one is reported as such and not as
// an unknown name.
func looksLikeCID(s string) bool {
	if len(s) < 46 || strings.ContainsAny(s, ". ") {
		return false
	}
	return strings.HasPrefix(s, "bafk") || strings.HasPrefix(s, "bafy") || strings.HasPrefix(s, "Qm")
}

// Kick asks the reprovider to run now if records are waiting for a peer.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) needReprovide() {
	s.pending.Store(true)
	s.Kick()
}

// reprovideLoop provides every held CID and republishes this node's names:
// once a peer is connected, again whenever records were kept back for lack
// of peers, and every ReprovideInterval.
func (s *Service) reprovideLoop() {
	s.pending.Store(true)
	t := time.NewTicker(s.cfg.ReprovideInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
			if !s.pending.Load() || len(s.h.Network().Peers()) == 0 {
				continue
			}
		}
		s.reprovide(s.ctx)
	}
}

// reprovide provides every held CID and puts again in the DHT every name
// this node published (through the Directory). Failures are logged; if
// there was no peer, it tries again on the next connection.
func (s *Service) reprovide(ctx context.Context) {
	s.pending.Store(false)
	held := s.store.List()
	failed := 0
	for _, h := range held {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := s.rt.Provide(pctx, h.CID, true); err != nil {
			failed++
			s.log.Debug("reprovide", "cid", h.CID, "err", err)
		}
		cancel()
	}
	names, namesFailed := 0, 0
	if d := s.dir; d != nil {
		names, namesFailed = d.RepublishNames(ctx)
	}
	if ctx.Err() != nil {
		return
	}
	if (failed > 0 || namesFailed > 0) && len(s.h.Network().Peers()) == 0 {
		s.pending.Store(true)
	}
	s.log.Debug("reprovided", "cids", len(held), "names", names, "failed", failed+namesFailed)
}

// addrsOf returns the peer's known addresses (for results and logs).
func (s *Service) addrsOf(p peer.ID) []ma.Multiaddr { return s.h.Peerstore().Addrs(p) }
