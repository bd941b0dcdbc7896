package testnet

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scrape is d.Scrape, failing the test on an error.
func scrape(t *testing.T, d *Daemon, withToken bool) (int, map[string]float64) {
	t.Helper()
	code, m, err := d.Scrape(withToken)
	if err != nil {
		t.Fatal(err)
	}
	return code, m
}

func TestE2EMetricsScrape(t *testing.T) {
	nw := startNetwork(t, 2, "--replicas", "1")
	waitAllAlive(t, nw, 20*time.Second)
	dir := t.TempDir()
	if r := nw.Node(1).Run("share", writeFile(t, dir, "m.txt", []byte("metrics\n"))); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	if r := nw.Node(2).Run("get", "m.txt", "-o", filepath.Join(dir, "got.txt")); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	if code, _ := scrape(t, nw.Node(2), false); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}
	code, m := scrape(t, nw.Node(2), true)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	want := map[string]float64{
		`p2pshare_members{state="alive"}`:                          2,
		`p2pshare_transfers_total{direction="in",result="ok"}`:     1,
		`p2pshare_transfer_bytes_total{direction="in"}`:            8,
		`p2pshare_transfers_total{direction="out",result="error"}`: 0,
		// An idle two-node network keeps up with its membership.
		`p2pshare_membership_inbox_dropped_total`:     0,
		`p2pshare_membership_sends_dropped_total`:     0,
		`p2pshare_membership_publishes_dropped_total`: 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// The server counts a transfer once its last write returns, which
	// may be just after the getter has every byte and the CLI has exited.
	waitFor(t, 5*time.Second, "node 1 counts 1 transfer served", func() (bool, string) {
		_, m1 := scrape(t, nw.Node(1), true)
		got := m1[`p2pshare_transfers_total{direction="out",result="ok"}`]
		return got == 1, fmt.Sprintf("%v transfers served", got)
	})
	// Each node announced itself on the membership topic, and hears the
	// other's messages (its announcement, or a heartbeat within 10 s).
	if got := m[`p2pshare_membership_published_total`]; got < 1 {
		t.Errorf("node 2 published %v membership messages, want at least its announcement", got)
	}
	waitFor(t, 25*time.Second, "node 1 receives a membership message of node 2", func() (bool, string) {
		_, m1 := scrape(t, nw.Node(1), true)
		got := m1[`p2pshare_membership_received_total`]
		return got >= 1, fmt.Sprintf("%v received", got)
	})
	var libp2p, goRuntime bool
	for k := range m {
		libp2p = libp2p || strings.HasPrefix(k, "libp2p_")
		goRuntime = goRuntime || strings.HasPrefix(k, "go_goroutines")
	}
	if !libp2p || !goRuntime {
		t.Errorf("libp2p metrics %v, Go runtime metrics %v: want both", libp2p, goRuntime)
	}
}
