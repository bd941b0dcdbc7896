package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/p2pshare/p2pshare/internal/bg"
)

// Topic is the GossipSub topic of KV updates.
const Topic = "/p2pshare/kv/1"

// Store owns one node's copy of the replicated key-value store. It is
// composed of three parts, each with its own state: local, the records in
// memory and in a bbolt file; intake, which judges and keeps what other
// nodes send on the KV topic; and syncer, which schedules the anti-entropy
// exchanges of sync.go. Store itself signs and spreads this node's writes,
// reads, and runs the parts' goroutines. Methods are safe for concurrent
// use; Close stops every goroutine it started.
type Store struct {
	h    host.Host
	self peer.ID
	key  crypto.PrivKey
	rt   routing.ValueStore // nil: no DHT
	cfg  Config
	log  *slog.Logger

	clock *Clock
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	ps    *pubsub.PubSub

	local  *local
	intake *intake
	syncer *syncer
	watch  watchers

	bg        *bg.Group
	closeOnce sync.Once
	notifee   *network.NotifyBundle

	puts, deletes, syncs, appliedSync atomic.Int64
}

// Stats counts what the store did since start.
type Stats struct {
	Puts, Deletes int
	AppliedGossip int
	AppliedSync   int
	Syncs         int // exchanges this node started that succeeded
	// Rejected counts the records received and rejected, by reason
	// (RejectFuture and the other Reject constants).
	Rejected map[string]int
}

// newStore returns a Store on the local copy l, its parts wired, before
// it joins any network.
func newStore(cfg Config, log *slog.Logger, l *local, self peer.ID, clock *Clock) *Store {
	s := &Store{self: self, cfg: cfg, log: log, clock: clock, bg: bg.New()}
	l.cfg = &s.cfg
	s.local = l
	s.intake = newIntake(&s.cfg, log, self, clock.Observe, s.apply)
	s.syncer = newSyncer(&s.cfg, log, func() []peer.ID { return s.h.Network().Peers() }, s.SyncWith)
	return s
}

// Open opens (creating) the bbolt file at path, loads the records, joins
// the KV topic on ps, serves the anti-entropy protocol on h and starts the
// background loops. rt, the DHT, may be nil.
func Open(h host.Host, ps *pubsub.PubSub, rt routing.ValueStore, path string, cfg Config, log *slog.Logger) (s *Store, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "kv")
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, errors.New("kv: host has no private key")
	}
	clock := NewClock(cfg.Now)
	l, err := openLocal(path, &cfg, log, cfg.networkNow(), clock.Observe)
	if err != nil {
		return nil, err
	}
	s = newStore(cfg, log, l, h.ID(), clock)
	s.h, s.key, s.rt, s.ps = h, key, rt, ps
	defer func() {
		if err != nil {
			s.bg.Close()
			if s.sub != nil {
				s.sub.Cancel()
			}
			if s.topic != nil {
				_ = s.topic.Close()
			}
			_ = ps.UnregisterTopicValidator(Topic)
			_ = l.close()
		}
	}()
	if err = ps.RegisterTopicValidator(Topic, s.intake.validate); err != nil {
		return nil, fmt.Errorf("kv: register validator: %w", err)
	}
	if s.topic, err = ps.Join(Topic); err != nil {
		return nil, fmt.Errorf("kv: join topic: %w", err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		return nil, fmt.Errorf("kv: subscribe: %w", err)
	}
	h.SetStreamHandler(SyncProtocol, s.handleSync)
	s.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { s.syncer.connected(c.RemotePeer()) }}
	h.Network().Notify(s.notifee)
	s.bg.Go(func(ctx context.Context) { s.intake.receive(ctx, s.bg, s.sub.Next) })
	s.bg.Go(s.syncer.run)
	s.bg.Go(s.sweepLoop)
	return s, nil
}

