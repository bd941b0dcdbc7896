package gossip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is fast enough for tests and slow enough for -race on 2 cores.
// Its ScaleAt keeps the period at Heartbeat in every cluster of these
// tests, which test the timers; TestConfigDefaultsAndScaling tests the
// scaling.
func testConfig() Config {
	return Config{Heartbeat: 100 * time.Millisecond, TFail: 600 * time.Millisecond, RedialTimeout: 300 * time.Millisecond, ScaleAt: 20}
}

func testLogger() *slog.Logger {
	if os.Getenv("P2PSHARE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// tnode is one in-process member: a loopback host, its GossipSub and its
// Membership.
type tnode struct {
	key    crypto.PrivKey
	h      host.Host
	ps     *pubsub.PubSub
	m      *Membership
	cancel context.CancelFunc
	down   bool
}

// startTNode starts a member listening on listen, one multiaddr or several
// separated by commas.
func startTNode(t *testing.T, key crypto.PrivKey, listen string, cfg Config) *tnode {
	t.Helper()
	if key == nil {
		var err error
		key, _, err = crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(strings.Split(listen, ",")...), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(h, ps, cfg, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	n := &tnode{key: key, h: h, ps: ps, m: m, cancel: cancel}
	t.Cleanup(n.stop)
	return n
}

// stop ends the node without a goodbye: its connections close, as when a
// process dies.
func (n *tnode) stop() {
	if n.down {
		return
	}
	n.down = true
	n.m.Close()
	n.cancel()
	n.h.Close()
}

func connect(t *testing.T, a, b *tnode) {
	t.Helper()
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// startCluster starts k members, each connected to the first and to its
// predecessor, and waits until everyone sees everyone alive.
func startCluster(t *testing.T, k int, cfg Config) []*tnode {
	t.Helper()
	nodes := make([]*tnode, k)
	for i := range nodes {
		nodes[i] = startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
		if i > 0 {
			connect(t, nodes[i], nodes[0])
			connect(t, nodes[i], nodes[i-1])
		}
	}
	for _, n := range nodes {
		for _, o := range nodes {
			waitState(t, n, o, StateAlive, 15*time.Second)
		}
	}
	return nodes
}

func stateOf(n, of *tnode) (State, bool) {
	mem, ok := n.m.Member(of.h.ID())
	return mem.State, ok
}

func waitState(t *testing.T, n, of *tnode, want State, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if s, ok := stateOf(n, of); ok && s == want {
			return time.Since(start)
		}
		if time.Since(start) > d {
			s, _ := stateOf(n, of)
			t.Fatalf("%s sees %s as %s after %s, want %s", n.h.ID().ShortString(), of.h.ID().ShortString(), s, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTenNodesSeeEachOtherAlive(t *testing.T) {
	nodes := startCluster(t, 10, testConfig())
	for _, n := range nodes {
		if got := len(n.m.Members()); got != 10 {
			t.Fatalf("%s has %d members, want 10", n.h.ID().ShortString(), got)
		}
	}
}

func TestStoppedNodeIsDeadEverywhere(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 10, cfg)
	victim := nodes[4]
	victim.stop()
	limit := 2*cfg.TFail + time.Second
	for i, n := range nodes {
		if n == victim {
			continue
		}
		if d := waitState(t, n, victim, StateDead, limit); i == 0 {
			t.Logf("dead on node 1 after %s (limit %s)", d, limit)
		}
	}
}

func TestGoodbyeIsLeftAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.TFail = 5 * time.Second // a goodbye must not wait for the timers
	nodes := startCluster(t, 10, cfg)
	leaver := nodes[7]
	start := time.Now()
	if err := leaver.m.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaver.stop()
	for _, n := range nodes {
		if n != leaver {
			waitState(t, n, leaver, StateLeft, 2*time.Second)
		}
	}
	if d := time.Since(start); d > cfg.TFail {
		t.Fatalf("left took %s, not 'at once'", d)
	}
}

func TestRestartComesBackWithHigherIncarnation(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 10, cfg)
	old := nodes[3]
	before, _ := nodes[0].m.Member(old.h.ID())
	events, cancel := nodes[0].m.Subscribe(64)
	defer cancel()
	addr := old.h.Addrs()[0].String()
	old.stop()
	for _, n := range nodes {
		if n != old {
			waitState(t, n, old, StateDead, 2*cfg.TFail+time.Second)
		}
	}
	back := startTNode(t, old.key, addr, cfg)
	connect(t, back, nodes[0])
	for _, n := range nodes {
		if n != old {
			waitState(t, n, back, StateAlive, 10*time.Second)
		}
	}
	after, _ := nodes[0].m.Member(back.h.ID())
	if after.Inc <= before.Inc {
		t.Fatalf("incarnation %d after restart, was %d", after.Inc, before.Inc)
	}
	sawRejoin := false
	for len(events) > 0 {
		if e := <-events; e.Peer == back.h.ID() && e.Kind == EventRejoined {
			sawRejoin = true
		}
	}
	if !sawRejoin {
		t.Fatal("no rejoined event")
	}
}

func TestShortPauseIsNeverDead(t *testing.T) {
	// Slower than testConfig: the silence the others see is the pause plus
	// up to a heartbeat period plus delivery, and delivery under -race on
	// a busy machine can take a few hundred milliseconds.
	cfg := testConfig()
	cfg.Heartbeat, cfg.TFail = 200*time.Millisecond, 2*time.Second
	nodes := startCluster(t, 5, cfg)
	quiet := nodes[2]
	events, cancel := nodes[0].m.Subscribe(64)
	defer cancel()
	quiet.m.paused.Store(true)
	time.Sleep(cfg.TFail * 6 / 10) // the condition under test is a pause of this length
	quiet.m.paused.Store(false)
	quiet.m.publishHeartbeat()
	time.Sleep(cfg.TFail) // and that nothing happens afterwards either
	for len(events) > 0 {
		if e := <-events; e.Peer == quiet.h.ID() && (e.Kind == EventDead || e.Kind == EventSuspect) {
			t.Fatalf("a pause shorter than TFail gave %s", e.Kind)
		}
	}
}

func TestSilentNodeIsDeadThenAliveAgain(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 10, cfg)
	silent := nodes[5]
	silent.m.paused.Store(true) // like SIGSTOP: connections stay, heartbeats stop
	for _, n := range nodes {
		if n != silent {
			waitState(t, n, silent, StateDead, 2*cfg.TFail+time.Second)
		}
	}
	silent.m.paused.Store(false) // SIGCONT
	for _, n := range nodes {
		if n != silent {
			waitState(t, n, silent, StateAlive, 5*time.Second)
		}
	}
}

// A member whose process hangs (heartbeats stop, pings go unanswered, its
// connections stay up) is dead everywhere long before the timers' 2·TFail:
// a peer's probe accuses it and the others' probes confirm.
func TestUnansweredProbesFindSilentNode(t *testing.T) {
	cfg := testConfig()
	cfg.TFail = 30 * time.Second // the timers cannot be what finds it
	cfg.ProbeInterval = 100 * time.Millisecond
	cfg.ProbeTimeout = time.Second // pongs slower than 250 ms hold probes back: -race on a busy machine
	nodes := startCluster(t, 6, cfg)
	silent := nodes[3]
	// Pings are read and never answered, until the prober gives up.
	silent.h.SetStreamHandler(ping.ID, func(s network.Stream) { io.Copy(io.Discard, s); s.Reset() })
	silent.m.paused.Store(true)
	start := time.Now()
	for _, n := range nodes {
		if n != silent {
			waitState(t, n, silent, StateDead, 20*time.Second)
		}
	}
	t.Logf("dead everywhere %s after it went silent", time.Since(start).Round(time.Millisecond))
}

// Probes that are answered, however long the member's heartbeats pause,
// accuse nobody.
func TestAnsweredProbesAccuseNobody(t *testing.T) {
	cfg := testConfig()
	cfg.TFail = 30 * time.Second
	cfg.ProbeInterval = 50 * time.Millisecond
	cfg.ProbeTimeout = 500 * time.Millisecond
	nodes := startCluster(t, 4, cfg)
	events, cancel := nodes[0].m.Subscribe(64)
	defer cancel()
	nodes[2].m.paused.Store(true) // no heartbeats, but the host answers pings
	time.Sleep(2 * time.Second)   // the condition under test: 40 probe rounds
	for len(events) > 0 {
		if e := <-events; e.Kind == EventDead || e.Kind == EventSuspect {
			t.Fatalf("an answered probe gave %s for %s", e.Kind, e.Peer.ShortString())
		}
	}
}

// crashTestConfig lets only the TCP checks find a crash within a test's
// wait: the timers and probes would take far longer.
func crashTestConfig() Config {
	cfg := testConfig()
	cfg.TFail = 30 * time.Second
	cfg.ProbeTimeout = 10 * time.Second
	// The refusal must come back within RedialTimeout to count (a node this
	// young does not trust a dial that timed out): room for -race on 2
	// cores shared with other test packages.
	cfg.RedialTimeout = 3 * time.Second
	return cfg
}

// tcpAndQUIC listens on both transports.
const tcpAndQUIC = "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1"

// addrsOver returns n's listen addresses over TCP (or over anything else).
func addrsOver(t *testing.T, n *tnode, tcp bool) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, ad := range n.h.Addrs() {
		if isTCP(ad) == tcp {
			out = append(out, ad)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%v has no address with tcp=%v", n.h.Addrs(), tcp)
	}
	return out
}

// crashTCP makes v look killed to nodes that knew it: silent, deaf to
// pings, its TCP listener closed and its TCP connections reset, while its
// QUIC connections stay up as a killed process's do. A crashed process
// tells nobody that its listener closed, but ListenClose does: v's
// identify push would drop the TCP address from the others' peerstores,
// and their checks, finding only QUIC, would rightly reach v over it. So
// the nodes in knowers keep v's TCP addresses, as after a crash.
func crashTCP(t *testing.T, v *tnode, knowers ...*tnode) {
	t.Helper()
	tcpAddrs := addrsOver(t, v, true)
	for _, n := range knowers {
		n.h.Peerstore().AddAddrs(v.h.ID(), tcpAddrs, peerstore.PermanentAddrTTL)
	}
	v.m.paused.Store(true)
	v.h.SetStreamHandler(ping.ID, func(s network.Stream) { io.Copy(io.Discard, s); s.Reset() })
	for _, ad := range tcpAddrs {
		v.h.Network().(*swarm.Swarm).ListenClose(ad)
	}
	for _, c := range v.h.Network().Conns() {
		if isTCP(c.RemoteMultiaddr()) {
			c.Close()
		}
	}
}

// A member whose TCP connection drops and whose TCP listener is gone is
// suspected at once, even while a QUIC connection to it lives on: a killed
// process's QUIC connections are not reset by its kernel, they only go
// silent until their idle timeout.
func TestTCPRefusalCountsDespiteQUICConnection(t *testing.T) {
	cfg := crashTestConfig()
	a, b := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	// A host reuses a connection it has, so a connection per transport
	// takes two dials at once: a to b over TCP, b to a over QUIC.
	for try := 0; len(a.h.Network().ConnsToPeer(b.h.ID())) < 2; try++ {
		if try == 20 {
			t.Fatalf("no TCP and QUIC connection side by side in %d tries", try)
		}
		for _, c := range a.h.Network().ConnsToPeer(b.h.ID()) {
			c.Close()
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: addrsOver(t, b, true)})
		}()
		go func() {
			defer wg.Done()
			b.h.Connect(context.Background(), peer.AddrInfo{ID: a.h.ID(), Addrs: addrsOver(t, a, false)})
		}()
		wg.Wait()
	}
	if !hasTCP(a.h.Network().ConnsToPeer(b.h.ID())) {
		t.Fatal("two connections, none over TCP")
	}
	waitState(t, a, b, StateAlive, 10*time.Second)
	crashTCP(t, b, a)
	d := waitState(t, a, b, StateDead, 8*time.Second) // the timers would take 60 s
	t.Logf("dead %s after its TCP connection dropped, with a QUIC connection still up", d)
}

// A member killed while this node had only a QUIC connection to it: no
// reset tells this node, and the connection stays up, silent. When another
// node's suspicion arrives, this node re-dials the member's TCP port for
// itself; the refusal is its confirmation, and the member is dead on both
// nodes at once instead of after probes or timers (seconds).
func TestSuspicionIsConfirmedByARefusedTCPDial(t *testing.T) {
	cfg := crashTestConfig()
	a, b, v := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	dial := func(from *tnode, addrs []ma.Multiaddr) {
		if err := from.h.Connect(context.Background(), peer.AddrInfo{ID: v.h.ID(), Addrs: addrs}); err != nil {
			t.Fatal(err)
		}
	}
	// a and b first, alone: each hears the other's heartbeats over their
	// own connection, so a's suspicion will reach b directly, not through
	// v (GossipSub drops what it publishes to a peer whose stream is not
	// open yet).
	connect(t, a, b)
	waitState(t, a, b, StateAlive, 10*time.Second)
	waitState(t, b, a, StateAlive, 10*time.Second)
	dial(a, addrsOver(t, v, true))  // a: TCP only, so a hears the reset
	dial(b, addrsOver(t, v, false)) // b: QUIC only, so b hears nothing
	for _, n := range []*tnode{a, b} {
		waitState(t, n, v, StateAlive, 10*time.Second)
		waitState(t, v, n, StateAlive, 10*time.Second)
	}
	if hasTCP(b.h.Network().ConnsToPeer(v.h.ID())) || !hasTCP(a.h.Network().ConnsToPeer(v.h.ID())) {
		t.Fatalf("a %v, b %v: want TCP from a, QUIC only from b", a.h.Network().ConnsToPeer(v.h.ID()), b.h.Network().ConnsToPeer(v.h.ID()))
	}
	crashTCP(t, v, a, b)
	// Confirmations is 2: dead needs b's own evidence as well as a's.
	for _, n := range []*tnode{a, b} {
		d := waitState(t, n, v, StateDead, 8*time.Second)
		t.Logf("dead after %s", d)
	}
}

// A suspicion of a member that runs is not confirmed by a node that has
// no connection to it: its TCP check is accepted, and a dial that could
// not even start (no address) would not count either. The member is never
// dead there.
func TestSuspicionOfARunningMemberIsNotConfirmed(t *testing.T) {
	cfg := crashTestConfig()
	cfg.ProbeTimeout = 100 * time.Millisecond // healthy (trusting its own failed dials) after 5 of these
	start := time.Now()
	a, b, v := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	connect(t, a, b)
	connect(t, v, a) // b hears v only through a, and has no address of it
	for _, pair := range [][2]*tnode{{a, v}, {b, v}, {a, b}, {b, a}} {
		waitState(t, pair[0], pair[1], StateAlive, 10*time.Second)
	}
	b.h.Peerstore().ClearAddrs(v.h.ID())
	time.Sleep(time.Until(start.Add(10 * cfg.ProbeTimeout))) // the condition under test: b is healthy
	events, cancel := b.m.Subscribe(64)
	defer cancel()
	a.m.mu.Lock()
	mem := a.m.members[v.h.ID()]
	msg := a.m.suspectLocked(mem, mem.Inc, mem.Seq)
	a.m.mu.Unlock()
	a.m.publishSuspicion(msg)
	deadline := time.After(3 * time.Second) // checks take 250 ms at most here
	for {
		select {
		case e := <-events:
			if e.Peer == v.h.ID() && e.Kind == EventDead {
				t.Fatal("a running member was declared dead on a suspicion")
			}
		case <-deadline:
			return
		}
	}
}

// Probes go to late members only: a member whose heartbeats come on time
// gets none, and one whose heartbeats stop is probed as soon as it is late.
func TestOnlyLateMembersAreProbed(t *testing.T) {
	cfg := testConfig()
	cfg.TFail = 30 * time.Second // no timer accuses anyone meanwhile
	cfg.ProbeInterval = 50 * time.Millisecond
	cfg.ProbeTimeout = 4 * time.Second // late 1 s past the period: room for -race on a busy machine
	nodes := startCluster(t, 4, cfg)
	watched := nodes[2]
	var pings atomic.Int64
	watched.h.SetStreamHandler(ping.ID, func(s network.Stream) {
		pings.Add(1)
		buf := make([]byte, ping.PingSize)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			if _, err := s.Write(buf); err != nil {
				s.Reset()
				return
			}
		}
	})
	time.Sleep(2 * time.Second) // the condition under test: 40 probe rounds while it is punctual
	if n := pings.Load(); n != 0 {
		t.Fatalf("a punctual member got %d probes", n)
	}
	watched.m.paused.Store(true)
	start := time.Now()
	for pings.Load() == 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("a member silent for 10 s was never probed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("first probe %s after its heartbeats stopped", time.Since(start).Round(time.Millisecond))
}

// As a network grows past ScaleAt, every member's heartbeat period grows;
// receivers judge silence by the last announced period, so a member must
// never wait longer than it announced: nobody is suspected while the
// network grows.
func TestGrowingNetworkSuspectsNobody(t *testing.T) {
	cfg := testConfig()
	// The period grows from the second member on, to 1.6 s at 16 members,
	// past TFail. A TFail of 1.5 s rather than 600 ms leaves room for the
	// delivery delays of 16 nodes under -race on 2 cores shared with other
	// test packages (CI), which this test is not about.
	cfg.ScaleAt = 1
	cfg.TFail = 1500 * time.Millisecond
	first := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	events, cancel := first.m.Subscribe(256)
	defer cancel()
	nodes := []*tnode{first}
	for range 15 {
		n := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
		connect(t, n, first)
		connect(t, n, nodes[len(nodes)-1])
		nodes = append(nodes, n)
	}
	for _, o := range nodes[1:] {
		waitState(t, first, o, StateAlive, 15*time.Second)
	}
	time.Sleep(5 * time.Second) // the condition under test: three grown periods
	if p := first.m.period(); p != 1600*time.Millisecond {
		t.Fatalf("period at 16 members = %s, want 1.6s", p)
	}
	for len(events) > 0 {
		if e := <-events; e.Kind == EventSuspect || e.Kind == EventDead {
			t.Fatalf("%s while the network grew: %s", e.Kind, e.Peer.ShortString())
		}
	}
}

func TestFalseSuspicionIsRefuted(t *testing.T) {
	cfg := testConfig()
	cfg.TFail = 5 * time.Second
	nodes := startCluster(t, 5, cfg)
	liar, target := nodes[1], nodes[3]
	inc := target.m.Incarnation()
	mem, _ := liar.m.Member(target.h.ID())
	liar.m.mu.Lock()
	liar.m.seq++
	msg := Message{Kind: KindSuspect, Peer: liar.h.ID(), Inc: liar.m.inc, Seq: liar.m.seq, About: target.h.ID(), AboutInc: mem.Inc, AboutSeq: mem.Seq}
	liar.m.mu.Unlock()
	if err := liar.m.topic.Publish(context.Background(), msg.encode()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for target.m.Incarnation() == inc {
		if time.Now().After(deadline) {
			t.Fatal("the suspect did not refute with a higher incarnation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range nodes {
		if n != target {
			waitState(t, n, target, StateAlive, 3*time.Second)
		}
	}
}

// signedMessage wraps data as a pubsub message from signer.
func signedMessage(t *testing.T, signer peer.ID, data []byte) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{From: []byte(signer), Data: data}}
}

func TestValidatorRejectsForgedAndReplayed(t *testing.T) {
	nodes := startCluster(t, 2, testConfig())
	m := nodes[0].m
	a, b := nodes[0].h.ID(), nodes[1].h.ID()
	otherKey, _, _ := crypto.GenerateEd25519Key(nil)
	other, _ := peer.IDFromPrivateKey(otherKey)
	hb := func(p peer.ID, inc, seq uint64) []byte {
		return (&Message{Kind: KindHeartbeat, Peer: p, Inc: inc, Seq: seq, PeriodMillis: 100}).encode()
	}
	cases := []struct {
		name   string
		signer peer.ID
		data   []byte
		want   pubsub.ValidationResult
	}{
		{"signed by another key than it claims", other, hb(b, 1, 1), pubsub.ValidationReject},
		{"garbage", other, []byte("{not json"), pubsub.ValidationReject},
		{"unknown kind", other, []byte(`{"kind":"boom","peer":"` + other.String() + `"}`), pubsub.ValidationReject},
		{"zero period", other, (&Message{Kind: KindHeartbeat, Peer: other, Inc: 1, Seq: 1}).encode(), pubsub.ValidationReject},
		{"self-suspicion", other, (&Message{Kind: KindSuspect, Peer: other, About: other, Inc: 1, Seq: 1}).encode(), pubsub.ValidationReject},
		{"oversize", other, make([]byte, MaxMessageSize+1), pubsub.ValidationReject},
		{"fresh", other, hb(other, 5, 10), pubsub.ValidationAccept},
		{"replayed", other, hb(other, 5, 10), pubsub.ValidationIgnore},
		{"older seq", other, hb(other, 5, 9), pubsub.ValidationIgnore},
		{"older incarnation", other, hb(other, 4, 99), pubsub.ValidationIgnore},
		{"newer seq", other, hb(other, 5, 11), pubsub.ValidationAccept},
		{"newer incarnation", other, hb(other, 6, 1), pubsub.ValidationAccept},
	}
	_ = a
	for _, tc := range cases {
		if got := m.validate(context.Background(), b, signedMessage(t, tc.signer, tc.data)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestConfigDefaultsAndScaling(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil || c != DefaultConfig() {
		t.Fatalf("zero config: %+v, %v", c, err)
	}
	if _, err := (Config{Heartbeat: time.Second, TFail: time.Second}).withDefaults(); err == nil {
		t.Fatal("TFail below two heartbeats accepted")
	}
	if _, err := (Config{Heartbeat: -1}).withDefaults(); err == nil {
		t.Fatal("negative heartbeat accepted")
	}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{1, 500 * time.Millisecond}, {3, 500 * time.Millisecond}, {6, time.Second}, {30, 5 * time.Second}, {99, 16500 * time.Millisecond}} {
		if got := c.period(tc.n); got != tc.want {
			t.Errorf("period(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
	if got := c.tfail(2 * time.Second); got != 6*time.Second {
		t.Errorf("tfail for a 2 s period = %s, want 6 s", got)
	}
	if got := c.tfail(100 * time.Millisecond); got != c.TFail {
		t.Errorf("tfail for a fast member = %s, want TFail", got)
	}
}

func TestStateAndEventStrings(t *testing.T) {
	for s, want := range map[State]string{StateAlive: "alive", StateSuspect: "suspect", StateDead: "dead", StateLeft: "left"} {
		if s.String() != want {
			t.Errorf("%d: %s", s, s)
		}
	}
	if EventRejoined.String() != "rejoined" || EventAliveAgain.String() != "alive-again" {
		t.Error("event names")
	}
}

// A node resuming from a stall must not push last-seen times into the
// future, or its next detection is late by the stall (found by the
// membership benchmark: detection grew by the previous stall every round).
func TestForgiveStallNeverPastNow(t *testing.T) {
	// A bare table: a live member's heartbeats would overwrite LastSeen.
	other := peer.ID("other")
	m := &Membership{cfg: testConfig(), log: testLogger(), members: map[peer.ID]*Member{other: {ID: other, State: StateAlive}}}
	now := time.Now()
	m.mu.Lock()
	m.members[other].LastSeen = now.Add(-100 * time.Millisecond) // heard just after resuming
	m.mu.Unlock()
	m.forgiveStall(10*time.Second, now)
	lastSeen := func() time.Time {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.members[other].LastSeen
	}
	if ls := lastSeen(); ls.After(now) {
		t.Fatalf("last seen %s after now %s", ls, now)
	}
	m.mu.Lock()
	m.members[other].LastSeen = now.Add(-20 * time.Second) // silent before the stall
	m.mu.Unlock()
	m.forgiveStall(10*time.Second, now)
	if ls := lastSeen(); !ls.Equal(now.Add(-10 * time.Second)) {
		t.Fatalf("last seen %s, want the 10 s stall credited", ls)
	}
}

// The heartbeat period grows with the live members only: dead and left
// members linger in the table for ForgetAfter but must not slow the rest.
func TestPeriodCountsLiveMembersOnly(t *testing.T) {
	cfg, err := Config{ScaleAt: 2}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := &Membership{cfg: cfg, members: map[peer.ID]*Member{}}
	add := func(id string, s State) { m.members[peer.ID(id)] = &Member{ID: peer.ID(id), State: s} }
	add("a", StateAlive)
	if got := m.period(); got != cfg.Heartbeat {
		t.Fatalf("2 live: period %s, want %s", got, cfg.Heartbeat)
	}
	add("b", StateDead)
	add("c", StateLeft)
	add("d", StateDead)
	if got := m.period(); got != cfg.Heartbeat {
		t.Fatalf("2 live and 3 gone: period %s, want %s", got, cfg.Heartbeat)
	}
	add("e", StateSuspect)
	add("f", StateAlive)
	if got, want := m.period(), cfg.Heartbeat*4/2; got != want {
		t.Fatalf("4 live: period %s, want %s", got, want)
	}
}

// checkTCP tells a process that runs (its kernel accepts and the connection
// stands) from one that is gone (refused) and from one dying this moment:
// its listener still accepts, into a queue nobody reads, and resets what
// is queued when it closes.
func TestCheckTCPTellsRunningGoneAndDying(t *testing.T) {
	addrOf := func(l net.Listener) []ma.Multiaddr {
		a, err := manet.FromNetAddr(l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return []ma.Multiaddr{a}
	}
	ctx := context.Background()

	running, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	go func() {
		for {
			c, err := running.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if tcp, err := checkTCP(ctx, addrOf(running), time.Second); !tcp || err != nil {
		t.Fatalf("running: %v %v, want no evidence", tcp, err)
	}

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddrs := addrOf(gone)
	gone.Close()
	if _, err := checkTCP(ctx, goneAddrs, time.Second); !errors.Is(err, errRefused) {
		t.Fatalf("gone: %v, want refused", err)
	}

	dying, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { tcpSettle = d }(tcpSettle)
	tcpSettle = 5 * time.Second                                   // room for the close below on a loaded machine
	time.AfterFunc(50*time.Millisecond, func() { dying.Close() }) // never accepts, then exits
	if _, err := checkTCP(ctx, addrOf(dying), 5*time.Second); !errors.Is(err, errRefused) {
		t.Fatalf("dying: %v, want refused (reset)", err)
	}
}

// Settled closes one announced heartbeat period after a node first hears
// another member, by when it has heard every live member; a node alone
// never settles.
func TestSettledAfterOnePeriod(t *testing.T) {
	cfg := testConfig()
	alone := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	select {
	case <-alone.m.Settled():
		t.Fatal("a node alone says it has heard every member")
	case <-time.After(5 * cfg.Heartbeat):
	}
	nodes := startCluster(t, 3, cfg) // returns once all see all alive
	for _, n := range nodes {
		select {
		case <-n.m.Settled():
		case <-time.After(10 * time.Second):
			t.Fatal("not settled 10 s after hearing every member")
		}
	}
	newcomer := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	connect(t, newcomer, nodes[0])
	select {
	case <-newcomer.m.Settled():
		for _, n := range nodes {
			if _, ok := newcomer.m.Member(n.h.ID()); !ok {
				t.Fatalf("settled without having heard %s", n.h.ID())
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the newcomer is not settled after 10 s")
	}
}

// A member's addresses come from its heartbeats, that is from another
// node: one that does not parse is left out, the others kept in order.
func TestMemberAddrInfoSkipsBadAddresses(t *testing.T) {
	m := Member{ID: "p", Addrs: []string{"/ip4/127.0.0.1/tcp/4001", "not an address", "/ip4/127.0.0.1/udp/4001/quic-v1"}}
	ai := m.AddrInfo()
	if ai.ID != "p" || len(ai.Addrs) != 2 || ai.Addrs[0].String() != m.Addrs[0] || ai.Addrs[1].String() != m.Addrs[2] {
		t.Fatalf("AddrInfo = %v", ai)
	}
}
