package testnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	mh "github.com/multiformats/go-multihash"
	msmux "github.com/multiformats/go-multistream"

	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/share"
)

// TestE2EBadInputSuite throws bad input at a network of real daemons from
// every side it can be reached: the command line (and the daemon's own
// flags), the local HTTP API, and the libp2p wire protocols, spoken by a
// host of this test process. Every case asserts the documented answer; after
// every case the suite checks that nothing was hurt: the daemons still
// serve, every block in their stores still hashes to its CID, the files and
// KV entries written at the start are unchanged, and no bad name reached
// the catalog.
func TestE2EBadInputSuite(t *testing.T) {
	start := time.Now()
	s := newBadSuite(t)
	t.Logf("setup: %s", time.Since(start).Round(time.Millisecond))
	cases := s.cliCases()
	cases = append(cases, s.daemonFlagCases()...)
	cases = append(cases, s.apiCases()...)
	cases = append(cases, s.wireCases()...)
	cases = append(cases, s.folderCases()...)

	perGroup := map[string]int{}
	groupTime := map[string]time.Duration{}
	for _, tc := range cases {
		perGroup[tc.group]++
		t0 := time.Now()
		ok := t.Run(tc.group+"/"+tc.name, func(t *testing.T) {
			tc.run(t)
			s.checkIntact(t)
		})
		groupTime[tc.group] += time.Since(t0)
		if !ok && !s.healthy() {
			t.Fatalf("the network is no longer healthy after %s/%s: stopping", tc.group, tc.name)
		}
	}
	groups := make([]string, 0, len(perGroup))
	for g := range perGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		t.Logf("group %-6s %3d cases in %s", g, perGroup[g], groupTime[g].Round(time.Millisecond))
	}
	t.Logf("%d cases, whole suite %s", len(cases), time.Since(start).Round(time.Millisecond))
}

type badCase struct {
	group, name string
	run         func(t *testing.T)
}

// badSuite is the network under attack and what it held at the start.
type badSuite struct {
	t        *testing.T
	nw       *Network
	n1, n2   *Daemon
	psk      *Daemon // a daemon of its own private network (--swarm-key)
	pskFile  string
	dir      string
	files    map[string][]byte // name -> bytes, shared at the start
	cids     map[string]string // name -> CID
	blocks   map[*Daemon]map[string]bool
	kvBase   map[string]badKV // key -> entry, written at the start
	h        host.Host        // this process's libp2p host, no swarm key
	stallGet chan stallResult
	stallRep chan stallResult
}

// badKV is an entry of kv ls --json, binary values included.
type badKV struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64"`
	Writer      string `json:"writer"`
	Time        string `json:"time"`
	Logical     uint32 `json:"logical"`
	Expires     string `json:"expires"`
}

type stallResult struct {
	b       []byte
	err     error
	elapsed time.Duration
}

// badMaxFileSize is the daemons' --max-file-size.
const badMaxFileSize = 1_000_000

func newBadSuite(t *testing.T) *badSuite {
	s := &badSuite{t: t, dir: t.TempDir(), files: map[string][]byte{}, cids: map[string]string{},
		blocks: map[*Daemon]map[string]bool{}, kvBase: map[string]badKV{}}
	s.nw = startNetwork(t, 2, "--max-file-size", fmt.Sprint(badMaxFileSize))
	s.n1, s.n2 = s.nw.Node(1), s.nw.Node(2)

	// The private network's daemon: a swarm key from the CLI's keygen.
	kr := s.nw.RunCLI("keygen")
	if kr.Code != 0 {
		t.Fatalf("keygen: %s", kr.Stderr)
	}
	s.pskFile = writeFile(t, s.dir, "swarm.key", []byte(kr.Stdout))
	s.psk = startNetwork(t, 1, "--swarm-key", s.pskFile).Node(1)

	// Files shared at the start, one by each node.
	for name, sharer := range map[string]*Daemon{"precious.txt": s.n1, "other.txt": s.n2} {
		b := []byte(strings.Repeat(name+" holds these bytes\n", 200))
		var sh shareOut
		if err := sharer.JSON(&sh, "share", writeFile(t, s.dir, name, b), "--json"); err != nil {
			t.Fatal(err)
		}
		if want := share.ComputeCID(b).String(); sh.CID != want {
			t.Fatalf("share %s: CID %s, want %s", name, sh.CID, want)
		}
		s.files[name], s.cids[name] = b, sh.CID
	}
	// R = 2: wait until both nodes hold both files, so no replication runs
	// while the cases do.
	waitFor(t, 30*time.Second, "both nodes hold both files", func() (bool, string) {
		for _, d := range []*Daemon{s.n1, s.n2} {
			for name, c := range s.cids {
				if _, err := os.Stat(filepath.Join(d.Repo, "store", "blocks", c)); err != nil {
					return false, fmt.Sprintf("node %d lacks %s", d.Index, name)
				}
			}
		}
		return true, ""
	})
	// KV entries written at the start: text, binary, and from both nodes.
	for _, kvp := range []struct {
		d          *Daemon
		key, value string
	}{{s.n1, "motd", "the lab is open\n"}, {s.n2, "config/limits", "max=42"}, {s.n1, "ünïcode key", "välue"}} {
		if r := kvp.d.Run("kv", "put", kvp.key, kvp.value); r.Code != 0 {
			t.Fatalf("kv put %s: %s", kvp.key, r.Stderr)
		}
	}
	a := apiClient(t, s.n2)
	resp, err := a.req("PUT", "/api/v1/kv?key=binary", a.token, bytes.NewReader([]byte{0, 0xff, 0xfe, 1}))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("kv put binary: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, 15*time.Second, "both nodes see the 4 KV entries", func() (bool, string) {
		var l1, l2 []badKV
		if err := s.n1.JSON(&l1, "kv", "ls", "--json"); err != nil {
			return false, err.Error()
		}
		if err := s.n2.JSON(&l2, "kv", "ls", "--json"); err != nil {
			return false, err.Error()
		}
		if len(l1) != 4 || fmt.Sprint(l1) != fmt.Sprint(l2) {
			return false, fmt.Sprintf("%d and %d entries", len(l1), len(l2))
		}
		for _, e := range l1 {
			s.kvBase[e.Key] = e
		}
		return true, ""
	})
	for _, d := range []*Daemon{s.n1, s.n2} {
		s.blocks[d] = map[string]bool{}
		for c := range s.checkStore(t, d) {
			s.blocks[d][c] = true
		}
	}

	s.h = s.newHost(t, nil)
	s.connect(t, s.h, s.n1)
	// Two streams that stall: the daemon must cut them off itself (after
	// its 10 s request timeout); the wire group collects the outcome.
	s.stallGet = s.stall(share.ProtocolID, []byte{1, 36})
	s.stallRep = s.stall(share.ReplicateProtocol, []byte(`{"cid":"bafk`))
	return s
}

// healthy reports whether every daemon still runs.
func (s *badSuite) healthy() bool {
	return s.n1.Running() && s.n2.Running() && s.psk.Running()
}

