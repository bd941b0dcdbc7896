package share

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// How a connection runs: straight to the peer, or through a relay (Circuit
// Relay v2) until hole punching makes it direct.
const (
	ViaDirect  = "direct"
	ViaRelayed = "relayed"
)

// ConnVia reports how c runs and, for a relayed connection, through which
// relay (empty if its address does not say).
func ConnVia(c network.Conn) (via string, relay peer.ID) {
	a := c.RemoteMultiaddr()
	relayed := c.Stat().Limited
	before, _ := ma.SplitFunc(a, func(c ma.Component) bool {
		if c.Protocol().Code == ma.P_CIRCUIT {
			relayed = true
			return true
		}
		return false
	})
	if !relayed {
		return ViaDirect, ""
	}
	if id, err := peer.IDFromP2PAddr(before); err == nil {
		relay = id
	}
	return ViaRelayed, relay
}

// relayedOnly reports whether every connection to p is relayed (false if
// there is none).
func relayedOnly(nw network.Network, p peer.ID) bool {
	conns := nw.ConnsToPeer(p)
	for _, c := range conns {
		if via, _ := ConnVia(c); via == ViaDirect {
			return false
		}
	}
	return len(conns) > 0
}

type viaKey struct{}

// withViaRecord returns ctx with a place where openStream writes how the
// last stream opened under it runs.
func withViaRecord(ctx context.Context, via *string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

// openStream opens a stream to p, preferring a direct connection: when p is
// reachable only through a relay, it waits up to DirectWait for a direct
// connection (the hole punch DCUtR starts when a relayed connection opens;
// a peer that announces no relay address is also dialled directly here)
// and then uses the relayed connection rather than fail. why names the use, as
// libp2p asks of every stream allowed on a limited (relayed) connection.
func (s *Service) openStream(ctx context.Context, p peer.ID, pid protocol.ID, why string) (network.Stream, error) {
	nw := s.h.Network()
	if nw.Connectedness(p) != network.Connected {
		if err := s.connect(ctx, p); err != nil {
			return nil, err
		}
	}
	if relayedOnly(nw, p) && s.cfg.DirectWait > 0 {
		if st, err := s.waitDirect(ctx, p, pid, why); err == nil {
			return s.recordVia(ctx, st), nil
		} else if ctx.Err() != nil {
			return nil, err
		}
		s.log.Debug("no direct connection in time, using the relay", "peer", p, "for", why, "waited", s.cfg.DirectWait)
	}
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, why), p, pid)
	if err != nil {
		return nil, err
	}
	return s.recordVia(ctx, st), nil
}

// connect connects to p. A peer behind a NAT is reached through the relay
// addresses it announces, which its DHT server peers keep current; what
// this node learned of p in passing (a DHT answer, a provider record) may
// predate them and hold only p's router's mapping, a dial to which fails
// and, out of step with p, spoils a later hole punch (see node's ranker).
// So unless a relay address of p is known, p's current addresses are
// looked up first; a failed lookup leaves the dial to what is known.
func (s *Service) connect(ctx context.Context, p peer.ID) error {
	s.lookUpAddrs(ctx, p)
	return s.h.Connect(ctx, peer.AddrInfo{ID: p})
}

// lookUpAddrs adds p's current addresses to the peerstore, unless this
// node is connected to p or knows a relay address of p (see connect).
// Whatever dials p next (a ping, a stream) then knows whether p is behind
// a NAT, and leaves p's router mapping to the hole punch.
func (s *Service) lookUpAddrs(ctx context.Context, p peer.ID) {
	if s.h.Network().Connectedness(p) == network.Connected || slices.ContainsFunc(s.h.Peerstore().Addrs(p), isRelayAddr) {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, findPeerTimeout)
	defer cancel()
	if found, err := s.rt.FindPeer(fctx, p); err == nil {
		s.h.Peerstore().AddAddrs(p, found.Addrs, peerstore.TempAddrTTL)
	}
}

// findPeerTimeout bounds the DHT lookup of a peer's current addresses.
const findPeerTimeout = 5 * time.Second

// waitDirect opens a stream to p on a direct connection made within
// DirectWait.
func (s *Service) waitDirect(ctx context.Context, p peer.ID, pid protocol.ID, why string) (network.Stream, error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.DirectWait)
	defer cancel()
	// A peer that announces relay addresses is behind a NAT: only the
	// hole punch, in step with the peer, can open its router's mapping, and
	// a dial out of step would spoil it (see node's ranker).
	if !slices.ContainsFunc(s.h.Peerstore().Addrs(p), isRelayAddr) {
		dialed := make(chan struct{})
		go func() {
			defer close(dialed)
			_ = s.h.Connect(network.WithForceDirectDial(wctx, why), peer.AddrInfo{ID: p})
		}()
		defer func() {
			cancel()
			<-dialed
		}()
	}
	// Without leave to use a limited connection, the swarm waits for a
	// direct one (hole punch, the dial above) until wctx ends.
	return s.h.NewStream(wctx, p, pid)
}

func (s *Service) recordVia(ctx context.Context, st network.Stream) network.Stream {
	if rec, ok := ctx.Value(viaKey{}).(*string); ok {
		*rec, _ = ConnVia(st.Conn())
	}
	return st
}

func isRelayAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
