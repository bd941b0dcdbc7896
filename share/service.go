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
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
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
	key   crypto.PrivKey
	cfg   Config
	log   *slog.Logger

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	bgMu      sync.Mutex // orders goBackground's wg.Add before Close's wg.Wait
	closeOnce sync.Once
	notifee   *network.NotifyBundle
	kick      chan struct{}
	pending   atomic.Bool // records wait for a peer to be announced to

	dirMu    sync.RWMutex // guards dir, cluster and repReady
	dir      Directory
	cluster  Cluster
	repReady <-chan struct{}
	repKick  chan struct{}

	copies recentCopies // copies made that the catalog may not list yet

	verifying  cidSet      // held copies being re-hashed
	restoring  cidSet      // quarantined copies being fetched again
	penalties  penaltyList // providers that sent corrupt bytes
	backoff    pushBackoff // failed copies to other nodes, by file and target
	reportBusy atomic.Bool // a getter's report is being checked

	stats    Stats
	observer atomic.Value // func(what string, d time.Duration)

	servesMu    sync.Mutex // guards servesTotal and servesPer
	servesTotal int
	servesPer   map[peer.ID]int
}

// New starts a Service on h: it registers the transfer protocol and starts
// the reprovider, which provides every held CID and republishes this node's
// names as soon as a peer is connected and then every ReprovideInterval.
func New(h host.Host, rt Routing, store *Store, cfg Config, log *slog.Logger) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, errors.New("share: host has no private key")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h: h, rt: rt, store: store, key: key, cfg: cfg, log: log.With("component", "share"),
		ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1), repKick: make(chan struct{}, 1), servesPer: map[peer.ID]int{},
	}
	h.SetStreamHandler(ProtocolID, s.handleGet)
	h.SetStreamHandler(ReportProtocol, s.handleReport)
	s.notifee = &network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { s.Kick() }}
	h.Network().Notify(s.notifee)
	s.wg.Add(1)
	go s.reprovideLoop()
	if cfg.ScrubRate > 0 {
		s.wg.Add(1)
		go s.scrubLoop()
	}
	return s, nil
}

// Directory is what the network's catalog tells share: which file a name
// stands for and who holds a file. node wires gossip's catalog to it; share
// asks it before the DHT.
type Directory interface {
	// LookupName returns the file a name stands for.
	LookupName(name string) (Resolved, bool)
	// Holdings returns who holds c, and for whom.
	Holdings(c cid.Cid) []Holding
	// Hold records that this node holds c (in custody for another peer
	// when custodyFor is set); Unhold that it no longer does.
	Hold(ctx context.Context, c cid.Cid, custodyFor peer.ID) error
	Unhold(ctx context.Context, c cid.Cid) error
}

// Holding is one peer holding a file, in custody for another peer (that
// left) when CustodyFor is set.
type Holding struct {
	Peer       peer.ID
	CustodyFor peer.ID
}

// SetDirectory makes the service resolve names and find holders in d first.
func (s *Service) SetDirectory(d Directory) {
	s.dirMu.Lock()
	s.dir = d
	s.dirMu.Unlock()
}

func (s *Service) directory() Directory {
	s.dirMu.RLock()
	defer s.dirMu.RUnlock()
	return s.dir
}

