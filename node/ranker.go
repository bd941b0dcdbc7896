package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// quicFallbackDelay is how long a dial waits for TCP before it also tries
// QUIC.
const quicFallbackDelay = 300 * time.Millisecond

// tcpFirstRanker dials TCP addresses at once and QUIC ones only after
// quicFallbackDelay. libp2p's default ranker prefers QUIC, but TCP with TLS
// (hardware AES-GCM) and yamux moved about 1.8x the bytes of QUIC on the
// machines p2pshare is measured on, and files are what this network moves.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range addrs {
		d := time.Duration(0)
		if _, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			d = quicFallbackDelay
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	return out
}
