package node

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/p2pshare/p2pshare/node/api"
)

// maxSniffedSecret is the largest file whose content is checked for a key:
// every key format p2pshare writes is far smaller.
const maxSniffedSecret = 4096

// secretFiles are this node's secrets outside the ones its repo always
// holds: the swarm key and authority key files the daemon was given, each
// with what it is.
func (n *Node) secretFiles() map[string]string {
	out := map[string]string{
		n.repo.Path(repoKeyFile):   "identity key",
		n.repo.Path(RepoTokenFile): "API token",
	}
	for p, what := range n.cfg.SecretFiles {
		out[p] = what
	}
	return out
}

// refuseSecret returns an error if the open file f, opened from path, is
// one of this node's secrets: a secret file (the same file, whatever the
// path or link that reaches it), any file inside the repo, or a file that
// holds a key (a libp2p private key, an authority key, a swarm key).
func (n *Node) refuseSecret(path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return nil // the caller's own Stat reports it
	}
	refuse := func(what string) error {
		return api.Errorf(api.ErrSecret, "%s is this node's secret (%s): refusing to share it", path, what)
	}
	for p, what := range n.secretFiles() {
		if si, err := os.Stat(p); err == nil && os.SameFile(fi, si) {
			return refuse(what)
		}
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		if repo, err := filepath.EvalSymlinks(n.repo.Dir); err == nil && strings.HasPrefix(real, repo+string(filepath.Separator)) {
			return refuse("a file of its repo " + n.repo.Dir)
		}
	}
	if fi.Size() > maxSniffedSecret || !fi.Mode().IsRegular() {
		return nil
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil
	}
	if what := sniffKey(b); what != "" {
		return refuse(what)
	}
	return nil
}

// sniffKey says which kind of key b holds, or "".
func sniffKey(b []byte) string {
	t := bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(t, []byte("/key/swarm/")):
		return "a swarm key"
	case isPrivateKey(b) || isPrivateKey(t):
		// b as it is first: a binary key may begin or end with a byte
		// that TrimSpace takes for white space.
		return "a private key"
	}
	if raw, err := base64.StdEncoding.DecodeString(string(t)); err == nil && isPrivateKey(raw) {
		return "a private key, like the network authority's"
	}
	return ""
}

func isPrivateKey(b []byte) bool {
	_, err := crypto.UnmarshalPrivateKey(b)
	return err == nil && len(b) > 0
}
