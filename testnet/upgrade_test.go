package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/node"
)

// previousRelease is the commit of the last release: its repos must open
// in the current code, and its daemons must keep serving beside ours while
// a network upgrades one node at a time.
const previousRelease = "98974df412d181ed5ef22d065c8ae5d81f99c326"

// prevBuild is the previous release's binary, built once per test run.
var prevBuild struct {
	once sync.Once
	bin  string
	err  error
}

// previousReleaseBin returns the previous release's p2pshare binary. It
// skips the test when git or the commit is not there (a shallow clone).
func previousReleaseBin(t *testing.T) string {
	t.Helper()
	prevBuild.once.Do(func() { prevBuild.bin, prevBuild.err = BuildRevision(binDir, previousRelease) })
	if errors.Is(prevBuild.err, ErrNoRevision) {
		t.Skipf("cannot build the previous release: %v", prevBuild.err)
	}
	if prevBuild.err != nil {
		t.Fatal(prevBuild.err)
	}
	return prevBuild.bin
}

func TestBuildRevisionMissing(t *testing.T) {
	_, err := BuildRevision(t.TempDir(), strings.Repeat("0", 40))
	if !errors.Is(err, ErrNoRevision) {
		t.Fatalf("BuildRevision of a commit that is not there = %v, want ErrNoRevision", err)
	}
}

// upgradeFile is a file shared during the upgrade test.
type upgradeFile struct {
	name   string
	cid    string
	data   []byte
	sharer *Daemon
	solo   bool // shared by a node keeping one copy (R=1): only the sharer holds it
}

// upgradeKey is a KV entry written during the upgrade test.
type upgradeKey struct {
	key, value string
	writer     *Daemon
}

// upgradeNet is the network of the upgrade test and what was written to
// it so far.
type upgradeNet struct {
	t     *testing.T
	nw    *Network
	old   string // the previous release's binary
	dir   string // for the files shared and fetched
	files []*upgradeFile
	keys  []upgradeKey
	gets  int
}

// release names the release node d runs.
func (u *upgradeNet) release(d *Daemon) string {
	if d.Bin == u.old {
		return "previous release " + previousRelease[:7]
	}
	return "current"
}

func (u *upgradeNet) label(d *Daemon) string {
	return fmt.Sprintf("node %d (%s)", d.Index, u.release(d))
}

