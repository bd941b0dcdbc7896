package testnet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

type idOut struct {
	ID           string   `json:"id"`
	Addrs        []string `json:"addrs"`
	Reachability string   `json:"reachability"`
	PublicAddrs  []string `json:"public_addrs"`
	OffsetMS     float64  `json:"offset_ms"`
	OffsetPeers  int      `json:"offset_peers"`
	Clock        string   `json:"clock"`
}

type peerOut struct {
	ID    string `json:"id"`
	Via   string `json:"via"`
	Relay string `json:"relay"`
}

// TestE2EReachabilityFlags runs daemons with --announce, --no-port-map, a
// DNS bootstrap address and relays that cannot be reached, and checks what
// id and peers show.
func TestE2EReachabilityFlags(t *testing.T) {
	nw := startNetwork(t, 1)
	n1 := nw.Node(1)
	port := strings.Split(strings.TrimPrefix(n1.TCPAddr(), "/ip4/127.0.0.1/tcp/"), "/")[0]
	dnsBootstrap := fmt.Sprintf("/dns4/localhost/tcp/%s/p2p/%s", port, n1.ID)
	announce := "/ip4/203.0.113.7/tcp/4040"

	nw.Setup = func(d *Daemon) {
		switch d.Index {
		case 2:
			d.Args = []string{"--announce", announce, "--no-port-map"}
		case 3:
			// Unreachable: a name that does not resolve, a relay nobody
			// listens for. The daemon runs and retries.
			d.Args = []string{"--relay", "/ip4/127.0.0.1/tcp/1/p2p/" + n1.ID}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n2, err := nw.Add(ctx, dnsBootstrap)
	if err != nil {
		t.Fatal(err)
	}
	var id idOut
	if err := n2.JSON(&id, "id", "--json"); err != nil {
		t.Fatal(err)
	}
	if want := announce + "/p2p/" + n2.ID; len(id.Addrs) != 1 || id.Addrs[0] != want {
		t.Errorf("id addrs %v, want exactly [%s]", id.Addrs, want)
	}
	if id.Reachability != "unknown" {
		t.Errorf("reachability %q on loopback, want unknown", id.Reachability)
	}
	if len(id.PublicAddrs) != 1 || id.PublicAddrs[0] != announce+"/p2p/"+n2.ID {
		t.Errorf("public addrs %v, want the announced one", id.PublicAddrs)
	}
	// Joined through the DNS address: each sees the other, directly.
	for _, pair := range [][2]*Daemon{{n2, n1}, {n1, n2}} {
		a, b := pair[0], pair[1]
		waitFor(t, 15*time.Second, fmt.Sprintf("node %d sees node %d directly", a.Index, b.Index), func() (bool, string) {
			var ps []peerOut
			if err := a.JSON(&ps, "peers", "--json"); err != nil {
				return false, err.Error()
			}
			for _, p := range ps {
				if p.ID == b.ID {
					return p.Via == "direct" && p.Relay == "", fmt.Sprintf("%+v", p)
				}
			}
			return false, fmt.Sprintf("%+v", ps)
		})
	}
	if r := n1.Run("peers"); r.Code != 0 || !strings.Contains(r.Stdout, "VIA") || !strings.Contains(r.Stdout, "direct") {
		t.Errorf("peers text: %q %q", r.Stdout, r.Stderr)
	}
	if r := n2.Run("id"); r.Code != 0 || !strings.Contains(r.Stdout, "reach   unknown") || !strings.Contains(r.Stdout, "public  "+announce) {
		t.Errorf("id text: %q %q", r.Stdout, r.Stderr)
	}

	n3, err := nw.Add(ctx, "/dns4/no-such-host.invalid/tcp/4040/p2p/"+n1.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "node 3 logs its failed bootstrap dial", func() (bool, string) {
		log := n3.LogTail(200)
		return strings.Contains(log, "bootstrap dial failed") && strings.Contains(log, "no-such-host.invalid"), n3.LogTail(5)
	})
	if !n3.Running() {
		t.Fatalf("node 3 exited:\n%s", n3.LogTail(20))
	}
	if r := n3.Run("id", "--json"); r.Code != 0 {
		t.Errorf("node 3 does not answer: %s", r.Stderr)
	}
}
