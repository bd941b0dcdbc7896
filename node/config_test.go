package node

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func testPeerID(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrStrings(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestParseBootstrap(t *testing.T) {
	a, b := testPeerID(t), testPeerID(t)

	infos, err := ParseBootstrap([]string{"/ip4/127.0.0.1/tcp/1/p2p/" + a.String()})
	if err != nil {
		t.Fatalf("ParseBootstrap: %v", err)
	}
	if len(infos) != 1 || infos[0].ID != a || !slices.Equal(addrStrings(infos[0].Addrs), []string{"/ip4/127.0.0.1/tcp/1"}) {
		t.Fatalf("ParseBootstrap = %v, want %s at /ip4/127.0.0.1/tcp/1", infos, a)
	}

	// Two addresses of one peer merge into one AddrInfo; another peer stays apart.
	infos, err = ParseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/1/p2p/" + a.String(),
		"/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + a.String(),
		"/ip6/::1/tcp/2/p2p/" + b.String(),
	})
	if err != nil {
		t.Fatalf("ParseBootstrap: %v", err)
	}
	byID := map[peer.ID][]string{}
	for _, in := range infos {
		if _, dup := byID[in.ID]; dup {
			t.Fatalf("peer %s listed twice: %v", in.ID, infos)
		}
		byID[in.ID] = addrStrings(in.Addrs)
	}
	if len(byID) != 2 {
		t.Fatalf("ParseBootstrap = %v, want 2 peers", infos)
	}
	if want := []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/1/quic-v1"}; !slices.Equal(byID[a], want) {
		t.Errorf("peer a addrs = %v, want %v", byID[a], want)
	}
	if want := []string{"/ip6/::1/tcp/2"}; !slices.Equal(byID[b], want) {
		t.Errorf("peer b addrs = %v, want %v", byID[b], want)
	}

	if infos, err := ParseBootstrap(nil); err != nil || len(infos) != 0 {
		t.Errorf("ParseBootstrap(nil) = %v, %v", infos, err)
	}

	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/1", // no /p2p
		"not-an-addr",          // not a multiaddr
		"",                     // empty
		"/ip4/127.0.0.1/tcp/1/p2p/notapeerid",
		"/ip4/999.0.0.1/tcp/1/p2p/" + a.String(),
		"/p2p/" + a.String() + "/ip4/127.0.0.1/tcp/1", // /p2p not last
	} {
		if infos, err := ParseBootstrap([]string{"/ip4/127.0.0.1/tcp/1/p2p/" + b.String(), s}); err == nil {
			t.Errorf("ParseBootstrap accepted %q: %v", s, infos)
		}
	}
}

func TestParseListen(t *testing.T) {
	good := []string{"/ip4/0.0.0.0/tcp/4040", "/ip6/::/udp/4040/quic-v1", "/ip4/127.0.0.1/tcp/0"}
	as, err := ParseListen(good)
	if err != nil {
		t.Fatalf("ParseListen: %v", err)
	}
	if got := addrStrings(as); !slices.Equal(got, slices.Sorted(slices.Values(good))) {
		t.Errorf("ParseListen = %v, want %v", got, good)
	}
	if as, err := ParseListen(nil); err != nil || len(as) != 0 {
		t.Errorf("ParseListen(nil) = %v, %v", as, err)
	}
	for _, s := range []string{"garbage", "", "/ip4/999.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/notaport", "127.0.0.1:4040"} {
		if as, err := ParseListen([]string{"/ip4/127.0.0.1/tcp/0", s}); err == nil {
			t.Errorf("ParseListen accepted %q: %v", s, as)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	repo := t.TempDir()
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"MaxPeers 4", func(c *Config) { c.MaxPeers = 4 }, true},
		{"equal backoffs", func(c *Config) { c.BootstrapBackoffMax = c.BootstrapBackoff }, true},
		{"empty repo", func(c *Config) { c.RepoDir = "" }, false},
		{"nil listen addrs", func(c *Config) { c.ListenAddrs = nil }, false},
		{"empty listen addrs", func(c *Config) { c.ListenAddrs = []ma.Multiaddr{} }, false},
		{"MaxPeers 3", func(c *Config) { c.MaxPeers = 3 }, false},
		{"MaxPeers 0", func(c *Config) { c.MaxPeers = 0 }, false},
		{"MaxPeers negative", func(c *Config) { c.MaxPeers = -1 }, false},
		{"zero backoff", func(c *Config) { c.BootstrapBackoff = 0 }, false},
		{"negative backoff", func(c *Config) { c.BootstrapBackoff = -time.Second }, false},
		{"max below backoff", func(c *Config) { c.BootstrapBackoffMax = c.BootstrapBackoff - 1 }, false},
	} {
		for _, base := range []struct {
			name string
			cfg  Config
		}{{"DefaultConfig", DefaultConfig(repo)}, {"DefaultLocalConfig", DefaultLocalConfig(repo)}} {
			t.Run(base.name+"/"+tc.name, func(t *testing.T) {
				c := base.cfg
				tc.mod(&c)
				err := c.validate()
				if tc.ok && err != nil {
					t.Errorf("validate: %v", err)
				}
				if !tc.ok && err == nil {
					t.Error("validate accepted the config")
				}
			})
		}
	}
}

func TestDefaultLocalConfig(t *testing.T) {
	c := DefaultLocalConfig("repo")
	if c.MDNS {
		t.Error("DefaultLocalConfig has mDNS on")
	}
	for _, a := range c.ListenAddrs {
		if v, err := a.ValueForProtocol(ma.P_IP4); err != nil || v != "127.0.0.1" {
			t.Errorf("DefaultLocalConfig listens on %s, not loopback", a)
		}
	}
	if !DefaultConfig("repo").MDNS {
		t.Error("DefaultConfig has mDNS off")
	}
}
