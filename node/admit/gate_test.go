package admit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// echoProto is the test protocol registered on the gated view of a host.
const echoProto = "/p2pshare-test/echo/1.0.0"

// testTimeout is the gates' handshake timeout in these tests: long, so
// that a refusal measured well under it shows the gate did not just wait
// the peer out.
const testTimeout = 10 * time.Second

// quick is how fast a peer that cannot be admitted must be gone.
const quick = testTimeout / 4

// syncBuffer collects a gate's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gnode is a loopback libp2p host, gated or open, serving echoProto.
type gnode struct {
	key  crypto.PrivKey
	id   peer.ID
	h    host.Host
	g    *Gate     // nil: an open host
	view host.Host // g.Host(), or h when open
	logs *syncBuffer

	mu     sync.Mutex
	served map[peer.ID]int // echo streams that reached the handler, by remote peer
	conns  map[peer.ID]int // Connected notifications on the raw host, by remote peer
}

// newHost starts a libp2p host on loopback TCP and QUIC with gater g (nil:
// none).
func newHost(t *testing.T, key crypto.PrivKey, g *Gate) host.Host {
	t.Helper()
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DisableRelay(),
	}
	if g != nil {
		opts = append(opts, libp2p.ConnectionGater(g))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// startNode starts a host with key (nil: a new one) gated by cfg (nil: an
// open host), attaches the gate and serves echoProto on the gated view.
func startNode(t *testing.T, key crypto.PrivKey, cfg *Config) *gnode {
	t.Helper()
	if key == nil {
		key, _ = testKey(t)
	}
	n := &gnode{key: key, logs: &syncBuffer{}, served: map[peer.ID]int{}, conns: map[peer.ID]int{}}
	n.id, _ = peer.IDFromPrivateKey(key)
	if cfg != nil {
		c := *cfg
		if c.Timeout == 0 {
			c.Timeout = testTimeout
		}
		c.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		g, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		n.g = g
	}
	n.h = newHost(t, key, n.g)
	n.view = n.h
	if n.g != nil {
		if err := n.g.Attach(n.h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.g.Close() }) // before the host's (cleanups run last first)
		n.view = n.g.Host()
	}
	n.h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		n.mu.Lock()
		n.conns[c.RemotePeer()]++
		n.mu.Unlock()
	}})
	n.view.SetStreamHandler(echoProto, func(s network.Stream) {
		n.mu.Lock()
		n.served[s.Conn().RemotePeer()]++
		n.mu.Unlock()
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(io.LimitReader(s, 1024)).ReadString('\n')
		if err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write([]byte(line))
	})
	return n
}

func (n *gnode) servedTo(p peer.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served[p]
}

func (n *gnode) connsFrom(p peer.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[p]
}

// authorityNode starts a node admitted by a with a ticket valid for d.
func authorityNode(t *testing.T, a *Authority, d time.Duration) *gnode {
	t.Helper()
	key, id := testKey(t)
	return startNode(t, key, &Config{Authority: a.Public(), Ticket: mustAdmit(t, a, id, d, time.Now())})
}

// addrsOf returns to's listen addresses of one transport: "tcp", "quic-v1"
// or "" for all.
func addrsOf(h host.Host, transport string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		switch transport {
		case "tcp":
			if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
				continue
			}
		case "quic-v1":
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err != nil {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// dial connects from to to over one transport ("" for any).
func dial(from, to *gnode, transport string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs := addrsOf(to.h, transport)
	if len(addrs) == 0 {
		return fmt.Errorf("no %s address", transport)
	}
	return from.h.Connect(ctx, peer.AddrInfo{ID: to.id, Addrs: addrs})
}

// echo runs one echo exchange from from's view (gated if it has a gate)
// to p.
func echo(from *gnode, p peer.ID) error {
	return echoOn(from.view, from.id, p)
}

func echoOn(h host.Host, self, p peer.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, p, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	msg := "hello from " + self.String() + "\n"
	if _, err := s.Write([]byte(msg)); err != nil {
		return err
	}
	// No CloseWrite: the handler answers the line and closes, which over
	// QUIC may cancel our write side before we would close it.
	b, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if string(b) != msg {
		return fmt.Errorf("echo answered %q, want %q", b, msg)
	}
	return nil
}

// waitFor polls cond until it holds or limit passes, and returns how long
// it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func connected(a, b *gnode) bool {
	return a.h.Network().Connectedness(b.id) == network.Connected ||
		b.h.Network().Connectedness(a.id) == network.Connected
}

// waitApart waits until a and b have no connection either way.
func waitApart(t *testing.T, a, b *gnode, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, limit, "peers disconnected", func() bool { return !connected(a, b) })
}