// checkIntact checks that the network was not hurt.
func (s *badSuite) checkIntact(t *testing.T) {
	t.Helper()
	for _, d := range []*Daemon{s.n1, s.n2, s.psk} {
		if !d.Running() {
			t.Fatalf("node %d is gone:\n%s", d.Index, d.LogTail(20))
		}
		var id struct{ ID string }
		if err := d.JSON(&id, "id", "--json"); err != nil || id.ID != d.ID {
			t.Fatalf("node %d: id: %v (%q)", d.Index, err, id.ID)
		}
	}
	// Each node gets the file the other shared, by name, and the bytes
	// are right.
	for _, g := range []struct {
		d    *Daemon
		name string
	}{{s.n2, "precious.txt"}, {s.n1, "other.txt"}} {
		out := filepath.Join(t.TempDir(), g.name)
		var res getOut
		if err := g.d.JSON(&res, "get", g.name, "-o", out, "--json"); err != nil {
			t.Fatalf("node %d: get %s: %v", g.d.Index, g.name, err)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, s.files[g.name]) || res.CID != s.cids[g.name] {
			t.Fatalf("node %d: get %s: wrong bytes or CID %s", g.d.Index, g.name, res.CID)
		}
	}
	for _, d := range []*Daemon{s.n1, s.n2} {
		have := s.checkStore(t, d)
		for c := range s.blocks[d] {
			if !have[c] {
				t.Fatalf("node %d: block %s is gone from the store", d.Index, c)
			}
		}
		// KV entries written at the start are there, unchanged, and no
		// forged key got in.
		var es []badKV
		if err := d.JSON(&es, "kv", "ls", "--json"); err != nil {
			t.Fatalf("node %d: kv ls: %v", d.Index, err)
		}
		got := map[string]badKV{}
		for _, e := range es {
			got[e.Key] = e
		}
		for k, want := range s.kvBase {
			if got[k] != want {
				t.Fatalf("node %d: kv %q is %+v, was %+v", d.Index, k, got[k], want)
			}
		}
		if len(got) != len(s.kvBase) {
			t.Fatalf("node %d: kv holds %d keys, want the %d written at the start: %v", d.Index, len(got), len(s.kvBase), es)
		}
		// The catalog names only the files shared at the start.
		var cat []catalogOut
		if err := d.JSON(&cat, "ls", "--json"); err != nil {
			t.Fatalf("node %d: ls: %v", d.Index, err)
		}
		for _, e := range cat {
			if s.cids[e.Name] != e.CID {
				t.Fatalf("node %d: the catalog holds %q -> %s, not shared at the start", d.Index, e.Name, e.CID)
			}
		}
		if len(cat) != len(s.files) {
			t.Fatalf("node %d: the catalog holds %d names, want %d", d.Index, len(cat), len(s.files))
		}
	}
}

// checkStore rehashes every block of d's store against its file name (the
// block's CID) and returns the set of CIDs.
func (s *badSuite) checkStore(t *testing.T, d *Daemon) map[string]bool {
	t.Helper()
	dir := filepath.Join(d.Repo, "store", "blocks")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("node %d: %v", d.Index, err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("node %d: %v", d.Index, err)
		}
		if c := share.ComputeCID(b).String(); c != e.Name() {
			t.Fatalf("node %d: block %s hashes to %s", d.Index, e.Name(), c)
		}
		out[e.Name()] = true
	}
	// Nothing is left half-written: bad input leaves no temporary files.
	waitFor(t, 3*time.Second, fmt.Sprintf("node %d: store/tmp empty", d.Index), func() (bool, string) {
		ents, _ := os.ReadDir(filepath.Join(d.Repo, "store", "tmp"))
		return len(ents) == 0, fmt.Sprintf("%d entries", len(ents))
	})
	return out
}

// ---- CLI ----

