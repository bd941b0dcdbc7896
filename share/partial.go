package share

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/p2pshare/p2pshare/internal/atomicfile"
)

// Defaults of the partial store.
const (
	// DefaultMaxPartialBytes bounds the bytes kept for interrupted gets.
	DefaultMaxPartialBytes int64 = 8 << 30
	// DefaultPartialTTL is how long an untouched partial file is kept.
	DefaultPartialTTL = 24 * time.Hour
	// checkpointBytes and checkpointEvery: a transfer records its verified
	// offset after this many bytes or this long, whichever comes first.
	checkpointBytes = 64 << 20
	checkpointEvery = time.Second
)

// PartialStore keeps the gets in progress of a node so that an interrupted
// one continues from where it was, whoever serves it next. Each CID has two
// files in dir: CID.data, the bytes received, and CID.state, the offset up
// to which they were synced to disk and the sha2-256 state over exactly
// those bytes, written (atomically) only after the data is synced. At most
// one get of a CID uses its partial at a time. The store holds at most max
// bytes (oldest partials go first) and drops partials untouched for ttl.
type PartialStore struct {
	dir string
	max int64
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu   sync.Mutex
	busy map[string]bool // CIDs with a Partial open

	// syncFile flushes a data file to disk (f.Sync; tests replace it).
	syncFile func(*os.File) error
}

// partialState is the content of a CID.state file.
type partialState struct {
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"` // expected size, -1 if unknown
	Hash   []byte `json:"hash"` // sha2-256 state after Offset bytes
	Time   int64  `json:"time"` // unix seconds of the checkpoint
}

// OpenPartialStore opens (creating) the partial store in dir and drops what
// is stale in it.
func OpenPartialStore(dir string, max int64, ttl time.Duration, now func() time.Time, log *slog.Logger) (*PartialStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("partial store: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	ps := &PartialStore{dir: dir, max: max, ttl: ttl, now: now, log: log, busy: map[string]bool{}}
	ps.Clean()
	return ps, nil
}

func (ps *PartialStore) dataPath(key string) string  { return filepath.Join(ps.dir, key+".data") }
func (ps *PartialStore) statePath(key string) string { return filepath.Join(ps.dir, key+".state") }

// partialEntry is one partial on disk.
type partialEntry struct {
	key   string
	bytes int64
	time  time.Time
}

// entries lists the partials on disk, oldest first, and removes the files
// that are not a pair.
func (ps *PartialStore) entries() []partialEntry {
	des, err := os.ReadDir(ps.dir)
	if err != nil {
		return nil
	}
	var out []partialEntry
	for _, de := range des {
		name := de.Name()
		key, ok := strings.CutSuffix(name, ".state")
		if !ok {
			if k, isData := strings.CutSuffix(name, ".data"); isData {
				if _, err := os.Stat(ps.statePath(k)); err == nil {
					continue
				}
			}
			if !ps.busy[strings.TrimSuffix(name, ".data")] && !strings.HasPrefix(name, ".tmp-") {
				_ = os.Remove(filepath.Join(ps.dir, name)) // an orphan
			}
			continue
		}
		var e partialEntry
		e.key = key
		if fi, err := os.Stat(ps.dataPath(key)); err == nil {
			e.bytes, e.time = fi.Size(), fi.ModTime()
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().After(e.time) {
			e.time = fi.ModTime()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].time.Before(out[j].time) })
	return out
}

// Clean drops the partials untouched for the TTL, then the oldest until the
// store is within its bound.
func (ps *PartialStore) Clean() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.cleanLocked(0)
}

// cleanLocked drops stale partials, then the oldest ones until reserve more
// bytes fit under the bound. It reports whether they fit.
func (ps *PartialStore) cleanLocked(reserve int64) bool {
	var total int64
	var keep []partialEntry
	for _, e := range ps.entries() {
		if ps.busy[e.key] {
			total += e.bytes
			continue
		}
		if ps.now().Sub(e.time) > ps.ttl {
			ps.log.Info("dropping a stale partial get", "cid", e.key, "bytes", e.bytes, "age", ps.now().Sub(e.time).Round(time.Second))
			ps.remove(e.key)
			continue
		}
		keep = append(keep, e)
		total += e.bytes
	}
	for _, e := range keep {
		if total+reserve <= ps.max {
			break
		}
		ps.log.Info("dropping a partial get to stay within the bound", "cid", e.key, "bytes", e.bytes, "max", ps.max)
		ps.remove(e.key)
		total -= e.bytes
	}
	return total+reserve <= ps.max
}

