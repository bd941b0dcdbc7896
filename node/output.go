package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/p2pshare/p2pshare/internal/oserr"
	"github.com/p2pshare/p2pshare/node/api"
)

// A get writes the file it fetches inside the repo (a private directory of
// the store's tmp/, emptied at every start) and puts it in the user's
// directory only once it is whole and verified: a crash mid-transfer
// leaves nothing there. On the same file system the file is moved in with
// one rename (or link, which refuses an existing name); across file systems
// it is copied to a temp name in the target directory first, recorded in
// REPO/partial so that a crash during the copy is cleaned at the next start.

// partPrefix and partSuffix frame the temp name of a copy across file
// systems; cleanPartials removes only files named so.
const (
	partPrefix = ".p2pshare-"
	partSuffix = ".part"
)

// errExists: the output path exists and the get was not told to replace it.
func errExists(path string) error {
	return api.Errorf(api.ErrExists, "%s exists: use --force to replace it", path)
}

// placeOutput puts the verified file src (inside the repo) at dir/name.
// Without force an existing dir/name is kept and errExists returned; with
// force it is replaced atomically. name is a validated file name (no
// separator), so dir/name stays inside dir.
func (n *Node) placeOutput(src string, root *os.Root, dir, name string, force bool) error {
	dst := filepath.Join(dir, name)
	err := moveIn(os.Link, os.Rename, os.Lstat, src, dst, force)
	switch {
	case err == nil:
		syncDir(dir)
		return nil
	case errors.Is(err, os.ErrExist):
		return errExists(dst)
	case !oserr.CrossDevice(err):
		return outputError(dst, err)
	}
	return n.copyOutput(src, root, dir, name, force)
}

// copyOutput copies src into dir under a temp name recorded in the repo,
// then renames (force) or links it to name.
func (n *Node) copyOutput(src string, root *os.Root, dir, name string, force bool) error {
	dst := filepath.Join(dir, name)
	part := partPrefix + randHex(8) + partSuffix
	journal, err := n.recordPartial(filepath.Join(dir, part))
	if err != nil {
		return err
	}
	defer os.Remove(journal)
	defer root.Remove(part) // no-op once renamed
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer in.Close()
	out, err := root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return outputError(dst, err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return outputError(dst, err)
	}
	err = moveIn(root.Link, root.Rename, root.Lstat, part, name, force)
	if errors.Is(err, os.ErrExist) {
		return errExists(dst)
	}
	if err != nil {
		return outputError(dst, err)
	}
	syncDir(dir)
	return nil
}

// moveIn moves the file old to new: with force by rename, which replaces
// new atomically; without, by a hard link, which fails if new exists (the
// caller removes old). On a file system without hard links it checks that
// new is free and renames.
func moveIn(link, rename func(o, n string) error, lstat func(string) (os.FileInfo, error), old, new string, force bool) error {
	if force {
		return rename(old, new)
	}
	err := link(old, new)
	if err == nil || errors.Is(err, os.ErrExist) || oserr.CrossDevice(err) {
		return err
	}
	if _, serr := lstat(new); serr == nil {
		return os.ErrExist
	}
	return rename(old, new)
}

func outputError(dst string, err error) error {
	return api.Errorf(nil, "get: write %s: %v", dst, unwrapPathErr(err))
}

// recordPartial writes the path of a temp file about to be created in a
// user's directory into REPO/partial, and returns the record's path.
func (n *Node) recordPartial(path string) (string, error) {
	dir := n.repo.Path(repoPartialDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("get: %w", err)
	}
	rec := filepath.Join(dir, randHex(8))
	if err := writeFileAtomic(rec, []byte(path+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("get: record temp file: %w", err)
	}
	return rec, nil
}

// cleanPartials removes the temp files that gets copying across file
// systems left in users' directories when the daemon died, and their
// records.
func cleanPartials(repo *Repo, log *slog.Logger) {
	dir := repo.Path(repoPartialDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rec := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(rec)
		p := strings.TrimSpace(string(b))
		base := filepath.Base(p)
		if err == nil && filepath.IsAbs(p) && strings.HasPrefix(base, partPrefix) && strings.HasSuffix(base, partSuffix) {
			if err := os.Remove(p); err == nil {
				log.Info("removed the temp file of a get cut short", "path", p)
			}
		}
		_ = os.Remove(rec)
	}
}

// syncDir fsyncs a directory so that a rename in it survives a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
