package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pshare/p2pshare/node/api"
)

// errExists is a get refused because its output file exists.
type errExists struct{ path string }

func (e errExists) Error() string { return e.path + " exists: use --force to replace it" }

// getPath says how a get reaches its output file.
type getPath int

const (
	// pathStream: the daemon streams the verified bytes (GET /cat) and the
	// command writes the file, as the user, verifying the CID again.
	pathStream getPath = iota
	// pathDaemon: the daemon writes the file itself (POST /get).
	pathDaemon
)

// chooseGetPath picks how to get into dir. The daemon may write the
// output only when that writes what the command would: the daemon runs as
// the same user on the same running system, and its repo is on the same
// filesystem as dir (the daemon then moves its verified file into place
// with a rename, no copy). Anything else, or anything it cannot tell, is
// streamed.
func chooseGetPath(ctx context.Context, c *api.Client, repo, dir string) (getPath, string) {
	id, err := c.ID(ctx)
	switch {
	case err != nil:
		return pathStream, "the daemon's identity is unknown: " + err.Error()
	case id.UID < 0 || id.UID != os.Getuid():
		return pathStream, fmt.Sprintf("the daemon runs as uid %d, this command as %d", id.UID, os.Getuid())
	case id.Machine == "" || id.Machine != api.Machine():
		return pathStream, "the daemon runs on another system (" + id.Machine + ")"
	case !sameFilesystem(repo, dir):
		return pathStream, "the output directory is not on the daemon repo's filesystem"
	}
	return pathDaemon, "same user, system and filesystem"
}

// streamGet fetches req through the daemon's verified stream and writes it
// as this user: into a temp file beside the output, hashed as it is
// written, synced, checked against the CID the daemon names (and the CID
// asked for, if one was), then moved into place. Without req.Force an
// existing file is never replaced (the final step is a link, which fails
// if the name exists). On any error or cancel the temp file is removed.
// With progress set, a bar of the bytes received is drawn on it.
func streamGet(ctx context.Context, c *api.Client, req api.GetRequest, progress io.Writer) (api.GetResult, error) {
	start := time.Now()
	dir, file := req.Path, ""
	if !req.Dir {
		dir, file = filepath.Dir(req.Path), filepath.Base(req.Path)
	}
	if fi, err := os.Stat(dir); err != nil {
		return api.GetResult{}, fmt.Errorf("output directory %s: %w", dir, unwrapPath(err))
	} else if !fi.IsDir() {
		return api.GetResult{}, fmt.Errorf("output directory %s: not a directory", dir)
	}
	// Mode 0666 less the umask, as any file the user creates.
	tmp, err := os.OpenFile(filepath.Join(dir, ".p2pshare-"+randomHex()+".part"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return api.GetResult{}, fmt.Errorf("output directory %s: %w", dir, unwrapPath(err))
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, body, err := c.Cat(ctx, req.Ref)
	if err != nil {
		return api.GetResult{}, err
	}
	defer body.Close()
	if file == "" {
		file = filepath.Base(filepath.FromSlash(res.Name))
		if res.Name == "" {
			file = res.CID
		}
	}
	out := filepath.Join(dir, file)
	if !req.Force {
		if _, err := os.Lstat(out); err == nil {
			return api.GetResult{}, errExists{out}
		}
	}
	want, err := cid.Decode(res.CID)
	if err != nil {
		return api.GetResult{}, fmt.Errorf("the daemon named no valid CID (%q): %w", res.CID, err)
	}
	var in io.Reader = body
	if progress != nil && res.Size > 0 {
		bar := newBar(progress, res.Size, fromLabel(req.Ref, res.Provider))
		defer func() {
			if !bar.IsFinished() {
				_ = bar.Clear()
			}
		}()
		in = barReader{body, bar}
	}
	h := sha256.New()
	n, err := hashCopy(tmp, h, in, res.Size)
	if err != nil {
		return api.GetResult{}, fmt.Errorf("receive: %w", unwrapPath(err))
	}
	if res.Size > 0 && n != res.Size {
		return api.GetResult{}, fmt.Errorf("the stream ended at %d of %d bytes", n, res.Size)
	}
	if err := checkDigest(want, req.Ref, h.Sum(nil)); err != nil {
		return api.GetResult{}, err
	}
	if err := tmp.Sync(); err != nil {
		return api.GetResult{}, fmt.Errorf("write %s: %w", tmp.Name(), unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return api.GetResult{}, fmt.Errorf("write %s: %w", tmp.Name(), unwrapPath(err))
	}
	if err := place(tmp.Name(), out, req.Force); err != nil {
		return api.GetResult{}, err
	}
	done = true
	os.Remove(tmp.Name()) // after a link; a no-op after a rename
	// The daemon's answer says how the bytes came (and from whom, if the
	// provider changed on the way); what they are, this command checked.
	if fin, ok := body.Result(); ok {
		res.Provider, res.RTTMillis, res.Via = fin.Provider, fin.RTTMillis, fin.Via
		res.Attempts, res.ResumedFrom = fin.Attempts, fin.ResumedFrom
	}
	res.Size, res.Path = n, out
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// place moves tmp to out: a rename with force, else a link that fails if
// out exists.
func place(tmp, out string, force bool) error {
	if force {
		if fi, err := os.Lstat(out); err == nil && fi.IsDir() {
			return fmt.Errorf("%s is a directory: give a file path to -o, or remove it", out)
		}
		if err := os.Rename(tmp, out); err != nil {
			return fmt.Errorf("move into place: %w", err)
		}
		return nil
	}
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, os.ErrExist) {
			return errExists{out}
		}
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

// checkDigest checks a sha2-256 digest against the CID the daemon named,
// and against ref when ref is a CID.
func checkDigest(want cid.Cid, ref string, digest []byte) error {
	if asked, err := cid.Decode(ref); err == nil && !asked.Equals(want) {
		return fmt.Errorf("the daemon sent %s for %s", want, asked)
	}
	d, err := mh.Decode(want.Hash())
	if err != nil || d.Code != mh.SHA2_256 {
		return fmt.Errorf("CID %s is not sha2-256", want)
	}
	if !bytes.Equal(d.Digest, digest) {
		return fmt.Errorf("the bytes received do not hash to %s: nothing was written; get it again", want)
	}
	return nil
}

// unwrapPath drops the op and path of an *os.PathError (the caller says
// which path).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
