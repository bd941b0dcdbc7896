package node

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/share"
)

// unreachable is an address nothing listens on: what a node behind a NAT
// announces that nobody can dial.
var unreachable = ma.StringCast("/ip4/127.0.0.1/tcp/1")

func publicNode(c *Config) { c.Reachability = network.ReachabilityPublic }

// privateBehind makes a node private, with relay as its relay, announcing
// only an address nobody can dial (so others reach it through the relay
// only).
func privateBehind(relay *Node) func(*Config) {
	return func(c *Config) {
		c.Reachability = network.ReachabilityPrivate
		c.Relays = []peer.AddrInfo{addrInfo(relay)}
		c.Announce = []ma.Multiaddr{unreachable}
		c.Share.DirectWait = time.Second
	}
}

// throughRelay returns the address of p through relay r. libp2p
// announces relay addresses only for relays with public addresses, which a
// loopback test has not; the reservation is there all the same.
func throughRelay(r, p *Node) peer.AddrInfo {
	circuit := ma.StringCast("/p2p/" + r.Host().ID().String() + "/p2p-circuit")
	return peer.AddrInfo{ID: p.Host().ID(), Addrs: []ma.Multiaddr{r.Host().Addrs()[0].Encapsulate(circuit)}}
}

// connectThroughRelay connects from to p through relay r, retrying until
// p has reserved its slot on r.
func connectThroughRelay(t *testing.T, from, r, p *Node) {
	t.Helper()
	ai := throughRelay(r, p)
	var err error
	waitFor(t, 20*time.Second, "a connection through the relay", func() bool {
		from.Host().Network().(*swarm.Swarm).Backoff().Clear(p.Host().ID())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = from.Host().Connect(ctx, ai)
		return err == nil
	})
}

func peerInfo(t *testing.T, n *Node, p peer.ID) (via, relay string) {
	t.Helper()
	ps, err := n.API().Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range ps {
		if pi.ID == p.String() {
			return pi.Via, pi.Relay
		}
	}
	t.Fatalf("%s is not among the peers of %s", p, n.Host().ID())
	return "", ""
}

func TestPrivateNodeIsReachedThroughRelay(t *testing.T) {
	r := newTestNode(t, publicNode)
	p := newTestNode(t, privateBehind(r), addrInfo(r))
	c := newTestNode(t, func(c *Config) { c.Share.DirectWait = time.Second })

	id, err := p.API().ID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id.Reachability != "private" {
		t.Errorf("private node: reachability %q, want private", id.Reachability)
	}
	if rid, _ := r.API().ID(context.Background()); rid.Reachability != "public" {
		t.Errorf("relay: reachability %q, want public", rid.Reachability)
	}
	if cid, _ := c.API().ID(context.Background()); cid.Reachability != "unknown" {
		t.Errorf("loopback node: reachability %q, want unknown", cid.Reachability)
	}

	// The DHT: a server on the public and the undecided node, a client on
	// the private one.
	kad := protocol.ID(DHTPrefix + "/kad/1.0.0")
	serves := func(n *Node) bool { return slices.Contains(n.Host().Mux().Protocols(), kad) }
	waitFor(t, 10*time.Second, "the private node's DHT to become a client", func() bool { return !serves(p) })
	if !serves(r) || !serves(c) {
		t.Errorf("DHT server mode: public node %v, loopback node %v; want both true", serves(r), serves(c))
	}
	st, err := r.API().Stats(context.Background())
	if err != nil || st.Reachability != "public" {
		t.Errorf("stats: reachability %q (%v), want public", st.Reachability, err)
	}
	rec := httptest.NewRecorder()
	r.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, m := range []string{"p2pshare_holepunch_tried_total", "p2pshare_holepunch_succeeded_total"} {
		if !strings.Contains(rec.Body.String(), m+" 0") {
			t.Errorf("/metrics has no %s", m)
		}
	}

	// Shared before c connects: p's DHT (a client) would query c, a
	// server, over the relayed connection, which only transfers use.
	data := randomBytes(t, 300<<10) // more than libp2p's default relay limit of 128 KiB
	sh := shareBytes(t, p, "behind-nat.bin", data)
	connectThroughRelay(t, c, r, p)
	via, relay := peerInfo(t, c, p.Host().ID())
	if via != share.ViaRelayed || relay != r.Host().ID().String() {
		t.Errorf("peers: via %q relay %q, want relayed through %s", via, relay, r.Host().ID())
	}
	if via, _ := peerInfo(t, c, r.Host().ID()); via != share.ViaDirect {
		t.Errorf("peers: the relay itself is %q, want direct", via)
	}

	// A get from the private node waits for a direct connection, finds
	// none (its only address is unreachable) and goes over the relay.
	start := time.Now()
	res, got, err := getInto(t, c, sh.CID)
	if err != nil {
		t.Fatalf("get over the relay: %v", err)
	}
	if string(got) != string(data) {
		t.Fatal("get over the relay: bytes differ")
	}
	if res.Via != share.ViaRelayed || res.Provider != p.Host().ID().String() {
		t.Errorf("get: via %q from %s, want relayed from %s", res.Via, res.Provider, p.Host().ID())
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("get over the relay took %s: it did not wait DirectWait (1 s) for a direct connection", el)
	}
}

