//go:build unix

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

func TestTopology(t *testing.T) {
	l := internet.Link{Delay: 15 * time.Millisecond, Loss: 0.01, Rate: "20mbit"}
	for _, c := range []struct {
		preset string
		hosts  int
		link   internet.Link
		nodes  int    // public hosts, routers and LAN hosts
		err    string // a part of the error, or "" for none
	}{
		{"nats", 1, l, 5, ""},
		{"nats", 3, l, 9, ""},
		{"hard", 2, l, 7, ""},
		{"sites", 2, internet.Link{Loss: 0.01}, 10, ""},
		{"sites", 1, l, 0, "--delay"},
		{"cone", 1, l, 0, "--topology"},
		{"nats", 0, l, 0, "--hosts"},
		{"nats", 27, l, 57, ""},
		{"sites", 34, internet.Link{Loss: 0.05}, 106, ""},
		{"nats", 201, l, 0, "--hosts"},
	} {
		topo, err := topology(c.preset, c.hosts, c.link)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s, %d hosts: %v, want a one-line error about %s", c.preset, c.hosts, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s, %d hosts: %v", c.preset, c.hosts, err)
		}
		n := len(topo.Hosts)
		for _, r := range topo.Routers {
			n += 1 + len(r.Hosts)
			for _, h := range r.Hosts {
				if c.preset != "sites" && h.Link != c.link {
					t.Errorf("%s: host %s has link %+v, want %+v", c.preset, h.Name, h.Link, c.link)
				}
			}
		}
		if n != c.nodes {
			t.Errorf("%s, %d hosts: %d nodes, want %d", c.preset, c.hosts, n, c.nodes)
		}
		if c.preset == "hard" && topo.Routers[1].Kind != internet.KindHard {
			t.Errorf("hard: nat2 is %s", topo.Routers[1].Kind)
		}
	}
}
