package kv

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
)

var bucketRecords = []byte("records")

// local is this node's copy of the records: in memory, with the indexes
// the store reads by, and in a bbolt file. It decides which of two records
// of a key wins and enforces the per-writer cap; it neither checks records
// nor talks to the network. Its methods are safe for concurrent use.
type local struct {
	cfg *Config // read only
	log *slog.Logger

	mu   sync.RWMutex // guards everything below and the db's contents
	db   *bolt.DB     // nil: memory only (tests)
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
}

// recordSum is a record's cached digest and bucket.
type recordSum struct {
	r      *Record
	d      [32]byte
	bucket byte
}

// writerKind is the count of one writer's live records or tombstones.
type writerKind struct {
	writer peer.ID
	tomb   bool
}

func kindOf(r *Record) writerKind { return writerKind{r.Writer, r.Deleted} }

func newLocal(cfg *Config, log *slog.Logger, db *bolt.DB) *local {
	return &local{
		cfg: cfg, log: log, db: db, recs: map[string]*Record{}, sums: map[string]recordSum{},
		holds: map[string]map[string]*Record{}, perWriter: map[writerKind]int{},
	}
}

// openLocal opens (creating) the bbolt file at path and loads its records
// as of now, dropping expired ones, collected tombstones and unreadable
// ones. seen is told the time of every record loaded.
func openLocal(path string, cfg *Config, log *slog.Logger, now time.Time, seen func(Timestamp)) (*local, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	l := newLocal(cfg, log, db)
	if err := l.load(now, seen); err != nil {
		_ = db.Close()
		return nil, err
	}
	return l, nil
}

func (l *local) load(now time.Time, seen func(Timestamp)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return fmt.Errorf("kv: create bucket: %w", err)
		}
		var drop [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil || r.ID() != string(k) {
				l.log.Warn("dropping unreadable record from the local store", "key", string(k), "err", err)
				drop = append(drop, k)
				return nil
			}
			if l.gone(&r, now) {
				drop = append(drop, k)
				return nil
			}
			l.setLocked(&r)
			seen(r.Time)
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

// close closes the file; the copy must not be used after.
func (l *local) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	return l.db.Close()
}

// gone reports whether a record is to be forgotten: expired, or a
// tombstone older than TombstoneTTL.
func (l *local) gone(r *Record, now time.Time) bool {
	return r.Expired(now) || (r.Deleted && now.Sub(r.Time.Time()) > l.cfg.TombstoneTTL)
}

// get returns the copy of id, tombstone or expired as it may be.
func (l *local) get(id string) (*Record, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r, ok := l.recs[id]
	return r, ok
}

// list returns the records live at now whose ID starts with pre, sorted by
// key.
func (l *local) list(pre string, now time.Time) []*Record {
	l.mu.RLock()
	var out []*Record
	for id, r := range l.recs {
		if strings.HasPrefix(id, pre) && !r.Deleted && !r.Expired(now) {
			out = append(out, r)
		}
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// len returns how many records (tombstones included) the copy keeps.
func (l *local) len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.recs)
}

// holders returns the live NSHold records of CID c.
func (l *local) holders(c string, now time.Time) []*Record {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []*Record
	for _, r := range l.holds[c] {
		if !r.Deleted && !r.Expired(now) {
			out = append(out, r)
		}
	}
	return out
}