func TestGateAdmittedPeersTalk(t *testing.T) {
	for _, transport := range []string{"tcp", "quic-v1"} {
		t.Run(transport, func(t *testing.T) {
			a := testAuthority(t)
			n1, n2 := authorityNode(t, a, time.Hour), authorityNode(t, a, time.Hour)
			if err := dial(n2, n1, transport); err != nil {
				t.Fatal(err)
			}
			// Streams opened at once wait for the handshake instead of failing.
			if err := echo(n2, n1.id); err != nil {
				t.Fatalf("n2 -> n1: %v", err)
			}
			if err := echo(n1, n2.id); err != nil {
				t.Fatalf("n1 -> n2: %v", err)
			}
			if !n1.g.Admitted(n2.id) || !n2.g.Admitted(n1.id) {
				t.Fatal("the peers did not admit each other")
			}
			if n1.servedTo(n2.id) != 1 || n2.servedTo(n1.id) != 1 {
				t.Fatalf("served n2 %d times, n1 %d times; want 1 each", n1.servedTo(n2.id), n2.servedTo(n1.id))
			}
			for _, n := range []*gnode{n1, n2} {
				other := n2.id
				if n == n2 {
					other = n1.id
				}
				conns := n.h.Network().ConnsToPeer(other)
				if len(conns) == 0 {
					t.Fatal("no connection left after the exchange")
				}
				for _, c := range conns {
					if _, err := c.RemoteMultiaddr().ValueForProtocol(protoCode(transport)); err != nil {
						t.Fatalf("connection over %s, want %s only", c.RemoteMultiaddr(), transport)
					}
				}
			}
			if strings.Contains(n1.logs.String(), "refused") || strings.Contains(n2.logs.String(), "refused") {
				t.Fatalf("an admitted peer was refused:\n%s\n%s", n1.logs, n2.logs)
			}
		})
	}
}

func protoCode(transport string) int {
	if transport == "tcp" {
		return ma.P_TCP
	}
	return ma.P_QUIC_V1
}

// refusedQuickly checks that intruder, which connected to n (or tried to),
// is gone well under the handshake timeout, never reached n's handler,
// cannot reach it now, and that n logged the refusal.
func refusedQuickly(t *testing.T, n, intruder *gnode, start time.Time) {
	t.Helper()
	waitApart(t, n, intruder, quick)
	t.Logf("disconnected %s after connecting", time.Since(start).Round(time.Millisecond))
	if n.g.Admitted(intruder.id) {
		t.Fatal("the intruder is admitted")
	}
	if err := echoOn(intruder.h, intruder.id, n.id); err == nil {
		t.Fatal("the intruder's raw stream got an echo")
	}
	// The gated node does not dial it either (the gater refuses the dial).
	if err := echo(n, intruder.id); err == nil {
		t.Fatal("the gated node's stream to the intruder got an echo")
	}
	if c := n.servedTo(intruder.id); c != 0 {
		t.Fatalf("the intruder reached the gated handler %d times", c)
	}
	waitFor(t, quick, "refusal logged", func() bool {
		l := n.logs.String()
		return strings.Contains(l, "refused a peer") && strings.Contains(l, intruder.id.String())
	})
}

func TestGateRefusesOpenHost(t *testing.T) {
	for _, transport := range []string{"tcp", "quic-v1"} {
		t.Run(transport, func(t *testing.T) {
			a := testAuthority(t)
			n1 := authorityNode(t, a, time.Hour)
			open := startNode(t, nil, nil)
			start := time.Now()
			_ = dial(open, n1, transport) // may succeed for a moment
			// A stream sent right away, before the refusal, must fail too.
			echoErr := make(chan error, 1)
			go func() { echoErr <- echoOn(open.h, open.id, n1.id) }()
			waitApart(t, n1, open, quick)
			if d := time.Since(start); d > quick {
				t.Fatalf("disconnected after %s, want under %s (timeout %s)", d, quick, testTimeout)
			}
			if err := <-echoErr; err == nil {
				t.Fatal("an open host got an echo from a gated one")
			}
			refusedQuickly(t, n1, open, start)
			// It is refused for DenyFor: its redials end at InterceptSecured,
			// before the gated host ever sees a connection.
			before := n1.connsFrom(open.id)
			for range 3 {
				if err := dial(open, n1, transport); err == nil && connected(n1, open) {
					waitApart(t, n1, open, quick)
				}
			}
			if c := n1.connsFrom(open.id); c != before {
				t.Fatalf("a refused peer connected again %d times", c-before)
			}
			if n1.g.InterceptPeerDial(open.id) {
				t.Fatal("the gate would dial a refused peer")
			}
		})
	}
}

