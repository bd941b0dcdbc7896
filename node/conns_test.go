package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// TestDHTPeersDoNotLiftMaxPeers: peers the DHT protects are trimmed like
// others, after those of lower value, while peers protected for any other
// reason (a mesh, a watcher) stay; the connections left are the low
// watermark plus those protected.
func TestDHTPeersDoNotLiftMaxPeers(t *testing.T) {
	const low, high = 2, 3
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	a := connsHost(t, libp2p.ConnectionManager(boundedConns{cm}))
	var others []host.Host
	for range 6 {
		b := connsHost(t)
		if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			t.Fatal(err)
		}
		others = append(others, b)
	}
	cmgr := a.ConnManager()
	for _, b := range others[:4] {
		cmgr.Protect(b.ID(), dhtTableTag)
	}
	watched, plain := others[4].ID(), others[5].ID()
	cmgr.Protect(watched, "p2pshare-watch")

	waitFor(t, 10*time.Second, "the trim down to the low watermark and the protected peer", func() bool {
		cmgr.TrimOpenConns(context.Background())
		return len(a.Network().Peers()) == low+1
	})
	if a.Network().Connectedness(watched) != network.Connected {
		t.Error("the trim closed a protected peer's connection")
	}
	if a.Network().Connectedness(plain) == network.Connected {
		t.Error("the trim kept a peer of no value over the DHT's")
	}
}

// TestDHTUnprotect: the DHT's Unprotect removes its value and says
// whether another tag still protects the peer; other tags are
// protections as before.
func TestDHTUnprotect(t *testing.T) {
	cm, err := connmgr.NewConnManager(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	c := boundedConns{cm}
	p := peer.ID("peer")
	c.Protect(p, dhtTableTag)
	if c.IsProtected(p, "") {
		t.Fatal("the DHT's Protect protected the peer")
	}
	if v := c.GetTagInfo(p).Tags[dhtTableTag]; v != dhtTableValue {
		t.Fatalf("the DHT's Protect valued the peer at %d, want %d", v, dhtTableValue)
	}
	if c.Unprotect(p, dhtTableTag) {
		t.Error("Unprotect of the DHT's tag says the peer is protected")
	}
	if _, ok := c.GetTagInfo(p).Tags[dhtTableTag]; ok {
		t.Error("Unprotect of the DHT's tag left its value")
	}
	c.Protect(p, "mesh")
	c.Protect(p, dhtTableTag)
	if !c.Unprotect(p, dhtTableTag) {
		t.Error("Unprotect of the DHT's tag says a mesh peer is not protected")
	}
	if c.Unprotect(p, "mesh") || c.IsProtected(p, "") {
		t.Error("Unprotect of the last protection left the peer protected")
	}
}

func connsHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
