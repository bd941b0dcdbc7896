package node

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func openTestRepo(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := OpenRepo(dir)
	if err != nil {
		t.Fatalf("OpenRepo(%s): %v", dir, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func fileMode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return fi.Mode()
}

// noTempFiles fails if writeFileAtomic left a temp file in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left in the repo", e.Name())
		}
	}
}

func TestOpenRepoCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "repo")
	r := openTestRepo(t, dir)
	if m := fileMode(t, dir); !m.IsDir() || m.Perm() != 0o700 {
		t.Errorf("repo dir mode = %v, want a 0700 directory", m)
	}
	if !filepath.IsAbs(r.Dir) || r.Dir != dir {
		t.Errorf("Repo.Dir = %q, want %q", r.Dir, dir)
	}
	if got := r.Path("x"); got != filepath.Join(dir, "x") {
		t.Errorf("Path(x) = %q", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, repoLockFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid %d", got, os.Getpid())
	}
}

func TestOpenRepoRelativeDir(t *testing.T) {
	t.Chdir(t.TempDir())
	r := openTestRepo(t, "rel")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir != filepath.Join(wd, "rel") {
		t.Errorf("Repo.Dir = %q, want %q", r.Dir, filepath.Join(wd, "rel"))
	}
}

func TestOpenRepoLocked(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)

	r2, err := OpenRepo(dir)
	if err == nil {
		r2.Close()
		t.Fatal("second OpenRepo on a held repo succeeded")
	}
	if !errors.Is(err, ErrRepoLocked) {
		t.Fatalf("second OpenRepo: err = %v, want ErrRepoLocked", err)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q does not name the holder's pid %d", err, os.Getpid())
	}
	// The failed attempt must not have disturbed the holder's pid.
	b, _ := os.ReadFile(filepath.Join(dir, repoLockFile))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q after a failed open", b)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r3, err := OpenRepo(dir)
	if err != nil {
		t.Fatalf("OpenRepo after Close: %v", err)
	}
	r3.Close()
}

func TestOpenRepoFails(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file, filepath.Join(file, "sub")} {
		if r, err := OpenRepo(dir); err == nil {
			r.Close()
			t.Errorf("OpenRepo(%q) succeeded", dir)
		}
	}
}

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)
	k1, err := r.Identity()
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if k1.Type() != crypto.Ed25519 {
		t.Errorf("key type = %v, want Ed25519", k1.Type())
	}
	p := filepath.Join(dir, repoKeyFile)
	if m := fileMode(t, p); !m.IsRegular() || m.Perm() != 0o600 {
		t.Errorf("%s mode = %v, want a 0600 file", repoKeyFile, m)
	}
	noTempFiles(t, dir)

	k2, err := r.Identity()
	if err != nil {
		t.Fatalf("second Identity: %v", err)
	}
	id1, err := peer.IDFromPrivateKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := peer.IDFromPrivateKey(k2)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || !k1.Equals(k2) {
		t.Fatalf("second Identity gave peer %s, first %s", id2, id1)
	}

	// And across a restart.
	r.Close()
	r = openTestRepo(t, dir)
	k3, err := r.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if !k3.Equals(k1) {
		t.Error("Identity changed across a reopen")
	}
}

func TestIdentityCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(p string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("not a key"), 0o600) }},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"truncated", func(p string) error {
			k, _, err := crypto.GenerateEd25519Key(nil)
			if err != nil {
				return err
			}
			b, err := crypto.MarshalPrivateKey(k)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b[:len(b)-5], 0o600)
		}},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := openTestRepo(t, dir)
			p := filepath.Join(dir, repoKeyFile)
			if err := tc.setup(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(p)
			if k, err := r.Identity(); err == nil {
				t.Fatalf("Identity with a corrupt %s returned key %v", repoKeyFile, k)
			}
			// A corrupt key is reported, never silently replaced.
			if after, _ := os.ReadFile(p); string(after) != string(before) {
				t.Error("Identity overwrote the corrupt key file")
			}
		})
	}
}