func TestGateRefusesOtherAuthority(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	n1 := authorityNode(t, a, time.Hour)
	n2 := authorityNode(t, other, time.Hour) // a valid ticket, from another network
	start := time.Now()
	_ = dial(n2, n1, "")
	waitApart(t, n1, n2, quick)
	t.Logf("disconnected after %s", time.Since(start).Round(time.Millisecond))
	for _, pair := range [][2]*gnode{{n1, n2}, {n2, n1}} {
		n, o := pair[0], pair[1]
		if n.g.Admitted(o.id) {
			t.Fatal("a peer of another network is admitted")
		}
		// Through the raw host, so that the stream reaches the other side's
		// gated handler if anything does. (Through the gated view, a stream
		// to a peer that hung up before this side judged it waits out the
		// handshake timeout.)
		if err := echoOn(n.h, n.id, o.id); err == nil {
			t.Fatal("an echo crossed networks")
		}
		if n.servedTo(o.id) != 0 {
			t.Fatal("a peer of another network reached the handler")
		}
	}
	// At least one side saw the bad signature and refused (the other may
	// only have seen its handshake cut short by the hang-up).
	l := n1.logs.String() + n2.logs.String()
	if !strings.Contains(l, "not signed by this network's authority") {
		t.Fatalf("no side reported the foreign ticket:\n%s", l)
	}
}

// fakePeer is an open host that answers the admission handshake with
// ticket, and sends it first when it dials.
func fakePeer(t *testing.T, key crypto.PrivKey, ticket []byte) *gnode {
	t.Helper()
	n := startNode(t, key, nil)
	n.h.SetStreamHandler(Protocol, func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = bufio.NewReader(s).ReadString('\n')
		_, _ = s.Write(ticket)
	})
	return n
}

func TestGateRefusesBadTickets(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	now := time.Now()
	cases := []struct {
		name   string
		ticket func(id peer.ID) []byte
		why    string
		within time.Duration // refused within
	}{
		{"expired", func(id peer.ID) []byte {
			return Encode(mustAdmit(t, a, id, time.Hour, now.Add(-2*time.Hour)))
		}, "expired at", quick},
		{"other authority", func(id peer.ID) []byte {
			return Encode(mustAdmit(t, other, id, time.Hour, now))
		}, "not signed", quick},
		{"stolen from another peer", func(peer.ID) []byte {
			return Encode(mustAdmit(t, a, testPeer(t), time.Hour, now))
		}, "presented by", quick},
		{"issued in the future", func(id peer.ID) []byte {
			return Encode(mustAdmit(t, a, id, time.Hour, now.Add(time.Hour)))
		}, "issued in the future", quick},
		{"forged expiry", func(id peer.ID) []byte {
			tk := mustAdmit(t, a, id, time.Hour, now.Add(-2*time.Hour))
			tk.Expires = now.Add(time.Hour)
			return Encode(tk)
		}, "not signed", quick},
		{"garbage", func(peer.ID) []byte { return []byte("let me in\n") }, "invalid admission ticket", quick},
		{"no ticket", func(peer.ID) []byte { return []byte("{}\n") }, "invalid admission ticket", quick},
		{"unknown field", func(id peer.ID) []byte {
			b := bytes.TrimSpace(Encode(mustAdmit(t, a, id, time.Hour, now)))
			return append(append(b[:len(b)-1], `,"admin":true}`...), '\n')
		}, "unknown field", quick},
		// No line end within MaxTicketSize: not a ticket, but not a clear
		// refusal either; the peer is dropped when the timeout runs out.
		{"oversize", func(peer.ID) []byte { return bytes.Repeat([]byte("x"), 2*MaxTicketSize) }, "no valid ticket within 2s", 2*time.Second + quick},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k1, id1 := testKey(t)
			cfg := &Config{Authority: a.Public(), Ticket: mustAdmit(t, a, id1, time.Hour, now)}
			if tc.within > quick {
				cfg.Timeout = tc.within - quick
			}
			n1 := startNode(t, k1, cfg)
			key, id := testKey(t)
			fake := fakePeer(t, key, tc.ticket(id))
			start := time.Now()
			_ = dial(fake, n1, "")
			waitApart(t, n1, fake, tc.within)
			t.Logf("disconnected after %s", time.Since(start).Round(time.Millisecond))
			waitFor(t, quick, "refusal logged", func() bool { return strings.Contains(n1.logs.String(), tc.why) })
			if n1.g.Admitted(id) {
				t.Fatal("admitted")
			}
			if !n1.g.blocked(id) {
				t.Fatal("not refused for DenyFor")
			}
			if err := echoOn(fake.h, id, n1.id); err == nil {
				t.Fatal("the fake peer got an echo")
			}
			if n1.servedTo(id) != 0 {
				t.Fatal("the fake peer reached the gated handler")
			}
		})
	}
}

