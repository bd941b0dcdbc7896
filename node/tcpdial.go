package node

import (
	"context"
	"net"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/tcpreuse"
	"github.com/libp2p/go-reuseport"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// tcpTransport is libp2p's TCP transport with p2pshare's choice of the
// local port of each dial. libp2p dials every TCP connection from the
// listen port (SO_REUSEPORT), so that peers observe the NAT mapping of
// that port and a hole punch can open it. But then every dial to a NATed
// peer's router mapping uses the 4-tuple its hole punch needs: a dial out
// of step with the peer (a DHT query before the peer has a relay address,
// a get racing the peer's relay address) fails and leaves this node's
// router a half-open conntrack entry on it for two minutes; the peer's
// SYN of a later hole punch is then forwarded to this node's listener,
// whose answer the router drops as out of window, and whose half-open
// connection holds the 4-tuple, so the node's own hole punch dial cannot
// use the listen port either.
//
// So only the dials that need the listen port use it: a hole punch, and a
// dial to a relay or bootstrap peer (whose observation of this node is the
// mapping a hole punch opens). Every other dial leaves from a random port,
// and cannot spoil a hole punch.
type tcpTransport struct {
	*tcp.TcpTransport
}

// tcpTransportFor returns the libp2p transport constructor of the node's
// TCP transport; observers reports whether a peer's observation of this
// node's address is wanted.
func tcpTransportFor(listen func() []ma.Multiaddr, observers func(peer.ID) bool) func(transport.Upgrader, network.ResourceManager, *tcpreuse.ConnMgr) (transport.Transport, error) {
	return func(u transport.Upgrader, rm network.ResourceManager, shared *tcpreuse.ConnMgr) (transport.Transport, error) {
		d := &portDialer{listen: listen, observers: observers}
		t, err := tcp.NewTCPTransport(u, rm, shared, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) { return d, nil }))
		if err != nil {
			return nil, err
		}
		return tcpTransport{t}, nil
	}
}

type dialPeerKey struct{}

// Dial implements transport.Transport.
func (t tcpTransport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	return t.TcpTransport.Dial(context.WithValue(ctx, dialPeerKey{}, p), raddr, p)
}

// DialWithUpdates implements transport.DialUpdater.
func (t tcpTransport) DialWithUpdates(ctx context.Context, raddr ma.Multiaddr, p peer.ID, updates chan<- transport.DialUpdate) (transport.CapableConn, error) {
	return t.TcpTransport.DialWithUpdates(context.WithValue(ctx, dialPeerKey{}, p), raddr, p, updates)
}

// portDialer dials a hole punch and an observer (a relay or bootstrap
// peer) from the listen port, anything else from a random port.
type portDialer struct {
	listen    func() []ma.Multiaddr
	observers func(peer.ID) bool
}

// DialContext implements tcp.ContextDialer.
func (d *portDialer) DialContext(ctx context.Context, netw, address string) (net.Conn, error) {
	var plain net.Dialer
	laddr := d.localAddr(ctx, netw)
	if laddr == nil {
		return plain.DialContext(ctx, netw, address)
	}
	reuse := net.Dialer{LocalAddr: laddr, Control: reuseport.Control}
	c, err := reuse.DialContext(ctx, netw, address)
	if err == nil || ctx.Err() != nil {
		return c, err
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil, err
	}
	// The 4-tuple is taken (a connection on it lingers): as libp2p does,
	// dial again from a random port.
	return plain.DialContext(ctx, netw, address)
}

// localAddr is the listen address to dial from, or nil for a random port.
func (d *portDialer) localAddr(ctx context.Context, netw string) *net.TCPAddr {
	punch, _, _ := network.GetSimultaneousConnect(ctx)
	p, _ := ctx.Value(dialPeerKey{}).(peer.ID)
	if !punch && (p == "" || !d.observers(p)) {
		return nil
	}
	for _, a := range d.listen() {
		na, err := manet.ToNetAddr(a)
		if err != nil {
			continue
		}
		ta, ok := na.(*net.TCPAddr)
		if !ok || ta.Port == 0 || ta.IP.IsLoopback() || (ta.IP.To4() != nil) != (netw == "tcp4") {
			continue
		}
		return ta
	}
	return nil
}

var _ transport.DialUpdater = tcpTransport{}

// listenAddrs returns the addresses the host listens on (none before it
// starts).
func (n *Node) listenAddrs() []ma.Multiaddr {
	h, _ := n.hostRef.Load().(host.Host)
	if h == nil {
		return nil
	}
	return h.Network().ListenAddresses()
}

// observer reports whether p's observation of this node's address matters:
// p is a configured bootstrap or relay peer, or offers a relay. Its
// connection is dialled from the listen port, whose NAT mapping a hole
// punch opens.
func (n *Node) observer(p peer.ID) bool {
	for _, set := range [][]peer.AddrInfo{n.cfg.Bootstrap, n.cfg.Relays} {
		for _, ai := range set {
			if ai.ID == p {
				return true
			}
		}
	}
	h, _ := n.hostRef.Load().(host.Host)
	if h == nil {
		return false
	}
	hop, _ := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop)
	return len(hop) > 0
}