func TestPrivateNodeFindsARelayAmongItsPeers(t *testing.T) {
	q := newTestNode(t, nil) // bootstrap node, no relay (reachability unknown)
	r := newTestNode(t, publicNode, addrInfo(q))
	p := newTestNode(t, func(c *Config) {
		privateBehind(r)(c)
		c.Relays = nil // the bootstrap peer q is the configured relay, and offers none
	}, addrInfo(q))
	c := newTestNode(t, nil, addrInfo(q))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Host().Connect(ctx, addrInfo(r)); err != nil {
		t.Fatal(err)
	}
	connectThroughRelay(t, c, r, p)
}

func TestRelayedPeersMoveToDirectConnection(t *testing.T) {
	r := newTestNode(t, publicNode)
	private := func(c *Config) {
		c.Reachability = network.ReachabilityPrivate
		c.Relays = []peer.AddrInfo{addrInfo(r)}
		c.Share.DirectWait = 5 * time.Second
	}
	p1 := newTestNode(t, private, addrInfo(r))
	p2 := newTestNode(t, private, addrInfo(r))
	connectThroughRelay(t, p2, r, p1)
	if via, _ := peerInfo(t, p2, p1.Host().ID()); via != share.ViaRelayed {
		t.Fatalf("peers: via %q before any transfer, want relayed", via)
	}
	data := randomBytes(t, 64<<10)
	sh := shareBytes(t, p1, "punched.bin", data)
	res, got, err := getInto(t, p2, sh.CID)
	if err != nil || string(got) != string(data) {
		t.Fatalf("get: %v", err)
	}
	if res.Via != share.ViaDirect {
		t.Errorf("get: via %q, want direct (the peers can dial each other)", res.Via)
	}
	if via, _ := peerInfo(t, p2, p1.Host().ID()); via != share.ViaDirect {
		t.Errorf("peers: via %q, want direct", via)
	}
}

