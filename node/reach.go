package node

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pshare/p2pshare/node/admit"
)

// Observers is how many peers (counted by IP address) must report the same
// public address of this node before the node announces it. libp2p's
// default of 4 suits a public network of thousands; a p2pshare network may
// have a single public node, its bootstrap, which is then the only peer
// that ever sees a NATed node's router. With 4, a NATed node never
// announces its router's address, and the public node, as AutoNAT asks
// only peers that announce a public address, finds nobody to test it: it
// stays of unknown reachability, runs no relay, and nodes behind two NATs
// never reach each other. An address reported wrongly costs a failed dial
// (AutoNAT v2 tests each announced address); hole punching uses an
// address seen once anyway.
const Observers = 1

func init() { observedaddrs.ActivationThresh = Observers }

// RelayLimits bound the Circuit Relay v2 service of a publicly reachable
// node. libp2p's defaults (2 minutes and 128 KiB per relayed connection)
// suit a hole punch's signalling, not a file; these let a relay carry a
// transfer when the hole punch fails (a symmetric NAT), and cap what the
// relay's operator spends: at most MaxReservations·MaxCircuits relayed
// connections, each with two relayBufferSize buffers, and the bandwidth
// of every byte relayed, in and out.
type RelayLimits struct {
	// MaxDuration is how long one relayed connection may last. Default 1 h.
	MaxDuration time.Duration
	// MaxData is how many bytes one relayed connection may carry each
	// way; a get cut by it goes on from the verified offset over a new
	// connection. Default 4 GiB (the default largest file).
	MaxData int64
	// MaxReservations is how many peers may hold a slot at once.
	// Default 128.
	MaxReservations int
	// MaxCircuits is how many relayed connections each peer with a slot
	// may have open at once. Default 8.
	MaxCircuits int
}

// relayBufferSize is the buffer of each direction of a relayed connection:
// libp2p's default of 2 KiB costs a system call per 2 KiB relayed.
const relayBufferSize = 32 << 10

// DefaultRelayLimits returns the defaults documented on RelayLimits.
func DefaultRelayLimits() RelayLimits {
	return RelayLimits{MaxDuration: time.Hour, MaxData: 4 << 30, MaxReservations: 128, MaxCircuits: 8}
}

func (l RelayLimits) resources() relay.Resources {
	rc := relay.DefaultResources()
	rc.Limit = &relay.RelayLimit{Duration: l.MaxDuration, Data: l.MaxData}
	rc.MaxReservations = l.MaxReservations
	rc.MaxCircuits = l.MaxCircuits
	rc.BufferSize = relayBufferSize
	return rc
}

// reachOptions are the libp2p options for reachability, relays and hole
// punching: AutoNAT (v1 service and client, which decide the node's
// reachability, and v2, which checks each address), the relay transport,
// the relay service (libp2p runs it only while the node is public),
// AutoRelay (reservations while the node is private), DCUtR hole punching,
// port mapping and the announced addresses.
func (n *Node) reachOptions() []libp2p.Option {
	cfg := n.cfg
	relayOpts := []relay.Option{relay.WithResources(cfg.Relay.resources())}
	if n.gate != nil {
		relayOpts = append(relayOpts, relay.WithACL(relayACL{n.gate}))
	}
	opts := []libp2p.Option{
		libp2p.EnableRelay(),
		libp2p.EnableRelayService(relayOpts...),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableHolePunching(holepunch.WithMetricsAndEventTracer(
			holepunch.NewMetricsTracer(holepunch.WithRegisterer(n.metrics.reg)),
			holePunchTracers{n.metrics.holePunch, n.punch})),
	}
	relays := cfg.Relays
	if len(relays) == 0 {
		relays = cfg.Bootstrap
	}
	opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates(relays),
		autorelay.WithMinCandidates(1),
		autorelay.WithMinInterval(10*time.Second),
		autorelay.WithBackoff(30*time.Second)))
	if cfg.PortMap && !loopbackOnly(cfg.ListenAddrs) {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch cfg.Reachability {
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case network.ReachabilityPrivate:
		// A node known to be private answers no AutoNAT requests (and
		// libp2p would leave the service's dialer running for good).
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.Reachability != network.ReachabilityPrivate {
		opts = append(opts, libp2p.EnableNATService())
	}
	if len(cfg.Announce) > 0 {
		announce := slices.Clone(cfg.Announce)
		opts = append(opts, libp2p.AddrsFactory(func(found []ma.Multiaddr) []ma.Multiaddr {
			return announcedAddrs(announce, found)
		}))
	}
	return opts
}

// relayCandidates is where a private node looks for relays to reserve a
// slot on: the configured ones (Config.Relays, else the bootstrap peers),
// then the connected peers that offer a relay (public members). libp2p
// asks again, at most every 10 s, while it has no candidate left.
func (n *Node) relayCandidates(static []peer.AddrInfo) autorelay.PeerSource {
	static = slices.Clone(static)
	return func(_ context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, num)
		defer close(out)
		seen := map[peer.ID]bool{}
		add := func(ai peer.AddrInfo) {
			if len(out) < num && !seen[ai.ID] {
				seen[ai.ID] = true
				out <- ai
			}
		}
		for _, ai := range static {
			add(ai)
		}
		h, _ := n.hostRef.Load().(host.Host)
		if h == nil {
			return out
		}
		for _, p := range h.Network().Peers() {
			if ok, _ := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) > 0 {
				add(h.Peerstore().PeerInfo(p))
			}
		}
		return out
	}
}