func TestAPIFiles(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)
	if _, _, err := ReadAPI(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadAPI before WriteAPI: err = %v, want ErrNotExist", err)
	}
	const url = "http://127.0.0.1:12345"
	token, err := r.WriteAPI(url)
	if err != nil {
		t.Fatalf("WriteAPI: %v", err)
	}
	if len(token) != 64 || strings.Trim(token, "0123456789abcdef") != "" {
		t.Errorf("token %q is not 32 bytes of hex", token)
	}
	if m := fileMode(t, filepath.Join(dir, RepoTokenFile)); m.Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", RepoTokenFile, m)
	}
	if m := fileMode(t, filepath.Join(dir, RepoAPIFile)); m.Perm()&0o077 != 0 {
		t.Errorf("%s mode = %v, readable by others", RepoAPIFile, m)
	}
	noTempFiles(t, dir)
	gotURL, gotToken, err := ReadAPI(dir)
	if err != nil {
		t.Fatalf("ReadAPI: %v", err)
	}
	if gotURL != url || gotToken != token {
		t.Errorf("ReadAPI = %q, %q; want %q, %q", gotURL, gotToken, url, token)
	}

	// A restarted daemon gets a fresh token.
	token2, err := r.WriteAPI(url)
	if err != nil {
		t.Fatal(err)
	}
	if token2 == token {
		t.Error("WriteAPI reused the token")
	}
	if _, gotToken, _ := ReadAPI(dir); gotToken != token2 {
		t.Errorf("ReadAPI token = %q, want the new %q", gotToken, token2)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{RepoAPIFile, RepoTokenFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Close (stat: %v)", f, err)
		}
	}
	if _, _, err := ReadAPI(dir); err == nil {
		t.Error("ReadAPI succeeded after Close")
	}
}

func TestIdentityMissingInUsedRepo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, dir string)
		wantID bool // the message names the old peer ID
	}{
		{"started before", func(t *testing.T, dir string) {
			r := openTestRepo(t, dir)
			if _, err := r.Identity(); err != nil {
				t.Fatal(err)
			}
			r.Close()
		}, true},
		{"holds content", func(t *testing.T, dir string) {
			p := filepath.Join(dir, repoStoreDir, "blocks")
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "bafkreib"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"has a catalog", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, repoKVFile), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			old, _ := os.ReadFile(filepath.Join(dir, repoPeerFile))
			_ = os.Remove(filepath.Join(dir, repoKeyFile))
			r := openTestRepo(t, dir)
			_, err := r.Identity()
			if err == nil || !strings.Contains(err.Error(), "is missing but this repo has been used") || !strings.Contains(err.Error(), "--new-identity") {
				t.Fatalf("Identity = %v, want a refusal that names --new-identity", err)
			}
			if tc.wantID && !strings.Contains(err.Error(), "(peer ID was "+strings.TrimSpace(string(old))+")") {
				t.Fatalf("Identity = %v, want it to name peer %s", err, old)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			if _, err := os.Stat(filepath.Join(dir, repoKeyFile)); !os.IsNotExist(err) {
				t.Fatalf("a refused Identity made a key: %v", err)
			}
			k, err := r.LoadIdentity(true)
			if err != nil {
				t.Fatalf("LoadIdentity(new): %v", err)
			}
			id, _ := peer.IDFromPrivateKey(k)
			if got, _ := os.ReadFile(filepath.Join(dir, repoPeerFile)); strings.TrimSpace(string(got)) != id.String() {
				t.Fatalf("%s = %q, want the new peer ID %s", repoPeerFile, got, id)
			}
			// A key is there now: --new-identity does not replace it.
			if _, err := r.LoadIdentity(true); err == nil {
				t.Fatal("LoadIdentity(new) replaced an existing key")
			}
		})
	}
}

func TestIdentityFreshRepoRecordsPeerID(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)
	k, err := r.Identity()
	if err != nil {
		t.Fatalf("a fresh repo: %v", err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	if got, _ := os.ReadFile(filepath.Join(dir, repoPeerFile)); strings.TrimSpace(string(got)) != id.String() {
		t.Fatalf("%s = %q, want %s", repoPeerFile, got, id)
	}
}
