package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// quicFallbackDelay is how long a dial waits for TCP before it also tries
// QUIC. It is long on purpose: on a loaded machine (100 daemons starting
// on two cores) TCP handshakes take hundreds of milliseconds, with a short
// delay QUIC wins the race, and those connections stay on QUIC, whose idle
// connections cost more CPU.
const quicFallbackDelay = 2 * time.Second

// relayFallbackDelay is how long a dial tries a peer's direct addresses
// before it also tries its relay addresses: a relayed connection is slower,
// limited, and only a way to the hole punch.
const relayFallbackDelay = time.Second

// tcpFirstRanker dials TCP addresses at once and QUIC ones only after
// quicFallbackDelay, or at once if there is no TCP address to wait for.
// libp2p's default ranker prefers QUIC, but TCP with TLS (hardware
// AES-GCM) and yamux moved about 1.8x the bytes of QUIC on the machines
// p2pshare is measured on, and files are what this network moves. Relay
// addresses wait relayFallbackDelay when there is a direct one to try.
//
// A peer that announces relay addresses is behind a NAT: its public
// direct addresses are its router's mappings, which only a hole punch
// (DCUtR, whose dials are direct only and so keep them) opens. They are
// left out: a dial out of step with the peer's fails, and leaves in the
// peer's router a half-open TCP entry (two minutes in Linux conntrack)
// that makes the hole punch over the same ports fail too.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	behindNAT := slices.ContainsFunc(addrs, isRelayAddr)
	quicDelay, relayDelay := time.Duration(0), time.Duration(0)
	kept := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		if isRelayAddr(a) {
			kept = append(kept, a)
			continue
		}
		if behindNAT && manet.IsPublicAddr(a) {
			continue
		}
		kept = append(kept, a)
		relayDelay = relayFallbackDelay
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			quicDelay = quicFallbackDelay
		}
	}
	out := make([]network.AddrDelay, 0, len(kept))
	for _, a := range kept {
		d := time.Duration(0)
		if isRelayAddr(a) {
			d = relayDelay
		} else if _, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			d = quicDelay
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	return out
}