// Stats counts what the service did since start (for metrics).
type Stats struct {
	ServedOK, ServedFailed, ServedBytes atomic.Int64
	Repairs, Relocations, GiveBacks     atomic.Int64
	// Quarantined counts held copies found bad (by serving, the scrub, a
	// push or a getter's report); Restored those replaced by a good copy.
	Quarantined, Restored atomic.Int64
	// ScrubbedFiles and ScrubbedBytes count what the scrub re-hashed.
	ScrubbedFiles, ScrubbedBytes atomic.Int64
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// SetObserver sets a function told how long each DHT lookup took (what is
// "name" or "providers").
func (s *Service) SetObserver(f func(what string, d time.Duration)) { s.observer.Store(f) }

func (s *Service) observe(what string, start time.Time) {
	if f, ok := s.observer.Load().(func(string, time.Duration)); ok && f != nil {
		f(what, time.Since(start))
	}
}

// goBackground runs f on a goroutine that Close waits for, unless Close
// has begun (then f does not run). For work started outside the service's
// own goroutines (stream handlers), whose wg.Add could otherwise race
// Close's wg.Wait.
func (s *Service) goBackground(f func()) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
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
		s.bgMu.Lock()
		s.cancel()
		s.bgMu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// ShareResult describes a shared file.
type ShareResult struct {
	Name string
	CID  cid.Cid
	Size int64
	// Time is the time of the name record.
	Time time.Time
	// Published is true when the name and provider records reached at least
	// the DHT's lookup of the closest peers; false when this node had no
	// peer yet (the records are then kept and announced when one connects).
	Published bool
}

// Share stores r's bytes under their CID, signs a name record for name, puts
// it in the DHT and provides the CID. It returns once both records are in the
// DHT, so the name is findable when Share returns.
func (s *Service) Share(ctx context.Context, r io.Reader, name string) (ShareResult, error) {
	if err := ValidateName(name); err != nil {
		return ShareResult{}, err
	}
	c, size, err := s.store.Put(ctx, r, s.cfg.MaxFileSize)
	if err != nil {
		return ShareResult{}, err
	}
	rec, err := NewNameRecord(name, c, size, s.key, time.Now())
	if err != nil {
		return ShareResult{}, err
	}
	if err := s.store.PutName(rec); err != nil {
		return ShareResult{}, fmt.Errorf("share %q: keep name record: %w", name, err)
	}
	res := ShareResult{Name: name, CID: c, Size: size, Time: rec.Time}
	err = s.publish(ctx, rec)
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

// publish puts rec in the DHT and provides its CID, both at once.
func (s *Service) publish(ctx context.Context, rec *NameRecord) error {
	val, err := rec.Marshal()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var putErr, provErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		putErr = s.rt.PutValue(ctx, NameKey(rec.Name), val)
		if putErr != nil {
			putErr = fmt.Errorf("put name record: %w", putErr)
		}
	}()
	go func() {
		defer wg.Done()
		provErr = s.rt.Provide(ctx, rec.CID, true)
		if provErr != nil {
			provErr = fmt.Errorf("provide %s: %w", rec.CID, provErr)
		}
	}()
	wg.Wait()
	return errors.Join(putErr, provErr)
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
	if err := ValidateName(ref); err != nil {
		return Resolved{}, err
	}
	// The catalog answers at once: a share pushes its new name to every
	// live member's catalog before it returns. A name the catalog does not
	// know is looked up in the DHT, which holds the record every share
	// waits for.
	if d := s.directory(); d != nil {
		if cat, ok := d.LookupName(ref); ok {
			return cat, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	lookupStart := time.Now()
	val, err := s.rt.GetValue(ctx, NameKey(ref))
	s.observe("name", lookupStart)
	if err != nil {
		if errors.Is(err, routing.ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
			return Resolved{}, fmt.Errorf("no file named %q: %w (searched the DHT through %d connected peers)",
				ref, ErrNotFound, len(s.h.Network().Peers()))
		}
		return Resolved{}, fmt.Errorf("resolve %q: %w", ref, err)
	}
	rec, err := UnmarshalNameRecord(val)
	if err != nil {
		return Resolved{}, fmt.Errorf("resolve %q: %w", ref, err)
	}
	return Resolved{Name: rec.Name, CID: rec.CID, Size: rec.Size, Publisher: rec.Publisher, Time: rec.Time}, nil
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
	defer s.wg.Done()
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

// reprovide provides every held CID and re-puts every name this node
// published. Failures are logged; if there was no peer, it tries again on
// the next connection.
func (s *Service) reprovide(ctx context.Context) {
	s.pending.Store(false)
	held := s.store.List()
	names := s.store.Names()
	failed := 0
	for _, h := range held {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := s.rt.Provide(pctx, h.CID, true); err != nil {
			failed++
			s.log.Debug("reprovide", "cid", h.CID, "err", err)
		}
		cancel()
	}
	for _, rec := range names {
		val, err := rec.Marshal()
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := s.rt.PutValue(pctx, NameKey(rec.Name), val); err != nil {
			s.log.Debug("republish name", "name", rec.Name, "err", err)
			if len(s.h.Network().Peers()) == 0 {
				failed++
			}
		}
		cancel()
	}
	if ctx.Err() != nil {
		return
	}
	if failed > 0 && len(s.h.Network().Peers()) == 0 {
		s.pending.Store(true)
	}
	s.log.Debug("reprovided", "cids", len(held), "names", len(names), "failed", failed)
}

// addrsOf returns the peer's known addresses (for results and logs).
func (s *Service) addrsOf(p peer.ID) []ma.Multiaddr { return s.h.Peerstore().Addrs(p) }
