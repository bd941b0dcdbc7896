package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/atomicfile"
	"github.com/p2pshare/p2pshare/share"
)

// Files inside a repo.
const (
	repoKeyFile     = "identity.key" // the node's Ed25519 private key, 0600
	repoPeerFile    = "peer-id"      // the peer ID of that key, written at first start
	repoLockFile    = "repo.lock"    // locked by the running daemon (flock, LockFileEx)
	RepoAPIFile     = "api"          // "http://HOST:PORT" of the running daemon
	RepoTokenFile   = "api.token"    // bearer token of the running daemon's API, 0600
	repoStoreDir    = "store"        // share's content store
	repoDHTDir      = "dht"          // reserved for the DHT's datastore
	repoKVFile      = "kv.db"        // the key-value store and catalog (bbolt)
	repoPartialDir  = "partial"      // records of temp files of gets in users' directories
	repoVersionFile = "version"      // the repo's layout version (RepoVersion), a decimal line
)

// RepoVersion is the layout version of the repos this p2pshare reads and
// writes, recorded in REPO/version. A release that changes the layout so
// that an earlier one could not read it raises it, and adds to
// repoMigrations the step that brings a repo of the layout before up to
// it. A repo of a later version is refused: its layout is unknown here.
const RepoVersion = 2

// repoMigrations[v-1] brings a repo of layout v to v+1 in place. OpenRepo
// writes v+1 to REPO/version after each step, so a crash in between
// redoes only that step, which must therefore be safe to run again.
var repoMigrations = []func(dir string) error{
	// 1 to 2. Version 1 is the layout of the releases that recorded no
	// version. Version 2 adds peer-id, incarnation, partial/,
	// store/quarantine/ and a verified time to the store's held entries;
	// each is created when missing, or read alike without it: nothing
	// moves.
	nil,
}

// ErrRepoLocked: another daemon holds the repo.
var ErrRepoLocked = errors.New("repo is in use by another daemon")

// Repo is an opened and locked node directory. Only one process holds a
// repo at a time; Close releases it.
type Repo struct {
	Dir string
	// Upgraded is the layout version the repo had when OpenRepo brought
	// it up to RepoVersion; 0 if it was there already, or new.
	Upgraded int
	lock     *os.File
}

