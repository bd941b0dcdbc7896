package internet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// build builds topo for a test, as New does, and checks at cleanup that
// Close left nothing behind.
func build(t *testing.T, topo Topology) *Internet {
	t.Helper()
	var in *Internet
	t.Cleanup(func() { // after New's Close: cleanups run last in, first out
		if in == nil {
			return
		}
		if left := in.namespaces(); len(left) > 0 {
			t.Errorf("close left namespaces %v", left)
		}
		if _, err := os.Stat(in.state); !os.IsNotExist(err) {
			t.Errorf("close left the state file %s (%v)", in.state, err)
		}
	})
	in = New(t, topo)
	return in
}

// udpEcho serves UDP on node n's port: every datagram is answered with the
// address it came from. It stops at the test's end.
func udpEcho(t *testing.T, n *Node, port int) string {
	t.Helper()
	addr := fmt.Sprintf("%s:%d", n.IP, port)
	var pc net.PacketConn
	if err := n.Do(func() (err error) { pc, err = net.ListenPacket("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	background(t, pc, func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.String()), from)
		}
	})
	return addr
}

// background runs serve, which returns once c is closed, until the test
// ends; then it closes c and waits for serve.
func background(t *testing.T, c io.Closer, serve func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serve()
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
}

// udpSocket is a UDP socket in n's namespace bound to port (0: any).
func udpSocket(t *testing.T, n *Node, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := n.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: n.IP.AsSlice(), Port: port})
		return
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// observed sends a probe from c to the echo at to and returns the source
// address the echo saw, or an error after a second without an answer.
func observed(c *net.UDPConn, to string) (string, error) {
	dst, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ {
		if _, err := c.WriteTo([]byte("probe"), dst); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := c.ReadFrom(buf)
		if err == nil && from.String() == to {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("no answer from %s", to)
}

// tcpDial connects from n to addr within timeout.
func tcpDial(n *Node, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return
	})
	return c, err
}

// tcpEcho serves TCP on n's port: every connection gets the address it came
// from, then is closed.
func tcpEcho(t *testing.T, n *Node, port int) string {
	t.Helper()
	addr := fmt.Sprintf("%s:%d", n.IP, port)
	var l net.Listener
	if err := n.Do(func() (err error) { l, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	background(t, l, func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().String()))
			c.Close()
		}
	})
	return addr
}

