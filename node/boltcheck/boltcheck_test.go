package boltcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

const testKeys = 400

// makeDB writes a database of a few dozen pages (two buckets, one nested)
// and returns its path and page size.
func makeDB(t *testing.T) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		a, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		n, err := a.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		for i := range testKeys {
			if err := a.Put(fmt.Appendf(nil, "key-%04d", i), bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				return err
			}
			if err := n.Put(fmt.Appendf(nil, "n-%04d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Info().PageSize
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, ps
}

// readAll opens the database and checks that every record written by
// makeDB is there. It runs only on files Check passed: if one of those
// crashes or lacks data, the check let damage through.
func readAll(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("Check passed %s but bbolt cannot open it: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		a := tx.Bucket([]byte("a"))
		if a == nil {
			return errors.New("bucket a missing")
		}
		for i := range testKeys {
			if v := a.Get(fmt.Appendf(nil, "key-%04d", i)); !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, 100)) {
				return fmt.Errorf("key %d: wrong value", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Check passed %s but its data is wrong: %v", path, err)
	}
}

func TestCheckIntact(t *testing.T) {
	path, _ := makeDB(t)
	if err := Check(path); err != nil {
		t.Fatalf("intact database: %v", err)
	}
	if err := Check(filepath.Join(t.TempDir(), "absent.db")); err != nil {
		t.Fatalf("absent file: %v", err)
	}
	readAll(t, path)
}

func TestCheckTruncated(t *testing.T) {
	path, ps := makeDB(t)
	fi, _ := os.Stat(path)
	size := fi.Size()
	b, _ := os.ReadFile(path)
	highWater := int64(binary.NativeEndian.Uint64(b[pageHeaderSize+40:])) * int64(ps)
	for _, cut := range []int64{1, int64(ps) - 1, int64(ps), 2 * int64(ps), 2*int64(ps) + 100, size / 2, size - int64(ps), size - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			p := copyDB(t, path)
			if err := os.Truncate(p, cut); err != nil {
				t.Fatal(err)
			}
			err := Check(p)
			switch {
			case cut >= highWater && err == nil:
				readAll(t, p) // only unused pages cut off
			case !errors.Is(err, ErrDamaged):
				t.Fatalf("truncated to %d of %d bytes (%d in use): Check = %v, want ErrDamaged", cut, size, highWater, err)
			}
		})
	}
}

// TestCheckTruncatedHighWater cuts the file after its last used page but
// keeps a whole number of pages: bbolt maps past the end and faults when it
// reads a page there. The meta pages' high water mark says so.
func TestCheckTruncatedHighWater(t *testing.T) {
	path, ps := makeDB(t)
	p := copyDB(t, path)
	b, _ := os.ReadFile(p)
	pgid := binary.NativeEndian.Uint64(b[pageHeaderSize+40:])
	if err := os.Truncate(p, int64(pgid-1)*int64(ps)); err != nil {
		t.Fatal(err)
	}
	if err := Check(p); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Check = %v, want ErrDamaged", err)
	}
}

func TestCheckGarbled(t *testing.T) {
	path, ps := makeDB(t)
	fi, _ := os.Stat(path)
	pages := int(fi.Size()) / ps
	rng := rand.New(rand.NewPCG(1, 2))
	damaged := 0
	for pg := range pages {
		t.Run(fmt.Sprint("page", pg), func(t *testing.T) {
			p := copyDB(t, path)
			garble(t, p, pg, ps, rng)
			err := Check(p)
			switch {
			case pg < 2 && !errors.Is(err, ErrDamaged):
				t.Fatalf("garbled meta page %d: Check = %v, want ErrDamaged", pg, err)
			case err == nil:
				readAll(t, p) // a page nothing uses: harmless
			case !errors.Is(err, ErrDamaged):
				t.Fatalf("Check = %v, want ErrDamaged or nil", err)
			default:
				damaged++
			}
		})
	}
	if damaged < pages/2 {
		t.Fatalf("only %d of %d garbled pages were found damaged", damaged, pages)
	}
}

func TestCheckEmptyAndDirectory(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(empty); !errors.Is(err, ErrDamaged) {
		t.Fatalf("empty file: Check = %v", err)
	}
	sub := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Check(sub); !errors.Is(err, ErrDamaged) {
		t.Fatalf("directory: Check = %v", err)
	}
	moved, err := Salvage(sub, "starting empty", nil)
	if err != nil || moved == "" {
		t.Fatalf("Salvage(directory) = %q, %v", moved, err)
	}
	if fi, err := os.Stat(moved); err != nil || !fi.IsDir() {
		t.Fatalf("the directory was not kept at %s: %v", moved, err)
	}
}

func TestSalvageMovesAside(t *testing.T) {
	path, ps := makeDB(t)
	garble(t, path, 0, ps, rand.New(rand.NewPCG(3, 4)))
	before, _ := os.ReadFile(path)
	moved, err := Salvage(path, "starting empty", nil)
	if err != nil || moved == "" {
		t.Fatalf("Salvage = %q, %v", moved, err)
	}
	if after, _ := os.ReadFile(moved); !bytes.Equal(before, after) {
		t.Fatal("the damaged file was not kept as it was")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged file is still in place: %v", err)
	}
	if moved, err := Salvage(path, "starting empty", nil); err != nil || moved != "" {
		t.Fatalf("Salvage of an absent file = %q, %v", moved, err)
	}
	good, _ := makeDB(t)
	if moved, err := Salvage(good, "starting empty", nil); err != nil || moved != "" {
		t.Fatalf("Salvage of an intact file = %q, %v", moved, err)
	}
}

func copyDB(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// garble overwrites page pg with random bytes.
func garble(t *testing.T, path string, pg, ps int, rng *rand.Rand) {
	t.Helper()
	junk := make([]byte, ps)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, int64(pg*ps)); err != nil {
		t.Fatal(err)
	}
}

// TestCheckPagesRecoversFault reads a truncated file past the meta check:
// bbolt faults (SIGBUS) on the pages past the end, and the fault must come
// back as an error, not kill the process.
func TestCheckPagesRecoversFault(t *testing.T) {
	path, ps := makeDB(t)
	b, _ := os.ReadFile(path)
	pgid := binary.NativeEndian.Uint64(b[pageHeaderSize+40:])
	for _, keep := range []uint64{3, pgid / 2, pgid - 1} {
		p := copyDB(t, path)
		if err := os.Truncate(p, int64(keep)*int64(ps)); err != nil {
			t.Fatal(err)
		}
		if err := checkPages(p); !errors.Is(err, ErrDamaged) {
			t.Fatalf("%d of %d pages kept: checkPages = %v, want ErrDamaged", keep, pgid, err)
		} else {
			t.Logf("%d of %d pages kept: %v", keep, pgid, err)
		}
	}
}