// Close stops the loops, leaves the topic, closes the file and every
// watch's channel. Safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.h.Network().StopNotify(s.notifee)
		s.h.RemoveStreamHandler(SyncProtocol)
		s.bg.Close()
		s.sub.Cancel()
		err = errors.Join(s.topic.Close(), s.ps.UnregisterTopicValidator(Topic), s.local.close())
		s.watch.close()
	})
	return err
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Puts: int(s.puts.Load()), Deletes: int(s.deletes.Load()),
		Syncs: int(s.syncs.Load()), AppliedSync: int(s.appliedSync.Load()),
	}
	s.intake.counts(&st)
	return st
}

// Watch returns a channel that receives a signal whenever the store keeps
// a record of namespace ns whose key starts with prefix: this node's own
// write, or a record received by gossip, by anti-entropy or from the DHT.
// Signals coalesce (the channel holds at most one, and the store never
// waits for it): on each, read the namespace with List. The channel is
// closed by stop or by Close.
func (s *Store) Watch(ns, prefix string) (signal <-chan struct{}, stop func()) {
	return s.watch.add(ns, prefix)
}

// apply keeps every record that wins over the local copy of its key and
// signals the watches; the records refused by the per-writer cap count as
// rejected. It returns how many it kept. The records must have been
// verified.
func (s *Store) apply(rs []*Record) (int, error) {
	kept, capped, err := s.local.apply(rs, s.cfg.networkNow())
	for _, r := range capped {
		s.intake.reject(r.Writer, RejectWriterCap, fmt.Errorf("%w: its writer holds %d records here, the limit", ErrBadRecord, s.cfg.MaxRecordsPerWriter))
	}
	if err != nil {
		return 0, err
	}
	s.watch.notify(kept)
	return len(kept), nil
}

// sweepLoop drops expired records and old tombstones.
func (s *Store) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.local.sweep(s.cfg.networkNow()); err != nil {
			s.log.Warn("drop expired records", "err", err)
		}
	}
}

// Synced returns a channel closed once the store has caught up: its first
// anti-entropy exchange with a peer succeeded.
func (s *Store) Synced() <-chan struct{} { return s.syncer.synced }

// checkWrite checks a write's namespace and key.
func (s *Store) checkWrite(ns, key string) error {
	if !validNS(ns) {
		return fmt.Errorf("kv: unknown namespace %q", ns)
	}
	return ValidateKey(key)
}

// Put writes value under key in namespace ns, expiring after ttl (0:
// never): signed, applied locally, published on the topic and, for the user
// namespace, put in the DHT. It returns the record written.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, ttl time.Duration) (*Record, error) {
	return s.put(ctx, ns, key, value, ttl, Timestamp{})
}

// put is Put at time ts (the clock's next reading when zero).
func (s *Store) put(ctx context.Context, ns, key string, value []byte, ttl time.Duration, ts Timestamp) (*Record, error) {
	if err := s.checkWrite(ns, key); err != nil {
		return nil, err
	}
	if err := s.checkOwnWrite(ns, key, false); err != nil {
		return nil, err
	}
	if len(value) > s.cfg.MaxValueSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadValue, len(value), s.cfg.MaxValueSize)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("%w: %s is negative", ErrBadTTL, ttl)
	}
	if ttl > s.cfg.MaxTTL {
		return nil, fmt.Errorf("%w: %s is over the limit of %s", ErrBadTTL, ttl, s.cfg.MaxTTL)
	}
	if ts == (Timestamp{}) {
		ts = s.clock.Now()
	} else {
		s.clock.Observe(ts)
	}
	r := &Record{NS: ns, Key: key, Value: value, Time: ts}
	if ttl > 0 {
		r.Expires = r.Time.Wall + int64(ttl)
	}
	if err := s.write(ctx, r); err != nil {
		return nil, err
	}
	s.puts.Add(1)
	return r, nil
}

