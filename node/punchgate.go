package node

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// punchGate keeps this node's dials to a NATed peer's router in step with
// the peer. A peer that announces relay addresses is behind a NAT; the
// public addresses it announces are its router's mappings, which AutoNAT
// found closed to unsolicited connections. A dial to one fails, and while
// it lasts and for two minutes after (Linux conntrack's SYN_SENT timeout)
// this node's own router holds a half-open TCP entry for the very ports a
// hole punch uses: when the peer's SYN of a later hole punch meets that
// entry, the router forwards it to this node as a reply, the node's answer
// is out of the entry's window and is dropped, and every hole punch fails
// until the entry expires. So such addresses are dialled only during a
// hole punch with that peer (DCUtR, whose dials both peers start at the
// same time), whichever part of the node dials: libp2p's hole puncher,
// which tries a plain direct dial first, the DHT, transfers. The peer's
// private addresses stay dialable: it may be on this node's LAN.
//
// A peer does not announce relay addresses before AutoNAT's verdict,
// some 15 s after it starts, and this node hears of them later still when
// it is not connected to the peer. Meanwhile it may know the peer's
// mapping from the DHT or from a peer that observed it, and a dial of it
// still under way when the hole punch starts takes the hole punch's place
// (see Node.memberAddrs). A member says itself which public addresses may
// be dialled: it announces only those AutoNAT found open. So a public
// address of a member that the member does not announce is dialled only
// in a hole punch too.
//
// It is the host's connection gater, in front of the admission gate (if
// any), and follows hole punches through libp2p's hole punching events.
type punchGate struct {
	next   connmgr.ConnectionGater // nil: admit every peer
	relays func(peer.ID) bool      // whether a peer announces a relay address
	// members, once set, gives a member's announced addresses.
	members atomic.Pointer[func(peer.ID) ([]ma.Multiaddr, bool)]

	mu       sync.Mutex
	punching map[peer.ID]int // hole punches under way, by peer
}

// newPunchGate returns a gate that finds a peer's announced addresses with
// addrs (the peerstore's) and admits every peer; set next to gate them.
func newPunchGate(addrs func(peer.ID) []ma.Multiaddr) *punchGate {
	return &punchGate{
		relays:   func(p peer.ID) bool { return slices.ContainsFunc(addrs(p), isRelayAddr) },
		punching: map[peer.ID]int{},
	}
}

// Trace implements holepunch.EventTracer: a hole punch with a peer runs
// from its start event to its end event.
func (g *punchGate) Trace(e *holepunch.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch e.Type {
	case holepunch.StartHolePunchEvtT:
		g.punching[e.Remote]++
	case holepunch.EndHolePunchEvtT:
		if g.punching[e.Remote]--; g.punching[e.Remote] <= 0 {
			delete(g.punching, e.Remote)
		}
	}
}

func (g *punchGate) inPunch(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.punching[p] > 0
}

// setMembers has the gate ask announced for a member's announced
// addresses (ok false for a peer that is not a member, or that announced
// none).
func (g *punchGate) setMembers(announced func(peer.ID) ([]ma.Multiaddr, bool)) {
	g.members.Store(&announced)
}

// unannounced reports whether p is a member that does not announce a.
func (g *punchGate) unannounced(p peer.ID, a ma.Multiaddr) bool {
	f := g.members.Load()
	if f == nil {
		return false
	}
	addrs, ok := (*f)(p)
	return ok && !slices.ContainsFunc(addrs, func(b ma.Multiaddr) bool { return sameTransportAddr(a, b) })
}

// sameTransportAddr reports whether a and b are the same address, either
// with a /p2p/ID part or without.
func sameTransportAddr(a, b ma.Multiaddr) bool {
	a, _ = peer.SplitAddr(a)
	b, _ = peer.SplitAddr(b)
	return a != nil && b != nil && a.Equal(b)
}

// InterceptAddrDial implements connmgr.ConnectionGater: it refuses a public
// direct address of a peer behind a NAT, or of a member that does not
// announce it, outside a hole punch with the peer.
func (g *punchGate) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if manet.IsPublicAddr(a) && !isRelayAddr(a) && !g.inPunch(p) && (g.relays(p) || g.unannounced(p, a)) {
		return false
	}
	return g.next == nil || g.next.InterceptAddrDial(p, a)
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *punchGate) InterceptPeerDial(p peer.ID) bool {
	return g.next == nil || g.next.InterceptPeerDial(p)
}

// InterceptAccept implements connmgr.ConnectionGater.
func (g *punchGate) InterceptAccept(c network.ConnMultiaddrs) bool {
	return g.next == nil || g.next.InterceptAccept(c)
}

// InterceptSecured implements connmgr.ConnectionGater.
func (g *punchGate) InterceptSecured(d network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return g.next == nil || g.next.InterceptSecured(d, p, c)
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *punchGate) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if g.next == nil {
		return true, 0
	}
	return g.next.InterceptUpgraded(c)
}

// holePunchTracers passes libp2p's hole punching events to each tracer.
type holePunchTracers []holepunch.EventTracer

// Trace implements holepunch.EventTracer.
func (ts holePunchTracers) Trace(e *holepunch.Event) {
	for _, t := range ts {
		t.Trace(e)
	}
}
