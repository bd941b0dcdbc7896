package share

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// Store is the content store of one repo: every held file is kept as
// DIR/blocks/<CID> and listed in DIR/meta.db (bbolt). Files enter the store
// only through a temp file that is hashed while it is written, fsynced and
// renamed into place, so a crash leaves either the whole verified file or
// nothing. Store is safe for concurrent use.
type Store struct {
	dir        string
	blocks     string
	tmp        string
	quarantine string
	db         *bolt.DB
	log        *slog.Logger

	mu     sync.Mutex // guards closed
	closed bool
}

// MetaFile is the name of the store's metadata database inside its directory.
const MetaFile = "meta.db"

// Held describes one file in the store.
type Held struct {
	CID   cid.Cid
	Size  int64
	Added time.Time
	// Verified is when the file was last hashed whole and matched its CID
	// (when it was stored, served or scrubbed); zero if never since it was
	// found on disk.
	Verified time.Time
}

// maxQuarantined bounds the copies kept in quarantine/ for inspection: the
// oldest go first.
const maxQuarantined = 16

var (
	// bucketHeld maps CID bytes -> size (8 bytes) + added unix nanos (8
	// bytes) + verified unix nanos (8 bytes, absent in older stores).
	bucketHeld = []byte("held")
	// bucketNames maps a name this node published -> its PublishedName
	// in JSON (in repos of earlier releases, a signed name record of
	// the same fields, read alike).
	bucketNames = []byte("names")
)

// OpenStore opens (creating if needed) the store in dir. It removes temp
// files left by a crash and reconciles the metadata with the files on disk.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{dir: dir, blocks: filepath.Join(dir, "blocks"), tmp: filepath.Join(dir, "tmp"),
		quarantine: filepath.Join(dir, "quarantine"), log: log}
	for _, d := range []string{dir, s.blocks, s.tmp, s.quarantine} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if ents, err := os.ReadDir(s.tmp); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(s.tmp, e.Name()))
		}
	}
	db, err := bolt.Open(filepath.Join(dir, MetaFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store metadata %s: %w", filepath.Join(dir, MetaFile), err)
	}
	s.db = db
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketHeld, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store metadata: %w", err)
	}
	if err := s.reconcile(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: reconcile: %w", err)
	}
	return s, nil
}

// reconcile makes meta.db agree with blocks/: a file renamed into place just
// before a crash is listed; an entry whose file is gone is dropped.
func (s *Store) reconcile() error {
	ents, err := os.ReadDir(s.blocks)
	if err != nil {
		return err
	}
	onDisk := map[string]int64{}
	for _, e := range ents {
		c, err := cid.Decode(e.Name())
		// Only canonical names: path() opens blocks/<c.String()>.
		if err != nil || checkCID(c) != nil || e.Name() != c.String() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			onDisk[string(c.Bytes())] = fi.Size()
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHeld)
		var stale [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			if _, ok := onDisk[string(k)]; !ok {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for k, size := range onDisk {
			if b.Get([]byte(k)) == nil {
				if err := b.Put([]byte(k), encodeHeld(size, time.Now(), time.Time{})); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func encodeHeld(size int64, added, verified time.Time) []byte {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, uint64(size))
	binary.BigEndian.PutUint64(v[8:], uint64(added.UnixNano()))
	if !verified.IsZero() {
		binary.BigEndian.PutUint64(v[16:], uint64(verified.UnixNano()))
	}
	return v
}

func decodeHeld(k, v []byte) (Held, bool) {
	c, err := cid.Cast(k)
	if err != nil || (len(v) != 16 && len(v) != 24) {
		return Held{}, false
	}
	h := Held{CID: c, Size: int64(binary.BigEndian.Uint64(v)), Added: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))}
	if len(v) == 24 {
		if ns := int64(binary.BigEndian.Uint64(v[16:])); ns != 0 {
			h.Verified = time.Unix(0, ns)
		}
	}
	return h, true
}

func (s *Store) path(c cid.Cid) string { return filepath.Join(s.blocks, c.String()) }

// Put copies r into the store, hashing it on the way, and returns its CID
// and size. A file over maxSize bytes (when maxSize > 0) is refused with
// ErrTooLarge and leaves nothing behind. Putting a file already held is
// cheap and harmless.
func (s *Store) Put(ctx context.Context, r io.Reader, maxSize int64) (cid.Cid, int64, error) {
	if s.isClosed() {
		return cid.Undef, 0, ErrClosed
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("store: create temp file: %w", err)
	}
	tmpName := f.Name()
	defer os.Remove(tmpName) // no-op after the rename
	h := newHasher()
	src := r
	if maxSize > 0 && maxSize < math.MaxInt64 { // maxSize+1 must not overflow
		src = io.LimitReader(r, maxSize+1)
	}
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, src}, *buf)
	if err != nil {
		f.Close()
		return cid.Undef, 0, fmt.Errorf("store: copy: %w", noSpace(s.dir, err))
	}
	if maxSize > 0 && n > maxSize {
		f.Close()
		return cid.Undef, 0, fmt.Errorf("%w: over the limit of %d bytes", ErrTooLarge, maxSize)
	}
	c := cidFromDigest(h.Sum(nil))
	if err := s.commit(f, c, n); err != nil {
		return cid.Undef, 0, err
	}
	return c, n, nil
}