func (s *badSuite) cliCases() []badCase {
	small := writeFile(s.t, s.dir, "small.txt", []byte("small\n"))
	bigValue := writeFile(s.t, s.dir, "big-value", bytes.Repeat([]byte("v"), 64<<10+1))
	preciousCID := s.cids["precious.txt"]
	digest := sha256.Sum256(s.files["precious.txt"])
	mhash, _ := mh.Encode(digest[:], mh.SHA2_256)
	dagPB := cid.NewCidV1(cid.DagProtobuf, mhash).String()
	sha512, _ := mh.Sum(s.files["precious.txt"], mh.SHA2_512, -1)
	raw512 := cid.NewCidV1(cid.Raw, sha512).String()
	ident, _ := mh.Sum([]byte("inline"), mh.IDENTITY, -1)
	identity := cid.NewCidV1(cid.Raw, ident).String()
	unknownCID := share.ComputeCID([]byte("never shared by anyone")).String()
	ca := s.t.TempDir()
	idKey := filepath.Join(s.n1.Repo, "identity.key")
	keyLink := filepath.Join(s.t.TempDir(), "holiday.jpg")
	if err := os.Symlink(idKey, keyLink); err != nil {
		s.t.Fatal(err)
	}
	big := writeFile(s.t, s.dir, "big.bin", bytes.Repeat([]byte("x"), badMaxFileSize+1))
	noDaemon := s.t.TempDir()
	staleRepo := s.t.TempDir()
	writeFile(s.t, staleRepo, "api", []byte("http://127.0.0.1:1\n"))
	writeFile(s.t, staleRepo, "api.token", []byte("x\n"))
	run := func(args ...string) Result { return s.n1.Run(args...) }
	cli := func(name string, code int, want string, args ...string) badCase {
		return badCase{"cli", name, func(t *testing.T) { checkOneLineError(t, run(args...), code, want) }}
	}
	// Commands whose repo has no daemon to answer them.
	noAnswer := func(name string, args ...string) badCase {
		return badCase{"cli", name, func(t *testing.T) { checkOneLineError(t, s.nw.RunCLI(args...), 1, "no daemon running") }}
	}
	return []badCase{
		noAnswer("repo without a daemon", "--repo", noDaemon, "id"),
		noAnswer("repo with a stale api file", "--repo", staleRepo, "peers"),
		cli("share without FILE", 2, "usage", "share"),
		cli("get without NAME", 2, "usage", "get"),
		cli("share file over --max-file-size", 1, "over the limit", "share", big),
		cli("share name traversal", 1, "invalid name", "share", small, "--name", "../x"),
		cli("share name deep traversal", 1, "not a file name", "share", small, "--name", "../../etc/passwd"),
		cli("share name with an empty component", 1, "empty path component", "share", small, "--name", "a//b"),
		cli("share name with a leading slash", 1, "empty path component", "share", small, "--name", "/etc/passwd"),
		cli("share name with backslash", 1, "path separator", "share", small, "--name", `a\b`),
		cli("share name dotdot", 1, "not a file name", "share", small, "--name", ".."),
		cli("share name dot", 1, "not a file name", "share", small, "--name", "."),
		cli("share name empty", 1, "empty", "share", small, "--name", ""),
		cli("share name control char", 1, "control character", "share", small, "--name", "a\x01b"),
		cli("share name newline", 1, "control character", "share", small, "--name", "a\nb"),
		cli("share name DEL", 1, "control character", "share", small, "--name", "a\x7fb"),
		cli("share name right-to-left override", 1, "holds U+202E", "share", small, "--name", "invoice\u202Efdp.exe"),
		cli("share name zero-width space", 1, "holds U+200B", "share", small, "--name", "pay\u200Bpal.txt"),
		cli("share name byte order mark", 1, "holds U+FEFF", "share", small, "--name", "\uFEFFnotes.txt"),
		cli("share name no-break space", 1, "holds U+00A0", "share", small, "--name", "a\u00A0b"),
		cli("share name private use", 1, "holds U+E000", "share", small, "--name", "a\uE000b"),
		cli("share name line separator", 1, "holds U+2028", "share", small, "--name", "a\u2028b"),
		cli("share file named with an isolate", 1, "holds U+2066", "share", writeFile(s.t, s.dir, "x\u2066y.txt", []byte("isolate\n"))),
		cli("get name with an isolate", 1, "holds U+2066", "get", "a\u2066b"),
		cli("share name 256 bytes", 1, "the limit is 255", "share", small, "--name", strings.Repeat("n", 256)),
		cli("share name 300 multibyte", 1, "the limit is 255", "share", small, "--name", strings.Repeat("é", 150)),
		cli("share name invalid UTF-8", 1, "not valid UTF-8", "share", small, "--name", "bad\xff\xfe.txt"),
		cli("share file named in latin-1", 1, "not valid UTF-8", "share", writeFile(s.t, s.dir, "caf\xe9.txt", []byte("latin-1\n"))),
		cli("share identity key", 1, "share: "+idKey+" is this node's secret (identity key): refusing to share it", "share", idKey),
		cli("share symlink to identity key", 1, "share: "+keyLink+" is this node's secret (identity key): refusing to share it", "share", keyLink),
		cli("share API token", 1, "share: "+filepath.Join(s.n1.Repo, "api.token")+" is this node's secret (API token): refusing to share it", "share", filepath.Join(s.n1.Repo, "api.token")),
		cli("share a file of the repo", 1, "is this node's secret (a file of its repo", "share", filepath.Join(s.n1.Repo, "peer-id")),
		cli("share a swarm key", 1, "is this node's secret (a swarm key)", "share", s.pskFile),
		cli("share missing file", 1, "no such file", "share", filepath.Join(s.dir, "nope.txt")),
		cli("share directory with --name", 2, "takes no --name", "share", s.dir, "--name", "x"),
		cli("share device", 1, "not a regular file", "share", os.DevNull),
		cli("share stdin without name", 2, "needs --name", "share", "-"),
		cli("share two files", 2, "takes one FILE", "share", small, small),
		cli("get name with an empty component", 1, "empty path component", "get", "a//b"),
		cli("get name with a backslash", 1, "path separator", "get", `a\b`),
		cli("get name traversal", 1, "invalid name", "get", "../../etc/passwd"),
		cli("get name control char", 1, "control character", "get", "a\x02b"),
		cli("get name invalid UTF-8", 1, "not valid UTF-8", "get", "bad\xffname"),
		cli("get CID missing a char", 1, "invalid CID", "get", preciousCID[:len(preciousCID)-1]),
		cli("get CID with a bad char", 1, "invalid CID", "get", preciousCID[:20]+"1"+preciousCID[21:]),
		cli("get CID with an extra char", 1, "invalid CID", "get", preciousCID+"a"),
		cli("get CIDv1 dag-pb", 1, "want CIDv1 raw sha2-256", "get", dagPB),
		cli("get CIDv1 raw sha2-512", 1, "want CIDv1 raw sha2-256", "get", raw512),
		cli("get CIDv1 identity hash", 1, "want CIDv1 raw sha2-256", "get", identity),
		cli("get CIDv0", 1, "want CIDv1 raw sha2-256", "get", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
		{"cli", "get unknown name is quick", func(t *testing.T) {
			t0 := time.Now()
			checkOneLineError(t, run("get", "never-shared.txt", "-o", filepath.Join(t.TempDir(), "x")), 1, "no file named")
			if d := time.Since(t0); d > 5*time.Second {
				t.Fatalf("an unknown name took %s to answer", d)
			}
		}},
		{"cli", "get unknown CID is quick", func(t *testing.T) {
			t0 := time.Now()
			checkOneLineError(t, run("get", unknownCID, "-o", filepath.Join(t.TempDir(), "x")), 1, "no provider")
			if d := time.Since(t0); d > 12*time.Second {
				t.Fatalf("an unknown CID took %s to answer", d)
			}
		}},
		cli("get into a missing directory", 1, "output directory", "get", "precious.txt", "-o", filepath.Join(s.dir, "no", "such", "f")),
		cli("get several, -o a file", 1, "existing directory", "get", "precious.txt", "other.txt", "-o", small),
		{"cli", "get onto an existing file", func(t *testing.T) { s.getOntoExisting(t, false) }},
		{"cli", "get several onto an existing file", func(t *testing.T) { s.getOntoExisting(t, true) }},
		cli("kv put empty key", 1, "empty", "kv", "put", "", "v"),
		cli("kv put key with newline", 1, "control character", "kv", "put", "a\nb", "v"),
		cli("kv put key 257 bytes", 1, "the limit is 256", "kv", "put", strings.Repeat("k", 257), "v"),
		cli("kv put key invalid UTF-8", 1, "not valid UTF-8", "kv", "put", "k\xff", "v"),
		cli("kv put value over 64 KiB", 1, "65536", "kv", "put", "big", "--file", bigValue),
		cli("kv put value file missing", 1, "no such file", "kv", "put", "big", "--file", filepath.Join(s.dir, "nope")),
		cli("kv put TTL garbage", 1, "bad TTL", "kv", "put", "k", "v", "--ttl", "soon"),
		cli("kv put TTL negative", 1, "must be positive", "kv", "put", "k", "v", "--ttl", "-5s"),
		cli("kv put TTL zero", 1, "must be positive", "kv", "put", "k", "v", "--ttl", "0s"),
		cli("kv put VALUE and --file", 2, "not both", "kv", "put", "k", "v", "--file", small),
		cli("kv put over a start key with a bad TTL", 1, "bad TTL", "kv", "put", "motd", "changed", "--ttl", "1y"),
		cli("kv get missing key", 1, "no such key", "kv", "get", "never-written"),
		cli("kv del missing key", 1, "no such key", "kv", "del", "never-written"),
		cli("kv get bad key", 1, "control character", "kv", "get", "a\tb"),
		cli("kv del bad key", 1, "empty", "kv", "del", ""),
		cli("kv get two keys", 2, "takes one KEY", "kv", "get", "motd", "config/limits"),
		cli("kv unknown subcommand", 2, "unknown command", "kv", "gte", "motd"),
		cli("ca unknown subcommand", 2, "unknown command", "--repo", s.n1.Repo, "ca", "frobnicate"),
		cli("ca admit bad peer ID", 1, "is not a peer ID", "ca", "--ca", ca, "admit", "12D3KooWnotapeer"),
		cli("ca revoke bad peer ID", 1, "is not a peer ID", "ca", "--ca", ca, "revoke", "bafkreinotapeer"),
		cli("ca admit without an authority", 1, "ca admit", "ca", "--ca", ca, "admit", s.n2.ID),
		cli("unknown command", 2, "unknown command", "frobnicate"),
		cli("unknown flag", 2, "unknown flag", "id", "--frobnicate"),
		cli("id extra argument", 2, "takes no arguments", "id", "extra"),
		cli("leave extra argument", 2, "takes no arguments", "leave", "now"),
		cli("keygen extra argument", 2, "takes no arguments", "keygen", "x"),
	}
}

// getOntoExisting gets other.txt onto a file that exists (alone, or with
// precious.txt into a directory): without --force it fails and keeps the
// file's bytes, with --force it replaces them.
func (s *badSuite) getOntoExisting(t *testing.T, several bool) {
	dir := t.TempDir()
	target := writeFile(t, dir, "other.txt", []byte("mine, not to be lost\n"))
	args := []string{"get", "other.txt", "-o", target}
	if several {
		args = []string{"get", "precious.txt", "other.txt", "-o", dir}
	}
	checkOneLineError(t, s.n1.Run(args...), 1, "get: "+target+" exists: use --force to replace it")
	if b, _ := os.ReadFile(target); string(b) != "mine, not to be lost\n" {
		t.Fatalf("the existing file now holds %q", b)
	}
	if several {
		if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err == nil {
			t.Fatal("a refused get of several still fetched one of them")
		}
	}
	if r := s.n1.Run(append(args, "--force")...); r.Code != 0 {
		t.Fatalf("get --force: %s", r.Stderr)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, s.files["other.txt"]) {
		t.Fatal("get --force did not replace the file")
	}
	ents, _ := os.ReadDir(dir)
	if want := map[bool]int{false: 1, true: 2}[several]; len(ents) != want {
		t.Fatalf("%s holds %d entries, want %d", dir, len(ents), want)
	}
}

// ---- daemon flags ----

// runDaemonFlags starts a daemon with its own fresh repo, loopback only,
// and the flags; it must fail fast (it is killed after 15 s).
func (s *badSuite) runDaemonFlags(args ...string) Result {
	return runDaemonIn(s.nw, filepath.Join(s.t.TempDir(), "repo"), args...)
}

// runDaemonIn starts a daemon of nw's binary on repo, loopback only, with
// the flags; it must fail fast (it is killed after 15 s).
func runDaemonIn(nw *Network, repo string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	full := append([]string{"--repo", repo, "daemon", "--no-mdns"}, args...)
	if !strings.Contains(strings.Join(args, " "), "--listen") {
		full = append(full, "--listen", "/ip4/127.0.0.1/tcp/0")
	}
	cmd := exec.CommandContext(ctx, nw.Bin, full...)
	cmd.Dir = nw.Dir
	cmd.Env = append(os.Environ(), "P2PSHARE_REPO=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
		errb.WriteString("still running after 15 s: the bad flag was accepted")
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

func (s *badSuite) daemonFlagCases() []badCase {
	garbage := writeFile(s.t, s.dir, "garbage", []byte("\x00\x01garbage\nmore garbage\n"))
	authDir := s.t.TempDir()
	if r := s.nw.RunCLI("ca", "--ca", authDir, "init"); r.Code != 0 {
		s.t.Fatalf("ca init: %s", r.Stderr)
	}
	pub := filepath.Join(authDir, "authority.pub")
	key, _, _ := crypto.GenerateEd25519Key(nil)
	stranger, _ := peer.IDFromPrivateKey(key)
	ar := s.nw.RunCLI("ca", "--ca", authDir, "admit", stranger.String())
	if ar.Code != 0 {
		s.t.Fatalf("ca admit: %s", ar.Stderr)
	}
	strangerTicket := writeFile(s.t, s.dir, "stranger-ticket.json", []byte(ar.Stdout))
	fileAsDir := writeFile(s.t, s.dir, "plainfile", []byte("x"))
	d := func(name string, code int, want string, args ...string) badCase {
		return badCase{"daemon", name, func(t *testing.T) { checkOneLineError(t, s.runDaemonFlags(args...), code, want) }}
	}
	// A daemon on a repo it cannot have.
	onRepo := func(name, repo, want string) badCase {
		return badCase{"daemon", name, func(t *testing.T) { checkOneLineError(t, runDaemonIn(s.nw, repo), 1, want) }}
	}
	return []badCase{
		onRepo("second daemon on a repo", s.n1.Repo, "in use by another daemon"),
		onRepo("repo under a file", filepath.Join(fileAsDir, "sub"), "not a directory"),
		d("listen garbage", 1, "listen address", "--listen", "garbage"),
		d("listen bad IP", 1, "listen address", "--listen", "/ip4/999.1.1.1/tcp/1"),
		// These two fail once the node is half built: it must close what
		// it opened and say why, not panic.
		d("listen on a busy port", 1, "address already in use", "--listen", strings.TrimSuffix(s.n1.TCPAddr(), "/p2p/"+s.n1.ID)),
		d("swarm key with QUIC only", 1, "needs a TCP listen address", "--swarm-key", s.pskFile, "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"),
		d("bootstrap without /p2p/ID", 1, "/p2p/PEER_ID", "--bootstrap", "/ip4/127.0.0.1/tcp/4001"),
		d("bootstrap garbage", 1, "bootstrap address", "--bootstrap", "not-an-addr"),
		d("api not loopback", 1, "loopback", "--api", "0.0.0.0:0"),
		d("api garbage", 1, "HOST:PORT", "--api", "garbage"),
		d("swarm key garbage file", 1, "swarm key", "--swarm-key", garbage),
		d("swarm key missing file", 1, "swarm key", "--swarm-key", filepath.Join(s.dir, "nope.key")),
		d("max file size -1", 2, "--max-file-size", "--max-file-size", "-1"),
		d("max file size not a number", 2, "max-file-size", "--max-file-size", "lots"),
		d("replicas 0", 2, "--replicas 0", "--replicas", "0"),
		d("replicas 17", 2, "--replicas 17", "--replicas", "17"),
		d("max peers 0", 1, "MaxPeers", "--max-peers", "0"),
		d("authority garbage file", 1, "not an authority public key", "--authority", garbage),
		d("authority missing file", 1, "authority key", "--authority", filepath.Join(s.dir, "nope.pub")),
		d("authority without a ticket", 1, "no ticket", "--authority", pub),
		d("authority with a garbage ticket", 1, "invalid admission ticket", "--authority", pub, "--ticket", garbage),
		d("authority with another peer's ticket", 1, "own ticket", "--authority", pub, "--ticket", strangerTicket),
		d("ticket without authority", 1, "--ticket needs --authority", "--ticket", garbage),
		d("allow garbage", 1, "not a peer ID", "--allow", "garbage"),
		d("log level loud", 2, "--log-level", "--log-level", "loud"),
		d("log format xml", 2, "--log-format \"xml\": want text or json", "--log-format", "xml"),
		d("negative resume bound", 2, "--max-resume-bytes -1: want 0 (keep none)", "--max-resume-bytes", "-1"),
		d("upload rate without a unit we know", 2, "--max-upload-rate \"10XB/s\": want a number and a unit", "--max-upload-rate", "10XB/s"),
		d("upload rate mb, bits or bytes", 2, "--max-upload-rate \"10mb\"", "--max-upload-rate", "10mb"),
		d("download rate negative", 2, "--max-download-rate \"-1MB/s\"", "--max-download-rate", "-1MB/s"),
		d("download rate below 1KiB/s", 2, "below the least limit", "--max-download-rate", "100B/s"),
		d("announce garbage", 2, "--announce", "--announce", "garbage"),
		d("announce without a port", 2, "--announce", "--announce", "/ip4/203.0.113.7"),
		d("announce with a peer ID", 2, "--announce", "--announce", "/ip4/203.0.113.7/tcp/4040/p2p/"+s.n1.ID),
		d("relay garbage", 2, "--relay", "--relay", "garbage"),
		d("relay without /p2p/ID", 2, "--relay", "--relay", "/ip4/127.0.0.1/tcp/4001"),
		d("relay max data 0", 2, "--relay-max-data", "--relay-max-data", "0"),
		d("relay max duration negative", 2, "--relay-max-duration", "--relay-max-duration", "-1s"),
		d("direct wait an hour", 2, "--direct-wait", "--direct-wait", "1h"),
		d("bootstrap DNS without a name", 1, "bootstrap address", "--bootstrap", "/dns4//tcp/4040/p2p/"+s.n1.ID),
		d("extra argument", 2, "takes no arguments", "now"),
	}
}

// ---- HTTP API ----

// apiAnswer is one answer of the API.
type apiAnswer struct {
	code  int
	ctype string
	body  []byte
}

// call sends one request to d's API; token "-" sends none.
func (s *badSuite) call(t *testing.T, d *Daemon, method, path, token string, body io.Reader, hdr map[string]string) apiAnswer {
	t.Helper()
	a := apiClient(t, d)
	if token == "" {
		token = a.token
	}
	r, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "-" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
		} else {
			r.Header.Set(k, v)
		}
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return apiAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// checkAPIError asserts a JSON {"error": "...", "kind": "..."} answer with
// the status, whose one-line message says want (only a 5xx may lack a
// kind).
func checkAPIError(t *testing.T, a apiAnswer, code int, want string) {
	t.Helper()
	if a.code != code {
		t.Fatalf("status %d, want %d: %s", a.code, code, a.body)
	}
	if !strings.HasPrefix(a.ctype, "application/json") {
		t.Fatalf("Content-Type %q, want JSON: %q", a.ctype, a.body)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, a.body)
	}
	msg, ok := m["error"].(string)
	fields := 1
	if _, has := m["kind"]; has {
		fields = 2
	}
	kind, _ := m["kind"].(string)
	if !ok || len(m) != fields || msg == "" || (code < 500 && kind == "") {
		t.Fatalf(`want {"error": "...", "kind": "..."}, got %s`, a.body)
	}
	if strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Fatalf("error %q does not say %q (in one line)", msg, want)
	}
}

func (s *badSuite) apiCases() []badCase {
	jsonCT := map[string]string{"Content-Type": "application/json"}
	api := func(name, method, path, token string, body string, hdr map[string]string, code int, want string) badCase {
		return badCase{"api", name, func(t *testing.T) {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			checkAPIError(t, s.call(t, s.n1, method, path, token, rd, hdr), code, want)
		}}
	}
	out := filepath.Join(s.dir, "api-out.txt")
	src := filepath.Join(s.dir, "precious.txt")
	huge := `{"ref":"` + strings.Repeat("x", 70<<10) + `","path":"` + out + `"}`
	return []badCase{
		api("no token", "GET", "/api/v1/id", "-", "", nil, 401, "api.token"),
		api("wrong token", "GET", "/api/v1/id", "wrong", "", nil, 401, "api.token"),
		api("empty token", "GET", "/api/v1/id", " ", "", nil, 401, "api.token"),
		api("basic auth", "GET", "/api/v1/id", "-", "", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, "api.token"),
		api("no token on share", "POST", "/api/v1/share?name=x.txt", "-", "bytes", nil, 401, "api.token"),
		api("host evil.example", "GET", "/api/v1/id", "", "", map[string]string{"Host": "evil.example"}, 403, "not a loopback"),
		api("host evil.example with port", "GET", "/api/v1/id", "", "", map[string]string{"Host": "evil.example:80"}, 403, "not a loopback"),
		api("cross-origin", "GET", "/api/v1/id", "", "", map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"),
		api("origin null", "POST", "/api/v1/share?name=x.txt", "", "bytes", map[string]string{"Origin": "null"}, 403, "cross-origin"),
		api("get malformed JSON", "POST", "/api/v1/get", "", `{"ref":`, jsonCT, 400, "bad request body"),
		api("get not an object", "POST", "/api/v1/get", "", `["precious.txt"]`, jsonCT, 400, "bad request body"),
		api("get empty body", "POST", "/api/v1/get", "", "", jsonCT, 400, "bad request body"),
		api("get unknown field", "POST", "/api/v1/get", "", `{"ref":"precious.txt","path":"`+out+`","frob":1}`, jsonCT, 400, "unknown field"),
		api("get trailing garbage", "POST", "/api/v1/get", "", `{"ref":"precious.txt","path":"`+out+`"} {"ref":"other.txt"}`, jsonCT, 400, "after the JSON"),
		api("get body over 64 KiB", "POST", "/api/v1/get", "", huge, jsonCT, 400, "65536"),
		api("share name not UTF-8 in JSON", "POST", "/api/v1/share", "", `{"path":"`+src+`","name":"`+"bad\xff.txt"+`"}`, jsonCT, 400, "not valid UTF-8"),
		api("get ref not UTF-8 in JSON", "POST", "/api/v1/get", "", `{"ref":"`+"bad\xff.txt"+`","path":"`+out+`"}`, jsonCT, 400, "not valid UTF-8"),
		api("get relative path", "POST", "/api/v1/get", "", `{"ref":"precious.txt","path":"rel/out.txt"}`, jsonCT, 400, "not absolute"),
		api("get no ref", "POST", "/api/v1/get", "", `{"path":"`+out+`"}`, jsonCT, 400, "no name or CID"),
		api("get bad name", "POST", "/api/v1/get", "", `{"ref":"../x","path":"`+out+`"}`, jsonCT, 400, "invalid name"),
		api("share relative path", "POST", "/api/v1/share", "", `{"path":"precious.txt"}`, jsonCT, 400, "not absolute"),
		api("share no path", "POST", "/api/v1/share", "", `{"name":"x.txt"}`, jsonCT, 400, "no path"),
		api("share directory", "POST", "/api/v1/share", "", `{"path":"`+s.dir+`"}`, jsonCT, 400, "not a regular file"),
		api("share bad name", "POST", "/api/v1/share", "", `{"path":"`+src+`","name":"../x"}`, jsonCT, 400, "invalid name"),
		api("upload without name", "POST", "/api/v1/share", "", "bytes", nil, 400, "?name=NAME"),
		api("upload bad name", "POST", "/api/v1/share?name=a%2F%2Fb", "", "bytes", nil, 400, "empty path component"),
		api("upload too large", "POST", "/api/v1/share?name=big.txt", "", strings.Repeat("b", badMaxFileSize+1), nil, 413, "limit"),
		api("kv put without key", "PUT", "/api/v1/kv", "", "v", nil, 400, "no key given"),
		api("kv put empty key", "PUT", "/api/v1/kv?key=", "", "v", nil, 400, "empty"),
		api("kv put bad TTL", "PUT", "/api/v1/kv?key=k&ttl=forever", "", "v", nil, 400, "bad TTL"),
		api("kv put value over 64 KiB", "PUT", "/api/v1/kv?key=k", "", strings.Repeat("v", 64<<10+1), nil, 413, "limit"),
		api("kv get missing", "GET", "/api/v1/kv?key=never-written", "", "", nil, 404, "no such key"),
		api("kv del missing", "DELETE", "/api/v1/kv?key=never-written", "", "", nil, 404, "no such key"),
		api("revoke garbage on an open network", "POST", "/api/v1/revoke", "", "garbage", nil, 400, "network authority"),
		api("cat without ref", "GET", "/api/v1/cat", "", "", nil, 400, "no ref"),
		api("cat bad CID", "GET", "/api/v1/cat?ref="+s.cids["precious.txt"][:50], "", "", nil, 400, "invalid CID"),
		api("unknown endpoint", "GET", "/api/v1/frobnicate", "", "", nil, 404, "no such endpoint"),
		api("outside the API", "GET", "/", "", "", nil, 404, "no such endpoint"),
		api("wrong method", "GET", "/api/v1/get", "", "", nil, 405, "method"),
	}
}

// ---- wire protocols ----

// newHost makes a libp2p host of this process, TCP only, with the swarm
// key psk if set.
func (s *badSuite) newHost(t *testing.T, psk pnet.PSK) host.Host {
	opts := []libp2p.Option{libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{})}
	if psk != nil {
		opts = append(opts, libp2p.PrivateNetwork(psk))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func (s *badSuite) connect(t *testing.T, h host.Host, d *Daemon) {
	t.Helper()
	if err := tryConnect(h, d); err != nil {
		t.Fatalf("connect to node %d: %v", d.Index, err)
	}
}

func tryConnect(h host.Host, d *Daemon) error {
	pi, err := peer.AddrInfoFromString(d.TCPAddr())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.Connect(ctx, *pi)
}

// stream opens a stream of proto to n1, every read and write under a
// deadline.
func (s *badSuite) stream(t *testing.T, proto protocol.ID, deadline time.Duration) network.Stream {
	t.Helper()
	if s.h.Network().Connectedness(peerOf(t, s.n1)) != network.Connected {
		s.connect(t, s.h, s.n1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.h.NewStream(ctx, peerOf(t, s.n1), proto)
	if err != nil {
		t.Fatalf("open %s: %v", proto, err)
	}
	_ = st.SetDeadline(time.Now().Add(deadline))
	t.Cleanup(func() { st.Reset() })
	return st
}

func peerOf(t *testing.T, d *Daemon) peer.ID {
	p, err := peer.Decode(d.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// exchange writes req, closes the write side if asked, and reads the
// whole answer (at most 1 MiB).
func exchange(st network.Stream, req []byte, closeWrite bool) ([]byte, error) {
	if len(req) > 0 {
		if _, err := st.Write(req); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
	}
	if closeWrite {
		_ = st.CloseWrite()
	}
	return io.ReadAll(io.LimitReader(st, 1<<20))
}

// isTimeout tells a deadline that ran out (the daemon hung) from a reset.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// stall opens a stream to n1, writes part of a request and then nothing.
func (s *badSuite) stall(proto protocol.ID, partial []byte) chan stallResult {
	ch := make(chan stallResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, _ := peer.Decode(s.n1.ID)
	st, err := s.h.NewStream(ctx, p, proto)
	if err != nil {
		ch <- stallResult{err: err}
		return ch
	}
	t0 := time.Now()
	_ = st.SetDeadline(t0.Add(25 * time.Second))
	go func() {
		defer st.Reset()
		b, err := exchange(st, partial, false)
		ch <- stallResult{b, err, time.Since(t0)}
	}()
	return ch
}

// getWire sends raw bytes on /p2pshare/get/1.0.0 and decodes the answer.
func (s *badSuite) getWire(t *testing.T, req []byte, closeWrite bool) (share.ResponseHeader, []byte) {
	t.Helper()
	st := s.stream(t, share.ProtocolID, 8*time.Second)
	b, err := exchange(st, req, closeWrite)
	if err != nil {
		if isTimeout(err) {
			t.Fatalf("the daemon did not answer within 8 s: %v", err)
		}
		t.Fatalf("read answer: %v", err)
	}
	r := bufio.NewReader(bytes.NewReader(b))
	h, err := share.ReadResponseHeader(r)
	if err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	rest, _ := io.ReadAll(r)
	return h, rest
}

func (s *badSuite) wantStatus(t *testing.T, req []byte, closeWrite bool, status share.Status, want string) {
	t.Helper()
	h, rest := s.getWire(t, req, closeWrite)
	if h.Status != status || !strings.Contains(h.Message, want) || len(rest) != 0 {
		t.Fatalf("answer %v %q (+%d bytes), want %v saying %q", h.Status, h.Message, len(rest), status, want)
	}
}

// replicateWire sends raw bytes on /p2pshare/replicate/1.0.0 and decodes
// the answer line.
func (s *badSuite) replicateWire(t *testing.T, req []byte, deadline time.Duration) share.ReplicateAnswer {
	t.Helper()
	st := s.stream(t, share.ReplicateProtocol, deadline)
	b, err := exchange(st, req, true)
	if err != nil {
		t.Fatalf("read answer: %v (after %q)", err, b)
	}
	var a share.ReplicateAnswer
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 || json.Unmarshal(b, &a) != nil {
		t.Fatalf("answer %q: want one JSON line", b)
	}
	return a
}

func (s *badSuite) wantRefused(t *testing.T, req []byte, want string) {
	t.Helper()
	a := s.replicateWire(t, req, 8*time.Second)
	if a.OK || !strings.Contains(a.Error, want) {
		t.Fatalf("answer %+v, want ok:false saying %q", a, want)
	}
}

// frame is a kv-sync frame: a uvarint length and the bytes.
func frame(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }

// wantReset sends raw bytes on /p2pshare/kv-sync/1.0.0 and expects the
// daemon to reset the stream (not to hang, not to answer).
func (s *badSuite) wantReset(t *testing.T, req []byte) {
	t.Helper()
	st := s.stream(t, kv.SyncProtocol, 8*time.Second)
	b, err := exchange(st, req, true)
	if err == nil {
		t.Fatalf("the stream ended cleanly after %d bytes, want a reset", len(b))
	}
	if isTimeout(err) || !errors.Is(err, network.ErrReset) {
		t.Fatalf("want a reset, got %v", err)
	}
}

// syncRecords runs one anti-entropy exchange with n1 as the initiator: a
// zero digest (so n1 sends what it has), then frames, then the end. It
// returns n1's records and expects the exchange to end cleanly.
func (s *badSuite) syncRecords(t *testing.T, frames [][]byte) []*kv.Record {
	t.Helper()
	st := s.stream(t, kv.SyncProtocol, 8*time.Second)
	if _, err := st.Write(frame(make([]byte, kv.Buckets*sha256.Size))); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(st)
	read := func() []byte {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read frame: %v", err)
		}
		return b
	}
	if d := read(); len(d) != kv.Buckets*sha256.Size {
		t.Fatalf("digest of %d bytes", len(d))
	}
	var recs []*kv.Record
	for {
		b := read()
		if len(b) == 0 {
			break
		}
		rec, err := kv.Unmarshal(b)
		if err != nil {
			t.Fatalf("the daemon sent a bad record: %v", err)
		}
		recs = append(recs, rec)
	}
	var out []byte
	for _, f := range frames {
		out = append(out, frame(f)...)
	}
	out = append(out, 0)
	if _, err := st.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("end of the exchange: %v (%d more bytes)", err, len(rest))
	}
	return recs
}

func (s *badSuite) wireCases() []badCase {
	precious := s.cids["precious.txt"]
	pc, _ := cid.Decode(precious)
	size := uint64(len(s.files["precious.txt"]))
	unknown := share.ComputeCID([]byte("nobody holds this"))
	digest := sha256.Sum256(s.files["precious.txt"])
	mhash, _ := mh.Encode(digest[:], mh.SHA2_256)
	dagPB := cid.NewCidV1(cid.DagProtobuf, mhash)
	req := func(c []byte, off uint64) []byte {
		b := append([]byte{1}, binary.AppendUvarint(nil, uint64(len(c)))...)
		return binary.AppendUvarint(append(b, c...), off)
	}
	overflow := bytes.Repeat([]byte{0xff}, 11)
	get := func(name string, raw []byte, status share.Status, want string) badCase {
		return badCase{"wire", name, func(t *testing.T) { s.wantStatus(t, raw, true, status, want) }}
	}
	rep := func(name, line, want string) badCase {
		return badCase{"wire", name, func(t *testing.T) { s.wantRefused(t, []byte(line), want) }}
	}
	reset := func(name string, raw []byte) badCase {
		return badCase{"wire", name, func(t *testing.T) { s.wantReset(t, raw) }}
	}
	unsupported := func(name string, proto protocol.ID) badCase {
		return badCase{"wire", name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := s.h.NewStream(ctx, peerOf(t, s.n1), proto)
			if err == nil {
				st.Reset()
				t.Fatalf("%s: stream opened, want protocol not supported", proto)
			}
			if !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
				t.Fatalf("%s: %v, want protocol not supported", proto, err)
			}
		}}
	}
	key := s.h.Peerstore().PrivKey(s.h.ID())
	signed := func(r kv.Record) []byte {
		if err := r.Sign(key); err != nil {
			s.t.Fatal(err)
		}
		b, _ := r.Marshal()
		return b
	}
	now := time.Now().UnixNano()
	cases := []badCase{
		get("get HTTP garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), share.StatusBadRequest, "unknown version 71"),
		get("get empty request", nil, share.StatusBadRequest, "read version"),
		get("get version only", []byte{1}, share.StatusBadRequest, "read CID length"),
		get("get unknown version", req(pc.Bytes(), 0)[1:], share.StatusBadRequest, "unknown version"),
		get("get truncated CID", req(pc.Bytes(), 0)[:12], share.StatusBadRequest, "read CID"),
		get("get no offset", req(pc.Bytes(), 0)[:2+len(pc.Bytes())], share.StatusBadRequest, "read offset"),
		get("get zero CID length", []byte{1, 0, 0}, share.StatusBadRequest, "CID length 0"),
		get("get absurd CID length", append([]byte{1}, binary.AppendUvarint(nil, 1<<40)...), share.StatusBadRequest, "CID length"),
		get("get overflowing CID length", append([]byte{1}, overflow...), share.StatusBadRequest, "read CID length"),
		get("get garbage CID bytes", req(bytes.Repeat([]byte{0xab}, 36), 0), share.StatusBadRequest, "invalid CID"),
		get("get dag-pb CID", req(dagPB.Bytes(), 0), share.StatusBadRequest, "invalid CID"),
		get("get absurd offset", req(pc.Bytes(), 1<<63), share.StatusBadRequest, "offset"),
		get("get overflowing offset", append(req(pc.Bytes(), 0)[:2+len(pc.Bytes())], overflow...), share.StatusBadRequest, "read offset"),
		get("get offset past the end", req(pc.Bytes(), size+1), share.StatusBadRequest, "offset past the end"),
		get("get unknown CID", req(unknown.Bytes(), 0), share.StatusNotFound, "not held"),
		{"wire", "get valid request with trailing garbage", func(t *testing.T) {
			h, rest := s.getWire(t, append(req(pc.Bytes(), 10), "garbage"...), true)
			if h.Status != share.StatusOK || h.Size != int64(size) || !bytes.Equal(rest, s.files["precious.txt"][10:]) {
				t.Fatalf("answer %+v with %d bytes, want ok and the file from offset 10", h, len(rest))
			}
		}},
		{"wire", "get request never finished", func(t *testing.T) {
			// Started at setup: version 1, a CID length, then silence.
			r := <-s.stallGet
			if r.err != nil {
				t.Fatalf("after %s: %v, want a bad request answer", r.elapsed, r.err)
			}
			h, err := share.ReadResponseHeader(bufio.NewReader(bytes.NewReader(r.b)))
			if err != nil || h.Status != share.StatusBadRequest || r.elapsed > 15*time.Second {
				t.Fatalf("after %s: %+v %v, want bad request within the request timeout", r.elapsed, h, err)
			}
		}},
		unsupported("get unknown protocol version", "/p2pshare/get/9.9.9"),
		unsupported("replicate unknown protocol version", "/p2pshare/replicate/0.1.0"),
		unsupported("kv-sync unknown protocol version", "/p2pshare/kv-sync/2.0.0"),
		rep("replicate garbage", "garbage\n", "bad request"),
		rep("replicate no newline", `{"cid":"`+precious+`","size":10}`, "bad request"),
		rep("replicate empty object", "{}\n", "bad CID"),
		rep("replicate negative size", `{"cid":"`+unknown.String()+`","size":-1}`+"\n", "size -1 outside"),
		rep("replicate size over the limit", fmt.Sprintf(`{"cid":"%s","size":%d}`+"\n", unknown, badMaxFileSize+1), "outside"),
		rep("replicate bad CID", `{"cid":"bafkreinotacid","size":10}`+"\n", "bad CID"),
		rep("replicate dag-pb CID", `{"cid":"`+dagPB.String()+`","size":10}`+"\n", "want CIDv1 raw sha2-256"),
		rep("replicate bad custody peer", `{"cid":"`+unknown.String()+`","size":10,"custody_for":"garbage"}`+"\n", "bad request"),
		rep("replicate line over 4 KiB", `{"cid":"`+strings.Repeat("b", 5000)+`"}`+"\n", "bad request"),
		rep("replicate wrong types", `{"cid":42,"size":"ten"}`+"\n", "bad request"),
		{"wire", "replicate request never finished", func(t *testing.T) {
			r := <-s.stallRep
			var a share.ReplicateAnswer
			if r.err != nil || json.Unmarshal(r.b, &a) != nil || a.OK || r.elapsed > 15*time.Second {
				t.Fatalf("after %s: %q %v, want ok:false within the request timeout", r.elapsed, r.b, r.err)
			}
		}},
		{"wire", "replicate from a lying provider", func(t *testing.T) {
			// This host claims to hold a file and serves other bytes: n1
			// must verify, refuse the copy and store nothing.
			real := []byte("the real bytes of a file nobody has\n")
			c := share.ComputeCID(real)
			s.h.SetStreamHandler(share.ProtocolID, func(st network.Stream) {
				defer st.Close()
				_, _ = share.ReadRequest(bufio.NewReader(st))
				_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(real))}))
				_, _ = st.Write(bytes.Repeat([]byte("X"), len(real)))
			})
			defer s.h.RemoveStreamHandler(share.ProtocolID)
			line := fmt.Sprintf(`{"cid":"%s","size":%d,"from":"%s"}`+"\n", c, len(real), s.h.ID())
			a := s.replicateWire(t, []byte(line), 20*time.Second)
			if a.OK {
				t.Fatalf("n1 accepted a copy of %s from a provider that sent other bytes", c)
			}
			if _, err := os.Stat(filepath.Join(s.n1.Repo, "store", "blocks", c.String())); err == nil {
				t.Fatalf("n1 stored %s", c)
			}
			t.Logf("refused: %s", a.Error)
		}},
		reset("kv-sync oversize frame header", binary.AppendUvarint(nil, 1<<40)),
		reset("kv-sync overflowing frame header", overflow),
		reset("kv-sync short digest", frame([]byte("short"))),
		reset("kv-sync truncated digest", append(binary.AppendUvarint(nil, kv.Buckets*sha256.Size), make([]byte, 100)...)),
		reset("kv-sync oversize record frame", append(frame(make([]byte, kv.Buckets*sha256.Size)), binary.AppendUvarint(nil, 1<<40)...)),
		{"wire", "kv-sync garbage records are dropped", func(t *testing.T) {
			s.syncRecords(t, [][]byte{[]byte("garbage"), []byte(`{"ns":"kv","key":"motd"}`), bytes.Repeat([]byte{0xff}, 1000)})
		}},
		{"wire", "kv-sync tampered record is dropped", func(t *testing.T) {
			// Replay the daemon's own record of a start key, with a new
			// value and a later time under the old signature.
			var frames [][]byte
			for _, r := range s.syncRecords(t, nil) {
				if r.NS == kv.NSUser && s.kvBase[r.Key].Key != "" {
					r.Value = []byte("tampered")
					r.Time.Wall += int64(time.Second)
					b, _ := r.Marshal()
					frames = append(frames, b)
				}
			}
			if len(frames) != len(s.kvBase) {
				t.Fatalf("found %d of the %d start keys in the exchange", len(frames), len(s.kvBase))
			}
			s.syncRecords(t, frames)
		}},
		{"wire", "kv-sync forged records are dropped", func(t *testing.T) {
			// Signed by this host, but from the future, of an unknown
			// namespace, or a revocation on an open network.
			s.syncRecords(t, [][]byte{
				signed(kv.Record{NS: kv.NSUser, Key: "forged-future", Value: []byte("x"), Time: kv.Timestamp{Wall: now + int64(time.Hour)}}),
				signed(kv.Record{NS: "evil", Key: "forged-ns", Value: []byte("x"), Time: kv.Timestamp{Wall: now}}),
				signed(kv.Record{NS: kv.NSRevoke, Key: s.n2.ID, Value: []byte("{}"), Time: kv.Timestamp{Wall: now}}),
				signed(kv.Record{NS: kv.NSUser, Key: "forged-expired", Value: []byte("x"), Time: kv.Timestamp{Wall: now - int64(time.Hour)}, Expires: now - int64(time.Minute)}),
			})
		}},
	}
	// The private network: only a host with the same swarm key gets in.
	pskFile, err := os.Open(s.pskFile)
	if err != nil {
		s.t.Fatal(err)
	}
	defer pskFile.Close()
	psk, err := pnet.DecodeV1PSK(pskFile)
	if err != nil {
		s.t.Fatal(err)
	}
	refused := func(name string, mk func(t *testing.T) host.Host) badCase {
		return badCase{"wire", name, func(t *testing.T) {
			t0 := time.Now()
			err := tryConnect(mk(t), s.psk)
			if err == nil {
				t.Fatal("connected to the daemon of a private network")
			}
			if d := time.Since(t0); d > 8*time.Second {
				t.Fatalf("refusal took %s", d)
			}
		}}
	}
	other := func(t *testing.T) pnet.PSK {
		r := s.nw.RunCLI("keygen")
		k, err := pnet.DecodeV1PSK(strings.NewReader(r.Stdout))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cases = append(cases,
		refused("swarm key: a host without one is refused", func(t *testing.T) host.Host { return s.newHost(t, nil) }),
		refused("swarm key: a host with another one is refused", func(t *testing.T) host.Host { return s.newHost(t, other(t)) }),
		refused("swarm key: a host with a flipped bit is refused", func(t *testing.T) host.Host {
			k := append(pnet.PSK{}, psk...)
			k[0] ^= 1
			return s.newHost(t, k)
		}),
		badCase{"wire", "swarm key: the right one gets in", func(t *testing.T) {
			if err := tryConnect(s.newHost(t, psk), s.psk); err != nil {
				t.Fatalf("a host with the network's swarm key: %v", err)
			}
		}},
	)
	return cases
}

// ---- a damaged repo ----

// TestE2EDamagedRepo damages a daemon's repo between runs, as a failing
// disk or a careless hand would: a truncated store metadata, a garbled
// catalog, a directory in place of a database, a lost identity key. Each
// time the daemon either starts with nothing lost (every file listed and
// gettable by name, the damaged file kept aside and named in one warning)
// or refuses with one line that says what to do.
func TestE2EDamagedRepo(t *testing.T) {
	nw := startNetwork(t, 1, "--replicas", "1")
	d := nw.Node(1)
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range 3 {
		name := fmt.Sprintf("kept-%d.txt", i)
		files[name] = bytes.Repeat([]byte(name+" must survive\n"), 100*(i+1))
		if r := d.Run("share", writeFile(t, dir, name, files[name])); r.Code != 0 {
			t.Fatalf("share %s: %s", name, r.Stderr)
		}
	}
	restart := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Start(ctx); err != nil {
			t.Fatalf("restart: %v", err)
		}
	}
	for _, tc := range []struct {
		name, file string
		damage     func(p string) error
	}{
		{"store metadata truncated", "store/meta.db", func(p string) error { return os.Truncate(p, 3*4096+100) }},
		{"store metadata cut to a page", "store/meta.db", func(p string) error { return os.Truncate(p, 4096) }},
		{"store metadata garbled", "store/meta.db", func(p string) error { return garbleFile(p, 0, 2*4096) }},
		{"store metadata empty", "store/meta.db", func(p string) error { return os.Truncate(p, 0) }},
		{"catalog truncated", "kv.db", func(p string) error { return os.Truncate(p, 5000) }},
		{"catalog garbled", "kv.db", func(p string) error { return garbleFile(p, 4096, 4096) }},
		{"catalog is a directory", "kv.db", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o700)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.Stop(10 * time.Second)
			p := filepath.Join(d.Repo, tc.file)
			if err := tc.damage(p); err != nil {
				t.Fatal(err)
			}
			restart(t)
			aside, _ := filepath.Glob(p + ".damaged-*")
			if len(aside) == 0 {
				t.Fatalf("no %s.damaged-* kept", tc.file)
			}
			if log, _ := os.ReadFile(d.Log); bytes.Count(log, []byte("damaged database moved aside to "+aside[len(aside)-1])) != 1 {
				t.Fatalf("the log does not name %s once:\n%s", aside[len(aside)-1], d.LogTail(10))
			}
			waitFor(t, 15*time.Second, "the catalog lists every file", func() (bool, string) {
				var cat []catalogOut
				if err := d.JSON(&cat, "ls", "--json"); err != nil {
					return false, err.Error()
				}
				return len(cat) == len(files), fmt.Sprintf("%d names", len(cat))
			})
			for name, want := range files {
				out := filepath.Join(t.TempDir(), name)
				if r := d.Run("get", name, "-o", out); r.Code != 0 {
					t.Fatalf("get %s: %s", name, r.Stderr)
				}
				if b, _ := os.ReadFile(out); !bytes.Equal(b, want) {
					t.Fatalf("get %s: wrong bytes", name)
				}
			}
		})
	}

	t.Run("identity key lost", func(t *testing.T) {
		d.Stop(10 * time.Second)
		old := d.ID
		key := filepath.Join(d.Repo, "identity.key")
		if err := os.Rename(key, key+".bak"); err != nil {
			t.Fatal(err)
		}
		want := "p2pshare: daemon: " + key + " is missing but this repo has been used (peer ID was " + old + "): restore the key from a backup, or start with --new-identity to make a new identity on purpose (tickets and allowlist entries for the old ID will no longer match)"
		r := runDaemonIn(nw, d.Repo)
		checkOneLineError(t, r, 1, want)
		if _, err := os.Stat(key); !os.IsNotExist(err) {
			t.Fatalf("a refused start made a key: %v", err)
		}
		// A garbled key is reported, not replaced.
		if err := os.WriteFile(key, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		checkOneLineError(t, runDaemonIn(nw, d.Repo), 1, key+" is damaged")
		if b, _ := os.ReadFile(key); string(b) != "garbage" {
			t.Fatal("the garbled key was replaced")
		}
		// --new-identity makes a new one on purpose, where none is.
		if err := os.Remove(key); err != nil {
			t.Fatal(err)
		}
		nw.Args = append(nw.Args, "--new-identity")
		d.Addrs = nil // the addresses end in the old peer ID
		restart(t)
		nw.Args = nw.Args[:len(nw.Args)-1]
		if d.ID == old || d.ID == "" {
			t.Fatalf("--new-identity kept peer ID %s", d.ID)
		}
		if id, _ := os.ReadFile(filepath.Join(d.Repo, "peer-id")); strings.TrimSpace(string(id)) != d.ID {
			t.Fatalf("peer-id holds %q, want %s", id, d.ID)
		}
	})
}

