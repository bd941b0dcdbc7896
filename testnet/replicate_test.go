package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

type holderOut struct {
	Peer       string `json:"peer"`
	CustodyFor string `json:"custody_for"`
	State      string `json:"state"`
}

type catalogEntryOut struct {
	Name    string      `json:"name"`
	CID     string      `json:"cid"`
	Holders []holderOut `json:"holders"`
}

// holdersOn returns what d's catalog says holds name.
func holdersOn(d *Daemon, name string) ([]holderOut, string) {
	var es []catalogEntryOut
	if err := d.JSON(&es, "ls", "--json"); err != nil {
		return nil, err.Error()
	}
	for _, e := range es {
		if e.Name == name {
			return e.Holders, fmt.Sprintf("%+v", e.Holders)
		}
	}
	return nil, "no entry for " + name
}

// liveHolders returns the alive holders of name per d, sorted.
func liveHolders(d *Daemon, name string) ([]string, string) {
	hs, state := holdersOn(d, name)
	var out []string
	for _, h := range hs {
		if h.State == "alive" {
			out = append(out, h.Peer)
		}
	}
	sort.Strings(out)
	return out, state
}

// holds reports whether d's store has the file cid on disk.
func holds(d *Daemon, cid string) bool {
	_, err := os.Stat(filepath.Join(d.Repo, "store", "blocks", cid))
	return err == nil
}

func (nw *Network) byID(id string) *Daemon {
	for _, d := range nw.Nodes {
		if d.ID == id {
			return d
		}
	}
	return nil
}

type shareRepOut struct {
	Name     string   `json:"name"`
	CID      string   `json:"cid"`
	Replicas []string `json:"replicas"`
	Error    string   `json:"replica_error"`
}

func shareOn(t *testing.T, d *Daemon, dir, name, body string) shareRepOut {
	t.Helper()
	var s shareRepOut
	if err := d.JSON(&s, "share", writeFile(t, dir, name, []byte(body)), "--json"); err != nil {
		t.Fatal(err)
	}
	return s
}

// (a) R=2: the publisher is killed; a get succeeds from the replica and
// repair brings the file back to 2 alive holders.
func TestE2EReplicaServesAndRepairAfterKill(t *testing.T) {
	nw := startNetwork(t, 5)
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	n2, n5 := nw.Node(2), nw.Node(5)
	s := shareOn(t, n2, dir, "report.txt", "quarterly report\n")
	if len(s.Replicas) != 1 || s.Replicas[0] == n2.ID || s.Error != "" {
		t.Fatalf("share with R=2: replicas %v (%s), want one other node", s.Replicas, s.Error)
	}
	replica := nw.byID(s.Replicas[0])
	if replica == nil || !holds(replica, s.CID) {
		t.Fatalf("replica %s does not hold %s", s.Replicas[0], s.CID)
	}
	getter := n5
	if getter == replica {
		getter = nw.Node(4)
	}
	// The replica's holding reaches the getter's catalog by gossip.
	waitFor(t, 10*time.Second, "the replica in the getter's catalog", func() (bool, string) {
		hs, state := liveHolders(getter, "report.txt")
		return slices.Contains(hs, replica.ID), state
	})
	n2.Kill()
	var g getOut
	if err := getter.JSON(&g, "get", "report.txt", "-o", filepath.Join(dir, "got.txt"), "--json"); err != nil {
		t.Fatal(err)
	}
	// The replica serves, unless its repair (kill -9 is seen in
	// milliseconds) already copied the file to the getter itself.
	if g.Provider != replica.ID && !(g.Provider == getter.ID && holds(getter, s.CID)) {
		t.Fatalf("served by %s, want the replica %s", g.Provider, replica.ID)
	}
	took := waitFor(t, 30*time.Second, "2 alive holders again, without node 2", func() (bool, string) {
		hs, state := liveHolders(nw.Node(1), "report.txt")
		return len(hs) == 2 && !slices.Contains(hs, n2.ID), state
	})
	t.Logf("repaired to 2 alive holders %s after the get", took)
	hs, _ := liveHolders(nw.Node(1), "report.txt")
	for _, id := range hs {
		if d := nw.byID(id); d == nil || !holds(d, s.CID) {
			t.Fatalf("catalog says %s holds %s, its store does not", id, s.CID)
		}
	}
}