// repoID makes a repo in a new directory and returns the directory and
// the peer ID of the node that will run there.
func repoID(t *testing.T) (string, peer.ID) {
	t.Helper()
	dir := t.TempDir()
	repo, err := OpenRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	key, err := repo.Identity()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

func TestRelayServesOnlyAdmittedPeers(t *testing.T) {
	for _, mode := range []string{"tickets", "allowlist", "swarm key"} {
		t.Run(mode, func(t *testing.T) {
			// The relay, the private node and the one that reaches it.
			var dirs [3]string
			var ids [3]peer.ID
			for i := range dirs {
				dirs[i], ids[i] = repoID(t)
			}
			auth, err := admit.NewAuthority()
			if err != nil {
				t.Fatal(err)
			}
			psk := make([]byte, 32)
			copy(psk, randomBytes(t, 32))
			member := func(i int, more func(*Config)) func(*Config) {
				return func(c *Config) {
					c.RepoDir = dirs[i]
					switch mode {
					case "tickets":
						tk, err := auth.Admit(ids[i], time.Hour, time.Now())
						if err != nil {
							t.Fatal(err)
						}
						c.Admission = admit.Config{Authority: auth.Public(), Ticket: tk, Timeout: 2 * time.Second}
					case "allowlist":
						c.Admission = admit.Config{Allow: ids[:], Timeout: 2 * time.Second}
					case "swarm key":
						c.SwarmKey = psk
					}
					if more != nil {
						more(c)
					}
				}
			}
			r := newTestNode(t, member(0, publicNode))
			p := newTestNode(t, member(1, privateBehind(r)), addrInfo(r))
			// Both behind NATs: c is no DHT server that p would query
			// over the relay.
			c := newTestNode(t, member(2, func(c *Config) {
				privateBehind(r)(c)
				c.Share.DirectWait = 500 * time.Millisecond
			}), addrInfo(r))
			// Members get a slot, and pass each other's gate through it.
			connectThroughRelay(t, c, r, p)
			data := randomBytes(t, 64<<10)
			res, got, err := getInto(t, c, shareBytes(t, p, "member.bin", data).CID)
			if err != nil || string(got) != string(data) || res.Via != share.ViaRelayed {
				t.Fatalf("get from a member through the relay: via %q, err %v", res.Via, err)
			}
			outsiderCannotUseRelay(t, r, p)
		})
	}
}

// outsiderCannotUseRelay checks that a host that is not a member of r's
// network gets no slot on r and no answer from p through r. The outsider
// stalls the admission handshake, so a gate has not refused it yet when it
// asks.
func outsiderCannotUseRelay(t *testing.T, r, p *Node) {
	t.Helper()
	out, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.EnableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.SetStreamHandler(protocol.ID(admit.Protocol), func(s network.Stream) {
		time.Sleep(3 * time.Second)
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Reserve(ctx, out, addrInfo(r)); err == nil {
		t.Error("the relay gave an outsider a slot")
	}
	probe := mustCID(t, p)
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	if err := out.Connect(cctx, throughRelay(r, p)); err != nil {
		return
	}
	st, err := out.NewStream(network.WithAllowLimitedConn(cctx, "test"), p.Host().ID(), share.ProtocolID)
	if err != nil {
		return
	}
	defer st.Reset()
	_, werr := st.Write(share.AppendRequest(nil, share.Request{CID: probe}))
	_ = st.CloseWrite()
	_ = st.SetReadDeadline(time.Now().Add(4 * time.Second))
	if _, rerr := st.Read(make([]byte, 1)); werr == nil && rerr == nil {
		t.Error("an outsider was answered by a member through the relay")
	}
}

// mustCID shares a small file on n and returns its CID.
func mustCID(t *testing.T, n *Node) cid.Cid {
	t.Helper()
	c, err := cid.Decode(shareBytes(t, n, "probe.bin", []byte("probe")).CID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnnounceReplacesFoundAddrs(t *testing.T) {
	a := ma.StringCast("/ip4/203.0.113.7/tcp/4040")
	n := newTestNode(t, func(c *Config) { c.Announce = []ma.Multiaddr{a} })
	got := n.Host().Addrs()
	if len(got) != 1 || !got[0].Equal(a) {
		t.Fatalf("announced %v, want exactly %s", got, a)
	}
	id, _ := n.API().ID(context.Background())
	if len(id.Addrs) != 1 || !strings.HasPrefix(id.Addrs[0], a.String()+"/p2p/") {
		t.Errorf("id addrs %v, want %s/p2p/ID", id.Addrs, a)
	}
}

func TestAnnouncedAddrs(t *testing.T) {
	a := ma.StringCast("/ip4/203.0.113.7/tcp/4040")
	lan := ma.StringCast("/ip4/192.168.1.5/tcp/4040")
	relayed := ma.StringCast("/ip4/198.51.100.1/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5/p2p-circuit")
	got := announcedAddrs([]ma.Multiaddr{a}, []ma.Multiaddr{lan, relayed})
	if len(got) != 2 || !got[0].Equal(a) || !got[1].Equal(relayed) {
		t.Fatalf("announced %v, want %s and the relay address", got, a)
	}
}

func TestRelayLimitsCarryAFile(t *testing.T) {
	rc := DefaultRelayLimits().resources()
	if rc.Limit == nil || rc.Limit.Data < 4<<30 || rc.Limit.Duration < time.Hour {
		t.Fatalf("relay limit %+v cannot carry a 4 GiB file", rc.Limit)
	}
	if rc.MaxReservations*rc.MaxCircuits*2*rc.BufferSize > 64<<20 {
		t.Errorf("relay buffers can take %d MiB", rc.MaxReservations*rc.MaxCircuits*2*rc.BufferSize>>20)
	}
}

func TestMembersAreToldOnlyDialableAddrs(t *testing.T) {
	var (
		lan      = ma.StringCast("/ip4/192.168.1.5/tcp/4040")
		loopback = ma.StringCast("/ip4/127.0.0.1/tcp/4040")
		mapping  = ma.StringCast("/ip4/7.0.0.12/tcp/4040") // a NAT's, as a peer observed it
		iface    = ma.StringCast("/ip4/7.0.0.10/tcp/4040")
		relayed  = ma.StringCast("/ip4/198.51.100.1/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5/p2p-circuit")
	)
	all := []ma.Multiaddr{lan, loopback, mapping, iface, relayed}
	// Reachable ones first: a heartbeat too large keeps the first half.
	for _, tc := range []struct {
		name  string
		known [][]ma.Multiaddr
		want  []ma.Multiaddr
	}{
		{"nothing known: the public ones are left out", nil, []ma.Multiaddr{relayed, lan, loopback}},
		{"on an interface", [][]ma.Multiaddr{{iface}}, []ma.Multiaddr{iface, relayed, lan, loopback}},
		{"found open, announced", [][]ma.Multiaddr{nil, {mapping}, {iface}}, []ma.Multiaddr{mapping, iface, relayed, lan, loopback}},
	} {
		if got := dialableAddrs(all, tc.known...); !slices.EqualFunc(got, tc.want, ma.Multiaddr.Equal) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// A node announces its --announce addresses to members, and
	// libp2p's host tells which addresses AutoNAT v2 found open.
	a := ma.StringCast("/ip4/7.0.0.9/tcp/4040")
	n := newTestNode(t, func(c *Config) { c.Announce = []ma.Multiaddr{a} })
	if got := n.memberAddrs(); !slices.ContainsFunc(got, a.Equal) {
		t.Errorf("members are told %v, not the announced %s", got, a)
	}
	if _, ok := n.host.(confirmedAddrser); !ok {
		t.Errorf("the host (%T) does not tell which addresses AutoNAT v2 found open", n.host)
	}
}