func (ps *PartialStore) remove(key string) {
	_ = os.Remove(ps.statePath(key))
	_ = os.Remove(ps.dataPath(key))
}

// Size returns the bytes the store holds.
func (ps *PartialStore) Size() int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var total int64
	for _, e := range ps.entries() {
		total += e.bytes
	}
	return total
}

// errPartialBusy: another get of the CID uses its partial.
var errPartialBusy = errors.New("partial in use")

// errPartialFull: the file does not fit in the store's bound.
var errPartialFull = errors.New("over the partial store's bound")

// Begin opens the partial of c for a get of size bytes (-1 if unknown):
// the one left by an earlier get, from its verified offset, or a new one.
// Kept bytes are verified first: they are hashed again and must give the
// saved state, else (a file changed on disk, a torn write) they are
// dropped with a note and the get starts from zero. errPartialBusy and
// errPartialFull say that no partial can be used for this get.
func (ps *PartialStore) Begin(c cid.Cid, size int64) (*Partial, error) {
	key := c.String()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.busy[key] {
		return nil, errPartialBusy
	}
	if size > ps.max {
		return nil, errPartialFull
	}
	st, haveState := ps.readState(key)
	reserve := size
	if haveState {
		reserve = max(size-st.Offset, 0)
	}
	ps.busy[key] = true // not dropped by the clean below
	if !ps.cleanLocked(max(reserve, 0)) {
		delete(ps.busy, key)
		return nil, errPartialFull
	}
	p, err := ps.open(key, c, size, st, haveState)
	if err != nil {
		delete(ps.busy, key)
		return nil, err
	}
	return p, nil
}

func (ps *PartialStore) readState(key string) (partialState, bool) {
	b, err := os.ReadFile(ps.statePath(key))
	if err != nil {
		return partialState{}, false
	}
	var st partialState
	if err := json.Unmarshal(b, &st); err != nil || st.Offset < 0 {
		ps.log.Warn("dropping a partial get whose state is unreadable", "cid", key, "err", err)
		return partialState{}, false
	}
	return st, true
}

func (ps *PartialStore) open(key string, c cid.Cid, size int64, st partialState, resume bool) (*Partial, error) {
	f, err := os.OpenFile(ps.dataPath(key), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("partial of %s: %w", key, err)
	}
	p := &Partial{ps: ps, key: key, f: f, h: newHasher(), last: ps.now()}
	if resume {
		if err := p.verify(st); err != nil {
			ps.log.Warn("the kept bytes of an interrupted get failed verification: dropped, getting it again from zero", "cid", key, "offset", st.Offset, "err", err)
			p.Tampered = true
			resume = false
		}
	}
	if !resume {
		p.h.Reset()
		if err := rewind(f); err != nil {
			f.Close()
			return nil, err
		}
		p.off = 0
	}
	p.size = size
	p.Start = p.off
	p.saved = p.off
	return p, nil
}