// (b) leave: the leaving node's files are on the closest peer before it
// exits; a get is served by a holder; on restart the node holds its files
// and the custodian's extra copy is gone.
func TestE2ELeaveRelocatesAndRejoinGivesBack(t *testing.T) {
	nw := startNetwork(t, 5)
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	n3 := nw.Node(3)
	s := shareOn(t, n3, dir, "thesis.txt", "chapter one\n")
	var res struct {
		Moved []struct {
			CID   string   `json:"cid"`
			To    string   `json:"to"`
			Names []string `json:"names"`
		} `json:"moved"`
	}
	if err := n3.JSON(&res, "leave", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(res.Moved) != 1 || res.Moved[0].CID != s.CID || res.Moved[0].To == n3.ID || res.Moved[0].To == s.Replicas[0] {
		t.Fatalf("leave moved %+v, want %s to a node other than the replica %v", res.Moved, s.CID, s.Replicas)
	}
	custodian := nw.byID(res.Moved[0].To)
	if custodian == nil || !holds(custodian, s.CID) {
		t.Fatalf("custodian %s does not hold %s after leave returned", res.Moved[0].To, s.CID)
	}
	if err := n3.Wait(15 * time.Second); err != nil {
		t.Fatalf("node 3 did not stop after leave: %v", err)
	}
	getter := nw.Node(1)
	for _, d := range nw.Nodes {
		if d != n3 && d != custodian && d.ID != s.Replicas[0] {
			getter = d
			break
		}
	}
	var g getOut
	if err := getter.JSON(&g, "get", "thesis.txt", "-o", filepath.Join(dir, "got.txt"), "--json"); err != nil {
		t.Fatal(err)
	}
	if g.Provider != custodian.ID && g.Provider != s.Replicas[0] {
		t.Fatalf("served by %s, want the custodian %s or the replica %s", g.Provider, custodian.ID, s.Replicas[0])
	}
	// The custodian records its custody in the catalog before it answers
	// the leave; gossip carries the record to the getter soon after.
	waitFor(t, 10*time.Second, "the custody in the getter's catalog", func() (bool, string) {
		hs, state := holdersOn(getter, "thesis.txt")
		for _, h := range hs {
			if h.Peer == custodian.ID && h.CustodyFor == n3.ID {
				return true, state
			}
		}
		return false, state
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n3.Start(ctx, nw.Node(1).TCPAddr()); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 30*time.Second, "custody copy given back and dropped", func() (bool, string) {
		hs, state := liveHolders(getter, "thesis.txt")
		want := []string{n3.ID, s.Replicas[0]}
		sort.Strings(want)
		return strings.Join(hs, ",") == strings.Join(want, ",") && !holds(custodian, s.CID) && holds(n3, s.CID), state
	})
	t.Logf("custodian gave back and dropped its copy %s after the restart", took)
}

// A holder killed and repaired comes back with its copy: the file is on
// R+1 live nodes until the surplus is trimmed. The publisher keeps its
// copy; of the returned holder and the repair's new one, the higher in
// peer ID drops its copy, and the file is on R nodes again, on disk and
// in every catalog.
func TestE2EReturnedHolderSurplusIsTrimmed(t *testing.T) {
	nw := startNetwork(t, 4)
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	pub := nw.Node(1)
	s := shareOn(t, pub, dir, "plan.txt", "the plan, in one copy too many\n")
	if len(s.Replicas) != 1 {
		t.Fatalf("share with R=2: replicas %v (%s)", s.Replicas, s.Error)
	}
	old := nw.byID(s.Replicas[0])
	old.Kill()
	var fresh string
	waitFor(t, 30*time.Second, "a repair copy on another node", func() (bool, string) {
		hs, state := liveHolders(pub, "plan.txt")
		for _, h := range hs {
			if h != pub.ID && h != old.ID {
				fresh = h
			}
		}
		return len(hs) == 2 && fresh != "", state
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := old.Start(ctx, pub.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	if !holds(old, s.CID) {
		t.Fatalf("the returned holder lost its copy of %s", s.CID)
	}
	keep, drop := old, nw.byID(fresh)
	if drop.ID < keep.ID {
		keep, drop = drop, keep
	}
	took := waitFor(t, 60*time.Second, "the surplus copy trimmed", func() (bool, string) {
		var on []string
		for _, d := range nw.Nodes {
			if holds(d, s.CID) {
				on = append(on, d.ID)
			}
		}
		hs, state := liveHolders(nw.Node(3), "plan.txt")
		want := []string{pub.ID, keep.ID}
		sort.Strings(want)
		sort.Strings(on)
		return slices.Equal(on, want) && slices.Equal(hs, want), fmt.Sprintf("on disk %v; catalog %s", on, state)
	})
	t.Logf("surplus trimmed %s after the holder came back: %s dropped its copy", took, drop.ID)
	var g getOut
	if err := nw.Node(4).JSON(&g, "get", "plan.txt", "-o", filepath.Join(dir, "got.txt"), "--json"); err != nil {
		t.Fatal(err)
	}
}

// (c) R=3, 10 nodes, 3 killed at once (never every holder of one file):
// every shared file is still retrievable.
func TestE2EThreeKilledAtOnceR3(t *testing.T) {
	nw := startNetwork(t, 10, "--replicas", "3")
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	holders := map[string][]string{} // name -> holder IDs
	for i, pub := range []int{2, 4, 6, 8} {
		name := fmt.Sprintf("file-%d.txt", i)
		s := shareOn(t, nw.Node(pub), dir, name, fmt.Sprintf("file %d from node %d\n", i, pub))
		if len(s.Replicas) != 2 {
			t.Fatalf("R=3 share: replicas %v (%s)", s.Replicas, s.Error)
		}
		holders[name] = append(s.Replicas, nw.Node(pub).ID)
	}
	// Choose 3 victims among nodes 2..10 that hold as much as possible
	// without taking every holder of one file.
	killed := map[string]bool{}
	var victims []*Daemon
	for _, d := range nw.Nodes[1:] {
		if len(victims) == 3 {
			break
		}
		killed[d.ID] = true
		ok := true
		for _, hs := range holders {
			all := true
			for _, h := range hs {
				all = all && killed[h]
			}
			ok = ok && !all
		}
		if !ok {
			delete(killed, d.ID)
			continue
		}
		victims = append(victims, d)
	}
	for _, v := range victims {
		v.Kill()
	}
	for name := range holders {
		var g getOut
		if err := nw.Node(1).JSON(&g, "get", name, "-o", filepath.Join(dir, "got-"+name), "--json"); err != nil {
			t.Fatalf("after 3 kills: %v", err)
		}
		if killed[g.Provider] {
			t.Fatalf("%s served by a killed node %s", name, g.Provider)
		}
	}
	// And repair brings every file back to 3 alive holders.
	for name := range holders {
		waitFor(t, 60*time.Second, name+" back to 3 alive holders", func() (bool, string) {
			hs, state := liveHolders(nw.Node(1), name)
			return len(hs) == 3, state
		})
	}
}
