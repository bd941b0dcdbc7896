package testnet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

type kvOut struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Writer  string `json:"writer"`
	Time    string `json:"time"`
	Expires string `json:"expires"`
}

type catalogOut struct {
	Name      string `json:"name"`
	CID       string `json:"cid"`
	Size      int64  `json:"size"`
	Publisher string `json:"publisher"`
	Holders   []struct {
		Peer string `json:"peer"`
	} `json:"holders"`
}

// waitFor polls cond every 25 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s (last: %s)", what, limit, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kvGet returns what `kv get KEY --json` says on d, or the error line.
func kvGet(d *Daemon, key string) (kvOut, string) {
	var e kvOut
	if err := d.JSON(&e, "kv", "get", key, "--json"); err != nil {
		return kvOut{}, err.Error()
	}
	return e, ""
}

func kvKeys(t *testing.T, d *Daemon) []string {
	t.Helper()
	var es []kvOut
	if err := d.JSON(&es, "kv", "ls", "--json"); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

func TestE2EKVPutGetTTLDeleteAndCatchUp(t *testing.T) {
	nw := startNetwork(t, 5)
	n1, n4 := nw.Node(1), nw.Node(4)

	// A put on node 1 is read on every node, naming node 1 as its writer.
	if r := n1.Run("kv", "put", "motd", "lab closed on Friday"); r.Code != 0 {
		t.Fatalf("kv put: %s", r.Stderr)
	}
	for _, d := range nw.Nodes {
		took := waitFor(t, 10*time.Second, fmt.Sprintf("motd on node %d", d.Index), func() (bool, string) {
			e, errLine := kvGet(d, "motd")
			return e.Value == "lab closed on Friday" && e.Writer == n1.ID, fmt.Sprintf("%+v %s", e, errLine)
		})
		t.Logf("node %d reads motd after %s", d.Index, took)
	}
	// The human form names the writer too.
	if r := nw.Node(3).Run("kv", "get", "motd"); r.Code != 0 || !strings.Contains(r.Stdout, "lab closed on Friday\n") || !strings.Contains(r.Stdout, "written by "+n1.ID) {
		t.Fatalf("kv get (human): exit %d, %q", r.Code, r.Stdout)
	}
	// --raw is the value alone.
	if r := nw.Node(2).Run("kv", "get", "motd", "--raw"); r.Stdout != "lab closed on Friday" {
		t.Fatalf("kv get --raw = %q", r.Stdout)
	}

	// A later write from another node wins everywhere.
	if r := nw.Node(5).Run("kv", "put", "motd", "open again"); r.Code != 0 {
		t.Fatalf("kv put: %s", r.Stderr)
	}
	for _, d := range nw.Nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("new motd on node %d", d.Index), func() (bool, string) {
			e, errLine := kvGet(d, "motd")
			return e.Value == "open again" && e.Writer == nw.Node(5).ID, fmt.Sprintf("%+v %s", e, errLine)
		})
	}

	// A TTL entry is there everywhere, then gone everywhere. The TTL
	// leaves time to see it on every node, one CLI call after another.
	if r := nw.Node(2).Run("kv", "put", "lease", "node-2", "--ttl", "8s"); r.Code != 0 {
		t.Fatalf("kv put --ttl: %s", r.Stderr)
	}
	for _, d := range nw.Nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("lease on node %d", d.Index), func() (bool, string) {
			e, errLine := kvGet(d, "lease")
			return e.Value == "node-2" && e.Expires != "", errLine
		})
	}
	for _, d := range nw.Nodes {
		waitFor(t, 15*time.Second, fmt.Sprintf("lease expired on node %d", d.Index), func() (bool, string) {
			r := d.Run("kv", "get", "lease")
			return r.Code == 1 && strings.Contains(r.Stderr, "no such key"), r.Stdout + r.Stderr
		})
	}

	// Node 4 is killed, writes happen without it, it restarts and holds them
	// all: caught up by anti-entropy, not only by new gossip.
	n4.Kill()
	var want []string
	for i := range 8 {
		k := fmt.Sprintf("missed/%d", i)
		want = append(want, k)
		if r := nw.Node(1+i%3).Run("kv", "put", k, fmt.Sprintf("v%d", i)); r.Code != 0 {
			t.Fatalf("kv put %s: %s", k, r.Stderr)
		}
	}
	if r := n1.Run("kv", "del", "motd"); r.Code != 0 {
		t.Fatalf("kv del: %s", r.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n4.Start(ctx, n1.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	took := waitFor(t, 15*time.Second, "restarted node 4 catches up", func() (bool, string) {
		got := kvKeys(t, n4)
		return strings.Join(got, ",") == strings.Join(want, ","), strings.Join(got, ",")
	})
	t.Logf("restarted node caught up in %s", took)
	if r := n4.Run("kv", "get", "missed/7", "--raw"); r.Stdout != "v7" {
		t.Fatalf("after catch-up: missed/7 = %q (%s)", r.Stdout, r.Stderr)
	}
	if r := n4.Run("kv", "get", "motd"); r.Code != 1 || !strings.Contains(r.Stderr, "no such key") {
		t.Fatalf("deleted key after catch-up: exit %d %q", r.Code, r.Stdout+r.Stderr)
	}
}

func TestE2EKVBadInputChangesNothing(t *testing.T) {
	nw := startNetwork(t, 2)
	n1 := nw.Node(1)
	if r := n1.Run("kv", "put", "keep", "safe"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	big := writeFile(t, t.TempDir(), "big", []byte(strings.Repeat("x", 64<<10+1)))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kv", "put", "", "x"}, 1, "bad key: empty"},
		{[]string{"kv", "put", strings.Repeat("k", 257), "x"}, 1, "257 bytes, the limit is 256"},
		{[]string{"kv", "put", "a\x01b", "x"}, 1, "control character"},
		{[]string{"kv", "put", "keep", "x", "--ttl", "-1s"}, 1, "must be positive"},
		{[]string{"kv", "put", "keep", "x", "--ttl", "soon"}, 1, "bad TTL"},
		{[]string{"kv", "put", "keep", "--file", big}, 1, "65537 bytes, the limit is 65536"},
		{[]string{"kv", "put", "keep", "--file", "/no/such/file"}, 1, "no such file"},
		{[]string{"kv", "put", "keep", "x", "--file", big}, 2, "not both"},
		{[]string{"kv", "get", "nothing-here"}, 1, "no such key"},
		{[]string{"kv", "del", "nothing-here"}, 1, "no such key"},
		{[]string{"kv", "get"}, 2, "one KEY"},
		{[]string{"search", ""}, 2, "non-empty TERM"},
	}
	for _, c := range cases {
		r := n1.Run(c.args...)
		checkOneLineError(t, r, c.code, c.want)
	}
	if r := n1.Run("kv", "get", "keep", "--raw"); r.Stdout != "safe" {
		t.Fatalf("after bad input: keep = %q", r.Stdout)
	}
	if got := kvKeys(t, n1); len(got) != 1 {
		t.Fatalf("after bad input: keys %v, want [keep]", got)
	}
}

func TestE2ECatalogLsAndSearch(t *testing.T) {
	nw := startNetwork(t, 4)
	// Every node alive first, so each share makes its replica at once and
	// no later repair copies a file to a node of its choosing.
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	files := map[int]string{2: "Lab-Notes.txt", 3: "exam-schedule.txt", 4: "README.md"}
	cids := map[string]string{}
	for i, name := range files {
		var s shareOut
		if err := nw.Node(i).JSON(&s, "share", writeFile(t, dir, name, []byte("contents of "+name)), "--json"); err != nil {
			t.Fatal(err)
		}
		cids[name] = s.CID
	}
	names := []string{"Lab-Notes.txt", "README.md", "exam-schedule.txt"}
	for _, d := range nw.Nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("ls on node %d", d.Index), func() (bool, string) {
			var es []catalogOut
			if err := d.JSON(&es, "ls", "--json"); err != nil {
				return false, err.Error()
			}
			var got []string
			for _, e := range es {
				// The publisher and its replica (R=2) hold the file.
				published := false
				for _, h := range e.Holders {
					published = published || h.Peer == e.Publisher
				}
				if e.CID != cids[e.Name] || !published || len(e.Holders) != 2 {
					return false, fmt.Sprintf("%+v", e)
				}
				got = append(got, e.Name)
			}
			return strings.Join(got, ",") == strings.Join(names, ","), strings.Join(got, ",")
		})
	}
	var es []catalogOut
	if err := nw.Node(1).JSON(&es, "search", "NOTES", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "Lab-Notes.txt" || es[0].Publisher != nw.Node(2).ID {
		t.Fatalf("search NOTES: %+v", es)
	}
	if err := nw.Node(1).JSON(&es, "search", ".TXT", "--json"); err != nil || len(es) != 2 {
		t.Fatalf("search .TXT: %+v %v", es, err)
	}
	if err := nw.Node(1).JSON(&es, "search", "zebra", "--json"); err != nil || len(es) != 0 {
		t.Fatalf("search zebra: %+v %v", es, err)
	}
	if r := nw.Node(3).Run("ls"); r.Code != 0 || !strings.Contains(r.Stdout, "exam-schedule.txt") || !strings.Contains(r.Stdout, cids["README.md"]) {
		t.Fatalf("ls (human): %q", r.Stdout)
	}
	// A name found in the catalog is fetched by name, on a node that holds
	// no copy, from one of the holders the catalog lists: the publisher
	// (node 3) or its replica (R=2), whichever is closer.
	if err := nw.Node(1).JSON(&es, "search", "exam-schedule", "--json"); err != nil || len(es) != 1 {
		t.Fatalf("search exam-schedule: %+v %v", es, err)
	}
	holders := map[string]bool{}
	for _, h := range es[0].Holders {
		holders[h.Peer] = true
	}
	if !holders[nw.Node(3).ID] {
		t.Fatalf("the publisher, node 3, is not among the holders %v", es[0].Holders)
	}
	var getter *Daemon
	for _, d := range nw.Nodes {
		if !holders[d.ID] {
			getter = d
			break
		}
	}
	if getter == nil {
		t.Fatalf("every node holds exam-schedule.txt: %v", es[0].Holders)
	}
	var g getOut
	if err := getter.JSON(&g, "get", "exam-schedule.txt", "-o", dir+"/got.txt", "--json"); err != nil {
		t.Fatal(err)
	}
	if !holders[g.Provider] {
		t.Fatalf("node %d was served by %s, which is not among the holders %v", getter.Index, g.Provider, es[0].Holders)
	}
}
