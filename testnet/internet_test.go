package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

// Daemons in an emulated internet, placed by the Network's Setup: node 1 on
// the public host, nodes 2 and 3 behind a masquerading and a symmetric NAT,
// every link 10 ms one way. The NATed nodes bootstrap to the public one and
// fetch a file it shares; it sees each from its router's public address, at
// no less than the round trip the links add up to (public host, router,
// LAN host: 30 ms).
func TestE2EInternetDaemons(t *testing.T) {
	in := internet.New(t, internet.TwoNATs(internet.KindMasquerade, internet.KindHard, internet.Link{Delay: 10 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	hosts := []string{"pub", "nat1-a", "nat2-a"}
	nw := New(bin, t.TempDir())
	nw.Setup = func(d *Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix() // the daemon and every CLI run against it
		d.Listen = []string{
			fmt.Sprintf("/ip4/%s/tcp/4040", h.IP),
			fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP),
		}
	}
	t.Cleanup(func() { // runs before in.Close: cleanups are last in, first out
		nw.Down()
		if t.Failed() {
			for _, d := range nw.Nodes {
				t.Logf("node %d (%s) log:\n%s", d.Index, hosts[d.Index-1], d.LogTail(60))
			}
		}
	})
	if err := nw.Up(ctx, len(hosts)); err != nil {
		t.Fatal(err)
	}

	type peer struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
		RTT   float64  `json:"rtt_ms"`
	}
	var ps []peer
	waitFor(t, 20*time.Second, "both NATed nodes connected to the public one", func() (bool, string) {
		ps = nil
		if err := nw.Node(1).JSON(&ps, "peers", "--json"); err != nil {
			return false, err.Error()
		}
		return len(ps) == 2, fmt.Sprintf("%d peers", len(ps))
	})
	dir := t.TempDir()
	body := "shared on the public node\n"
	src := writeFile(t, dir, "public.txt", []byte(body))
	var s shareRepOut
	// The first share may come before the public node's DHT has taken the
	// others into its routing table.
	waitFor(t, 20*time.Second, "a share on the public node", func() (bool, string) {
		s = shareRepOut{}
		err := nw.Node(1).JSON(&s, "share", src, "--json")
		return err == nil && s.CID != "", fmt.Sprintf("%+v, %v", s, err)
	})
	for _, d := range nw.Nodes[1:] {
		out := filepath.Join(dir, "got-"+hosts[d.Index-1])
		var g getOut
		if err := d.JSON(&g, "get", s.CID, "-o", out, "--json"); err != nil {
			t.Fatalf("%s: %v", hosts[d.Index-1], err)
		}
		if b, _ := os.ReadFile(out); string(b) != body {
			t.Fatalf("%s: got %q", hosts[d.Index-1], b)
		}
	}

	waitFor(t, 30*time.Second, "the public node sees each NATed node from its router, 30 ms away", func() (bool, string) {
		ps = nil
		if err := nw.Node(1).JSON(&ps, "peers", "--json"); err != nil {
			return false, err.Error()
		}
		for _, d := range nw.Nodes[1:] {
			router := in.Host(in.Host(hosts[d.Index-1]).Router)
			var p *peer
			for i := range ps {
				if ps[i].ID == d.ID {
					p = &ps[i]
				}
			}
			if p == nil {
				return false, fmt.Sprintf("%s not connected: %+v", hosts[d.Index-1], ps)
			}
			if !strings.Contains(strings.Join(p.Addrs, " "), "/ip4/"+router.IP.String()+"/") {
				return false, fmt.Sprintf("%s seen at %v, want its router's %s", hosts[d.Index-1], p.Addrs, router.IP)
			}
			// The links add 30 ms; the node's figure is an average of
			// libp2p pings on a busy machine, so only its floor is exact.
			if p.RTT < 29 || p.RTT > 200 {
				return false, fmt.Sprintf("%s at %.2f ms, want 30 or a little more", hosts[d.Index-1], p.RTT)
			}
		}
		return true, ""
	})
	for _, p := range ps {
		t.Logf("public node's peer %s: %v, %.2f ms", p.ID, p.Addrs, p.RTT)
	}
}