// TestE2EUpgradeFromPreviousRelease runs a private network of four daemons
// of the previous release, then upgrades it in place one node at a time
// (a graceful stop, then the current binary on the same repo), as users
// do. After every step the upgraded node keeps its peer ID and repo,
// every file is listed and fetched, verified, on current and previous
// nodes alike (each get naming a holder as its provider), every KV entry
// reads back, and the members of both releases see each other alive.
//
// Nodes 1 and 4 keep one copy of what they share (R=1), so their files can
// come from them alone: every step with both releases running has a get
// served by a current node to a previous one and the other way round.
// Nodes 2 and 3 keep two copies, so replication crosses releases too.
func TestE2EUpgradeFromPreviousRelease(t *testing.T) {
	old := previousReleaseBin(t)
	u := &upgradeNet{t: t, old: old, dir: t.TempDir()}
	key, err := exec.Command(old, "keygen").Output()
	if err != nil {
		t.Fatalf("keygen of the previous release: %v", err)
	}
	u.nw = New(bin, t.TempDir())
	u.nw.Setup = func(d *Daemon) {
		d.Bin, d.CLI = old, old
		if d.Index == 1 || d.Index == 4 {
			d.Args = []string{"--replicas", "1"}
		}
		// A private network whose key is in each repo, where the daemon
		// of either release finds it.
		if err := os.MkdirAll(d.Repo, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Repo, "swarm.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		u.nw.Down()
		if t.Failed() {
			for _, d := range u.nw.Nodes {
				t.Logf("%s log:\n%s", u.label(d), d.LogTail(40))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := u.nw.Up(ctx, 4); err != nil {
		t.Fatal(err)
	}
	waitAllAlive(t, u.nw, 20*time.Second)
	for _, d := range u.nw.Nodes {
		u.share(d, fmt.Sprintf("from-%d.bin", d.Index))
		u.put(d, fmt.Sprintf("key-%d", d.Index))
	}
	u.settle("the previous release's network")
	u.check("the previous release's network")

	for _, d := range u.nw.Nodes {
		step := fmt.Sprintf("after upgrading node %d", d.Index)
		u.upgrade(d)
		// What each release writes now reaches the other (once the
		// upgraded node has heard the members, so its share has
		// somewhere to put its replica).
		waitAllAlive(t, u.nw, 30*time.Second)
		u.share(d, fmt.Sprintf("after-%d-current.bin", d.Index))
		u.put(d, fmt.Sprintf("after-%d-current", d.Index))
		for _, o := range u.nw.Nodes {
			if o.Bin == old {
				u.share(o, fmt.Sprintf("after-%d-previous.bin", d.Index))
				u.put(o, fmt.Sprintf("after-%d-previous", d.Index))
				break
			}
		}
		u.settle(step)
		u.check(step)
	}
	t.Logf("%d verified gets, %d files, %d KV entries", u.gets, len(u.files), len(u.keys))
	u.refusesNewerRepo(u.nw.Node(4))
}

// refusesNewerRepo stops d and checks that, once a later release has
// upgraded its repo, the current daemon refuses it in one line that names
// both versions, and leaves it as it is.
func (u *upgradeNet) refusesNewerRepo(d *Daemon) {
	t := u.t
	t.Helper()
	u.stop(d)
	version := filepath.Join(d.Repo, "version")
	newer := strconv.Itoa(node.RepoVersion+1) + "\n"
	if err := os.WriteFile(version, []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "daemon", "--repo", d.Repo, "--api", "127.0.0.1:0", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	checkOneLineError(t, Result{Stderr: stderr.String(), Code: code}, 1,
		fmt.Sprintf("repo version %d is newer than this p2pshare (version %d): upgrade p2pshare", node.RepoVersion+1, node.RepoVersion))
	if b, _ := os.ReadFile(version); string(b) != newer {
		t.Fatalf("the refused repo's version became %q", b)
	}
}

// share shares a new file of random bytes from d, checking its replicas.
func (u *upgradeNet) share(d *Daemon, name string) {
	t := u.t
	t.Helper()
	data := make([]byte, 64<<10+len(u.files))
	rand.Read(data)
	var sh shareOut
	if err := d.JSON(&sh, "share", writeFile(t, u.dir, name, data), "--json"); err != nil {
		t.Fatalf("%s: %v", u.label(d), err)
	}
	solo := slices.Contains(d.Args, "--replicas")
	// R=2: the share made its one replica at once, on a node of either
	// release.
	if sh.Name != name || (solo && len(sh.Replicas) != 0) || (!solo && len(sh.Replicas) != 1) {
		t.Fatalf("%s: share %s answered %+v", u.label(d), name, sh)
	}
	u.files = append(u.files, &upgradeFile{name: name, cid: sh.CID, data: data, sharer: d, solo: solo})
}

// put writes a KV entry named key from d.
func (u *upgradeNet) put(d *Daemon, key string) {
	u.t.Helper()
	value := "written by " + u.label(d)
	if r := d.Run("kv", "put", key, value); r.Code != 0 {
		u.t.Fatalf("%s: kv put %s: %s", u.label(d), key, r.Stderr)
	}
	u.keys = append(u.keys, upgradeKey{key: key, value: value, writer: d})
}

// upgrade stops d gracefully and starts the current binary on its repo:
// first alone, on a port no peer knows, to check that its repo by itself
// (no peer to catch up from) gives the current p2pshare its identity,
// catalog, KV entries and files; then on its own address, back in the
// network.
func (u *upgradeNet) upgrade(d *Daemon) {
	t := u.t
	t.Helper()
	id, addrs := d.ID, d.Addrs
	var held []*upgradeFile
	for _, f := range u.files {
		if holds(d, f.cid) {
			held = append(held, f)
		}
	}
	if len(held) == 0 {
		t.Fatalf("%s holds none of the files shared", u.label(d))
	}
	version := filepath.Join(d.Repo, "version")
	if _, err := os.Stat(version); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the previous release left %s (%v): it records no repo version", version, err)
	}
	u.stop(d)
	d.Bin, d.CLI = "", ""
	d.Addrs, d.Listen = nil, []string{"/ip4/127.0.0.1/tcp/0"}
	u.start(d, id)
	if b, err := os.ReadFile(version); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(node.RepoVersion) {
		t.Fatalf("node %d: REPO/version holds %q (%v) once upgraded, want %d", d.Index, b, err, node.RepoVersion)
	}
	u.readsAlone(d, held)
	u.stop(d)
	d.Addrs, d.Listen = addrs, nil
	// Bootstrapped to a running node, as a node restarted with its
	// configuration would be.
	var boot []string
	for _, o := range u.nw.Nodes {
		if o != d && o.Running() {
			boot = append(boot, o.TCPAddr())
			break
		}
	}
	u.start(d, id, boot...)
}

// stop stops d with SIGTERM and checks that it exited cleanly.
func (u *upgradeNet) stop(d *Daemon) {
	u.t.Helper()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		u.t.Fatal(err)
	}
	if err := d.Wait(20 * time.Second); err != nil {
		u.t.Fatalf("%s did not stop cleanly on SIGTERM: %v", u.label(d), err)
	}
}

// start starts d and checks that it is still peer id.
func (u *upgradeNet) start(d *Daemon, id string, bootstrap ...string) {
	t := u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx, bootstrap...); err != nil {
		t.Fatalf("%s on the repo of node %d: %v", u.release(d), d.Index, err)
	}
	if d.ID != id {
		t.Fatalf("node %d came back as %s, was %s", d.Index, d.ID, id)
	}
	if b, err := os.ReadFile(filepath.Join(d.Repo, "peer-id")); err != nil || strings.TrimSpace(string(b)) != id {
		t.Fatalf("node %d: REPO/peer-id holds %q (%v), want %s", d.Index, b, err, id)
	}
}

// readsAlone checks, on d running with no peer, that its catalog lists
// every file, its KV store reads every entry, and it serves itself each
// file of held from its store.
func (u *upgradeNet) readsAlone(d *Daemon, held []*upgradeFile) {
	t := u.t
	t.Helper()
	var peers []any
	if err := d.JSON(&peers, "peers", "--json"); err != nil || len(peers) != 0 {
		t.Fatalf("%s, started alone, has peers %v (%v)", u.label(d), peers, err)
	}
	listed, err := u.list(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range u.files {
		if listed[f.name].CID != f.cid {
			t.Fatalf("%s, alone on its repo: ls gives %s as %+v, want CID %s", u.label(d), f.name, listed[f.name], f.cid)
		}
	}
	for _, k := range u.keys {
		if e, msg := kvGet(d, k.key); e.Value != k.value || e.Writer != k.writer.ID {
			t.Fatalf("%s, alone on its repo: kv get %s = %+v %s", u.label(d), k.key, e, msg)
		}
	}
	for _, f := range held {
		if prov := u.get("alone on its repo", d, f); prov != d {
			t.Fatalf("%s, alone on its repo: get %s served by %s", u.label(d), f.name, u.label(prov))
		}
	}
}

// settle waits until every node lists every file and reads every KV
// entry, and every node sees every other alive.
func (u *upgradeNet) settle(step string) {
	t := u.t
	t.Helper()
	waitAllAlive(t, u.nw, 30*time.Second)
	for _, d := range u.nw.Nodes {
		waitFor(t, 20*time.Second, fmt.Sprintf("%s: %s lists every file", step, u.label(d)), func() (bool, string) {
			listed, err := u.list(d)
			if err != nil {
				return false, err.Error()
			}
			for _, f := range u.files {
				c, ok := listed[f.name]
				if !ok || c.CID != f.cid {
					return false, fmt.Sprintf("%s: %+v", f.name, c)
				}
				if !heldBy(c.Holders, f.sharer.ID) {
					return false, fmt.Sprintf("%s: sharer %s not among its holders %+v", f.name, f.sharer.ID, c.Holders)
				}
				if !f.solo && len(c.Holders) < 2 {
					return false, fmt.Sprintf("%s: holders %+v, want 2 (R=2)", f.name, c.Holders)
				}
			}
			return true, ""
		})
		waitFor(t, 20*time.Second, fmt.Sprintf("%s: %s reads every KV entry", step, u.label(d)), func() (bool, string) {
			for _, k := range u.keys {
				e, msg := kvGet(d, k.key)
				if msg != "" {
					return false, msg
				}
				if e.Value != k.value || e.Writer != k.writer.ID {
					return false, fmt.Sprintf("%s = %+v", k.key, e)
				}
			}
			return true, ""
		})
	}
}

// list returns what `ls --json` says on d, by name.
func (u *upgradeNet) list(d *Daemon) (map[string]catalogEntryOut, error) {
	var cs []catalogEntryOut
	if err := d.JSON(&cs, "ls", "--json"); err != nil {
		return nil, err
	}
	out := map[string]catalogEntryOut{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out, nil
}

// check fetches every file on a current and a previous node that do not
// hold it (where there are such), verifying the bytes, the CID and that
// the provider is a holder (the sharer alone for a solo file), and with
// both releases running, that each served the other at least once; then
// that no node reports a running member dead or gone.
func (u *upgradeNet) check(step string) {
	t := u.t
	t.Helper()
	listed, err := u.list(u.nw.Node(1))
	if err != nil {
		t.Fatal(err)
	}
	releases := map[string]bool{}
	for _, d := range u.nw.Nodes {
		releases[u.release(d)] = true
	}
	served := map[string]bool{} // releases that served a get to the other
	for _, f := range u.files {
		getters := map[string]*Daemon{} // one getter per release
		for _, d := range u.nw.Nodes {
			if _, ok := getters[u.release(d)]; !ok && !heldBy(listed[f.name].Holders, d.ID) {
				getters[u.release(d)] = d
			}
		}
		for _, d := range getters {
			prov := u.get(step, d, f)
			if r := u.release(prov); r != u.release(d) {
				served[r] = true
			}
		}
	}
	if len(releases) > 1 && len(served) != len(releases) {
		t.Fatalf("%s: with nodes of %d releases, gets were served across releases only by %v", step, len(releases), served)
	}
	for _, d := range u.nw.Nodes {
		var ms []memberOut
		if err := d.JSON(&ms, "members", "--json"); err != nil {
			t.Fatalf("%s: %s: %v", step, u.label(d), err)
		}
		for _, o := range u.nw.Nodes {
			i := slices.IndexFunc(ms, func(m memberOut) bool { return m.ID == o.ID })
			if i < 0 || ms[i].State == "dead" || ms[i].State == "left" {
				t.Fatalf("%s: %s reports %s, which runs, as %+v", step, u.label(d), u.label(o), ms)
			}
		}
	}
}

// get fetches f on d, checks the answer and the bytes, and returns the
// provider.
func (u *upgradeNet) get(step string, d *Daemon, f *upgradeFile) *Daemon {
	t := u.t
	t.Helper()
	u.gets++
	out := filepath.Join(u.dir, fmt.Sprintf("got-%d", u.gets))
	var g getOut
	if err := d.JSON(&g, "get", f.name, "-o", out, "--json"); err != nil {
		t.Fatalf("%s: %s: get %s (shared by %s): %v", step, u.label(d), f.name, u.label(f.sharer), err)
	}
	if g.CID != f.cid || g.Size != int64(len(f.data)) {
		t.Fatalf("%s: %s: get %s answered %+v, want CID %s", step, u.label(d), f.name, g, f.cid)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, f.data) {
		t.Fatalf("%s: %s: get %s wrote other bytes (%v)", step, u.label(d), f.name, err)
	}
	prov := u.nw.byID(g.Provider)
	switch {
	case prov == nil:
		t.Fatalf("%s: %s: get %s names provider %q, no node of the network", step, u.label(d), f.name, g.Provider)
	case f.solo && prov != f.sharer:
		t.Fatalf("%s: %s: get %s served by %s, want its only holder %s", step, u.label(d), f.name, u.label(prov), u.label(f.sharer))
	}
	listed, err := u.list(d)
	if err != nil {
		t.Fatal(err)
	}
	if !heldBy(listed[f.name].Holders, prov.ID) {
		t.Fatalf("%s: %s: get %s served by %s, not among its holders %+v", step, u.label(d), f.name, u.label(prov), listed[f.name].Holders)
	}
	t.Logf("%s: %s got %s from %s", step, u.label(d), f.name, u.label(prov))
	return prov
}

// heldBy reports whether id is among hs.
func heldBy(hs []holderOut, id string) bool {
	return slices.ContainsFunc(hs, func(h holderOut) bool { return h.Peer == id })
}