// verify hashes the first st.Offset bytes of the data again, compares the
// result with the saved state and leaves the file ready to append at the
// offset.
func (p *Partial) verify(st partialState) error {
	fi, err := p.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < st.Offset {
		return fmt.Errorf("%d bytes kept, the checkpoint says %d", fi.Size(), st.Offset)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	if _, err := io.CopyBuffer(p.h, io.LimitReader(p.f, st.Offset), *buf); err != nil {
		return err
	}
	got, err := p.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if string(got) != string(st.Hash) {
		return errors.New("the bytes do not match the saved hash state")
	}
	if err := p.f.Truncate(st.Offset); err != nil {
		return err
	}
	if _, err := p.f.Seek(st.Offset, io.SeekStart); err != nil {
		return err
	}
	p.off = st.Offset
	return nil
}

// Partial is one get in progress in a PartialStore. Its file and hash are
// written by the fetch; Progress records checkpoints as they go.
type Partial struct {
	ps    *PartialStore
	key   string
	f     *os.File
	h     hash.Hash
	size  int64
	off   int64     // bytes verified at open
	saved int64     // offset of the last checkpoint
	last  time.Time // of the last checkpoint
	// flushing is closed when the checkpoint in the background (started
	// by Progress) is recorded; nil when none is under way. Only the
	// goroutine that writes the fetch's bytes (and reports its progress)
	// touches it, and the caller of Suspend or Finish once the fetch has
	// ended.
	flushing chan struct{}
	// Start is the offset the get continues from (0 for a new one).
	Start int64
	// Tampered is set when kept bytes failed verification and were dropped.
	Tampered bool
}

// File is the data file, positioned at Start.
func (p *Partial) File() *os.File { return p.f }

// Hash is the sha2-256 state over the bytes before Start.
func (p *Partial) Hash() hash.Hash { return p.h }

// Progress is called after each write with the bytes in the file and the
// hash; it starts a checkpoint when one is due. The checkpoint's fsync
// runs in the background while the transfer goes on (an fsync of a second
// of bytes inline would stall the reads, and the sender with them): the
// offset and hash state are taken here, and recorded once the sync, which
// covers at least those bytes, is done. One checkpoint at a time.
func (p *Partial) Progress(done int64) {
	if done-p.saved < checkpointBytes && p.ps.now().Sub(p.last) < checkpointEvery {
		return
	}
	if p.flushing != nil {
		select {
		case <-p.flushing:
			p.flushing = nil
		default:
			return // the last one is still syncing
		}
	}
	st, err := p.state()
	if err != nil {
		p.ps.log.Warn("partial get: checkpoint failed", "cid", p.key, "err", err)
		return
	}
	p.saved, p.last = st.Offset, p.ps.now()
	flushed := make(chan struct{})
	p.flushing = flushed
	go func() {
		defer close(flushed)
		if err := p.record(st); err != nil {
			p.ps.log.Warn("partial get: checkpoint failed", "cid", p.key, "err", err)
		}
	}()
}

// wait waits for the checkpoint under way in the background, if any.
func (p *Partial) wait() {
	if p.flushing != nil {
		<-p.flushing
		p.flushing = nil
	}
}

// Checkpoint syncs the data written so far and then records its offset and
// hash, so a crash after it loses nothing before that offset.
func (p *Partial) Checkpoint() error {
	p.wait()
	st, err := p.state()
	if err != nil {
		return err
	}
	if err := p.record(st); err != nil {
		return err
	}
	p.saved, p.last = st.Offset, p.ps.now()
	return nil
}

// state is the checkpoint of the bytes written so far.
func (p *Partial) state() (partialState, error) {
	off, err := p.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return partialState{}, err
	}
	hs, err := p.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return partialState{}, err
	}
	return partialState{Offset: off, Size: p.size, Hash: hs, Time: p.ps.now().Unix()}, nil
}

// record syncs the data file, which holds at least st's bytes, and then
// writes st.
func (p *Partial) record(st partialState) error {
	sync := p.ps.syncFile
	if sync == nil {
		sync = (*os.File).Sync
	}
	if err := sync(p.f); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	return atomicfile.WriteFile(p.ps.statePath(p.key), b, 0o600)
}

// Suspend records a last checkpoint and closes the partial, kept for the
// next get of the CID.
func (p *Partial) Suspend() {
	if err := p.Checkpoint(); err != nil {
		p.ps.log.Warn("partial get: checkpoint failed", "cid", p.key, "err", err)
	}
	p.close()
}

// Finish closes the partial of a complete, verified get and moves its data
// to path (a rename: path must be on the store's filesystem).
// On error the partial stays open, for the caller to copy and Discard.
// The file is not synced: its bytes are verified, and it is a temp file
// that its user places (and syncs if it must).
func (p *Partial) Finish(path string) error {
	p.wait()
	if err := os.Rename(p.ps.dataPath(p.key), path); err != nil {
		return err
	}
	_ = os.Remove(p.ps.statePath(p.key))
	p.close()
	return nil
}

// Discard removes the partial.
func (p *Partial) Discard() {
	p.wait()
	p.f.Close()
	p.ps.mu.Lock()
	p.ps.remove(p.key)
	delete(p.ps.busy, p.key)
	p.ps.mu.Unlock()
}

func (p *Partial) close() {
	p.f.Close()
	p.ps.mu.Lock()
	delete(p.ps.busy, p.key)
	p.ps.mu.Unlock()
}
