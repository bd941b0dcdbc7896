package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// bin is the p2pshare binary built once for the package's tests, in
// binDir, where other builds (another release's) go too.
var bin, binDir string

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "p2pshare-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = Build(binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(binDir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// startNetwork runs n daemons for the test, stopped at cleanup (logs are
// printed if the test failed).
func startNetwork(t *testing.T, n int, args ...string) *Network {
	t.Helper()
	return startNetworkSetup(t, n, nil, args...)
}

// startNetworkSetup is startNetwork with the network's Setup, called on
// each daemon before its first start.
func startNetworkSetup(t *testing.T, n int, setup func(d *Daemon), args ...string) *Network {
	t.Helper()
	nw := New(bin, t.TempDir())
	nw.Args = args
	nw.Setup = setup
	t.Cleanup(func() {
		nw.Down()
		if t.Failed() {
			for _, d := range nw.Nodes {
				t.Logf("node %d log:\n%s", d.Index, d.LogTail(30))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nw.Up(ctx, n); err != nil {
		t.Fatal(err)
	}
	return nw
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type shareOut struct {
	Name     string   `json:"name"`
	CID      string   `json:"cid"`
	Size     int64    `json:"size"`
	Replicas []string `json:"replicas"`
}

type getOut struct {
	Ref      string  `json:"ref"`
	Name     string  `json:"name"`
	CID      string  `json:"cid"`
	Size     int64   `json:"size"`
	Provider string  `json:"provider"`
	Path     string  `json:"path"`
	RTT      float64 `json:"rtt_ms"`
	Error    string  `json:"error"`
}

func TestE2EShareAndGetAcrossDaemons(t *testing.T) {
	nw := startNetwork(t, 4)
	// Every node alive first, so the share makes its replica at once and
	// the holders are node 2 and that replica for the whole test (before
	// the members meet, the repair loop would copy the file later, to a
	// node of its choosing).
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	text := []byte("line one\nline two\nünïcode line three\n")
	src := writeFile(t, dir, "notes.txt", text)

	var sh shareOut
	if err := nw.Node(2).JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	if sh.Name != "notes.txt" || sh.Size != int64(len(text)) || !strings.HasPrefix(sh.CID, "bafkrei") || len(sh.Replicas) != 1 {
		t.Fatalf("share answer %+v, want one replica (R=2)", sh)
	}
	for _, i := range []int{3, 4, 1} {
		out := filepath.Join(dir, fmt.Sprintf("got-%d.txt", i))
		var g getOut
		if err := nw.Node(i).JSON(&g, "get", "notes.txt", "-o", out, "--json"); err != nil {
			t.Fatal(err)
		}
		// Node 2 or its replica (R=2), whichever is closer; the replica
		// serves its own get from its store.
		if g.Provider != nw.Node(2).ID && !slices.Contains(sh.Replicas, g.Provider) {
			t.Fatalf("node %d: served by %s, want node 2 (%s) or its replica %v", i, g.Provider, nw.Node(2).ID, sh.Replicas)
		}
		if g.CID != sh.CID || g.Name != "notes.txt" || g.Path != out || g.Size != sh.Size {
			t.Fatalf("node %d: get answer %+v", i, g)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, text) {
			t.Fatalf("node %d: bytes differ", i)
		}
	}
	// The human answer names the serving peer too.
	r := nw.Node(3).Run("get", sh.CID, "-o", filepath.Join(dir, "by-cid.txt"))
	named := strings.Contains(r.Stdout, nw.Node(2).ID)
	for _, p := range sh.Replicas {
		named = named || strings.Contains(r.Stdout, p)
	}
	if r.Code != 0 || !named {
		t.Fatalf("get by CID: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// Default output: the name, in the current directory.
	r = nw.Node(4).Run("get", "notes.txt")
	if r.Code != 0 {
		t.Fatalf("get into cwd: %s", r.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(nw.Dir, "notes.txt")); !bytes.Equal(b, text) {
		t.Fatal("get without -o did not write NAME in the current directory")
	}
	// -o an existing directory: the file goes inside under its name.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	if r = nw.Node(1).Run("get", "notes.txt", "-o", sub); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(sub, "notes.txt")); err != nil {
		t.Fatal("get -o DIR did not write DIR/NAME")
	}
}

func TestE2EParallelGetOfSeveralNames(t *testing.T) {
	// One copy of each file (R=1), so each name has one provider, its
	// sharer: with R=2 the repair loop may copy a file to the getter
	// itself, or to a closer node.
	nw := startNetwork(t, 3, "--replicas", "1")
	dir := t.TempDir()
	want := map[string][]byte{}
	for i, sharer := range []int{1, 2, 1, 2} {
		name := fmt.Sprintf("part-%d.txt", i)
		b := make([]byte, 50_000+i)
		rand.Read(b)
		want[name] = b
		if r := nw.Node(sharer).Run("share", writeFile(t, dir, name, b)); r.Code != 0 {
			t.Fatal(r.Stderr)
		}
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	var list []getOut
	if err := nw.Node(3).JSON(&list, "get", "part-0.txt", "part-1.txt", "part-2.txt", "part-3.txt", "-o", out, "--json"); err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("want a JSON list of 4, got %d", len(list))
	}
	for i, g := range list {
		wantProv := nw.Node([]int{1, 2, 1, 2}[i]).ID
		if g.Error != "" || g.Provider != wantProv || g.Ref != g.Name {
			t.Fatalf("entry %d: %+v (want provider %s)", i, g, wantProv)
		}
		if b, _ := os.ReadFile(filepath.Join(out, g.Name)); !bytes.Equal(b, want[g.Name]) {
			t.Fatalf("%s: bytes differ", g.Name)
		}
	}
	// One bad name among good ones: the good ones land, exit 1, the list
	// says which failed. Into a new directory: part-0.txt is in out now,
	// and get never replaces a file without --force.
	r := nw.Node(3).Run("get", "part-0.txt", "missing.txt", "-o", t.TempDir(), "--json")
	if r.Code != 1 || !strings.Contains(r.Stdout, `"error"`) || !strings.Contains(r.Stderr, "missing.txt") {
		t.Fatalf("mixed get: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestE2EIDAndPeersJSON(t *testing.T) {
	nw := startNetwork(t, 3)
	var id struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
		API   string   `json:"api"`
	}
	if err := nw.Node(1).JSON(&id, "id", "--json"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.ID, "12D3KooW") || !strings.HasPrefix(id.API, "http://127.0.0.1:") || len(id.Addrs) == 0 {
		t.Fatalf("id %+v", id)
	}
	for _, a := range id.Addrs {
		if !strings.HasSuffix(a, "/p2p/"+id.ID) {
			t.Fatalf("address %s does not end in /p2p/ID", a)
		}
	}
	var peers []struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
		RTT   float64  `json:"rtt_ms"`
	}
	// Each with a measured RTT and an address (a ping that is slow to
	// answer leaves the RTT unmeasured until the next call).
	waitFor(t, 10*time.Second, "node 1 sees 2 peers, each with an RTT and an address", func() (bool, string) {
		if err := nw.Node(1).JSON(&peers, "peers", "--json"); err != nil {
			t.Fatal(err)
		}
		ok := len(peers) == 2
		for _, p := range peers {
			ok = ok && p.RTT > 0 && len(p.Addrs) > 0
		}
		return ok, fmt.Sprintf("%+v", peers)
	})
}

func checkOneLineError(t *testing.T, r Result, code int, want string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "p2pshare: ") {
		t.Fatalf("want one line 'p2pshare: ...' on stderr, got %q", r.Stderr)
	}
	if !strings.Contains(lines[0], want) {
		t.Fatalf("error %q does not say %q", lines[0], want)
	}
}

func TestE2EUploadAndDownloadOverHTTP(t *testing.T) {
	// One copy (R=1): with two, node 2 may hold the replica and serve itself.
	nw := startNetwork(t, 2, "--replicas", "1")
	// Scripts use the API directly with the token from the repo.
	c1, c2 := apiClient(t, nw.Node(1)), apiClient(t, nw.Node(2))
	body := []byte("uploaded over plain HTTP\n")
	res, err := c1.upload("web.txt", body)
	if err != nil {
		t.Fatal(err)
	}
	got, prov, err := c2.download("web.txt")
	if err != nil || !bytes.Equal(got, body) || prov != nw.Node(1).ID || res.CID == "" {
		t.Fatalf("download: %v, provider %s", err, prov)
	}
	if code := c2.status("GET", "/api/v1/id", ""); code != 200 {
		t.Fatalf("id with token: %d", code)
	}
	if code := c2.status("GET", "/api/v1/id", "wrong"); code != 401 {
		t.Fatalf("id with a wrong token: %d, want 401", code)
	}
}

func TestE2ERestartKeepsIdentityAndServes(t *testing.T) {
	// One copy (R=1), so only the restarted node can serve it.
	nw := startNetwork(t, 3, "--replicas", "1")
	dir := t.TempDir()
	if r := nw.Node(2).Run("share", writeFile(t, dir, "kept.txt", []byte("kept\n"))); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	id := nw.Node(2).ID
	nw.Node(2).Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nw.Node(2).Start(ctx, nw.Node(1).TCPAddr()); err != nil {
		t.Fatal(err)
	}
	if nw.Node(2).ID != id {
		t.Fatalf("peer ID changed across restart: %s -> %s", id, nw.Node(2).ID)
	}
	var g getOut
	if err := nw.Node(3).JSON(&g, "get", "kept.txt", "-o", filepath.Join(dir, "out.txt"), "--json"); err != nil {
		t.Fatal(err)
	}
	if g.Provider != id {
		t.Fatalf("served by %s after restart, want %s", g.Provider, id)
	}
}

func TestE2EGracefulStopOnSIGTERM(t *testing.T) {
	nw := startNetwork(t, 1)
	d := nw.Node(1)
	if err := d.Signal(15); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(15 * time.Second); err != nil {
		t.Fatalf("daemon did not exit cleanly on SIGTERM: %v\n%s", err, d.LogTail(10))
	}
	if _, err := os.Stat(filepath.Join(d.Repo, "api")); !os.IsNotExist(err) {
		t.Fatal("the api file outlived the daemon")
	}
	checkOneLineError(t, d.Run("id"), 1, "no daemon running")
}

// TestE2EGetCutShortLeavesNothing kills the getting daemon (kill -9) in the
// middle of a transfer: the user's directory must hold no temp file, then
// or after the restart, and the get must work again.
func TestE2EGetCutShortLeavesNothing(t *testing.T) {
	// One copy (R=1): the getter must fetch the file, not receive it.
	nw := startNetwork(t, 2, "--replicas", "1")
	server, getter := nw.Node(1), nw.Node(2)
	const size = 256 << 20
	src := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range size / len(chunk) {
		binary.LittleEndian.PutUint64(chunk, uint64(i))
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var sh shareOut
	if err := server.JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	done := make(chan Result, 1)
	go func() { done <- getter.Run("get", "big.bin", "-o", filepath.Join(out, "big.bin")) }()
	// Wait until part of the file has arrived somewhere (the user's
	// directory or the getter's repo), then freeze the server so the
	// transfer cannot end before the kill.
	waitFor(t, 30*time.Second, "part of the file to arrive", func() (bool, string) {
		n := partialBytes(out) + partialBytes(filepath.Join(getter.Repo, "store", "tmp")) + partialBytes(filepath.Join(getter.Repo, "store", "partial"))
		return n > 0 && n < size, fmt.Sprintf("%d bytes", n)
	})
	if err := server.Pause(); err != nil {
		t.Fatal(err)
	}
	defer server.Resume()
	select {
	case r := <-done:
		t.Fatalf("the get ended before it could be cut short (exit %d): make the file bigger", r.Code)
	default:
	}
	getter.Kill()
	<-done
	if err := server.Resume(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("the killed get left %s in the output directory", ents[0].Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := getter.Start(ctx, server.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("after the restart the output directory holds %s", ents[0].Name())
	}
	if n := partialBytes(filepath.Join(getter.Repo, "store", "tmp")); n != 0 {
		t.Fatalf("the restarted daemon keeps %d bytes of the cut get", n)
	}
	var g getOut
	if err := getter.JSON(&g, "get", "big.bin", "-o", filepath.Join(out, "big.bin"), "--json"); err != nil {
		t.Fatal(err)
	}
	if g.CID != sh.CID || g.Size != size {
		t.Fatalf("get after the restart: %+v, want CID %s", g, sh.CID)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 1 {
		t.Fatalf("the output directory holds %d entries, want big.bin alone", len(ents))
	}
}

// partialBytes sums the sizes of the regular files under dir.
func partialBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
