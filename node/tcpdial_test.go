package node

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDialsFromTheListenPortOnlyForHolePunchesAndObservers(t *testing.T) {
	const relay, other = peer.ID("relay"), peer.ID("other")
	lan := []ma.Multiaddr{ma.StringCast("/ip4/192.168.1.10/udp/4040/quic-v1"), ma.StringCast("/ip4/192.168.1.10/tcp/4040")}
	any4 := []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4040")}
	loop := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4040")}
	punch := network.WithSimultaneousConnect(context.Background(), true, "hole-punching")
	to := func(ctx context.Context, p peer.ID) context.Context { return context.WithValue(ctx, dialPeerKey{}, p) }
	cases := []struct {
		name   string
		listen []ma.Multiaddr
		ctx    context.Context
		net    string
		want   string // "" for a random port
	}{
		{"a peer", lan, to(context.Background(), other), "tcp4", ""},
		{"no peer known", lan, context.Background(), "tcp4", ""},
		{"a relay", lan, to(context.Background(), relay), "tcp4", "192.168.1.10:4040"},
		{"a hole punch", lan, to(punch, other), "tcp4", "192.168.1.10:4040"},
		{"unspecified listen address", any4, to(punch, other), "tcp4", "0.0.0.0:4040"},
		{"other family", lan, to(punch, other), "tcp6", ""},
		{"loopback only", loop, to(punch, other), "tcp4", ""},
		{"not listening yet", nil, to(punch, other), "tcp4", ""},
	}
	for _, c := range cases {
		d := &portDialer{listen: func() []ma.Multiaddr { return c.listen }, observers: func(p peer.ID) bool { return p == relay }}
		got := ""
		if a := d.localAddr(c.ctx, c.net); a != nil {
			got = a.String()
		}
		if got != c.want {
			t.Errorf("%s: dials from %q, want %q", c.name, got, c.want)
		}
	}
}
