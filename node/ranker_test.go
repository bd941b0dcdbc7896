package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirstRanker(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/udp/1/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/1"),
	}
	got := tcpFirstRanker(addrs)
	if len(got) != 2 || got[0].Delay != quicFallbackDelay || got[1].Delay != 0 {
		t.Fatalf("ranks %+v: want TCP at once, QUIC after %s", got, quicFallbackDelay)
	}
	quicOnly := tcpFirstRanker(addrs[:1])
	if len(quicOnly) != 1 || quicOnly[0].Delay != 0 {
		t.Fatalf("ranks %+v: with no TCP address, want QUIC at once", quicOnly)
	}
}

func TestRankerTriesRelaysLast(t *testing.T) {
	relayed := ma.StringCast("/ip4/198.51.100.1/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5/p2p-circuit")
	direct := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	got := tcpFirstRanker([]ma.Multiaddr{relayed, direct})
	if len(got) != 2 || got[0].Delay != relayFallbackDelay || got[1].Delay != 0 {
		t.Fatalf("ranks %+v: want the direct address at once, the relay after %s", got, relayFallbackDelay)
	}
	only := tcpFirstRanker([]ma.Multiaddr{relayed})
	if len(only) != 1 || only[0].Delay != 0 {
		t.Fatalf("ranks %+v: with only a relay address, want it at once", only)
	}
}

func TestRankerLeavesNATMappingsToTheHolePunch(t *testing.T) {
	relayed := ma.StringCast("/ip4/7.0.0.10/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5/p2p-circuit")
	mapping := ma.StringCast("/ip4/7.0.0.11/tcp/4040")
	lan := ma.StringCast("/ip4/192.168.1.10/tcp/4040")
	got := tcpFirstRanker([]ma.Multiaddr{mapping, lan, relayed})
	if len(got) != 2 || !got[0].Addr.Equal(lan) || got[0].Delay != 0 || !got[1].Addr.Equal(relayed) || got[1].Delay != relayFallbackDelay {
		t.Fatalf("ranks %+v: want the LAN address at once, the relay after %s, not the public one", got, relayFallbackDelay)
	}
	// A hole punch's dial is direct only: the public address stays.
	if got := tcpFirstRanker([]ma.Multiaddr{mapping}); len(got) != 1 || got[0].Delay != 0 {
		t.Fatalf("ranks %+v: want the public address at once", got)
	}
}

func TestNodesConnectOverTCP(t *testing.T) {
	nodes := newTestNetwork(t, 3)
	for _, n := range nodes {
		for _, c := range n.Host().Network().Conns() {
			if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err != nil {
				t.Fatalf("connection over %s, want TCP first", c.RemoteMultiaddr())
			}
		}
	}
}