// apply keeps every record that wins over the copy of its key, in memory
// and, in one transaction, on disk. It returns the records kept and those
// refused by the per-writer cap. The records must have been verified.
func (l *local) apply(rs []*Record, now time.Time) (kept, capped []*Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var won []*Record
	seen := map[string]*Record{}
	delta := map[writerKind]int{}
	for _, r := range rs {
		if l.gone(r, now) {
			continue
		}
		id := r.ID()
		cur, ok := seen[id]
		if !ok {
			cur = l.recs[id]
		}
		if cur != nil && !r.Wins(cur) {
			continue
		}
		if !l.roomLocked(r, cur, delta) {
			capped = append(capped, r)
			continue
		}
		seen[id] = r
		won = append(won, r)
	}
	if len(won) == 0 {
		return nil, capped, nil
	}
	if l.db != nil {
		err := l.db.Update(func(tx *bolt.Tx) error {
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
			return nil, capped, fmt.Errorf("kv: keep records: %w", err)
		}
	}
	for _, r := range won {
		if seen[r.ID()] == r {
			l.setLocked(r)
			kept = append(kept, r)
		}
	}
	return kept, capped, nil
}

// sweep drops the records gone at now (see gone).
func (l *local) sweep(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var drop []string
	for id, r := range l.recs {
		if l.gone(r, now) {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if l.db != nil {
		err := l.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			for _, id := range drop {
				if err := b.Delete([]byte(id)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("kv: drop expired records: %w", err)
		}
	}
	for _, id := range drop {
		l.dropLocked(id)
	}
	return nil
}

// setLocked keeps r as the copy of its key, with its digest and its place
// in the holdings index. l.mu must be held for writing.
func (l *local) setLocked(r *Record) {
	id := r.ID()
	if old, ok := l.recs[id]; ok {
		l.perWriter[kindOf(old)]--
	}
	l.perWriter[kindOf(r)]++
	l.recs[id] = r
	l.sums[id] = recordSum{r: r, d: r.digest(), bucket: bucketOf(id)}
	if r.NS == NSHold {
		c, _, _ := strings.Cut(r.Key, "/")
		if l.holds[c] == nil {
			l.holds[c] = map[string]*Record{}
		}
		l.holds[c][id] = r
	}
}

// dropLocked forgets the copy of id. l.mu must be held for writing.
func (l *local) dropLocked(id string) {
	if r, ok := l.recs[id]; ok {
		if k := kindOf(r); l.perWriter[k] <= 1 {
			delete(l.perWriter, k)
		} else {
			l.perWriter[k]--
		}
	}
	if r, ok := l.recs[id]; ok && r.NS == NSHold {
		c, _, _ := strings.Cut(r.Key, "/")
		delete(l.holds[c], id)
		if len(l.holds[c]) == 0 {
			delete(l.holds, c)
		}
	}
	delete(l.recs, id)
	delete(l.sums, id)
}

// sumLocked returns id's digest and bucket, from the cache when r is the
// record it was computed for. l.mu must be held.
func (l *local) sumLocked(id string, r *Record) recordSum {
	if c, ok := l.sums[id]; ok && c.r == r {
		return c
	}
	return recordSum{r: r, d: r.digest(), bucket: bucketOf(id)}
}

// roomLocked reports whether r may replace cur (nil: none) under the
// per-writer cap, with delta the changes of the batch being applied, which
// it updates. l.mu must be held.
func (l *local) roomLocked(r, cur *Record, delta map[writerKind]int) bool {
	k := kindOf(r)
	if cur != nil && kindOf(cur) == k {
		return true
	}
	if l.perWriter[k]+delta[k] >= l.cfg.MaxRecordsPerWriter {
		return false
	}
	delta[k]++
	if cur != nil {
		delta[kindOf(cur)]--
	}
	return true
}

// checkRoom fails with a *WriterLimitError if a write by self of a record
// (a tombstone when deleted) for ns and key would pass the cap.
func (l *local) checkRoom(self peer.ID, ns, key string, deleted bool) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r := &Record{NS: ns, Key: key, Deleted: deleted, Writer: self}
	if l.roomLocked(r, l.recs[r.ID()], map[writerKind]int{}) {
		return nil
	}
	return &WriterLimitError{Limit: l.cfg.MaxRecordsPerWriter, Tombstone: deleted, TTL: l.cfg.TombstoneTTL}
}

// digest returns the anti-entropy digest: one hash per bucket of the
// records live at now (tombstones included, expired records not).
func (l *local) digest(now time.Time) []byte {
	out := make([]byte, digestSize)
	l.mu.RLock()
	defer l.mu.RUnlock()
	for id, r := range l.recs {
		if r.Expired(now) {
			continue
		}
		sum := l.sumLocked(id, r)
		b := int(sum.bucket)
		for i := range sum.d {
			out[b*sha256.Size+i] ^= sum.d[i]
		}
	}
	return out
}

// recordsIn returns the encoded live records of the given buckets.
func (l *local) recordsIn(buckets map[byte]bool, now time.Time) [][]byte {
	if len(buckets) == 0 {
		return nil
	}
	l.mu.RLock()
	var rs []*Record
	for id, r := range l.recs {
		if !r.Expired(now) && buckets[l.sumLocked(id, r).bucket] {
			rs = append(rs, r)
		}
	}
	l.mu.RUnlock()
	out := make([][]byte, 0, len(rs))
	for _, r := range rs {
		if b, err := r.Marshal(); err == nil {
			out = append(out, b)
		}
	}
	return out
}