// OpenRepo creates dir if needed (mode 0700), checks that it is writable and
// takes its lock. It fails with ErrRepoLocked if a daemon already runs on it.
func OpenRepo(dir string) (*Repo, error) {
	if dir == "" {
		return nil, errors.New("open repo: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open repo %s: %w", abs, err)
	}
	lf, err := os.OpenFile(filepath.Join(abs, repoLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: not writable: %w", abs, err)
	}
	if err := lockFile(lf); err != nil {
		b, _ := os.ReadFile(lf.Name())
		lf.Close()
		pid := strings.TrimSpace(string(b))
		if pid != "" {
			return nil, fmt.Errorf("open repo %s: %w (pid %s)", abs, ErrRepoLocked, pid)
		}
		return nil, fmt.Errorf("open repo %s: %w", abs, ErrRepoLocked)
	}
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	r := &Repo{Dir: abs, lock: lf}
	if err := r.upgradeLayout(RepoVersion, repoMigrations); err != nil {
		r.Close()
		return nil, fmt.Errorf("open repo %s: %w", abs, err)
	}
	return r, nil
}

// upgradeLayout reads the repo's layout version and brings an older one
// up to version target with steps (see repoMigrations), recording each
// step in REPO/version; a new repo gets target at once. A later version
// than target is an error.
func (r *Repo) upgradeLayout(target int, steps []func(dir string) error) error {
	p := r.Path(repoVersionFile)
	b, err := os.ReadFile(p)
	v := 1
	switch {
	case errors.Is(err, os.ErrNotExist):
		if used, _ := r.used(); !used {
			v = target
			if err := writeSynced(p, []byte(strconv.Itoa(v)+"\n")); err != nil {
				return fmt.Errorf("record the repo version: %w", err)
			}
		}
	case err != nil:
		return fmt.Errorf("read the repo version: %w", err)
	default:
		v, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || v < 1 {
			return fmt.Errorf("%s holds %q, not a repo version: restore it from a backup (this p2pshare writes version %d)", p, strings.TrimSpace(string(b)), target)
		}
	}
	if v > target {
		return fmt.Errorf("repo version %d is newer than this p2pshare (version %d): upgrade p2pshare", v, target)
	}
	if v < target {
		r.Upgraded = v
	}
	for ; v < target; v++ {
		if step := steps[v-1]; step != nil {
			if err := step(r.Dir); err != nil {
				return fmt.Errorf("upgrade the repo from version %d to %d: %w", v, v+1, err)
			}
		}
		if err := writeSynced(p, []byte(strconv.Itoa(v+1)+"\n")); err != nil {
			return fmt.Errorf("upgrade the repo from version %d to %d: record the version: %w", v, v+1, err)
		}
	}
	return nil
}

// Path returns the path of name inside the repo.
func (r *Repo) Path(name string) string { return filepath.Join(r.Dir, name) }

// Identity loads the node's private key, creating an Ed25519 key (written
// with mode 0600) in a new repo. It is LoadIdentity(false).
func (r *Repo) Identity() (crypto.PrivKey, error) { return r.LoadIdentity(false) }

// LoadIdentity loads the node's private key and records its peer ID in
// REPO/peer-id. A missing key is created only in a repo that was never
// used (no recorded peer ID, no content, no catalog), or when newIdentity
// says to make a new identity on purpose: a repo that lost its key would
// otherwise come back as another peer, whose tickets and allowlist entries
// no longer match. A damaged key is reported, never replaced.
func (r *Repo) LoadIdentity(newIdentity bool) (crypto.PrivKey, error) {
	p := r.Path(repoKeyFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil && newIdentity:
		return nil, fmt.Errorf("--new-identity: %s exists: move it away first to make a new identity (tickets and allowlist entries for its peer ID will no longer match)", p)
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s is damaged (%v): restore the key from a backup, or move it away and start with --new-identity to make a new identity on purpose", p, err)
		}
		if err := r.recordPeerID(k); err != nil {
			return nil, err
		}
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read identity %s: %w", p, unwrapPathErr(err))
	}
	if used, was := r.used(); used && !newIdentity {
		if was == "" {
			was = "not recorded"
		}
		return nil, fmt.Errorf("%s is missing but this repo has been used (peer ID was %s): restore the key from a backup, or start with --new-identity to make a new identity on purpose (tickets and allowlist entries for the old ID will no longer match)", p, was)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	if err := writeFileAtomic(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	if err := r.recordPeerID(k); err != nil {
		return nil, err
	}
	return k, nil
}

// recordPeerID writes k's peer ID to REPO/peer-id unless it is there.
func (r *Repo) recordPeerID(k crypto.PrivKey) error {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	p := r.Path(repoPeerFile)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == id.String() {
		return nil
	}
	if err := writeFileAtomic(p, []byte(id.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("record peer ID: %w", err)
	}
	return nil
}

// used reports whether the repo has been started before or holds
// anything, and the peer ID it recorded ("" if none).
func (r *Repo) used() (bool, string) {
	if b, err := os.ReadFile(r.Path(repoPeerFile)); err == nil {
		return true, strings.TrimSpace(string(b))
	}
	for _, p := range []string{repoKVFile, filepath.Join(repoStoreDir, share.MetaFile)} {
		if _, err := os.Lstat(r.Path(p)); err == nil {
			return true, ""
		}
	}
	ents, _ := os.ReadDir(r.Path(filepath.Join(repoStoreDir, "blocks")))
	return len(ents) > 0, ""
}

// WriteAPI records the running daemon's API address and a fresh bearer
// token, returning the token. Both are readable by the owner alone, or
// also by the repo directory's group when the directory is set-group-ID
// and group-readable (chmod 2750 REPO, an explicit choice): that is how
// other users are given the use of a daemon run as a service (add them
// to the repo's group).
func (r *Repo) WriteAPI(url string) (string, error) {
	tb := make([]byte, 32)
	if _, err := rand.Read(tb); err != nil {
		return "", err
	}
	token := hex.EncodeToString(tb)
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(r.Dir); err == nil && fi.Mode()&os.ModeSetgid != 0 && fi.Mode().Perm()&0o050 == 0o050 {
		mode = 0o640
	}
	if err := writeFileAtomic(r.Path(RepoTokenFile), []byte(token+"\n"), mode); err != nil {
		return "", fmt.Errorf("write api token: %w", err)
	}
	if err := writeFileAtomic(r.Path(RepoAPIFile), []byte(url+"\n"), mode); err != nil {
		return "", fmt.Errorf("write api address: %w", err)
	}
	return token, nil
}

// Close removes the API files and releases the lock.
func (r *Repo) Close() error {
	if r.lock == nil {
		return nil
	}
	_ = os.Remove(r.Path(RepoAPIFile))
	_ = os.Remove(r.Path(RepoTokenFile))
	_ = r.lock.Truncate(0)
	err := r.lock.Close() // releases the flock
	r.lock = nil
	return err
}

// writeFileAtomic writes b to path through a temp file, fsync and rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	return atomicfile.WriteFile(path, b, mode)
}

// ReadAPI returns the API address and token of the daemon running on the
// repo at dir, for clients.
func ReadAPI(dir string) (url, token string, err error) {
	u, err := os.ReadFile(filepath.Join(dir, RepoAPIFile))
	if err != nil {
		return "", "", err
	}
	t, err := os.ReadFile(filepath.Join(dir, RepoTokenFile))
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(u)), strings.TrimSpace(string(t)), nil
}