// Delete writes a tombstone for key, which wins over every earlier write
// everywhere. Deleting a key that does not exist is ErrNotFound.
func (s *Store) Delete(ctx context.Context, ns, key string) (*Record, error) {
	if err := s.checkWrite(ns, key); err != nil {
		return nil, err
	}
	if _, err := s.Get(ctx, ns, key); err != nil {
		return nil, err
	}
	if err := s.checkOwnWrite(ns, key, true); err != nil {
		return nil, err
	}
	r := &Record{NS: ns, Key: key, Deleted: true, Time: s.clock.Now()}
	if err := s.write(ctx, r); err != nil {
		return nil, err
	}
	s.deletes.Add(1)
	return r, nil
}

// write signs r, applies it locally, publishes it and puts it in the DHT.
// Its own fresh signature needs no verifying, only the record's shape.
func (s *Store) write(ctx context.Context, r *Record) error {
	if err := r.Sign(s.key); err != nil {
		return err
	}
	if err := r.checkShape(); err != nil {
		return err
	}
	if err := s.cfg.extraCheck(r); err != nil {
		return err
	}
	b, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("kv: encode record: %w", err)
	}
	if _, err := s.apply([]*Record{r}); err != nil {
		return err
	}
	if err := s.topic.Publish(ctx, b); err != nil {
		s.log.Debug("publish", "key", r.Key, "err", err)
	} else {
		s.log.Debug("record published", "ns", r.NS, "key", r.Key)
	}
	if err := s.putInDHT(ctx, r); err != nil {
		s.log.Debug("put record in the DHT", "ns", r.NS, "key", r.Key, "err", err)
	}
	return nil
}

// errNoDHT: the record was not put in the DHT, there being no DHT or no
// peer to put it on.
var errNoDHT = errors.New("no DHT or no peer to put the record on")

// putInDHT puts r in the DHT if its namespace has a DHT copy (see
// inDHT), within DHTTimeout.
func (s *Store) putInDHT(ctx context.Context, r *Record) error {
	if !inDHT(r.NS) {
		return nil
	}
	if s.rt == nil || len(s.h.Network().Peers()) == 0 {
		return errNoDHT
	}
	b, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("kv: encode record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DHTTimeout)
	defer cancel()
	return s.rt.PutValue(ctx, DHTKey(r.NS, r.Key), b)
}

// Local returns this node's live copy of key: not deleted, not expired.
func (s *Store) Local(ns, key string) (*Record, bool) {
	r, ok := s.local.get(ns + "\x00" + key)
	if !ok || r.Deleted || r.Expired(s.cfg.networkNow()) {
		return nil, false
	}
	return r, true
}

// Get returns the live record of key: from the local copy, or, for a key
// of a namespace with a DHT copy (see inDHT) the local copy has never seen,
// from the DHT.
func (s *Store) Get(ctx context.Context, ns, key string) (*Record, error) {
	if err := s.checkWrite(ns, key); err != nil {
		return nil, err
	}
	r, ok := s.local.get(ns + "\x00" + key)
	now := s.cfg.networkNow()
	if ok {
		if r.Deleted || r.Expired(now) {
			return nil, fmt.Errorf("key %q: %w (deleted or expired)", key, ErrNotFound)
		}
		return r, nil
	}
	if inDHT(ns) && s.rt != nil && len(s.h.Network().Peers()) > 0 {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DHTTimeout)
		defer cancel()
		b, err := s.rt.GetValue(dctx, DHTKey(ns, key))
		if err == nil {
			r, err := Unmarshal(b)
			if err == nil && r.NS == ns && r.Key == key && s.intake.admit(r, now) == nil {
				s.clock.Observe(r.Time)
				if _, err := s.apply([]*Record{r}); err != nil {
					s.log.Warn("keep record found in the DHT", "key", key, "err", err)
				}
				if !r.Deleted {
					return r, nil
				}
			}
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("key %q: %w", key, ErrNotFound)
}

// List returns the live records of namespace ns whose key starts with
// prefix, sorted by key.
func (s *Store) List(ns, prefix string) []*Record {
	return s.local.list(ns+"\x00"+prefix, s.cfg.networkNow())
}

// Len returns how many records (tombstones included) the store keeps.
func (s *Store) Len() int { return s.local.len() }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
