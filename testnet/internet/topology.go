// Package internet emulates a small internet on one Linux machine, for tests,
// benchmarks and people: hosts and routers each in their own network
// namespace, joined by veth pairs and bridges.
//
// A Topology has one public segment (a bridge in a namespace of its own,
// numbered in a public range, 7.0.0.0/24 by default, so that go-libp2p
// treats its addresses as public; nothing leaves the namespaces), public
// hosts on it, and routers with a public address on it and a LAN behind
// them. A router is a home-style NAT (KindMasquerade: nftables masquerade,
// endpoint-independent mapping, replies only from where a packet went), a
// symmetric NAT (KindHard: masquerade fully-random, a new external port for
// every new destination), or a site router that routes its LAN without
// translation (KindSite: a multi-site WAN).
//
// Every link (the uplink of a public host or router to the segment, the link
// of a LAN host to its router) may add a one-way delay, a random loss and a
// rate limit to the packets that reach the node through it. The kernels
// this runs on have no netem: delay is done in user space, by holding the
// verdicts of an NFQUEUE (goroutines of the process that called Build, alive
// until Close; until then the process runs at a higher priority than the
// programs placed in the nodes, where it may, so that busy hosts do not
// stretch the delays); loss is iptables' statistic match; rate is a tbf qdisc on
// both ends of the link. A round trip between two public hosts thus takes
// the sum of their two links' delays; through a NAT router, its uplink's
// delay is added too. Paths give two nodes of the segment a one-way delay
// of their own, both ways, instead.
//
// Cut drops every packet of a node's link at its far end, so the node's
// interface stays up and nobody gets a reset: a cut cable. Node.Prefix
// places processes (testnet.Daemon.Prefix) in a node's namespace, Node.Do
// opens sockets there from this process.
//
// Build makes it, Close removes every namespace, link and rule it made.
// The kernel keeps one neighbour (ARP) table for all namespaces, too small
// by default for a LAN of a few dozen hosts that talk to each other, so
// Build raises its limits to what the topology needs (never lowering them).
// Names carry a per-internet tag, so tests in parallel and an internet
// started by hand (testnet.sh internet) never clash; Build removes the namespaces
// of internets whose owner process died.
package internet

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Kind is what a router does with its LAN's traffic.
type Kind string

const (
	// KindMasquerade is a home router: nftables masquerade keeps a LAN
	// host's source port when it can (endpoint-independent mapping) and
	// lets in only replies to what went out.
	KindMasquerade Kind = "masquerade"
	// KindHard is a symmetric NAT: masquerade fully-random picks a new
	// external port for every new flow, so each destination sees another.
	KindHard Kind = "hard"
	// KindSite routes its LAN to the segment without translation: the
	// segment's nodes get a route to the LAN through it.
	KindSite Kind = "site"
)

// Link is what a node's link does to the packets that reach the node
// through it. The zero Link is a perfect wire.
type Link struct {
	// Delay is added to every packet that arrives through the link.
	Delay time.Duration
	// Loss is the probability (0 to 1) that an arriving packet is dropped.
	Loss float64
	// Rate limits the link in each direction, in tc's notation ("10mbit");
	// empty for no limit.
	Rate string
}

// Host is a host: on the segment if listed in Topology.Hosts, on its
// router's LAN if listed in Router.Hosts.
type Host struct {
	Name string
	Link Link
}

// Router is a router with a public address on the segment and a LAN.
type Router struct {
	Name  string
	Kind  Kind
	Link  Link // its uplink to the segment
	Hosts []Host
}

// Path is a one-way delay between two nodes of the segment (public hosts or
// routers, and so every host behind them), in both directions; it replaces
// the Delay of the receiving node's uplink for packets from the other.
type Path struct {
	A, B  string
	Delay time.Duration
}

// Topology describes an internet.
type Topology struct {
	// Name, if set, tags every namespace (inet-NAME-HOST) and names the
	// state file the testnet command finds it by; empty for a random tag.
	Name string
	// Public is the segment's prefix, a /24 or larger outside go-libp2p's
	// private ranges; empty for 7.0.0.0/24.
	Public  string
	Hosts   []Host
	Routers []Router
	Paths   []Path
}

// DefaultPublic is the segment's prefix when Topology.Public is empty.
const DefaultPublic = "7.0.0.0/24"

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	tagRE  = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)
)

