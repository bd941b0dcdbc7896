package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// quicFallbackDelay is how long a dial waits for TCP before it also tries
// QUIC. It was 300 ms: on a loaded machine (100 daemons starting on two
// cores) TCP handshakes took longer, QUIC won the race, and those
// connections stayed on QUIC, whose idle connections cost more CPU
// (BENCHMARKS.md, Idle daemons).
const quicFallbackDelay = 2 * time.Second

// tcpFirstRanker dials TCP addresses at once and QUIC ones only after
// quicFallbackDelay, or at once if there is no TCP address to wait for.
// libp2p's default ranker prefers QUIC, but TCP with TLS (hardware
// AES-GCM) and yamux moved about 1.8x the bytes of QUIC on the machines
// p2pshare is measured on, and files are what this network moves.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	delay := time.Duration(0)
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			delay = quicFallbackDelay
			break
		}
	}
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range addrs {
		d := time.Duration(0)
		if _, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			d = delay
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	return out
}
