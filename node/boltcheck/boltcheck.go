// Package boltcheck checks a bbolt database file before a node opens it,
// and moves a damaged one aside so that the node can rebuild it. bbolt
// trusts its file: a truncated one makes it read past the end of its
// memory map (SIGBUS, which kills the process), and a garbled page makes it
// panic. Check reads the file's meta pages itself, then opens it and reads
// every page in the calling goroutine with faults turned into panics, and
// recovers them. The package owns no state.
package boltcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt's on-disk format (go.etcd.io/bbolt/internal/common): a meta page
// is a 16-byte page header followed by magic, version, page size, flags,
// the root bucket (root page, sequence), the freelist page, the high water
// mark (pgid), the transaction ID and an FNV-64a checksum of the fields
// before it. Numbers are in the machine's byte order.
const (
	pageHeaderSize = 16
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	metaSize       = 64 // the meta fields, checksum included
	sumOffset      = 56 // where the checksum starts inside the meta
	noFreelist     = ^uint64(0)
	minPageSize    = 512
	maxPageSize    = 1 << 20
)

// meta is the part of a meta page the check needs.
type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

// ErrDamaged is wrapped by every error of Check that says the file is not
// a usable bbolt database.
var ErrDamaged = errors.New("damaged")

// Check reports whether the bbolt file at path can be opened and read
// safely: nil if it can, or if it does not exist (bbolt creates it); an
// error wrapping ErrDamaged if it is not a whole, consistent database; any
// other error if it could not be checked (permissions, I/O).
func Check(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	case !fi.Mode().IsRegular():
		what := "not a regular file"
		if fi.IsDir() {
			what = "a directory"
		}
		return fmt.Errorf("%w: %s is %s, not a database", ErrDamaged, path, what)
	case fi.Size() == 0:
		return fmt.Errorf("%w: %s is empty", ErrDamaged, path)
	}
	if err := checkMeta(path, fi.Size()); err != nil {
		return err
	}
	return checkPages(path)
}

// checkMeta reads both meta pages and checks them against the file size,
// without mapping the file: a file shorter than its high water mark is one
// that bbolt would fault on.
func checkMeta(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	m0, err := readMeta(f, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: first meta page: %w", ErrDamaged, path, err)
	}
	m1, err := readMeta(f, int64(m0.pageSize))
	if err != nil {
		return fmt.Errorf("%w: %s: second meta page: %w", ErrDamaged, path, err)
	}
	if m1.pageSize != m0.pageSize {
		return fmt.Errorf("%w: %s: the meta pages disagree on the page size (%d, %d)", ErrDamaged, path, m0.pageSize, m1.pageSize)
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	ps := int64(m.pageSize)
	switch {
	case size%ps != 0:
		return fmt.Errorf("%w: %s: %d bytes is not a whole number of %d-byte pages (truncated?)", ErrDamaged, path, size, ps)
	case m.pgid < 2 || m.pgid > uint64(size/ps):
		return fmt.Errorf("%w: %s: %d bytes, but the database needs %d pages of %d bytes (truncated?)", ErrDamaged, path, size, m.pgid, ps)
	case m.root < 2 || m.root >= m.pgid:
		return fmt.Errorf("%w: %s: root page %d out of range", ErrDamaged, path, m.root)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return fmt.Errorf("%w: %s: freelist page %d out of range", ErrDamaged, path, m.freelist)
	}
	return nil
}

// readMeta reads and validates the meta page at off.
func readMeta(r io.ReaderAt, off int64) (meta, error) {
	b := make([]byte, pageHeaderSize+metaSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return meta{}, fmt.Errorf("read: %w", err)
	}
	b = b[pageHeaderSize:]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:sumOffset])
	m := meta{
		pageSize: e.Uint32(b[8:]), root: e.Uint64(b[16:]), freelist: e.Uint64(b[32:]),
		pgid: e.Uint64(b[40:]), txid: e.Uint64(b[48:]),
	}
	switch {
	case e.Uint32(b[0:]) != metaMagic:
		return meta{}, errors.New("not a bbolt database (bad magic)")
	case e.Uint32(b[4:]) != metaVersion:
		return meta{}, fmt.Errorf("unknown version %d", e.Uint32(b[4:]))
	case e.Uint64(b[sumOffset:]) != h.Sum64():
		return meta{}, errors.New("checksum mismatch")
	case m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0:
		return meta{}, fmt.Errorf("bad page size %d", m.pageSize)
	}
	return m, nil
}

// checkPages opens the database and reads every page that holds data, then
// runs bbolt's own consistency check. Faults and panics are recovered.
func checkPages(path string) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: reading it failed: %v", ErrDamaged, path, r)
			// The mapping may be what faulted: closing it is safe, and a
			// panic while closing leaves the file descriptor to the GC.
			func() {
				defer func() { _ = recover() }()
				if db != nil {
					_ = db.Close()
				}
			}()
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("check %s: %w (is it open in another process?)", path, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		// Walk first, in this goroutine: bbolt's Check reads pages in a
		// goroutine of its own, where a fault cannot be recovered.
		var sink byte
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walk(b, &sink)
		}); err != nil {
			return err
		}
		for cerr := range tx.Check() {
			return cerr // the first problem is enough
		}
		return nil
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		return fmt.Errorf("check %s: close: %w", path, cerr)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
	}
	return nil
}

// walk reads every key and value of b and its nested buckets.
func walk(b *bolt.Bucket, sink *byte) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		for _, x := range k {
			*sink ^= x
		}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := walk(nb, sink); err != nil {
					return err
				}
			}
			continue
		}
		for _, x := range v {
			*sink ^= x
		}
	}
	return nil
}

// Salvage checks the bbolt file at path. A damaged file is moved aside, to
// path.damaged-TIMESTAMP, where it is kept, and Salvage logs one warning
// naming it and saying what happens next (then, e.g. "rebuilding it from
// the content store"); the caller then opens path and gets a new, empty
// database. It returns the path the damaged file was moved to ("" if the
// file was fine), or an error if the file could not be checked or moved.
func Salvage(path, then string, log *slog.Logger) (string, error) {
	err := Check(path)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, ErrDamaged) {
		return "", err
	}
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return "", fmt.Errorf("%w; moving it aside failed: %w: move it away by hand", err, rerr)
	}
	if log == nil {
		log = slog.Default()
	}
	log.Warn(fmt.Sprintf("damaged database moved aside to %s, %s; keep the damaged copy for inspection or delete it", aside, then), "err", err)
	return aside, nil
}
