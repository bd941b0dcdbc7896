package testnet

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// admRepo is the repo the harness gives daemon i of nw (Network.Add names
// them so); the test prepares it before the daemon's first start and checks
// afterwards that the daemon used it.
func admRepo(nw *Network, i int) string { return filepath.Join(nw.Dir, fmt.Sprintf("node%d", i)) }

// admOfflineID runs `id --offline` on repo, which creates the repo and its
// identity, and returns the peer ID.
func admOfflineID(t *testing.T, nw *Network, repo string) string {
	t.Helper()
	r := nw.RunCLI("--repo", repo, "id", "--offline")
	id := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !strings.HasPrefix(id, "12D3KooW") {
		t.Fatalf("id --offline: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	return id
}

// admTicket has the authority in ca admit id, saves the ticket as
// repo/ticket.json and copies the authority's public key into repo.
func admTicket(t *testing.T, nw *Network, ca, repo, id string) {
	t.Helper()
	r := nw.RunCLI("ca", "admit", id, "--ca", ca, "--expires", "1h")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "{") {
		t.Fatalf("ca admit: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	writeFile(t, repo, "ticket.json", []byte(r.Stdout))
	pub, err := os.ReadFile(filepath.Join(ca, "authority.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, repo, "authority.pub", pub)
}

// admPeers returns the peer IDs d is connected to.
func admPeers(d *Daemon) ([]string, error) {
	var ps []struct {
		ID string `json:"id"`
	}
	if err := d.JSON(&ps, "peers", "--json"); err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// admMembers returns d's members table as peer ID -> state.
func admMembers(d *Daemon) (map[string]string, error) {
	var ms []memberOut
	if err := d.JSON(&ms, "members", "--json"); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.ID] = m.State
	}
	return out, nil
}

// admCatalogHas reports whether d's catalog lists name.
func admCatalogHas(d *Daemon, name string) (bool, string) {
	var es []catalogOut
	if err := d.JSON(&es, "ls", "--json"); err != nil {
		return false, err.Error()
	}
	for _, e := range es {
		if e.Name == name {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%d entries", len(es))
}

// TestE2EAdmission runs a network with an authority through the CLI: three
// daemons admitted by tickets of `ca admit` work together; a daemon without
// a ticket and one with another network's ticket never get in; `ca revoke`
// cuts an admitted daemon off on every node.
func TestE2EAdmission(t *testing.T) {
	start := time.Now()
	nw := New(bin, t.TempDir())
	// One copy per file: what a node holds, it got from a get, not from
	// replication, so a get that fails cannot be served from its own store.
	nw.Args = []string{"--replicas", "1"}
	t.Cleanup(func() {
		nw.Down()
		if t.Failed() {
			for _, d := range nw.Nodes {
				t.Logf("node %d log:\n%s", d.Index, d.LogTail(40))
			}
		}
	})

	// The authority, and another network's.
	ca, otherCA := filepath.Join(nw.Dir, "ca"), filepath.Join(nw.Dir, "other-ca")
	for _, dir := range []string{ca, otherCA} {
		if r := nw.RunCLI("ca", "init", "--ca", dir); r.Code != 0 || !strings.Contains(r.Stdout, "created a network authority") {
			t.Fatalf("ca init: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
		}
	}
	if fi, err := os.Stat(filepath.Join(ca, "authority.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("authority.key: %v %v, want mode 0600", err, fi)
	}
	checkOneLineError(t, nw.RunCLI("ca", "init", "--ca", ca), 1, "already exists")

	// Repos 1-3: admitted. 4: no ticket (an open node). 5: a ticket and
	// authority of another network.
	ids := map[int]string{}
	for i := 1; i <= 5; i++ {
		ids[i] = admOfflineID(t, nw, admRepo(nw, i))
	}
	if again := admOfflineID(t, nw, admRepo(nw, 1)); again != ids[1] {
		t.Fatalf("id --offline changed the identity: %s then %s", ids[1], again)
	}
	for i := 1; i <= 3; i++ {
		admTicket(t, nw, ca, admRepo(nw, i), ids[i])
	}
	admTicket(t, nw, otherCA, admRepo(nw, 5), ids[5])

	// Misconfigured admission: the daemon refuses to start, in one line.
	noTicket := t.TempDir()
	writeFile(t, noTicket, "authority.pub", mustRead(t, filepath.Join(ca, "authority.pub")))
	stolen := t.TempDir()
	writeFile(t, stolen, "authority.pub", mustRead(t, filepath.Join(ca, "authority.pub")))
	writeFile(t, stolen, "ticket.json", mustRead(t, filepath.Join(admRepo(nw, 1), "ticket.json")))
	daemon := []string{"daemon", "--no-mdns", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"}
	checkOneLineError(t, nw.RunCLI(append([]string{"--repo", noTicket}, daemon...)...), 1, "no ticket")
	checkOneLineError(t, nw.RunCLI(append([]string{"--repo", stolen}, daemon...)...), 1, "own ticket")
	checkOneLineError(t, nw.RunCLI("ca", "admit", "not-a-peer", "--ca", ca), 1, "not a peer ID")
	checkOneLineError(t, nw.RunCLI("ca", "admit", ids[1], "--ca", t.TempDir()), 1, "no authority in")
	t.Logf("authority, 5 repos and tickets ready after %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nw.Up(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		d := nw.Node(i)
		if d.Repo != admRepo(nw, i) || d.ID != ids[i] {
			t.Fatalf("node %d runs %s in %s, want %s in %s", i, d.ID, d.Repo, ids[i], admRepo(nw, i))
		}
	}
	n1, n2, n3 := nw.Node(1), nw.Node(2), nw.Node(3)
	for _, d := range []*Daemon{n1, n2, n3} {
		waitAllSee(t, nw, nil, d.ID, "alive", 15*time.Second)
	}
	t.Logf("3 admitted daemons alive on each other after %s", time.Since(start).Round(time.Millisecond))

	// Admitted nodes share and get.
	dir := t.TempDir()
	text := []byte("admitted only\n")
	var sh shareOut
	if err := n2.JSON(&sh, "share", writeFile(t, dir, "notes.txt", text), "--json"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Daemon{n1, n3} {
		out := filepath.Join(dir, fmt.Sprintf("notes-%d.txt", d.Index))
		var g getOut
		if err := d.JSON(&g, "get", "notes.txt", "-o", out, "--json"); err != nil {
			t.Fatalf("node %d: %v", d.Index, err)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, text) || g.Provider != n2.ID {
			t.Fatalf("node %d: got %q from %s", d.Index, b, g.Provider)
		}
	}
	// A file node 3 knows of (its catalog lists it) but has not fetched.
	secret := []byte("not for node 3 once revoked\n")
	var shSecret shareOut
	if err := n1.JSON(&shSecret, "share", writeFile(t, dir, "secret.txt", secret), "--json"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 3 lists secret.txt", func() (bool, string) { return admCatalogHas(n3, "secret.txt") })

	// The outsiders, bootstrapped to node 1.
	n4, err := nw.Add(ctx, n1.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	n5, err := nw.Add(ctx, n1.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if n4.ID != ids[4] || n5.ID != ids[5] {
		t.Fatalf("outsiders run %s and %s, want %s and %s", n4.ID, n5.ID, ids[4], ids[5])
	}
	outsiders := []*Daemon{n4, n5}
	// Node 1 refused both, and says so (node 5 may be the first to hang up,
	// seeing node 1's ticket is not of its network).
	waitFor(t, 10*time.Second, "node 1 logs the refusal of node 4", func() (bool, string) {
		return admLogHas(n1, "refused a peer", n4.ID), ""
	})
	waitFor(t, 10*time.Second, "node 1 and 5 refuse each other", func() (bool, string) {
		return admLogHas(n1, "refused a peer", n5.ID) || admLogHas(n5, "refused a peer", n1.ID), ""
	})
	// For a while, they never show up among the admitted nodes' peers or
	// members, nor do those among theirs.
	watch := time.Now()
	transient := map[string]int{}
	for time.Since(watch) < 4*time.Second {
		for _, d := range []*Daemon{n1, n2, n3} {
			ps, err := admPeers(d)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := admMembers(d)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outsiders {
				if slices.Contains(ps, o.ID) {
					t.Fatalf("node %d has outsider node %d among its peers", d.Index, o.Index)
				}
				if st, ok := ms[o.ID]; ok {
					t.Fatalf("node %d has outsider node %d among its members (%s)", d.Index, o.Index, st)
				}
			}
		}
		for _, o := range outsiders {
			// An outsider's own peers list may show node 1 for the moment
			// between its redial and node 1 hanging up: logged, not failed.
			if ps, err := admPeers(o); err == nil && len(ps) > 0 {
				transient[fmt.Sprintf("node %d saw %v", o.Index, ps)]++
			}
			ms, err := admMembers(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []*Daemon{n1, n2, n3} {
				if st, ok := ms[d.ID]; ok {
					t.Fatalf("outsider node %d has node %d among its members (%s)", o.Index, d.Index, st)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(transient) > 0 {
		t.Logf("outsiders' transient peers: %v (node 1 is %s)", transient, n1.ID)
	}
	// The outsiders cannot get the shared file, by name or by CID.
	for _, o := range outsiders {
		for _, ref := range []string{"notes.txt", sh.CID} {
			t0 := time.Now()
			r := o.Run("get", ref, "-o", filepath.Join(dir, fmt.Sprintf("stolen-%d", o.Index)))
			// Its redials of node 1 may look connected from its side for
			// the moment node 1 takes to hang up: the peer count it
			// searched through is not always 0.
			checkOneLineError(t, r, 1, map[string]string{"notes.txt": "no file named", sh.CID: "no provider"}[ref])
			t.Logf("outsider node %d: get %s failed after %s: %s", o.Index, ref, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("stolen-%d", o.Index))); err == nil {
			t.Fatalf("outsider node %d wrote the file", o.Index)
		}
	}
	t.Logf("outsiders kept out; %s so far", time.Since(start).Round(time.Millisecond))

	// The API wants its token.
	api := apiClient(t, n1)
	resp, err := http.Get(api.base + "/api/v1/id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API call without a token: %d, want 401", resp.StatusCode)
	}
	if code := api.status("GET", "/api/v1/id", ""); code != http.StatusOK {
		t.Fatalf("API call with the token: %d, want 200", code)
	}

	// Revoke node 3 through node 1.
	checkOneLineError(t, n1.Run("ca", "revoke", "not-a-peer", "--ca", ca), 1, "not a peer ID")
	r := n1.Run("ca", "revoke", n3.ID, "--ca", ca)
	if r.Code != 0 || !strings.Contains(r.Stdout, "revoked "+n3.ID) {
		t.Fatalf("ca revoke: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	revoked := time.Now()
	// Another network's revocation is refused.
	checkOneLineError(t, n1.Run("ca", "revoke", n2.ID, "--ca", otherCA), 1, "not signed by this network's authority")
	for _, d := range []*Daemon{n1, n2} {
		took := waitFor(t, 15*time.Second, fmt.Sprintf("node %d drops node 3 from its peers", d.Index), func() (bool, string) {
			ps, err := admPeers(d)
			if err != nil {
				return false, err.Error()
			}
			return !slices.Contains(ps, n3.ID), fmt.Sprint(ps)
		})
		t.Logf("node %d: node 3 gone from peers %s after the revocation (waited %s)", d.Index, (time.Since(revoked)).Round(time.Millisecond), took)
	}
	for _, d := range []*Daemon{n1, n2} {
		waitFor(t, 15*time.Second, fmt.Sprintf("node %d sees node 3 dead", d.Index), func() (bool, string) {
			ms, err := admMembers(d)
			if err != nil {
				return false, err.Error()
			}
			return ms[n3.ID] == "dead", ms[n3.ID]
		})
		t.Logf("node %d: node 3 dead %s after the revocation", d.Index, time.Since(revoked).Round(time.Millisecond))
	}
	if !admLogHas(n2, "peer revoked by the authority", n3.ID) {
		t.Fatal("node 2 did not learn the revocation")
	}
	// Node 3 can no longer get anything: not the file it knows of, not by
	// CID.
	for _, ref := range []string{"secret.txt", shSecret.CID} {
		t0 := time.Now()
		r := n3.Run("get", ref, "-o", filepath.Join(dir, "secret-3.txt"))
		checkOneLineError(t, r, 1, "provider")
		t.Logf("revoked node 3: get %s failed after %s: %s", ref, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-3.txt")); err == nil {
		t.Fatal("revoked node 3 wrote the file")
	}
	// It did not get back in while it tried.
	for _, d := range []*Daemon{n1, n2} {
		ps, _ := admPeers(d)
		ms, _ := admMembers(d)
		if slices.Contains(ps, n3.ID) || ms[n3.ID] != "dead" {
			t.Fatalf("node %d: revoked node 3 back (peer %v, state %s)", d.Index, slices.Contains(ps, n3.ID), ms[n3.ID])
		}
	}
	// Nodes 1 and 2 still work together.
	after := []byte("after the revocation\n")
	if r := n2.Run("share", writeFile(t, dir, "after.txt", after)); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	out := filepath.Join(dir, "after-1.txt")
	if r := n1.Run("get", "after.txt", "-o", out); r.Code != 0 {
		t.Fatalf("node 1 get after the revocation: %s", r.Stderr)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, after) {
		t.Fatal("node 1 got other bytes after the revocation")
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// admLogHas reports whether one line of d's log holds all of words.
func admLogHas(d *Daemon, words ...string) bool {
	b, _ := os.ReadFile(d.Log)
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