// commit fsyncs and closes f (a temp file holding c's n bytes), renames it
// into blocks/ and records it in the metadata.
func (s *Store) commit(f *os.File, c cid.Cid, n int64) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: fsync %s: %w", c, noSpace(s.dir, err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", c, noSpace(s.dir, err))
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return fmt.Errorf("store: chmod %s: %w", c, err)
	}
	if err := os.Rename(f.Name(), s.path(c)); err != nil {
		return fmt.Errorf("store: rename %s into place: %w", c, err)
	}
	syncDir(s.blocks)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHeld)
		if b.Get(c.Bytes()) != nil {
			return nil
		}
		now := time.Now()
		return b.Put(c.Bytes(), encodeHeld(n, now, now))
	})
}

// syncDir fsyncs a directory so that a rename in it survives a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Has reports whether the store holds c, and its size.
func (s *Store) Has(c cid.Cid) (int64, bool) {
	h, ok := s.Held(c)
	return h.Size, ok
}

// Held returns the store's entry for c.
func (s *Store) Held(c cid.Cid) (Held, bool) {
	var h Held
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketHeld).Get(c.Bytes()); v != nil {
			h, ok = decodeHeld(c.Bytes(), v)
		}
		return nil
	})
	return h, ok
}

// MarkVerified records that c was hashed whole at t and matched.
func (s *Store) MarkVerified(c cid.Cid, t time.Time) error {
	if s.isClosed() {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHeld)
		v := b.Get(c.Bytes())
		if v == nil {
			return nil
		}
		h, ok := decodeHeld(c.Bytes(), v)
		if !ok || t.Before(h.Verified) {
			return nil
		}
		return b.Put(c.Bytes(), encodeHeld(h.Size, h.Added, t))
	})
}

// Quarantine moves the held file c out of blocks/ into quarantine/ (kept
// for inspection, the newest maxQuarantined only) and forgets it, so it is
// no longer served, listed or provided. It returns where the copy went; a
// file not held gives ErrNotFound.
func (s *Store) Quarantine(c cid.Cid) (string, error) {
	if s.isClosed() {
		return "", ErrClosed
	}
	if _, ok := s.Has(c); !ok {
		return "", fmt.Errorf("store: quarantine %s: %w", c, ErrNotFound)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHeld).Delete(c.Bytes()) }); err != nil {
		return "", fmt.Errorf("store: quarantine %s: forget: %w", c, err)
	}
	dst := filepath.Join(s.quarantine, fmt.Sprintf("%s.%d", c, time.Now().UnixNano()))
	if err := os.Rename(s.path(c), dst); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		// Not kept, but never served again either.
		_ = os.Remove(s.path(c))
		return "", fmt.Errorf("store: quarantine %s: move: %w", c, err)
	}
	syncDir(s.blocks)
	now := time.Now()
	_ = os.Chtimes(dst, now, now) // pruneQuarantine keeps the newest by mtime
	s.pruneQuarantine()
	return dst, nil
}

// pruneQuarantine removes the oldest quarantined copies past maxQuarantined.
func (s *Store) pruneQuarantine() {
	ents, err := os.ReadDir(s.quarantine)
	if err != nil || len(ents) <= maxQuarantined {
		return
	}
	type q struct {
		name string
		mod  time.Time
	}
	var qs []q
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			qs = append(qs, q{e.Name(), fi.ModTime()})
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].mod.After(qs[j].mod) })
	for _, e := range qs[min(maxQuarantined, len(qs)):] {
		_ = os.Remove(filepath.Join(s.quarantine, e.name))
	}
}

// Dir returns the store's directory (for messages).
func (s *Store) Dir() string { return s.dir }

