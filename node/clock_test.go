package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/node/api"
)

func TestIncarnationCounter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, repoIncarnationFile)
	// An old repo: no counter; its last incarnation, the start time in
	// nanoseconds, was announced an hour ago by a clock that was right.
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	oldInc := uint64(wall.Add(-time.Hour).UnixNano())
	c := &incarnations{path: path, now: func() time.Time { return wall }}
	first, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	if first <= oldInc {
		t.Fatalf("first incarnation of an upgraded repo %d is not above the old %d", first, oldInc)
	}
	// Every later start (a new process: a new counter on the same file),
	// even with the clock set back a day, is newer.
	prev := first
	for i := range 3 {
		c := &incarnations{path: path, now: func() time.Time { return wall.Add(-24 * time.Hour) }}
		got, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got != prev+1 {
			t.Fatalf("start %d: incarnation %d, want %d", i, got, prev+1)
		}
		prev = got
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.FormatUint(prev, 10) {
		t.Fatalf("counter file holds %q (%v), want %d", b, err, prev)
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("a damaged counter: %v, want an error that says what to do", err)
	}
}

// shifted is a wall clock d ahead of the system's.
func shifted(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

// clockNode starts a node whose clock is skew ahead of the system's.
func clockNode(t *testing.T, skew time.Duration, repo string, bootstrap ...peer.AddrInfo) *Node {
	t.Helper()
	return newTestNode(t, func(c *Config) {
		if repo != "" {
			c.RepoDir = repo
		}
		c.Now = shifted(skew)
		c.KV.SyncInterval = time.Second
	}, bootstrap...)
}

func TestSkewedClocksRefuseWritesAtOnce(t *testing.T) {
	good := clockNode(t, 0, "")
	boot := addrInfo(good)
	good2 := clockNode(t, 0, "", boot)
	ahead := clockNode(t, 10*time.Minute, "", boot)
	behind := clockNode(t, -10*time.Minute, "", boot)
	minute := clockNode(t, 60*time.Second, "", boot)
	all := []*Node{good, good2, ahead, behind, minute}
	ctx := context.Background()

	// Every node measures its offset to the network: the median of five
	// clocks is a good one.
	want := map[*Node]time.Duration{good: 0, good2: 0, ahead: 10 * time.Minute, behind: -10 * time.Minute, minute: time.Minute}
	waitFor(t, 20*time.Second, "every node to measure its offset to the network", func() bool {
		for _, n := range all {
			id, _ := n.API().ID(ctx)
			d := time.Duration(id.OffsetMillis * float64(time.Millisecond))
			if id.OffsetPeers < 4 || (d-want[n]).Abs() > 5*time.Second {
				return false
			}
		}
		return true
	})

	// A write acknowledged by a good node.
	acked, err := good.API().KVPut(ctx, api.KVPutRequest{Key: "k", Value: []byte("acknowledged")})
	if err != nil {
		t.Fatal(err)
	}
	// The skewed nodes refuse every write at once, with the clock error,
	// and say so in id.
	for _, n := range []*Node{ahead, behind, minute} {
		dir := "ahead of"
		if n == behind {
			dir = "behind"
		}
		_, err := n.API().KVPut(ctx, api.KVPutRequest{Key: "k", Value: []byte("from a wrong clock")})
		if !errors.Is(err, api.ErrClockOff) || !strings.Contains(err.Error(), "kv put: this node's clock is") ||
			!strings.Contains(err.Error(), dir+" the network (limit 30s): fix the system clock (NTP) and retry") {
			t.Fatalf("kv put on a node %s: %v, want the clock error", want[n], err)
		}
		if _, err := n.API().Share(ctx, api.ShareRequest{Name: "f", Body: strings.NewReader("x")}); !errors.Is(err, api.ErrClockOff) ||
			!strings.HasPrefix(err.Error(), "share: this node's clock is") {
			t.Fatalf("share on a node %s: %v, want the clock error", want[n], err)
		}
		if id, _ := n.API().ID(ctx); !strings.Contains(id.Clock, "fix the system clock") {
			t.Fatalf("id of a node %s: clock warning %q", want[n], id.Clock)
		}
	}
	if _, err := minute.API().KVDelete(ctx, "k"); err == nil {
		t.Fatal("kv del on a node 60 s ahead succeeded")
	}
	if id, _ := good.API().ID(ctx); id.Clock != "" {
		t.Fatalf("a good node warns about its clock: %q", id.Clock)
	}
	// Members show each one's offset as this node measures it.
	ms, _ := good.API().Members(ctx)
	for _, m := range ms {
		for n, d := range want {
			if m.ID == n.Host().ID().String() && (m.OffsetMillis == nil || (time.Duration(*m.OffsetMillis*float64(time.Millisecond))-d).Abs() > 5*time.Second) {
				t.Fatalf("members on a good node: %s has offset %v ms, want about %v", m.ID, m.OffsetMillis, d)
			}
		}
	}

	// The acknowledged write reaches every node, the behind one included
	// (it judges records by the network's time), and nothing reverts it.
	waitFor(t, 20*time.Second, "the acknowledged write on every node", func() bool {
		for _, n := range all {
			if e, err := n.API().KVGet(ctx, "k"); err != nil || e.Value != "acknowledged" {
				return false
			}
		}
		return true
	})
	// Anti-entropy runs every second: a few rounds later it still holds.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range all {
			e, err := n.API().KVGet(ctx, "k")
			if err != nil || e.Value != "acknowledged" || e.Time != acked.Time {
				t.Fatalf("the acknowledged write reverted: %+v, %v", e, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRestartWithClockSetBackIsAliveAtOnce(t *testing.T) {
	a := clockNode(t, 0, "")
	b := clockNode(t, 0, "", addrInfo(a))
	repo := t.TempDir()
	x := clockNode(t, 0, repo, addrInfo(a))
	xid := x.Host().ID()
	state := func(n *Node) (gossip.Member, bool) { return n.Membership().Member(xid) }
	waitFor(t, 15*time.Second, "x alive on its peers", func() bool {
		ma, oka := state(a)
		mb, okb := state(b)
		return oka && okb && ma.State == gossip.StateAlive && mb.State == gossip.StateAlive
	})
	before, _ := state(a)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "x dead on its peers", func() bool {
		ma, _ := state(a)
		mb, _ := state(b)
		return ma.State == gossip.StateDead && mb.State == gossip.StateDead
	})
	// Back with its clock an hour behind: alive again on both peers
	// within seconds, with a newer incarnation.
	start := time.Now()
	clockNode(t, -time.Hour, repo, addrInfo(a))
	waitFor(t, 10*time.Second, "x alive again on its peers", func() bool {
		ma, _ := state(a)
		mb, _ := state(b)
		return ma.State == gossip.StateAlive && mb.State == gossip.StateAlive
	})
	after, _ := state(a)
	if after.Inc <= before.Inc {
		t.Fatalf("incarnation %d after the restart, %d before", after.Inc, before.Inc)
	}
	t.Logf("alive again on both peers %s after the restart", time.Since(start).Round(time.Millisecond))
}

// A repo of a release without the counter: its peers remember an
// incarnation that was the start time in nanoseconds. Started by this
// release, the node is alive on its peers at once.
func TestUpgradedRepoIsAliveAtOnce(t *testing.T) {
	a := clockNode(t, 0, "")
	repo := t.TempDir()
	// A first start announces the start time in nanoseconds, the
	// incarnation of that release; without its counter file the repo is
	// one that release wrote.
	old := clockNode(t, 0, repo, addrInfo(a))
	xid := old.Host().ID()
	waitFor(t, 15*time.Second, "x alive on its peer", func() bool {
		m, ok := a.Membership().Member(xid)
		return ok && m.State == gossip.StateAlive
	})
	before, _ := a.Membership().Member(xid)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(repo, repoIncarnationFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "x dead on its peer", func() bool {
		m, _ := a.Membership().Member(xid)
		return m.State == gossip.StateDead
	})
	clockNode(t, 0, repo, addrInfo(a))
	waitFor(t, 10*time.Second, "the upgraded x alive again on its peer", func() bool {
		m, _ := a.Membership().Member(xid)
		return m.State == gossip.StateAlive && m.Inc > before.Inc
	})
	if _, err := os.Stat(filepath.Join(repo, repoIncarnationFile)); err != nil {
		t.Fatalf("the upgraded repo has no incarnation counter: %v", err)
	}
}

func TestWriterCapOnOwnWrites(t *testing.T) {
	n := newTestNode(t, func(c *Config) { c.KV.MaxRecordsPerWriter = 2 })
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, err := n.API().KVPut(ctx, api.KVPutRequest{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := n.API().KVPut(ctx, api.KVPutRequest{Key: "c", Value: []byte("v")})
	if want := "kv put: this node holds the per-writer limit of 2 records: delete some or raise --max-records-per-writer"; err == nil || err.Error() != want || !errors.Is(err, api.ErrWriterLimit) {
		t.Fatalf("put past the cap: %v, want %q", err, want)
	}
	if _, err := n.API().KVPut(ctx, api.KVPutRequest{Key: "a", Value: []byte("updated")}); err != nil {
		t.Fatalf("update within the cap: %v", err)
	}
	if _, err := n.API().KVDelete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.API().KVPut(ctx, api.KVPutRequest{Key: "c", Value: []byte("v")}); err != nil {
		t.Fatalf("put after a delete: %v", err)
	}
}

// A node whose clock is 60 s ahead writes as soon as it has met its peers,
// before its clock loop has read theirs: the write is still judged.
func TestFirstWriteAfterMeetingPeersIsJudged(t *testing.T) {
	good := clockNode(t, 0, "")
	good2 := clockNode(t, 0, "", addrInfo(good))
	minute := clockNode(t, time.Minute, "", addrInfo(good), addrInfo(good2))
	waitFor(t, 15*time.Second, "the node to hear both peers", func() bool {
		alive := 0
		for _, m := range minute.Membership().Members() {
			if !m.Self && m.State == gossip.StateAlive && minute.Host().Network().Connectedness(m.ID) == network.Connected {
				alive++
			}
		}
		return alive == 2
	})
	_, err := minute.API().KVPut(context.Background(), api.KVPutRequest{Key: "k", Value: []byte("v")})
	if !errors.Is(err, api.ErrClockOff) {
		t.Fatalf("first write of a node 60 s ahead: %v, want the clock error", err)
	}
}

// watchClock warns when the clock goes off, again when the offset moves
// by more than the limit (the first figure may rest on one member: half
// the truth), and not on every check in between.
func TestClockLogLine(t *testing.T) {
	const limit = 30 * time.Second
	tests := []struct {
		name                 string
		measured, off, isOff bool
		d, warned            time.Duration
		want                 clockLine
	}{
		{"first check, within", false, false, false, time.Second, 0, clockMeasured},
		{"first check, off", false, false, true, 10 * time.Minute, 0, clockWarn},
		{"goes off", true, false, true, 2 * time.Minute, 0, clockWarn},
		{"still off, same figure", true, true, true, 5*time.Minute + 10*time.Second, 5 * time.Minute, clockNone},
		{"still off, figure moved past the limit", true, true, true, 10 * time.Minute, 5 * time.Minute, clockWarn},
		{"still off, moved back past the limit", true, true, true, -5 * time.Minute, 5 * time.Minute, clockWarn},
		{"back within", true, true, false, time.Second, 5 * time.Minute, clockBack},
		{"within, as before", true, false, false, 2 * time.Second, 0, clockNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clockLogLine(tc.measured, tc.off, tc.isOff, tc.d, tc.warned, limit); got != tc.want {
				t.Fatalf("clockLogLine = %d, want %d", got, tc.want)
			}
		})
	}
}
