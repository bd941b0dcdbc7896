package node

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// versionIn returns what REPO/version of dir holds.
func versionIn(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, repoVersionFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRepoVersionOfNewRepo(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)
	if r.Upgraded != 0 {
		t.Fatalf("a new repo was upgraded from version %d", r.Upgraded)
	}
	if got, want := versionIn(t, dir), strconv.Itoa(RepoVersion)+"\n"; got != want {
		t.Fatalf("%s = %q, want %q", repoVersionFile, got, want)
	}
}

// A repo of the releases that recorded no version is brought to
// RepoVersion in place: its key and files stay as they were.
func TestRepoVersionUpgradesUnversionedRepo(t *testing.T) {
	dir := t.TempDir()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		repoKeyFile:                string(kb),
		repoKVFile:                 "the catalog and KV entries",
		"store/blocks/bafkreiheld": "a held file",
		"swarm.key":                "the private network's key",
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := openTestRepo(t, dir)
	if r.Upgraded != 1 {
		t.Fatalf("Upgraded = %d, want 1 (no version recorded)", r.Upgraded)
	}
	if got, want := versionIn(t, dir), strconv.Itoa(RepoVersion)+"\n"; got != want {
		t.Fatalf("%s = %q, want %q", repoVersionFile, got, want)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(got) != want {
			t.Fatalf("%s changed in the upgrade: %q, %v", name, got, err)
		}
	}
	k2, err := r.Identity()
	if err != nil || !k2.Equals(k) {
		t.Fatalf("Identity after the upgrade: %v (same key: %v)", err, err == nil && k2.Equals(k))
	}
	r.Close()
	if r := openTestRepo(t, dir); r.Upgraded != 0 {
		t.Fatalf("an upgraded repo was upgraded again from version %d", r.Upgraded)
	}
}

func TestRepoVersionNewerRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, repoVersionFile)
	newer := strconv.Itoa(RepoVersion+1) + "\n"
	if err := os.WriteFile(p, []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenRepo(dir)
	want := "repo version " + strconv.Itoa(RepoVersion+1) + " is newer than this p2pshare (version " + strconv.Itoa(RepoVersion) + "): upgrade p2pshare"
	if err == nil || !strings.HasSuffix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("OpenRepo of a newer repo = %v, want one line ending %q", err, want)
	}
	if got := versionIn(t, dir); got != newer {
		t.Fatalf("a refused repo's version became %q", got)
	}
	// The refusal released the lock.
	if err := os.WriteFile(p, []byte(strconv.Itoa(RepoVersion)), 0o600); err != nil {
		t.Fatal(err)
	}
	openTestRepo(t, dir)
}

func TestRepoVersionDamaged(t *testing.T) {
	for _, content := range []string{"", "two\n", "0\n", "-1\n", "2.0\n"} {
		dir := t.TempDir()
		p := filepath.Join(dir, repoVersionFile)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenRepo(dir)
		if err == nil || !strings.Contains(err.Error(), p+" holds") || !strings.Contains(err.Error(), "not a repo version") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("OpenRepo with version %q = %v, want one line saying %s is not a repo version", content, err, p)
		}
		if got := versionIn(t, dir); got != content {
			t.Fatalf("a damaged version %q became %q", content, got)
		}
	}
}

// Each step of an upgrade is recorded as it ends: a step that fails is
// run again at the next open, and only it.
func TestRepoVersionStepsResumeAfterFailure(t *testing.T) {
	dir := t.TempDir()
	r := openTestRepo(t, dir)
	if err := os.WriteFile(filepath.Join(dir, repoVersionFile), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ran []int
	fail := true
	steps := []func(string) error{
		func(string) error { ran = append(ran, 1); return nil },
		func(string) error {
			ran = append(ran, 2)
			if fail {
				return errors.New("disk full")
			}
			return nil
		},
		nil, // a version whose files are created when missing
	}
	err := r.upgradeLayout(4, steps)
	if err == nil || !strings.Contains(err.Error(), "upgrade the repo from version 2 to 3: disk full") {
		t.Fatalf("upgradeLayout = %v, want the failed step named", err)
	}
	if got := versionIn(t, dir); got != "2\n" {
		t.Fatalf("after a failed second step the version is %q, want 2", got)
	}
	fail = false
	if err := r.upgradeLayout(4, steps); err != nil {
		t.Fatal(err)
	}
	if got := versionIn(t, dir); got != "4\n" || r.Upgraded != 2 || !slices.Equal(ran, []int{1, 2, 2}) {
		t.Fatalf("version %q, upgraded from %d, steps run %v; want 4, from 2, [1 2 2]", got, r.Upgraded, ran)
	}
}
