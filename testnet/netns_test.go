package testnet

import (
	"fmt"
	"testing"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

// netLab is a small emulated internet (package internet) for partition
// tests: two sites, "A" and "B", each a switch (a site router's LAN, no
// NAT) with its nodes, the sites joined through the routers' uplinks. Every
// node has its own namespace; nothing is created in the root namespace, so
// the host is untouched. Cut pulls site A's uplink: no packet crosses,
// nobody is told, as with a pulled cable between two switches; Heal plugs
// it back.
type netLab struct {
	t      *testing.T
	in     *internet.Internet
	sideOf []string // "A" or "B" for node i+1
}

// newNetLab builds the lab for len(sides) nodes, sides[i] ("A" or "B")
// being node i+1's side, and removes it at cleanup. It skips the test if
// network namespaces cannot be made here (not root, no iproute2 or
// nftables, a sandbox without CAP_SYS_ADMIN). Daemons must be stopped
// first: register the network's cleanup after newNetLab.
func newNetLab(t *testing.T, sides []string) *netLab {
	t.Helper()
	topo := internet.Topology{Routers: []internet.Router{
		{Name: "side-a", Kind: internet.KindSite},
		{Name: "side-b", Kind: internet.KindSite},
	}}
	for i, side := range sides {
		r := &topo.Routers[0]
		if side == "B" {
			r = &topo.Routers[1]
		}
		r.Hosts = append(r.Hosts, internet.Host{Name: fmt.Sprintf("n%d", i+1)})
	}
	return &netLab{t: t, in: internet.New(t, topo), sideOf: sides}
}

func (l *netLab) node(i int) *internet.Node { return l.in.Host(fmt.Sprintf("n%d", i)) }

// IP is node i's address (1-based).
func (l *netLab) IP(i int) string { return l.node(i).IP.String() }

// Exec is the command prefix that runs a program in node i's namespace.
func (l *netLab) Exec(i int) []string { return l.node(i).Prefix() }

// Side is node i's side, "A" or "B".
func (l *netLab) Side(i int) string { return l.sideOf[i-1] }

// Sysctl sets the network sysctl key (net.ipv4.tcp_retries2, say) to value
// in every node's namespace.
func (l *netLab) Sysctl(key, value string) {
	l.t.Helper()
	for i := range l.sideOf {
		if err := l.node(i+1).Sysctl(key, value); err != nil {
			l.t.Fatal(err)
		}
	}
}

// Cut pulls the cable between the two sites.
func (l *netLab) Cut() {
	l.t.Helper()
	if err := l.in.Cut("side-a"); err != nil {
		l.t.Fatal(err)
	}
}

// Heal plugs it back.
func (l *netLab) Heal() {
	l.t.Helper()
	if err := l.in.Restore("side-a"); err != nil {
		l.t.Fatal(err)
	}
}