// Open opens the held file c for reading. The caller closes it.
func (s *Store) Open(c cid.Cid) (*os.File, int64, error) {
	if _, ok := s.Has(c); !ok {
		return nil, 0, fmt.Errorf("store: %s: %w", c, ErrNotFound)
	}
	f, err := os.Open(s.path(c))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("store: %s: %w", c, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("store: open %s: %w", c, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("store: stat %s: %w", c, err)
	}
	return f, fi.Size(), nil
}

// Remove drops the held file c: first from the metadata (so it is no
// longer served or listed), then from disk. Removing a file not held is a
// no-op. A transfer already reading it finishes (the open file outlives the
// unlink).
func (s *Store) Remove(c cid.Cid) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHeld).Delete(c.Bytes()) }); err != nil {
		return fmt.Errorf("store: forget %s: %w", c, err)
	}
	if err := os.Remove(s.path(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: remove %s: %w", c, err)
	}
	syncDir(s.blocks)
	return nil
}

// List returns every held file, oldest first.
func (s *Store) List() []Held {
	var out []Held
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeld).ForEach(func(k, v []byte) error {
			if h, ok := decodeHeld(k, v); ok {
				out = append(out, h)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Added.Before(out[j].Added) })
	return out
}

// Count returns how many files List would return, without building and
// sorting the list (heartbeats and metrics ask for it often).
func (s *Store) Count() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeld).ForEach(func(k, v []byte) error {
			if _, ok := decodeHeld(k, v); ok {
				n++
			}
			return nil
		})
	})
	return n
}

// Verify rehashes the held file c and reports whether it still matches.
func (s *Store) Verify(c cid.Cid) error {
	f, _, err := s.Open(c)
	if err != nil {
		return err
	}
	defer f.Close()
	h := newHasher()
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	if _, err := io.CopyBuffer(h, f, *buf); err != nil {
		return fmt.Errorf("store: verify %s: %w", c, err)
	}
	if got := cidFromDigest(h.Sum(nil)); !got.Equals(c) {
		return fmt.Errorf("store: verify %s: %w (hashes to %s)", c, ErrHashMismatch, got)
	}
	return nil
}

// PublishedName is a name this node published, as its name record in the
// catalog says. The store keeps these, and nothing else of names: the
// catalog holds the one record of every name, and a node announces its
// own names in it again at start, so a catalog that lost them (a damaged
// kv.db on a node alone) has them back.
type PublishedName struct {
	Name string    `json:"name"`
	CID  cid.Cid   `json:"cid"`
	Size int64     `json:"size"`
	Time time.Time `json:"time"`
}

// PutName keeps a name this node published, replacing an earlier one of
// the same name.
func (s *Store) PutName(n PublishedName) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("store: encode published name %q: %w", n.Name, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNames).Put([]byte(n.Name), b) })
}

// Names returns the names this node published. An entry that does not
// decode is skipped and logged.
func (s *Store) Names() []PublishedName {
	var out []PublishedName
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNames).ForEach(func(k, v []byte) error {
			var n PublishedName
			if err := json.Unmarshal(v, &n); err != nil || n.Name != string(k) || !n.CID.Defined() || n.Size < 0 {
				s.log.Warn("store metadata: skipped an unreadable published name", "name", string(k), "err", err)
				return nil
			}
			out = append(out, n)
			return nil
		})
	})
	return out
}

// TempFile creates a temp file inside the store's directory tree (same file
// system as blocks/, so a verified download can be renamed in).
func (s *Store) TempFile(pattern string) (*os.File, error) {
	return os.CreateTemp(s.tmp, pattern)
}

// TempDir creates a private temp directory inside the store's tree; it is
// removed by the caller, or at the next open after a crash.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(s.tmp, pattern)
}

// Close closes the metadata database. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// copyBufSize is the buffer size of every bulk copy: large enough that the
// per-call overhead of hashing, writing and stream reads is amortised.
const copyBufSize = 1 << 20

// copyBufs holds the bulk copies' buffers between uses. A fresh 1 MiB
// buffer per get, on the provider and the fetcher alike, made a 1 KiB get
// allocate 2 MiB: with the daemon's small heap (GOGC 25) that was a garbage
// collection every few gets, and page faults to fault the memory back in.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// getCopyBuf returns a buffer of copyBufSize bytes; putCopyBuf gives it back.
func getCopyBuf() *[]byte  { return copyBufs.Get().(*[]byte) }
func putCopyBuf(b *[]byte) { copyBufs.Put(b) }

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// hasPrefixFold is strings.HasPrefix ignoring case (used for CID sniffing).
func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}