// validate checks names and numbers and returns the segment's prefix.
func (t *Topology) validate() (netip.Prefix, error) {
	pub := t.Public
	if pub == "" {
		pub = DefaultPublic
	}
	p, err := netip.ParsePrefix(pub)
	if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
		return p, fmt.Errorf("internet: public prefix %q: want an IPv4 prefix of /24 or larger", pub)
	}
	if t.Name != "" && !tagRE.MatchString(t.Name) {
		return p, fmt.Errorf("internet: name %q: want a lower-case letter, then letters and digits, at most 12", t.Name)
	}
	if len(t.Hosts)+len(t.Routers) > 200 {
		return p, fmt.Errorf("internet: %d nodes on the segment: at most 200", len(t.Hosts)+len(t.Routers))
	}
	if len(t.Routers) > 250 {
		return p, fmt.Errorf("internet: %d routers: at most 250", len(t.Routers))
	}
	seen := map[string]bool{"net": true}
	check := func(name string, l Link) error {
		if !nameRE.MatchString(name) {
			return fmt.Errorf("internet: node name %q: want lower-case letters, digits and '-', at most 20, starting with a letter", name)
		}
		if seen[name] {
			return fmt.Errorf("internet: node name %q used twice (or reserved)", name)
		}
		seen[name] = true
		if l.Delay < 0 || l.Loss < 0 || l.Loss > 1 {
			return fmt.Errorf("internet: node %s: delay %s, loss %g: want delay >= 0 and 0 <= loss <= 1", name, l.Delay, l.Loss)
		}
		return nil
	}
	for _, h := range t.Hosts {
		if err := check(h.Name, h.Link); err != nil {
			return p, err
		}
	}
	for _, r := range t.Routers {
		if err := check(r.Name, r.Link); err != nil {
			return p, err
		}
		switch r.Kind {
		case KindMasquerade, KindHard, KindSite:
		default:
			return p, fmt.Errorf("internet: router %s: kind %q: want masquerade, hard or site", r.Name, r.Kind)
		}
		if len(r.Hosts) > 200 {
			return p, fmt.Errorf("internet: router %s: %d hosts: at most 200", r.Name, len(r.Hosts))
		}
		for _, h := range r.Hosts {
			if err := check(h.Name, h.Link); err != nil {
				return p, err
			}
		}
	}
	for _, pa := range t.Paths {
		for _, n := range []string{pa.A, pa.B} {
			if !t.onSegment(n) {
				return p, fmt.Errorf("internet: path %s-%s: %q is not a public host or router", pa.A, pa.B, n)
			}
		}
		if pa.Delay < 0 {
			return p, fmt.Errorf("internet: path %s-%s: negative delay", pa.A, pa.B)
		}
	}
	return p, nil
}

func (t *Topology) onSegment(name string) bool {
	for _, h := range t.Hosts {
		if h.Name == name {
			return true
		}
	}
	for _, r := range t.Routers {
		if r.Name == name {
			return true
		}
	}
	return false
}

// TwoNATs is two routers of kind k1 and k2 ("nat1", "nat2"), each with one
// host behind it ("nat1-a", "nat2-a"), and one public host ("pub"), every
// link with the given one.
func TwoNATs(k1, k2 Kind, l Link) Topology {
	return Topology{
		Hosts: []Host{{Name: "pub", Link: l}},
		Routers: []Router{
			{Name: "nat1", Kind: k1, Link: l, Hosts: []Host{{Name: LANHost("nat1", 0), Link: l}}},
			{Name: "nat2", Kind: k2, Link: l, Hosts: []Host{{Name: LANHost("nat2", 0), Link: l}}},
		},
	}
}

// LANHost is the name of the i-th host (from 0) of router's LAN in the
// topologies made here: router-a to router-z, then router-aa, router-ab,
// and so on.
func LANHost(router string, i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('a' + (i-1)%26)}, b...)
	}
	return router + "-" + string(b)
}

// Sites is three sites ("site1".."site3", routers without NAT) of n hosts
// each (named by LANHost: "site1-a", "site1-b", ...), one-way delays of 15, 22 and 30 ms
// between sites 1-2, 1-3 and 2-3, the given loss on every uplink, and one
// public host ("pub") 15 ms from every site.
func Sites(n int, loss float64) Topology {
	t := Topology{Hosts: []Host{{Name: "pub", Link: Link{Delay: 15 * time.Millisecond, Loss: loss}}}}
	for s := 1; s <= 3; s++ {
		r := Router{Name: fmt.Sprintf("site%d", s), Kind: KindSite, Link: Link{Delay: 15 * time.Millisecond, Loss: loss}}
		for i := 0; i < n; i++ {
			r.Hosts = append(r.Hosts, Host{Name: LANHost(r.Name, i)})
		}
		t.Routers = append(t.Routers, r)
	}
	t.Paths = []Path{
		{A: "site1", B: "site2", Delay: 15 * time.Millisecond},
		{A: "site1", B: "site3", Delay: 22 * time.Millisecond},
		{A: "site2", B: "site3", Delay: 30 * time.Millisecond},
	}
	return t
}