func readAll(c net.Conn) string {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func twoPublic(k1, k2 Kind) Topology {
	t := TwoNATs(k1, k2, Link{})
	t.Hosts = append(t.Hosts, Host{Name: "pub2"})
	return t
}

// A host behind a NAT reaches a public host, which sees the router's public
// address; each router kind maps as it should toward two destinations.
func TestNATMapping(t *testing.T) {
	in := build(t, twoPublic(KindMasquerade, KindHard))
	pub, pub2 := in.Host("pub"), in.Host("pub2")
	for _, n := range []*Node{pub, pub2, in.Host("nat1"), in.Host("nat2")} {
		if !n.IP.IsGlobalUnicast() || n.IP.IsPrivate() || !in.Public.Contains(n.IP) {
			t.Fatalf("%s has address %s: want a public one in %s", n.Name, n.IP, in.Public)
		}
	}
	e1, e2 := udpEcho(t, pub, 5000), udpEcho(t, pub2, 5000)
	te := tcpEcho(t, pub, 5001)

	for _, tc := range []struct {
		host, router string
		sameMapping  bool
	}{
		{"nat1-a", "nat1", true},
		{"nat2-a", "nat2", false},
	} {
		h, r := in.Host(tc.host), in.Host(tc.router)
		c, err := tcpDial(h, te, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: TCP to %s: %v", tc.host, te, err)
		}
		if got := readAll(c); !strings.HasPrefix(got, r.IP.String()+":") {
			t.Fatalf("%s: %s saw the connection from %q, want the router's address %s", tc.host, te, got, r.IP)
		}
		s := udpSocket(t, h, 40000)
		m1, err := observed(s, e1)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		m2, err := observed(s, e2)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		if !strings.HasPrefix(m1, r.IP.String()+":") || !strings.HasPrefix(m2, r.IP.String()+":") {
			t.Fatalf("%s: echoes saw %s and %s, want the router's address %s", tc.host, m1, m2, r.IP)
		}
		if (m1 == m2) != tc.sameMapping {
			t.Fatalf("%s behind a %s router, from one source port: pub saw %s, pub2 saw %s; want the same mapping: %v", tc.host, r.Kind, m1, m2, tc.sameMapping)
		}
		t.Logf("%s (%s): UDP :40000 seen as %s by pub, %s by pub2", tc.host, r.Kind, m1, m2)
	}
}

// A NATed host cannot be reached unsolicited, neither on its LAN address nor
// on its router's mapping. A hole punch (each side sends to the mapping the
// public host saw for the other) opens a path between two masquerading
// NATs, and none when one NAT is hard: its mapping toward the other side is
// not the one the public host saw.
func TestNATFiltering(t *testing.T) {
	for _, k2 := range []Kind{KindMasquerade, KindHard} {
		t.Run(string(k2), func(t *testing.T) { testPunch(t, k2) })
	}
}

func testPunch(t *testing.T, k2 Kind) {
	in := build(t, TwoNATs(KindMasquerade, k2, Link{}))
	echo := udpEcho(t, in.Host("pub"), 5000)
	a, b := in.Host("nat1-a"), in.Host("nat2-a")
	sa, sb := udpSocket(t, a, 41000), udpSocket(t, b, 42000)
	ma, err := observed(sa, echo)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := observed(sb, echo)
	if err != nil {
		t.Fatal(err)
	}
	send := func(from *net.UDPConn, to, msg string) {
		t.Helper()
		dst, _ := net.ResolveUDPAddr("udp4", to)
		if _, err := from.WriteTo([]byte(msg), dst); err != nil && !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("send to %s: %v", to, err)
		}
	}
	// recv returns what c gets within d, or "".
	recv := func(c *net.UDPConn, d time.Duration) string {
		buf := make([]byte, 100)
		c.SetReadDeadline(time.Now().Add(d))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	send(sa, fmt.Sprintf("%s:42000", b.IP), "to the LAN address")
	send(sa, mb, "unsolicited")
	if got := recv(sb, time.Second); got != "" {
		t.Fatalf("nat2-a received %q from nat1-a unsolicited", got)
	}
	// The punch: b's packet to a's mapping matches what a's router saw a
	// send (to mb), if b's router maps it to mb; then b's router lets a's
	// next packet in.
	send(sb, ma, "punch")
	gotPunch := recv(sa, 2*time.Second)
	send(sa, mb, "through")
	gotThrough := recv(sb, 2*time.Second)
	t.Logf("nat1 masquerade, nat2 %s: nat1-a got %q, nat2-a got %q", k2, gotPunch, gotThrough)
	if k2 == KindHard {
		if gotPunch != "" || gotThrough != "" {
			t.Fatalf("a hole punched through a hard NAT from the mappings the public host saw")
		}
		return
	}
	if gotPunch != "punch" || gotThrough != "through" {
		t.Fatalf("the hole punch between two masquerading NATs failed")
	}
}

// rtts measures n TCP handshakes (one round trip each) from a to addr.
func rtts(t *testing.T, a *Node, addr string, n int) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := tcpDial(a, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("%s to %s: %v", a.Name, addr, err)
		}
		ds = append(ds, time.Since(start))
		c.Close()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// checkRTT fails unless the fastest of 10 handshakes takes at least want
// (the delay is really added) and the median at most want plus a margin
// for a loaded machine.
func checkRTT(t *testing.T, what string, a *Node, addr string, want time.Duration) {
	t.Helper()
	ds := rtts(t, a, addr, 10)
	t.Logf("%s: TCP handshake min %s, median %s, max %s (want %s)", what, ds[0].Round(10*time.Microsecond), ds[5].Round(10*time.Microsecond), ds[9].Round(10*time.Microsecond), want)
	if ds[0] < want-time.Millisecond || ds[5] > want+20*time.Millisecond {
		t.Fatalf("%s: round trips %v, want about %s", what, ds, want)
	}
}

// checkEchoRTT fails unless 32-byte messages echoed on one TCP connection
// from a to b come back after want (at least, and at most want plus a
// margin at the median): the delay of data, not only of handshakes.
func checkEchoRTT(t *testing.T, a, b *Node, want time.Duration) {
	t.Helper()
	var l net.Listener
	if err := b.Do(func() (err error) { l, err = net.Listen("tcp4", net.JoinHostPort(b.IP.String(), "0")); return }); err != nil {
		t.Fatal(err)
	}
	background(t, l, func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	})
	c, err := tcpDial(a, l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg, buf := make([]byte, 32), make([]byte, 32)
	var ds []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("%s-%s: 32-byte echo on one connection: min %s, median %s, max %s (want %s)", a.Name, b.Name, ds[0].Round(10*time.Microsecond), ds[10].Round(10*time.Microsecond), ds[19].Round(10*time.Microsecond), want)
	if ds[0] < want-time.Millisecond || ds[10] > want+20*time.Millisecond {
		t.Fatalf("echo round trips %v, want about %s", ds, want)
	}
}

// Delay: a round trip between two public hosts takes the sum of their
// links' delays; SetDelay changes it; a path's delay replaces the link's.
func TestDelay(t *testing.T) {
	t.Run("links", func(t *testing.T) {
		l := Link{Delay: 15 * time.Millisecond}
		in := build(t, Topology{Hosts: []Host{{Name: "a", Link: l}, {Name: "b", Link: l}}})
		addr := tcpEcho(t, in.Host("b"), 5001)
		checkRTT(t, "a-b, 15 ms links", in.Host("a"), addr, 30*time.Millisecond)
		checkEchoRTT(t, in.Host("a"), in.Host("b"), 30*time.Millisecond)
		if err := in.SetDelay("b", 40*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkRTT(t, "a-b, 15 and 40 ms links", in.Host("a"), addr, 55*time.Millisecond)
		if err := in.SetDelay("a", 0); err != nil {
			t.Fatal(err)
		}
		if err := in.SetDelay("b", 0); err != nil {
			t.Fatal(err)
		}
		ds := rtts(t, in.Host("a"), addr, 10)
		t.Logf("a-b, no delay: median %s", ds[5])
		if ds[5] > 10*time.Millisecond {
			t.Fatalf("no delay: round trips %v", ds)
		}
	})
	t.Run("sites", func(t *testing.T) {
		in := build(t, Sites(1, 0))
		echo := map[string]string{}
		for _, c := range []struct {
			from, to string
			oneWay   time.Duration
		}{
			{"site1-a", "site2-a", 15 * time.Millisecond},
			{"site1-a", "site3-a", 22 * time.Millisecond},
			{"site3-a", "site2-a", 30 * time.Millisecond},
			{"site2-a", "pub", 15 * time.Millisecond},
		} {
			if echo[c.to] == "" {
				echo[c.to] = tcpEcho(t, in.Host(c.to), 5001)
			}
			checkRTT(t, c.from+" to "+c.to, in.Host(c.from), echo[c.to], 2*c.oneWay)
		}
	})
}

// Loss drops about the configured share of packets.
func TestLoss(t *testing.T) {
	in := build(t, Topology{Hosts: []Host{{Name: "a"}, {Name: "b", Link: Link{Loss: 0.2}}}})
	b := in.Host("b")
	sb := udpSocket(t, b, 6000)
	sa := udpSocket(t, in.Host("a"), 0)
	count := func(n int) int {
		t.Helper()
		dst := &net.UDPAddr{IP: b.IP.AsSlice(), Port: 6000}
		got := make(chan int)
		go func() {
			buf := make([]byte, 100)
			k := 0
			for {
				sb.SetReadDeadline(time.Now().Add(time.Second))
				if _, _, err := sb.ReadFrom(buf); err != nil {
					got <- k
					return
				}
				k++
			}
		}()
		for i := 0; i < n; i++ {
			if _, err := sa.WriteTo([]byte("x"), dst); err != nil {
				t.Fatal(err)
			}
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // no burst beyond the socket buffer
			}
		}
		return <-got
	}
	// 1000 packets at 20 %: 800 expected, standard deviation about 13.
	if k := count(1000); k < 700 || k > 900 {
		t.Fatalf("loss 0.2: %d of 1000 packets arrived, want about 800", k)
	} else {
		t.Logf("loss 0.2: %d of 1000 packets arrived", k)
	}
	if err := in.SetLoss("b", 0); err != nil {
		t.Fatal(err)
	}
	if k := count(500); k != 500 {
		t.Fatalf("no loss: %d of 500 packets arrived", k)
	}
}

// Rate limits a link's throughput.
func TestRate(t *testing.T) {
	in := build(t, Topology{Hosts: []Host{{Name: "a"}, {Name: "b", Link: Link{Rate: "8mbit"}}}})
	a, b := in.Host("a"), in.Host("b")
	var l net.Listener
	if err := b.Do(func() (err error) { l, err = net.Listen("tcp4", net.JoinHostPort(b.IP.String(), "0")); return }); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	background(t, l, func() {
		c, err := l.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	c, err := tcpDial(a, l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	start := time.Now()
	c.SetDeadline(start.Add(30 * time.Second))
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != size {
		t.Fatalf("received %d bytes of %d", n, size)
	}
	mbit := float64(size*8) / time.Since(start).Seconds() / 1e6
	t.Logf("1 MiB through an 8mbit link: %.2f Mbit/s", mbit)
	if mbit > 8*1.2 || mbit < 2 {
		t.Fatalf("%.2f Mbit/s through an 8mbit link", mbit)
	}
}

// Cut drops everything on a link without a word: a TCP connect times out
// where it was refused before; Restore brings the link back.
func TestCut(t *testing.T) {
	in := build(t, TwoNATs(KindMasquerade, KindMasquerade, Link{}))
	pub := in.Host("pub")
	open := tcpEcho(t, pub, 5001)
	closed := fmt.Sprintf("%s:5999", pub.IP)
	for _, name := range []string{"nat1-a", "nat1"} {
		a := in.Host("nat1-a")
		_, err := tcpDial(a, closed, 5*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("before cutting %s: connect to a closed port: %v, want refused", name, err)
		}
		if err := in.Cut(name); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{closed, open} {
			_, err = tcpDial(a, addr, 2*time.Second)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%s cut: connect from nat1-a to %s: %v, want a timeout", name, addr, err)
			}
		}
		if err := in.Restore(name); err != nil {
			t.Fatal(err)
		}
		c, err := tcpDial(a, open, 5*time.Second)
		if err != nil {
			t.Fatalf("%s restored: %v", name, err)
		}
		c.Close()
	}
}

// Exec and Prefix run programs in a node's namespace, which has its own
// addresses only.
func TestExec(t *testing.T) {
	in := build(t, TwoNATs(KindMasquerade, KindHard, Link{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range in.Nodes() {
		out, err := n.Exec(ctx, "ip", "-4", "-o", "addr", "show")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, " "+n.IP.String()+"/") {
			t.Fatalf("%s: ip addr shows\n%s\nwant %s", n.Name, out, n.IP)
		}
		if strings.Count(out, " inet ") != 2+btoi(n.LAN.IsValid()) {
			t.Fatalf("%s: ip addr shows\n%s\nwant lo and its own addresses only", n.Name, out)
		}
	}
	if p := in.Host("pub").Prefix(); !strings.HasPrefix(strings.Join(p, " "), "ip netns exec "+in.Host("pub").NS) {
		t.Fatalf("prefix %v", p)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Build removes the namespaces of internets whose owner died, and a live
// internet's name cannot be taken twice.
func TestStale(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("internet test skipped: %v", err)
	}
	ctx := context.Background()
	stale := nsPrefix + "zstale-x"
	if out, err := run(ctx, "ip", "netns", "add", stale); err != nil {
		if unsupported(out) {
			t.Skipf("internet test skipped: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { run(ctx, "ip", "netns", "del", stale) })
	in := build(t, Topology{Name: "zlive", Hosts: []Host{{Name: "a"}}})
	out, _ := run(ctx, "ip", "netns", "list")
	if strings.Contains(out, stale) {
		t.Fatalf("a namespace of a dead internet survived Build:\n%s", out)
	}
	if !strings.Contains(out, in.Host("a").NS) {
		t.Fatalf("no namespace %s:\n%s", in.Host("a").NS, out)
	}
	if _, err := Build(ctx, Topology{Name: "zlive", Hosts: []Host{{Name: "b"}}}); err == nil || !strings.Contains(err.Error(), "is up") {
		t.Fatalf("second internet named zlive: %v, want refused", err)
	}
	s, err := LoadState("zlive")
	if err != nil || s.Node("a") == nil || s.Node("a").IP != in.Host("a").IP.String() {
		t.Fatalf("state %+v, %v", s, err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		topo Topology
		want string
	}{
		{Topology{Public: "10.0.0.0/33"}, "public prefix"},
		{Topology{Hosts: []Host{{Name: "A"}}}, "node name"},
		{Topology{Hosts: []Host{{Name: "a"}, {Name: "a"}}}, "used twice"},
		{Topology{Hosts: []Host{{Name: "net"}}}, "used twice"},
		{Topology{Routers: []Router{{Name: "r", Kind: "cone"}}}, "kind"},
		{Topology{Hosts: []Host{{Name: "a", Link: Link{Loss: 2}}}}, "loss"},
		{Topology{Name: "a-b"}, "name"},
		{Topology{Hosts: []Host{{Name: "a"}}, Paths: []Path{{A: "a", B: "b"}}}, "not a public host"},
	} {
		if _, err := c.topo.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.topo, err, c.want)
		}
	}
	for _, topo := range []Topology{TwoNATs(KindMasquerade, KindHard, Link{}), Sites(3, 0.01)} {
		if _, err := topo.validate(); err != nil {
			t.Errorf("%v", err)
		}
	}
}