func TestGateTicketExpiresWhileConnected(t *testing.T) {
	a := testAuthority(t)
	n1 := authorityNode(t, a, time.Hour)
	key, id := testKey(t)
	tk := mustAdmit(t, a, id, 2*time.Second, time.Now())
	n2 := startNode(t, key, &Config{Authority: a.Public(), Ticket: tk})
	if err := dial(n2, n1, ""); err != nil {
		t.Fatal(err)
	}
	if err := echo(n2, n1.id); err != nil {
		t.Fatal(err)
	}
	if !n1.g.Admitted(id) {
		t.Fatal("not admitted")
	}
	// The expiry loop runs every second: gone within a second or two of
	// the expiry.
	waitApart(t, n1, n2, time.Until(tk.Expires)+3*time.Second)
	late := time.Since(tk.Expires)
	t.Logf("disconnected %s after the ticket expired", late.Round(time.Millisecond))
	if late < 0 {
		t.Fatalf("disconnected %s before the ticket expired", -late)
	}
	if n1.g.Admitted(id) {
		t.Fatal("still admitted after expiry")
	}
	if !strings.Contains(n1.logs.String(), "ticket expired") {
		t.Fatalf("no expiry logged:\n%s", n1.logs)
	}
	// Coming back with the same ticket: refused.
	served := n1.servedTo(id)
	_ = dial(n2, n1, "")
	if err := echo(n2, n1.id); err == nil {
		t.Fatal("an expired peer got an echo after reconnecting")
	}
	waitApart(t, n1, n2, quick)
	if n1.servedTo(id) != served {
		t.Fatal("an expired peer reached the handler after reconnecting")
	}
	waitFor(t, quick, "expired ticket refused", func() bool { return n1.g.blocked(id) })
}