// announcedAddrs is what a node with --announce announces: exactly
// announce, and the relay addresses among found (libp2p adds them while the
// node is private).
func announcedAddrs(announce, found []ma.Multiaddr) []ma.Multiaddr {
	out := slices.Clone(announce)
	for _, a := range found {
		if isRelayAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// loopbackOnly reports whether every listen address is a loopback one: no
// router can map those, and asking one would send traffic off the machine.
func loopbackOnly(listen []ma.Multiaddr) bool {
	for _, a := range listen {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

func isRelayAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// relayACL lets only admitted peers reserve a slot on this node's relay or
// open a circuit through it: a relayed connection carries data only
// between two peers that passed this node's admission gate (and, as it
// runs over a connection to this node, its swarm key).
type relayACL struct{ g *admit.Gate }

// AllowReserve implements relay.ACLFilter. A peer asks for a slot right
// after it connects, so it is given the admission handshake's time.
func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return a.g.Wait(context.Background(), p) == nil
}

// AllowConnect implements relay.ACLFilter.
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.g.Wait(context.Background(), src) == nil && a.g.Admitted(dest)
}

// reachability follows the node's reachability as AutoNAT reports it.
type reachability struct{ v atomic.Int32 }

func (r *reachability) get() network.Reachability { return network.Reachability(r.v.Load()) }

// watchReachability records every reachability change and logs it, and
// the relay addresses a private node gets (or loses); on each of these
// and on every change of its addresses or of their reachability it has
// membership announce what it announces (memberAddrs) again.
func (n *Node) watchReachability(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				r := e.Reachability
				n.reach.v.Store(int32(r))
				n.log.Info("reachability", "now", ReachabilityString(r), "dht", dhtModeFor(r), "relay_service", r == network.ReachabilityPublic)
			case event.EvtAutoRelayAddrsUpdated:
				n.log.Info("relay addresses", "addrs", e.RelayAddrs)
			}
			n.memb.AddrsChanged()
		}
	}
}

// dhtModeFor names the DHT mode kad-dht's ModeAutoServer picks for r.
func dhtModeFor(r network.Reachability) string {
	if r == network.ReachabilityPrivate {
		return "client"
	}
	return "server"
}

// ReachabilityString is r as the API shows it: public, private or unknown.
func ReachabilityString(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// Reachability returns whether this node can be dialled from the internet,
// as AutoNAT found (or Config.Reachability forced).
func (n *Node) Reachability() network.Reachability { return n.reach.get() }

// memberAddrs returns the addresses this node announces to members (see
// gossip.Config.Addrs): the host's, less the public ones it has not shown
// reachable. Such an address is a mapping of this node's NAT that peers
// observed, and members ping the members they watch whether or not they
// are connected: a member behind a NAT of its own would dial the mapping
// again and again, in vain, and a dial of it still under way when a hole
// punch with this node starts takes the hole punch's place (libp2p joins
// a dial to one of the same address under way, and that one leaves from
// a random port: see tcpTransport), so the hole punch fails. So it is
// announced once AutoNAT v2 finds it open or AutoNAT finds the node
// public. Addresses on this host's interfaces, --announce ones, private
// and relay addresses are announced as they are.
func (n *Node) memberAddrs() []ma.Multiaddr {
	all := n.host.Addrs()
	if n.Reachability() == network.ReachabilityPublic {
		return all
	}
	var open []ma.Multiaddr
	if c, ok := n.host.(confirmedAddrser); ok {
		open, _, _ = c.ConfirmedAddrs()
	}
	own, _ := n.host.Network().InterfaceListenAddresses()
	return dialableAddrs(all, own, n.cfg.Announce, open)
}

// dialableAddrs returns those of addrs that are not public, are relay
// addresses or are among known: the public and relay ones first, for a
// heartbeat too large keeps the first half of its addresses (and a
// member's other public addresses are dialled only in a hole punch: see
// punchGate), the private ones after.
func dialableAddrs(addrs []ma.Multiaddr, known ...[]ma.Multiaddr) []ma.Multiaddr {
	var reachable, private []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case isRelayAddr(a):
			reachable = append(reachable, a)
		case !manet.IsPublicAddr(a):
			private = append(private, a)
		case slices.ContainsFunc(known, func(k []ma.Multiaddr) bool { return slices.ContainsFunc(k, a.Equal) }):
			reachable = append(reachable, a)
		}
	}
	return append(reachable, private...)
}

// confirmedAddrser is what libp2p's basic host implements with AutoNAT v2:
// its addresses by reachability as AutoNAT v2 found.
type confirmedAddrser interface {
	ConfirmedAddrs() (reachable, unreachable, unknown []ma.Multiaddr)
}

// publicAddrs returns the addresses others can dial this node at: those
// it announces that are public (found by peers' observations or port
// mapping), the --announce ones, and its relay addresses.
func (n *Node) publicAddrs() []string {
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		announced := slices.ContainsFunc(n.cfg.Announce, a.Equal)
		if manet.IsPublicAddr(a) || isRelayAddr(a) || announced {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []string{}
	}
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: out})
	if err != nil {
		return []string{}
	}
	return FormatAddrs(addrs)
}

// holePunchCounter counts hole punches (DCUtR) by outcome, from libp2p's
// hole punching events.
type holePunchCounter struct {
	tried, succeeded atomic.Int64
}

// Trace implements holepunch.EventTracer.
func (h *holePunchCounter) Trace(e *holepunch.Event) {
	if e.Type != holepunch.EndHolePunchEvtT {
		return
	}
	h.tried.Add(1)
	if end, ok := e.Evt.(*holepunch.EndHolePunchEvt); ok && end.Success {
		h.succeeded.Add(1)
	}
}

func (h *holePunchCounter) collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "p2pshare", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("holepunch_tried_total", "Hole punches (DCUtR) this node took part in.", &h.tried),
		counter("holepunch_succeeded_total", "Hole punches that ended on a direct connection.", &h.succeeded),
	}
}
