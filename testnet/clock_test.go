package testnet

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// TestE2EClockAheadRefusesWrites runs three daemons and a fourth built
// with the clockskew tag whose clock is 10 minutes ahead: its writes are
// refused at once with the clock error, the others measure its offset and
// keep working.
func TestE2EClockAheadRefusesWrites(t *testing.T) {
	skewBin, err := BuildTagged(t.TempDir(), "p2pshare-clockskew", ClockSkewTag)
	if err != nil {
		t.Fatal(err)
	}
	nw := New(bin, t.TempDir())
	nw.Setup = func(d *Daemon) {
		if d.Index == 4 {
			d.Bin, d.Env = skewBin, []string{"P2PSHARE_TEST_CLOCK_OFFSET=10m"}
		}
	}
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
	if err := nw.Up(ctx, 4); err != nil {
		t.Fatal(err)
	}
	n1, n2, skewed := nw.Node(1), nw.Node(2), nw.Node(4)

	// The skewed daemon learns it is 10 minutes ahead, and says so in id.
	waitFor(t, 20*time.Second, "the skewed daemon to find its clock off", func() (bool, string) {
		var id idOut
		if err := skewed.JSON(&id, "id", "--json"); err != nil {
			return false, err.Error()
		}
		return id.OffsetPeers >= 3 && math.Abs(id.OffsetMS-600_000) < 5_000 && strings.Contains(id.Clock, "fix the system clock"),
			fmt.Sprintf("%+v", id)
	})
	// A good node shows the skewed member about +600000 ms ahead.
	waitFor(t, 20*time.Second, "node 1 to measure the skewed member", func() (bool, string) {
		m, ok := stateOn(n1, skewed.ID)
		if !ok || m.OffsetMS == nil {
			return false, fmt.Sprintf("%+v", m)
		}
		return math.Abs(*m.OffsetMS-600_000) < 5_000, fmt.Sprintf("offset %v ms", *m.OffsetMS)
	})
	var id1 idOut
	if err := n1.JSON(&id1, "id", "--json"); err != nil || id1.Clock != "" || math.Abs(id1.OffsetMS) > 5_000 {
		t.Fatalf("id of a good node: %+v, %v", id1, err)
	}

	// Writes on the skewed daemon fail at once, with one line saying to
	// fix the clock; none is reported as done.
	r := skewed.Run("kv", "put", "motd", "from the future")
	if r.Code != 1 || strings.Count(r.Stderr, "\n") != 1 ||
		!strings.HasPrefix(r.Stderr, "p2pshare: kv put: this node's clock is 10m") ||
		!strings.Contains(r.Stderr, "ahead of the network (limit 30s): fix the system clock (NTP) and retry") {
		t.Fatalf("kv put on the skewed daemon: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	file := writeFile(t, t.TempDir(), "notes.txt", []byte("shared from a wrong clock\n"))
	r = skewed.Run("share", file)
	if r.Code != 1 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "this node's clock is 10m") ||
		!strings.Contains(r.Stderr, "fix the system clock (NTP) and retry") {
		t.Fatalf("share on the skewed daemon: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	// Its log warns within its next clock check (every second).
	waitFor(t, 5*time.Second, "the skewed daemon's log to warn about its clock", func() (bool, string) {
		log, _ := os.ReadFile(skewed.Log)
		return strings.Contains(string(log), "level=WARN msg=\"CLOCK: this node's clock is 10m"), skewed.LogTail(5)
	})

	// /metrics says it too, and counts rejections by reason.
	if _, m := scrape(t, skewed, true); math.Abs(m["p2pshare_clock_offset_seconds"]-600) > 5 {
		t.Fatalf("p2pshare_clock_offset_seconds on the skewed daemon = %v, want about 600", m["p2pshare_clock_offset_seconds"])
	}
	if _, m := scrape(t, n1, true); len(m) == 0 {
		t.Fatal("no metrics on node 1")
	} else if _, ok := m[`p2pshare_kv_rejected_total{reason="future"}`]; !ok {
		t.Fatal("node 1 does not count records rejected as from the future")
	}

	// The others keep working, and the skewed daemon reads their writes.
	if r := n1.Run("kv", "put", "motd", "lab closed on Friday"); r.Code != 0 {
		t.Fatalf("kv put on a good node: %s", r.Stderr)
	}
	if r := n2.Run("share", file); r.Code != 0 {
		t.Fatalf("share on a good node: %s", r.Stderr)
	}
	for _, d := range nw.Nodes {
		waitFor(t, 15*time.Second, fmt.Sprintf("motd on node %d", d.Index), func() (bool, string) {
			e, errLine := kvGet(d, "motd")
			return e.Value == "lab closed on Friday" && e.Writer == n1.ID, fmt.Sprintf("%+v %s", e, errLine)
		})
	}
}