func TestGateRevoke(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	n1, n2, n3 := authorityNode(t, a, time.Hour), authorityNode(t, a, time.Hour), authorityNode(t, a, time.Hour)
	for _, n := range []*gnode{n2, n3} {
		if err := dial(n, n1, ""); err != nil {
			t.Fatal(err)
		}
		if err := echo(n, n1.id); err != nil {
			t.Fatal(err)
		}
	}
	// A revocation signed by someone else changes nothing.
	forged, err := other.Revoke(n2.id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.g.Revoke(forged); !errors.Is(err, ErrBadTicket) {
		t.Fatalf("forged revocation: %v, want ErrBadTicket", err)
	}
	if n1.g.Revoked(n2.id) || !n1.g.Admitted(n2.id) || !connected(n1, n2) {
		t.Fatal("a forged revocation took effect")
	}

	r, err := a.Revoke(n2.id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.g.Revoke(r); err != nil {
		t.Fatal(err)
	}
	d := waitApart(t, n1, n2, quick)
	t.Logf("revoked peer disconnected after %s", d.Round(time.Millisecond))
	if !n1.g.Revoked(n2.id) || n1.g.Admitted(n2.id) {
		t.Fatal("revoked peer still admitted")
	}
	// Revoking twice is harmless.
	if err := n1.g.Revoke(r); err != nil {
		t.Fatal(err)
	}
	// The others are untouched.
	if !connected(n1, n3) {
		t.Fatalf("revoking n2 cut n3 off:\n%s", n1.logs)
	}
	if err := echo(n3, n1.id); err != nil {
		t.Fatalf("revoking n2 cut n3 off: %v\n%s", err, n1.logs)
	}
	// The revoked peer cannot come back: refused at InterceptSecured,
	// before the gated host sees a connection.
	conns, served := n1.connsFrom(n2.id), n1.servedTo(n2.id)
	for _, tr := range []string{"tcp", "quic-v1"} {
		if err := dial(n2, n1, tr); err == nil {
			t.Logf("redial over %s returned no error", tr)
		}
	}
	if err := echoOn(n2.h, n2.id, n1.id); err == nil {
		t.Fatal("a revoked peer got an echo through the raw host")
	}
	if err := echo(n2, n1.id); err == nil {
		t.Fatal("a revoked peer got an echo through the gated host")
	}
	if err := echo(n1, n2.id); err == nil {
		t.Fatal("a stream to a revoked peer got an echo")
	}
	if err := n1.g.wait(context.Background(), n2.id); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("waiting for a revoked peer: %v, want ErrNotAdmitted at once", err)
	}
	if c := n1.connsFrom(n2.id); c != conns {
		t.Fatalf("a revoked peer connected %d more times", c-conns)
	}
	if n1.servedTo(n2.id) != served {
		t.Fatal("a revoked peer reached the handler")
	}
	if n1.g.InterceptSecured(network.DirInbound, n2.id, nil) || n1.g.InterceptPeerDial(n2.id) {
		t.Fatal("the gater lets a revoked peer through")
	}

	// A revocation that arrives before the peer ever connected.
	n4 := authorityNode(t, a, time.Hour)
	r4, _ := a.Revoke(n4.id, time.Now())
	if err := n1.g.Revoke(r4); err != nil {
		t.Fatal(err)
	}
	_ = dial(n4, n1, "")
	// Through the raw host: the gated one would wait out its own timeout
	// for n1, which dropped the connection before any handshake.
	if err := echoOn(n4.h, n4.id, n1.id); err == nil {
		t.Fatal("a peer revoked in advance got an echo")
	}
	if n1.connsFrom(n4.id) != 0 || n1.servedTo(n4.id) != 0 {
		t.Fatal("a peer revoked in advance got through")
	}
}

func TestGateRevokeOverridesAllowlist(t *testing.T) {
	a := testAuthority(t)
	k2, id2 := testKey(t)
	k1, id1 := testKey(t)
	n1 := startNode(t, k1, &Config{Authority: a.Public(), Ticket: mustAdmit(t, a, id1, time.Hour, time.Now()), Allow: []peer.ID{id2}})
	n2 := startNode(t, k2, nil) // allowlisted: needs no ticket, nor a gate
	if err := dial(n2, n1, ""); err != nil {
		t.Fatal(err)
	}
	if err := echoOn(n2.h, id2, id1); err != nil {
		t.Fatal(err)
	}
	if err := echo(n1, id2); err != nil {
		t.Fatal(err)
	}
	r, _ := a.Revoke(id2, time.Now())
	if err := n1.g.Revoke(r); err != nil {
		t.Fatal(err)
	}
	waitApart(t, n1, n2, quick)
	if n1.g.Admitted(id2) {
		t.Fatal("a revoked peer on the allowlist is still admitted")
	}
	_ = dial(n2, n1, "")
	if err := echoOn(n2.h, id2, id1); err == nil {
		t.Fatal("a revoked peer on the allowlist got an echo")
	}
}

func TestGateAllowlistOnly(t *testing.T) {
	k1, id1 := testKey(t)
	k2, id2 := testKey(t)
	n1 := startNode(t, k1, &Config{Allow: []peer.ID{id2}})
	n2 := startNode(t, k2, &Config{Allow: []peer.ID{id1}})
	stranger := startNode(t, nil, &Config{Allow: []peer.ID{id1}}) // lists n1, but n1 does not list it
	open := startNode(t, nil, nil)
	for _, transport := range []string{"tcp", "quic-v1"} {
		if err := dial(n2, n1, transport); err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
	}
	if err := echo(n2, n1.id); err != nil {
		t.Fatal(err)
	}
	if err := echo(n1, n2.id); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*gnode{stranger, open} {
		_ = dial(n, n1, "tcp")
		_ = dial(n, n1, "quic-v1")
		if err := echoOn(n.h, n.id, n1.id); err == nil {
			t.Fatal("an unlisted peer got an echo")
		}
		// Refused at InterceptSecured: n1 never saw a connection.
		if c := n1.connsFrom(n.id); c != 0 {
			t.Fatalf("an unlisted peer connected %d times", c)
		}
		if n1.servedTo(n.id) != 0 {
			t.Fatal("an unlisted peer reached the handler")
		}
		if n1.g.InterceptSecured(network.DirInbound, n.id, nil) || n1.g.InterceptSecured(network.DirOutbound, n.id, nil) {
			t.Fatal("InterceptSecured lets an unlisted peer through")
		}
		// Nor does n1 dial it.
		n1.h.Peerstore().AddAddrs(n.id, n.h.Addrs(), time.Minute)
		before := n.connsFrom(n1.id)
		if err := echo(n1, n.id); err == nil {
			t.Fatal("n1 reached an unlisted peer")
		}
		if c := n.connsFrom(n1.id); c != before {
			t.Fatalf("n1 dialled an unlisted peer %d times", c-before)
		}
	}
	if !n1.g.InterceptSecured(network.DirInbound, id2, nil) {
		t.Fatal("InterceptSecured refuses a listed peer")
	}
	// Without an authority, nothing can be revoked.
	r, _ := testAuthority(t).Revoke(id2, time.Now())
	if err := n1.g.Revoke(r); err == nil {
		t.Fatal("Revoke worked without an authority")
	}
	if strings.Contains(n1.logs.String(), "refused a peer") && strings.Contains(n1.logs.String(), id2.String()) {
		t.Fatalf("a listed peer was refused:\n%s", n1.logs)
	}
}

func TestGateAttachChecksOwnTicket(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	key, id := testKey(t)
	now := time.Now()
	cases := []struct {
		name   string
		ticket *Ticket
		want   string
	}{
		{"for another peer", mustAdmit(t, a, testPeer(t), time.Hour, now), "issued to"},
		{"expired", mustAdmit(t, a, id, time.Hour, now.Add(-2*time.Hour)), "expired"},
		{"other authority", mustAdmit(t, other, id, time.Hour, now), "not signed"},
		{"issued in the future", mustAdmit(t, a, id, time.Hour, now.Add(time.Hour)), "issued in the future"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(Config{Authority: a.Public(), Ticket: tc.ticket, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			h := newHost(t, key, g)
			err = g.Attach(h)
			if err == nil || !errors.Is(err, ErrBadTicket) || !strings.Contains(err.Error(), "own ticket") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Attach: %v, want an own-ticket error saying %q", err, tc.want)
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := New(Config{Authority: a.Public()}); err == nil || !strings.Contains(err.Error(), "no ticket") {
		t.Fatalf("New without a ticket: %v", err)
	}
	if (Config{}).Enabled() {
		t.Fatal("an empty config is enabled")
	}
}

// A peer whose connection drops in the middle of the handshake (a crash, a
// network flap) has failed nothing: when it comes back with a valid ticket
// after the handshake timeout, it is admitted, not refused for DenyFor.
func TestGatePeerLostMidHandshakeMayReturn(t *testing.T) {
	a := testAuthority(t)
	k1, id1 := testKey(t)
	n1 := startNode(t, k1, &Config{Authority: a.Public(), Ticket: mustAdmit(t, a, id1, time.Hour, time.Now()), Timeout: time.Second})
	key, id := testKey(t)
	crash := startNode(t, key, nil)
	crash.h.SetStreamHandler(Protocol, func(s network.Stream) { _ = s.Conn().Close() })
	_ = dial(crash, n1, "tcp")
	waitApart(t, n1, crash, quick)
	if err := crash.h.Close(); err != nil {
		t.Fatal(err)
	}
	// Past n1's handshake timeout for the lost connection.
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if n1.g.blocked(id) {
			t.Fatalf("a peer lost mid-handshake is refused for DenyFor (after %s)", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	n2 := startNode(t, key, &Config{Authority: a.Public(), Ticket: mustAdmit(t, a, id, time.Hour, time.Now())})
	if err := dial(n2, n1, ""); err != nil {
		t.Fatal(err)
	}
	if err := echo(n2, id1); err != nil {
		t.Fatalf("the peer back with a valid ticket: %v", err)
	}
}
