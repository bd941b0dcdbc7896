package node

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// damage is one way a bbolt file in the repo gets broken.
// Some leave the data intact (a garbled free page, a cut past the last
// page in use): the node may keep those files, and must still lose nothing.
type damage struct {
	name   string
	always bool // the file is unusable: it must be moved aside
	do     func(t *testing.T, path string)
}

func damages() []damage {
	truncate := func(keep func(size int64) int64) func(*testing.T, string) {
		return func(t *testing.T, p string) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, keep(fi.Size())); err != nil {
				t.Fatal(err)
			}
		}
	}
	garble := func(page func(pages int64) int64) func(*testing.T, string) {
		return func(t *testing.T, p string) {
			const ps = 4096
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			junk := make([]byte, ps)
			rng := rand.New(rand.NewPCG(uint64(fi.Size()), 7))
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(junk, page(fi.Size()/ps)*ps); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []damage{
		{"truncated-100", true, truncate(func(int64) int64 { return 100 })},
		{"truncated-1page", true, truncate(func(int64) int64 { return 4096 })},
		{"truncated-3pages", false, truncate(func(int64) int64 { return 3 * 4096 })},
		{"truncated-half", false, truncate(func(s int64) int64 { return s / 2 })},
		{"truncated-1byte", true, truncate(func(s int64) int64 { return s - 1 })},
		{"garbled-meta0", true, garble(func(int64) int64 { return 0 })},
		{"garbled-meta1", true, garble(func(int64) int64 { return 1 })},
		{"garbled-root", false, garble(func(int64) int64 { return 2 })},
		{"garbled-middle", false, garble(func(n int64) int64 { return n / 2 })},
		{"zero-length", true, truncate(func(int64) int64 { return 0 })},
		{"directory", true, func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// TestDamagedMetadataIsRebuilt breaks the store's meta.db and the catalog's
// kv.db in every way of damages and restarts the node on its repo: it must
// start, keep the damaged file aside, and still list and serve every file
// under its name.
func TestDamagedMetadataIsRebuilt(t *testing.T) {
	files := map[string][]byte{"one.txt": []byte("first file\n"), "two.txt": []byte("second file\n")}
	for _, db := range []string{filepath.Join(repoStoreDir, share.MetaFile), repoKVFile} {
		for _, d := range damages() {
			t.Run(filepath.Base(db)+"/"+d.name, func(t *testing.T) {
				dir := t.TempDir()
				cfg, n := startInRepo(t, dir)
				for name, b := range files {
					shareBytes(t, n, name, b)
				}
				if err := n.Close(); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, db)
				d.do(t, path)

				n, err := New(cfg)
				if err != nil {
					t.Fatalf("restart on a repo with a damaged %s: %v", db, err)
				}
				defer n.Close()
				aside, _ := filepath.Glob(path + ".damaged-*")
				if len(aside) > 1 || d.always && len(aside) != 1 {
					t.Errorf("damaged file kept as %v, want one %s.damaged-*", aside, filepath.Base(path))
				}
				waitFor(t, 10*time.Second, "the catalog to list every file", func() bool {
					for name := range files {
						if _, ok := n.KV().Lookup(name); !ok {
							return false
						}
					}
					return true
				})
				if got := len(n.ShareService().Store().List()); got != len(files) {
					t.Fatalf("store lists %d files, want %d", got, len(files))
				}
				if got := len(n.ShareService().Store().Names()); got != len(files) {
					t.Errorf("store keeps %d published names to republish, want %d", got, len(files))
				}
				for name, want := range files {
					out := filepath.Join(t.TempDir(), name)
					if _, err := n.API().Get(context.Background(), api.GetRequest{Ref: name, Path: out}); err != nil {
						t.Fatalf("get %s: %v", name, err)
					}
					if b, _ := os.ReadFile(out); string(b) != string(want) {
						t.Fatalf("get %s: %q, want %q", name, b, want)
					}
				}
			})
		}
	}
}

// TestMissingIdentityRefusesStart: a repo that lost its key does not come
// back as another peer unless told to.
func TestMissingIdentityRefusesStart(t *testing.T) {
	dir := t.TempDir()
	cfg, n := startInRepo(t, dir)
	old := n.Host().ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, repoKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "peer ID was "+old.String()) || !strings.Contains(err.Error(), "--new-identity") {
		t.Fatalf("start without the key: %v, want a refusal naming %s and --new-identity", err, old)
	}
	if _, err := os.Stat(filepath.Join(dir, repoKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused start made a key: %v", err)
	}
	cfg.NewIdentity = true
	n, err = New(cfg)
	if err != nil {
		t.Fatalf("start with NewIdentity: %v", err)
	}
	defer n.Close()
	if n.Host().ID() == old {
		t.Fatal("NewIdentity kept the old peer ID")
	}
}

// startInRepo starts a loopback node without replication on the repo dir,
// for a test that closes and restarts it, and returns its config.
func startInRepo(t *testing.T, dir string) (Config, *Node) {
	t.Helper()
	cfg := DefaultLocalConfig(dir)
	cfg.Logger = quietLogger()
	cfg.Share.Replicas = 1
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, n
}
