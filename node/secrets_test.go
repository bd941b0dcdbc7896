package node

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/p2pshare/p2pshare/node/api"
)

// TestShareRefusesSecrets: the API's share-by-path never reads this node's
// secrets, whatever path, link or copy reaches them.
func TestShareRefusesSecrets(t *testing.T) {
	outside := t.TempDir()
	swarmKey := filepath.Join(outside, "lab.key")
	if err := os.WriteFile(swarmKey, []byte("/key/swarm/psk/1.0.0/\n/base16/\n"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, func(c *Config) { c.SecretFiles = map[string]string{swarmKey: "swarm key"} })
	repo := n.Repo()
	if _, err := repo.WriteAPI("http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(outside, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(outside, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hard := filepath.Join(outside, "hardlink")
	if err := os.Link(repo.Path(repoKeyFile), hard); err != nil {
		t.Fatal(err)
	}
	keyBytes, _ := os.ReadFile(repo.Path(repoKeyFile))
	auth, _, _ := crypto.GenerateEd25519Key(nil)
	authBytes, _ := crypto.MarshalPrivateKey(auth)

	for _, tc := range []struct {
		name, path, what string
	}{
		{"identity key", repo.Path(repoKeyFile), "(identity key)"},
		{"API token", repo.Path(RepoTokenFile), "(API token)"},
		{"symlink to the identity key", link("notes.txt", repo.Path(repoKeyFile)), "(identity key)"},
		{"symlink to a symlink", link("again.txt", filepath.Join(outside, "notes.txt")), "(identity key)"},
		{"hard link to the identity key", hard, "(identity key)"},
		{"the swarm key given", swarmKey, "(swarm key)"},
		{"a path through the repo", filepath.Join(repo.Dir, "store", "..", repoKeyFile), "(identity key)"},
		{"a file of the repo", repo.Path(repoPeerFile), "a file of its repo"},
		{"a symlink into the repo", link("peer.txt", repo.Path(repoPeerFile)), "a file of its repo"},
		{"a copy of the identity key", write("copy.bin", keyBytes), "a private key"},
		{"an authority key", write("ca.key", []byte(base64.StdEncoding.EncodeToString(authBytes)+"\n")), "authority"},
		{"a copy of a swarm key", write("psk.txt", []byte("/key/swarm/psk/1.0.0/\n/base16/\n00\n")), "a swarm key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.API().Share(context.Background(), api.ShareRequest{Path: tc.path})
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Kind != api.ErrSecret ||
				!strings.HasPrefix(ae.Message, tc.path+" is this node's secret ") || !strings.Contains(ae.Message, tc.what) ||
				!strings.HasSuffix(ae.Message, ": refusing to share it") {
				t.Fatalf("share %s = %v, want a refusal saying it is a secret %s", tc.path, err, tc.what)
			}
		})
	}
	if len(n.ShareService().Store().List()) != 0 {
		t.Fatal("a secret reached the store")
	}
	ok := write("plain.txt", []byte("an ordinary file\n"))
	if _, err := n.API().Share(context.Background(), api.ShareRequest{Path: ok}); err != nil {
		t.Fatalf("share an ordinary file: %v", err)
	}
}

// A binary private key whose last byte happens to be one TrimSpace takes
// for white space is still a private key.
func TestSniffKeyEndingInWhiteSpace(t *testing.T) {
	for tries := 0; tries < 10000; tries++ {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if last := b[len(b)-1]; last != ' ' && last != '\n' && last != '\t' && last != '\r' && last != '\v' && last != '\f' {
			continue
		}
		if got := sniffKey(b); got != "a private key" {
			t.Fatalf("a key ending in %#x: %q, want a private key", b[len(b)-1], got)
		}
		return
	}
	t.Fatal("no key ending in white space in 10,000 tries")
}