// garbleFile overwrites n bytes of p at off with pseudo-random bytes.
func garbleFile(p string, off, n int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(i*131 + 17)
	}
	_, err = f.WriteAt(junk, off)
	return err
}

// folderCases are the bad inputs of folders: share DIR, get DIR/, ls DIR/.
func (s *badSuite) folderCases() []badCase {
	album := filepath.Join(s.t.TempDir(), "album")
	if err := os.MkdirAll(filepath.Join(album, "sub"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	writeFile(s.t, album, "a.txt", []byte("in the album\n"))
	writeFile(s.t, filepath.Join(album, "sub"), "b.txt", []byte("deeper\n"))
	writeFile(s.t, album, "bad\x01name.txt", []byte("a name with a control character\n"))
	if err := os.Symlink(filepath.Join(s.n1.Repo, "identity.key"), filepath.Join(album, "key.jpg")); err != nil {
		s.t.Fatal(err)
	}
	run := func(args ...string) Result { return s.n1.Run(args...) }
	// Shared once here: part of what the network holds from now on, so
	// every case must leave it intact.
	if r := run("share", album); r.Code != 1 {
		s.t.Fatalf("share %s: exit %d\n%s%s", album, r.Code, r.Stdout, r.Stderr)
	}
	for name, b := range map[string]string{"album/a.txt": "in the album\n", "album/sub/b.txt": "deeper\n"} {
		s.files[name] = []byte(b)
		s.cids[name] = share.ComputeCID([]byte(b)).String()
	}
	return []badCase{
		{"folder", "share a folder holding a symlink outside and a bad name", func(t *testing.T) {
			r := run("share", album)
			if r.Code != 1 || !strings.Contains(r.Stdout, "2 shared, 2 skipped under album/") {
				t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			for _, want := range []string{"key.jpg: a symlink to", "outside", "control character", "p2pshare: share " + album + ": 2 of 4 files skipped"} {
				if !strings.Contains(r.Stderr, want) {
					t.Fatalf("stderr does not say %q:\n%s", want, r.Stderr)
				}
			}
			var es []struct {
				Name string `json:"name"`
			}
			if err := s.n1.JSON(&es, "ls", "album/", "--json"); err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 || es[0].Name != "album/a.txt" || es[1].Name != "album/sub/b.txt" {
				t.Fatalf("ls album/: %+v, want album/a.txt and album/sub/b.txt alone", es)
			}
		}},
		{"folder", "get a folder where a name exists as a file", func(t *testing.T) {
			out := t.TempDir()
			writeFile(t, out, "album", []byte("keep me\n"))
			checkOneLineError(t, run("get", "album/", "-o", out), 1, "exists as a file where a directory must be")
			if b, _ := os.ReadFile(filepath.Join(out, "album")); string(b) != "keep me\n" {
				t.Fatal("the file in the way was changed")
			}
		}},
		{"folder", "get a folder where a file would go onto a directory", func(t *testing.T) {
			out := t.TempDir()
			if err := os.MkdirAll(filepath.Join(out, "album", "a.txt"), 0o755); err != nil {
				t.Fatal(err)
			}
			checkOneLineError(t, run("get", "album/", "-o", out), 1, "is a directory where a file must go")
		}},
		{"folder", "get a folder onto existing files", func(t *testing.T) {
			out := t.TempDir()
			writeFile(t, filepath.Join(out), "x", nil)
			os.MkdirAll(filepath.Join(out, "album"), 0o755)
			writeFile(t, filepath.Join(out, "album"), "a.txt", []byte("mine\n"))
			checkOneLineError(t, run("get", "album/", "-o", out), 1, "exists: use --force")
			if b, _ := os.ReadFile(filepath.Join(out, "album", "a.txt")); string(b) != "mine\n" {
				t.Fatal("the existing file was changed")
			}
			if _, err := os.Stat(filepath.Join(out, "album", "sub", "b.txt")); err == nil {
				t.Fatal("the refused get fetched the other names")
			}
		}},
		{"folder", "get into a path that cannot be written", func(t *testing.T) {
			checkOneLineError(t, run("get", "precious.txt", "-o", "/proc/precious.txt", "--stream"), 1, "/proc")
		}},
		{"folder", "get an unknown folder", func(t *testing.T) {
			checkOneLineError(t, run("get", "no-such-album/", "-o", t.TempDir()), 1, "no shared name under no-such-album/")
		}},
		{"folder", "ls a name that is not a folder", func(t *testing.T) {
			checkOneLineError(t, run("ls", "album"), 2, "one folder DIR/")
		}},
	}
}
