package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

func TestPunchGateDialsNATMappingsOnlyInAHolePunch(t *testing.T) {
	const natted, public = peer.ID("natted"), peer.ID("public")
	relayed := ma.StringCast("/ip4/7.0.0.10/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5/p2p-circuit")
	mapping := ma.StringCast("/ip4/7.0.0.11/tcp/4040")
	quicMapping := ma.StringCast("/ip4/7.0.0.11/udp/4040/quic-v1")
	lan := ma.StringCast("/ip4/192.168.1.10/tcp/4040")
	pub := ma.StringCast("/ip4/7.0.0.12/tcp/4040")
	announced := map[peer.ID][]ma.Multiaddr{
		natted: {mapping, quicMapping, lan, relayed},
		public: {pub},
	}
	g := newPunchGate(func(p peer.ID) []ma.Multiaddr { return announced[p] })

	steps := []struct {
		name  string
		event string  // a hole punch event before the dial, if any
		of    peer.ID // the peer of the event
		addr  ma.Multiaddr
		want  bool
	}{
		{"NATed peer's mapping", "", "", mapping, false},
		{"NATed peer's QUIC mapping", "", "", quicMapping, false},
		{"NATed peer's LAN address", "", "", lan, true},
		{"NATed peer's relay address", "", "", relayed, true},
		{"another peer's hole punch", holepunch.StartHolePunchEvtT, public, mapping, false},
		{"mapping in a hole punch", holepunch.StartHolePunchEvtT, natted, mapping, true},
		{"a second hole punch", holepunch.StartHolePunchEvtT, natted, mapping, true},
		{"one of two ended", holepunch.EndHolePunchEvtT, natted, mapping, true},
		{"both ended", holepunch.EndHolePunchEvtT, natted, mapping, false},
	}
	for _, s := range steps {
		if s.event != "" {
			g.Trace(&holepunch.Event{Type: s.event, Remote: s.of})
		}
		if got := g.InterceptAddrDial(natted, s.addr); got != s.want {
			t.Errorf("%s: dial %s allowed %v, want %v", s.name, s.addr, got, s.want)
		}
	}
	if !g.InterceptAddrDial(public, pub) {
		t.Error("dial of a public peer refused")
	}
}

// denyAll is an admission gate that admits nobody.
type denyAll struct{}

func (denyAll) InterceptPeerDial(peer.ID) bool               { return false }
func (denyAll) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return false }
func (denyAll) InterceptAccept(network.ConnMultiaddrs) bool  { return false }
func (denyAll) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return false
}
func (denyAll) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return false, 0 }

func TestPunchGateAsksTheAdmissionGate(t *testing.T) {
	g := newPunchGate(func(peer.ID) []ma.Multiaddr { return nil })
	g.next = denyAll{}
	a := ma.StringCast("/ip4/192.168.1.10/tcp/4040")
	if g.InterceptAddrDial("p", a) || g.InterceptPeerDial("p") || g.InterceptAccept(nil) || g.InterceptSecured(0, "p", nil) {
		t.Fatal("a peer the admission gate refuses passed")
	}
	if ok, _ := g.InterceptUpgraded(nil); ok {
		t.Fatal("a connection the admission gate refuses passed")
	}
}

func TestPunchGateDialsOnlyThePublicAddrsAMemberAnnounces(t *testing.T) {
	mapping := ma.StringCast("/ip4/7.0.0.11/tcp/4040") // a member's NAT's, seen by the DHT
	pub := ma.StringCast("/ip4/7.0.0.12/tcp/4040")
	lan := ma.StringCast("/ip4/192.168.1.10/tcp/4040")
	members := map[peer.ID][]ma.Multiaddr{
		"natted": {lan},
		"public": {ma.StringCast("/ip4/7.0.0.12/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5")},
	}
	g := newPunchGate(func(peer.ID) []ma.Multiaddr { return nil })
	if !g.InterceptAddrDial("natted", mapping) {
		t.Fatal("refused before the gate knows the members")
	}
	g.setMembers(func(p peer.ID) ([]ma.Multiaddr, bool) { as, ok := members[p]; return as, ok })
	for _, tc := range []struct {
		name string
		p    peer.ID
		addr ma.Multiaddr
		want bool
	}{
		{"a public address the member does not announce", "natted", mapping, false},
		{"the member's LAN address", "natted", lan, true},
		{"a public address the member announces", "public", pub, true},
		{"a peer that is not a member", "stranger", mapping, true},
	} {
		if got := g.InterceptAddrDial(tc.p, tc.addr); got != tc.want {
			t.Errorf("%s: dial %s allowed %v, want %v", tc.name, tc.addr, got, tc.want)
		}
	}
	g.Trace(&holepunch.Event{Type: holepunch.StartHolePunchEvtT, Remote: "natted"})
	if !g.InterceptAddrDial("natted", mapping) {
		t.Error("a hole punch may not dial the member's mapping")
	}
}
