package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	bolt "go.etcd.io/bbolt"
)

// Topic is the GossipSub topic of KV updates.
const Topic = "/p2pshare/kv/1"

var bucketRecords = []byte("records")

// Store owns one node's copy of the replicated key-value store: the records
// in memory and in a bbolt file, the KV topic, the anti-entropy protocol
// and the expiry sweeper. Methods are safe for concurrent use; Close stops
// every goroutine it started.
type Store struct {
	h    host.Host
	self peer.ID
	key  crypto.PrivKey
	rt   routing.ValueStore // nil: no DHT
	cfg  Config
	log  *slog.Logger

	clock *Clock
	db    *bolt.DB
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	ps    *pubsub.PubSub

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	notifee   *network.NotifyBundle
	kick      chan peer.ID
	synced    chan struct{} // closed by syncLoop after its first exchange
	// handlers tracks running anti-entropy handlers; handlersMu orders
	// their Add against Close's Wait.
	handlersMu sync.Mutex
	handlers   sync.WaitGroup

	mu   sync.RWMutex // guards recs, sums, holds and the db's contents
	recs map[string]*Record
	// sums caches each record's digest and bucket for anti-entropy, so an
	// exchange does not hash every record again.
	sums map[string]recordSum
	// holds indexes the NSHold records by CID (holds[cid][id]), so Holders
	// does not scan every record.
	holds map[string]map[string]*Record
	// perWriter counts each writer's records (live and tombstones apart)
	// for MaxRecordsPerWriter.
	perWriter map[writerKind]int

	guardMu sync.Mutex // guards future and warned
	future  futureSet
	warned  map[string]struct{}

	statsMu sync.Mutex
	stats   Stats
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
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, errors.New("kv: host has no private key")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = &Store{
		h: h, self: h.ID(), key: key, rt: rt, cfg: cfg, log: log.With("component", "kv"),
		clock: NewClock(cfg.Now), db: db, ps: ps, ctx: ctx, cancel: cancel,
		kick: make(chan peer.ID, 1), synced: make(chan struct{}), recs: map[string]*Record{},
		sums: map[string]recordSum{}, holds: map[string]map[string]*Record{},
		perWriter: map[writerKind]int{}, warned: map[string]struct{}{},
	}
	defer func() {
		if err != nil {
			cancel()
			if s.sub != nil {
				s.sub.Cancel()
			}
			if s.topic != nil {
				_ = s.topic.Close()
			}
			_ = ps.UnregisterTopicValidator(Topic)
			_ = db.Close()
		}
	}()
	if err = s.load(); err != nil {
		return nil, err
	}
	if err = ps.RegisterTopicValidator(Topic, s.validate); err != nil {
		return nil, fmt.Errorf("kv: register validator: %w", err)
	}
	if s.topic, err = ps.Join(Topic); err != nil {
		return nil, fmt.Errorf("kv: join topic: %w", err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		return nil, fmt.Errorf("kv: subscribe: %w", err)
	}
	h.SetStreamHandler(SyncProtocol, s.handleSync)
	s.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case s.kick <- c.RemotePeer():
		default:
		}
	}}
	h.Network().Notify(s.notifee)
	s.wg.Add(3)
	go s.receiveLoop()
	go s.syncLoop()
	go s.sweepLoop()
	return s, nil
}

// Close stops the loops, leaves the topic and closes the file. Safe to call
// more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.h.Network().StopNotify(s.notifee)
		s.h.RemoveStreamHandler(SyncProtocol)
		s.handlersMu.Lock()
		s.cancel()
		s.handlersMu.Unlock()
		s.sub.Cancel()
		s.wg.Wait()
		s.handlers.Wait()
		err = errors.Join(s.topic.Close(), s.ps.UnregisterTopicValidator(Topic))
		s.mu.Lock()
		err = errors.Join(err, s.db.Close())
		s.mu.Unlock()
	})
	return err
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Rejected = make(map[string]int, len(s.stats.Rejected))
	for k, v := range s.stats.Rejected {
		st.Rejected[k] = v
	}
	return st
}

