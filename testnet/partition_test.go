package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// (d) A network partition on real daemons: six nodes in their own network
// namespaces, nodes 1-3 on switch A, 4-6 on switch B, the switches joined
// by one cable. The cable is pulled (nobody is told, nothing is killed);
// each side declares the other dead, keeps serving what it holds and takes
// new shares and KV writes. The cable is plugged back: without any manual
// join the sides merge, and nothing shared or written on either side, before
// or during the cut, is lost.
func TestE2EPartition(t *testing.T) {
	sides := []string{"A", "A", "A", "B", "B", "B"}
	lab := newNetLab(t, sides)
	// A cut long enough for the kernels to give up on the connections that
	// crossed it, so that the merge cannot ride on connections that survived
	// the cut: with 4 retransmissions (about 6 s at the 200 ms minimum RTO)
	// instead of the default 15 (a quarter of an hour), a connection is
	// dropped some 6 s after it first has data to send; an idle one waits
	// for the node's next ping (every 15 s).
	lab.Sysctl("net.ipv4.tcp_retries2", "4")

	nw := New(bin, t.TempDir())
	nw.Setup = func(d *Daemon) {
		d.Prefix = lab.Exec(d.Index)
		d.Listen = []string{
			fmt.Sprintf("/ip4/%s/tcp/4040", lab.IP(d.Index)),
			fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", lab.IP(d.Index)),
		}
	}
	t.Cleanup(func() {
		nw.Down()
		if t.Failed() {
			for _, d := range nw.Nodes {
				t.Logf("node %d (side %s) log:\n%s", d.Index, lab.Side(d.Index), d.LogTail(80))
			}
		}
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nw.Up(ctx, len(sides)); err != nil {
		t.Fatal(err)
	}
	waitAllAlive(t, nw, 20*time.Second)
	t.Logf("6 daemons up and all alive in %s", time.Since(start).Round(time.Millisecond))

	side := map[string]string{} // peer ID -> side
	for _, d := range nw.Nodes {
		side[d.ID] = lab.Side(d.Index)
	}
	dir := t.TempDir()
	bodies, cids := map[string]string{}, map[string]string{}
	share := func(d *Daemon, name string) shareRepOut {
		t.Helper()
		bodies[name] = fmt.Sprintf("%s, shared on node %d (side %s) at %s\n", name, d.Index, lab.Side(d.Index), time.Now().Format(time.RFC3339Nano))
		s := shareOn(t, d, dir, name, bodies[name])
		cids[name] = s.CID
		return s
	}

	// Before the cut: one file per side, on 2 holders everywhere.
	share(nw.Node(2), "before-a.txt")
	share(nw.Node(5), "before-b.txt")
	took := waitFor(t, 15*time.Second, "2 alive holders of each file on every node", func() (bool, string) {
		for _, d := range nw.Nodes {
			for _, name := range []string{"before-a.txt", "before-b.txt"} {
				if hs, state := liveHolders(d, name); len(hs) != 2 {
					return false, fmt.Sprintf("node %d, %s: %s", d.Index, name, state)
				}
			}
		}
		return true, ""
	})
	t.Logf("both files on 2 holders in every catalog after %s", took)

	// The cut.
	lab.Cut()
	cutAt := time.Now()
	// Each node's watchers across the cut find it silent, and a member
	// declared dead makes way on the ring for the next one across, so each
	// side finds the other dead in a few rounds of probes and suspicions
	// (about 7 s). The limit leaves a loaded machine room: how fast a death
	// is seen is measured by bench members, not here.
	took = waitFor(t, 15*time.Second, "each side sees the other dead and its own alive", func() (bool, string) {
		return sidesSee(nw, side, func(a, b string) string {
			if a == b {
				return "alive"
			}
			return "dead"
		})
	})
	t.Logf("cut: each side saw every node of the other dead after %s", took)
	waitFor(t, 45*time.Second, "no connection left across the cut", func() (bool, string) {
		return noCrossConns(nw, side)
	})
	t.Logf("cut: the last connection across it dropped %s after the cut", time.Since(cutAt).Round(time.Millisecond))

	// Each side serves what it holds, and takes new shares and writes. The
	// getter is a node of the side that holds no copy, so the bytes cross
	// the side's switch.
	getOn := func(sd, name string) {
		t.Helper()
		var d *Daemon
		for _, c := range nw.Nodes {
			if lab.Side(c.Index) == sd && (d == nil || !holds(c, cids[name])) {
				d = c
			}
		}
		var g getOut
		out := filepath.Join(dir, fmt.Sprintf("got-%d-%s", d.Index, name))
		if err := d.JSON(&g, "get", name, "-o", out, "--json"); err != nil {
			t.Fatalf("node %d (side %s): %v", d.Index, lab.Side(d.Index), err)
		}
		if b, _ := os.ReadFile(out); string(b) != bodies[name] {
			t.Fatalf("node %d: %s: bytes differ", d.Index, name)
		}
		if side[g.Provider] != sd {
			t.Fatalf("node %d (side %s): %s served by %s from side %q", d.Index, sd, name, g.Provider, side[g.Provider])
		}
	}
	cutShares := time.Now()
	during := map[string]*Daemon{"during-a.txt": nw.Node(1), "during-b.txt": nw.Node(4)}
	for name, d := range during {
		s := share(d, name)
		if s.Error != "" || len(s.Replicas) != 1 || side[s.Replicas[0]] != lab.Side(d.Index) {
			r := d.Run("members", "--json")
			t.Fatalf("share of %s on node %d during the cut: replicas %v (%s), want one on its own side; members:\n%s", name, d.Index, s.Replicas, s.Error, r.Stdout)
		}
	}
	t.Logf("cut: 2 shares, each replicated on its own side, in %s", time.Since(cutShares).Round(time.Millisecond))
	cutGets := time.Now()
	getOn("A", "before-a.txt")
	getOn("A", "during-a.txt")
	getOn("B", "before-b.txt")
	getOn("B", "during-b.txt")
	t.Logf("cut: 4 gets served on their own side in %s", time.Since(cutGets).Round(time.Millisecond))

	kvPut := func(d *Daemon, key, value string) {
		t.Helper()
		if r := d.Run("kv", "put", key, value); r.Code != 0 {
			t.Fatalf("node %d: kv put %s: %s", d.Index, key, r.Stderr)
		}
	}
	cutPuts := time.Now()
	kvPut(nw.Node(1), "cut/a", "written on A")
	kvPut(nw.Node(4), "cut/b", "written on B")
	kvPut(nw.Node(2), "cut/both", "A's value")
	kvPut(nw.Node(5), "cut/both", "B's value") // the later write: it wins after the merge
	t.Logf("cut: 4 kv puts in %s", time.Since(cutPuts).Round(time.Millisecond))
	for _, d := range nw.Nodes {
		own := "cut/" + strings.ToLower(lab.Side(d.Index))
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d reads %s during the cut", d.Index, own), func() (bool, string) {
			e, errLine := kvGet(d, own)
			return e.Value == "written on "+lab.Side(d.Index), fmt.Sprintf("%+v %s", e, errLine)
		})
	}
	// The partition is real: a side does not see the other's write.
	if e, _ := kvGet(nw.Node(6), "cut/a"); e.Value != "" {
		t.Fatalf("node 6 (side B) reads side A's write during the cut: %+v", e)
	}

	// The cable goes back in: the sides merge on their own, through a dead
	// member's re-dial (every 5 s) and the table exchange that follows,
	// well before a manual join would.
	lab.Heal()
	healAt := time.Now()
	took = waitFor(t, 15*time.Second, "every node sees every other alive after the cut is healed", func() (bool, string) {
		return sidesSee(nw, side, func(string, string) string { return "alive" })
	})
	t.Logf("healed: every node saw every other alive after %s", took)

	// Nothing is lost: the KV converges everywhere (the later write of
	// cut/both wins on both sides) ...
	wantKV := map[string]string{"cut/a": "written on A", "cut/b": "written on B", "cut/both": "B's value"}
	waitFor(t, 15*time.Second, "the KV converges on every node", func() (bool, string) {
		for _, d := range nw.Nodes {
			for k, v := range wantKV {
				if e, errLine := kvGet(d, k); e.Value != v {
					return false, fmt.Sprintf("node %d: %s = %q %s", d.Index, k, e.Value, errLine)
				}
			}
		}
		return true, ""
	})
	t.Logf("healed: KV converged on every node %s after the heal", time.Since(healAt).Round(time.Millisecond))
	// ... every file has at least R=2 alive holders in every catalog (the
	// repairs each side made during the cut may have added more) ...
	names := []string{"before-a.txt", "before-b.txt", "during-a.txt", "during-b.txt"}
	waitFor(t, 15*time.Second, "every catalog lists the 4 files, each with 2 alive holders", func() (bool, string) {
		for _, d := range nw.Nodes {
			var es []catalogOut
			if err := d.JSON(&es, "ls", "--json"); err != nil {
				return false, err.Error()
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Name)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(names, ",") {
				return false, fmt.Sprintf("node %d lists %v", d.Index, got)
			}
			// Holding records cross by anti-entropy, maybe after names.
			for _, name := range names {
				if hs, state := liveHolders(d, name); len(hs) < 2 {
					return false, fmt.Sprintf("node %d: %s has %d alive holders: %s", d.Index, name, len(hs), state)
				}
			}
		}
		return true, ""
	})
	// ... and every file is retrievable by name from every node.
	for _, d := range nw.Nodes {
		out := filepath.Join(dir, fmt.Sprintf("after-%d", d.Index))
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		var list []getOut
		if err := d.JSON(&list, append(append([]string{"get"}, names...), "-o", out, "--json")...); err != nil {
			t.Fatalf("node %d after the merge: %v", d.Index, err)
		}
		for _, g := range list {
			if g.Error != "" {
				t.Fatalf("node %d after the merge: %s: %s", d.Index, g.Ref, g.Error)
			}
			if b, _ := os.ReadFile(filepath.Join(out, g.Name)); !bytes.Equal(b, []byte(bodies[g.Name])) {
				t.Fatalf("node %d after the merge: %s: bytes differ", d.Index, g.Name)
			}
		}
	}
	t.Logf("healed: all 4 files fetched by name on all 6 nodes, %s after the heal; whole test %s",
		time.Since(healAt).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// sidesSee checks that every node sees every other node j in the state
// want(its side, j's side), and says who does not.
func sidesSee(nw *Network, side map[string]string, want func(own, other string) string) (bool, string) {
	for _, d := range nw.Nodes {
		var ms []memberOut
		if err := d.JSON(&ms, "members", "--json"); err != nil {
			return false, err.Error()
		}
		state := map[string]string{}
		for _, m := range ms {
			state[m.ID] = m.State
		}
		for _, o := range nw.Nodes {
			if o == d {
				continue
			}
			if w := want(side[d.ID], side[o.ID]); state[o.ID] != w {
				return false, fmt.Sprintf("node %d sees node %d %q, want %q", d.Index, o.Index, state[o.ID], w)
			}
		}
	}
	return true, ""
}

// noCrossConns checks that no node has a connection to the other side.
func noCrossConns(nw *Network, side map[string]string) (bool, string) {
	for _, d := range nw.Nodes {
		var ps []struct {
			ID    string   `json:"id"`
			Addrs []string `json:"addrs"`
		}
		if err := d.JSON(&ps, "peers", "--json"); err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if side[p.ID] != side[d.ID] {
				return false, fmt.Sprintf("node %d still connected to %s on side %s over %v", d.Index, p.ID, side[p.ID], p.Addrs)
			}
		}
	}
	return true, ""
}