func (s *Store) count(f func(*Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

// load reads every record of the file into memory, dropping expired ones
// and collected tombstones.
func (s *Store) load() error {
	now := s.networkNow()
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return fmt.Errorf("kv: create bucket: %w", err)
		}
		var drop [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil || r.ID() != string(k) {
				s.log.Warn("dropping unreadable record from the local store", "key", string(k), "err", err)
				drop = append(drop, k)
				return nil
			}
			if s.gone(&r, now) {
				drop = append(drop, k)
				return nil
			}
			s.setLocked(&r)
			s.clock.Observe(r.Time)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// gone reports whether a record is to be forgotten: expired, or a
// tombstone older than TombstoneTTL.
func (s *Store) gone(r *Record, now time.Time) bool {
	return r.Expired(now) || (r.Deleted && now.Sub(r.Time.Time()) > s.cfg.TombstoneTTL)
}

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
	s.count(func(st *Stats) { st.Puts++ })
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
	s.count(func(st *Stats) { st.Deletes++ })
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
	if err := s.extraCheck(r); err != nil {
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
	s.mu.RLock()
	r, ok := s.recs[ns+"\x00"+key]
	s.mu.RUnlock()
	if !ok || r.Deleted || r.Expired(s.networkNow()) {
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
	s.mu.RLock()
	r, ok := s.recs[ns+"\x00"+key]
	s.mu.RUnlock()
	now := s.networkNow()
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
			if err == nil && r.NS == ns && r.Key == key && s.admit(r, now) == nil {
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
	now := s.networkNow()
	pre := ns + "\x00" + prefix
	s.mu.RLock()
	var out []*Record
	for id, r := range s.recs {
		if strings.HasPrefix(id, pre) && !r.Deleted && !r.Expired(now) {
			out = append(out, r)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Len returns how many records (tombstones included) the store keeps.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// apply keeps every record that wins over the local copy of its key, in
// memory and, in one transaction, on disk. It returns how many it kept.
// The records must have been verified.
func (s *Store) apply(rs []*Record) (int, error) {
	var capped []*Record // counted and logged once s.mu is released
	defer func() {
		for _, r := range capped {
			s.rejected(r.Writer, RejectWriterCap, fmt.Errorf("%w: its writer holds %d records here, the limit", ErrBadRecord, s.cfg.MaxRecordsPerWriter))
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.networkNow()
	var won []*Record
	seen := map[string]*Record{}
	delta := map[writerKind]int{}
	for _, r := range rs {
		if s.gone(r, now) {
			continue
		}
		id := r.ID()
		cur, ok := seen[id]
		if !ok {
			cur = s.recs[id]
		}
		if cur != nil && !r.Wins(cur) {
			continue
		}
		if !s.roomLocked(r, cur, delta) {
			capped = append(capped, r)
			continue
		}
		seen[id] = r
		won = append(won, r)
	}
	if len(won) == 0 {
		return 0, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		for _, r := range won {
			if seen[r.ID()] != r {
				continue
			}
			v, err := r.Marshal()
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.ID()), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("kv: keep records: %w", err)
	}
	for _, r := range seen {
		s.setLocked(r)
	}
	return len(seen), nil
}

// recordSum is a record's cached digest and bucket.
type recordSum struct {
	r      *Record
	d      [32]byte
	bucket byte
}

// setLocked keeps r as the local copy of its key, with its digest and its
// place in the holdings index. s.mu must be held for writing.
func (s *Store) setLocked(r *Record) {
	id := r.ID()
	if old, ok := s.recs[id]; ok {
		s.perWriter[kindOf(old)]--
	}
	s.perWriter[kindOf(r)]++
	s.recs[id] = r
	s.sums[id] = recordSum{r: r, d: r.digest(), bucket: bucketOf(id)}
	if r.NS == NSHold {
		c, _, _ := strings.Cut(r.Key, "/")
		if s.holds[c] == nil {
			s.holds[c] = map[string]*Record{}
		}
		s.holds[c][id] = r
	}
}

// dropLocked forgets the local copy of id. s.mu must be held for writing.
func (s *Store) dropLocked(id string) {
	if r, ok := s.recs[id]; ok {
		if k := kindOf(r); s.perWriter[k] <= 1 {
			delete(s.perWriter, k)
		} else {
			s.perWriter[k]--
		}
	}
	if r, ok := s.recs[id]; ok && r.NS == NSHold {
		c, _, _ := strings.Cut(r.Key, "/")
		delete(s.holds[c], id)
		if len(s.holds[c]) == 0 {
			delete(s.holds, c)
		}
	}
	delete(s.recs, id)
	delete(s.sums, id)
}

// sumLocked returns id's digest and bucket, from the cache when r is the
// record it was computed for. s.mu must be held.
func (s *Store) sumLocked(id string, r *Record) recordSum {
	if c, ok := s.sums[id]; ok && c.r == r {
		return c
	}
	return recordSum{r: r, d: r.digest(), bucket: bucketOf(id)}
}

// admit checks a verified record from another node against this node's
// limits: not from further in the future than MaxClockSkew, now or when it
// was first received, not expired, a value no larger than MaxValueSize. A
// rejected record is counted (see Stats.Rejected) and its writer warned
// about once.
func (s *Store) admit(r *Record, now time.Time) error {
	err := s.check(r, now)
	if err != nil && !errors.Is(err, ErrExpired) {
		s.rejected(r.Writer, rejectReason(err), err)
	}
	return err
}

func (s *Store) check(r *Record, now time.Time) error {
	s.guardMu.Lock()
	was := s.future.has(r)
	s.guardMu.Unlock()
	if was {
		return fmt.Errorf("%w: %w: rejected on receipt, and for good", ErrBadRecord, ErrFuture)
	}
	if len(r.Value) > s.cfg.MaxValueSize {
		return fmt.Errorf("%w: %w: %d bytes, this node's limit is %d", ErrBadRecord, errTooLarge, len(r.Value), s.cfg.MaxValueSize)
	}
	if err := s.extraCheck(r); err != nil {
		return err
	}
	err := r.Check(now, s.cfg.MaxClockSkew)
	if errors.Is(err, ErrFuture) && s.clockTrusted() {
		// For good: accepted once this node's clock caught up with it,
		// it would override every write acknowledged in between.
		s.guardMu.Lock()
		s.future.add(r)
		s.guardMu.Unlock()
	}
	return err
}

// extraCheck applies Config.Check; records of NSRevoke need one.
func (s *Store) extraCheck(r *Record) error {
	if s.cfg.Check != nil {
		if err := s.cfg.Check(r); err != nil {
			return fmt.Errorf("%w: %w: %v", ErrBadRecord, errDenied, err)
		}
	} else if r.NS == NSRevoke {
		return fmt.Errorf("%w: revocations need a network authority", ErrBadRecord)
	}
	return nil
}

// validate is the KV topic's validator: the record must be well formed,
// signed by the peer that published it, and not from the future; an expired
// one is ignored.
func (s *Store) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	r, err := Unmarshal(msg.Data)
	if err != nil {
		s.rejected(msg.GetFrom(), RejectInvalid, err)
		return pubsub.ValidationReject
	}
	if msg.GetFrom() != r.Writer {
		s.rejected(msg.GetFrom(), RejectInvalid, fmt.Errorf("%w: a record of %s published as its own", ErrBadRecord, r.Writer))
		return pubsub.ValidationReject
	}
	if err := s.admit(r, s.networkNow()); err != nil {
		if errors.Is(err, ErrExpired) {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	}
	msg.ValidatorData = r
	return pubsub.ValidationAccept
}

// receiveLoop hands the topic's records to applyLoop.
func (s *Store) receiveLoop() {
	defer s.wg.Done()
	in := make(chan *Record, maxApplyBatch)
	s.wg.Add(1)
	go s.applyLoop(in)
	defer close(in)
	for {
		msg, err := s.sub.Next(s.ctx)
		if err != nil {
			return
		}
		r, ok := msg.ValidatorData.(*Record)
		if !ok || msg.GetFrom() == s.self {
			continue
		}
		s.clock.Observe(r.Time)
		select {
		case in <- r:
		case <-s.ctx.Done():
			return
		}
	}
}

// maxApplyBatch bounds how many received records one disk transaction
// keeps.
const maxApplyBatch = 512

// applyLoop applies received records, as many as have arrived in one
// transaction, so a burst of writes costs one fsync, not one each.
func (s *Store) applyLoop(in <-chan *Record) {
	defer s.wg.Done()
	for r := range in {
		batch := []*Record{r}
	drain:
		for len(batch) < maxApplyBatch {
			select {
			case r, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		n, err := s.apply(batch)
		if err != nil {
			s.log.Warn("apply KV updates", "records", len(batch), "err", err)
			continue
		}
		if n > 0 {
			s.count(func(st *Stats) { st.AppliedGossip += n })
		}
	}
}

// sweepLoop drops expired records and old tombstones.
func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(s.networkNow())
	}
}

func (s *Store) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var drop []string
	for id, r := range s.recs {
		if s.gone(r, now) {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		for _, id := range drop {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("drop expired records", "err", err)
		return
	}
	for _, id := range drop {
		s.dropLocked(id)
	}
}

// syncLoop runs anti-entropy: every 500 ms with a random connected peer
// (at once with a peer that just connected) until one exchange succeeds,
// then with a random connected peer every SyncInterval.
func (s *Store) syncLoop() {
	defer s.wg.Done()
	const catchUp = 500 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	synced := false
	for {
		var p peer.ID
		select {
		case <-s.ctx.Done():
			return
		case p = <-s.kick:
			if synced {
				continue
			}
		case <-t.C:
		}
		if p == "" {
			peers := s.h.Network().Peers()
			if len(peers) > 0 {
				p = peers[rand.IntN(len(peers))]
			}
		}
		if p != "" {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.SyncTimeout)
			st, err := s.SyncWith(ctx, p)
			cancel()
			if err != nil {
				s.log.Debug("anti-entropy", "peer", p, "err", err)
			} else {
				if !synced || st.Received > 0 {
					s.log.Info("anti-entropy exchange", "peer", p, "sent", st.Sent, "received", st.Received, "applied", st.Applied)
				}
				if !synced {
					close(s.synced)
				}
				synced = true
			}
		}
		next := s.cfg.SyncInterval
		if !synced {
			next = catchUp
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// Synced returns a channel closed once the store has caught up: its first
// anti-entropy exchange with a peer succeeded.
func (s *Store) Synced() <-chan struct{} { return s.synced }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
