package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
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

	"github.com/p2pshare/p2pshare/gossip/coord"
	"github.com/p2pshare/p2pshare/gossip/swim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is fast enough for tests and slow enough for -race on 2 cores:
// a silent member is dead everywhere within about 1.5 s. Its heartbeats
// (every 100 ms per member, N/10 s) carry the members' addresses around
// within the tests' waits.
func testConfig() Config {
	return Config{ProbeInterval: 400 * time.Millisecond, ProbeTimeout: 300 * time.Millisecond, IndirectTimeout: 600 * time.Millisecond,
		SuspicionMin: 200 * time.Millisecond, HeartbeatMin: 100 * time.Millisecond, HeartbeatRate: 10, RedialTimeout: 300 * time.Millisecond}
}

// silentLimit is how long a silent member of a cluster of testConfig may
// take to be dead everywhere: the first ping (a probe period), the ping
// and its retry through others, the suspicion timeout once every watcher
// confirms it, and a second for -race on a busy machine.
const silentLimit = 2200 * time.Millisecond

// pause stops n's loop, as SIGSTOP stops a process: what arrives waits
// (up to inboxSize), nothing is answered or published, its connections
// stay up. resume lets it go on.
func (n *tnode) pause() (resume func()) {
	release, paused := make(chan struct{}), make(chan struct{})
	n.m.cmds <- func(*loop) {
		close(paused)
		select {
		case <-release:
		case <-n.m.ctx.Done():
		}
	}
	<-paused
	var once sync.Once
	return func() { once.Do(func() { close(release) }) }
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
	h, ps, cancel := startHost(t, key, listen)
	m, err := New(h, ps, cfg, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	n := &tnode{key: key, h: h, ps: ps, m: m, cancel: cancel}
	t.Cleanup(n.stop)
	return n
}

// startHost starts a loopback host with key listening on listen (one
// multiaddr or several separated by commas) and its GossipSub; cancel
// stops the GossipSub.
func startHost(t *testing.T, key crypto.PrivKey, listen string) (host.Host, *pubsub.PubSub, context.CancelFunc) {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(strings.Split(listen, ",")...), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	if err != nil {
		t.Fatal(err)
	}
	return h, ps, cancel
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

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > d {
			t.Fatalf("not true after %s: %s", d, what)
		}
	}
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
	limit := silentLimit
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
	// A goodbye must not wait for the failure detector: it would take
	// 15 s and more to find a silent member.
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMin = 10*time.Second, 5*time.Second, 5*time.Second
	const atOnce = 5 * time.Second
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
	if d := time.Since(start); d > atOnce {
		t.Fatalf("left took %s, not 'at once'", d)
	}
}

// TestGoodbyeReachesConnectedMembersFirst: a leaver's connected members
// hear its goodbye before its connections close, even when the topic's
// copy never arrives (here: its publishing muted), so the drop and the
// refused port that follow never make it dead.
func TestGoodbyeReachesConnectedMembersFirst(t *testing.T) {
	cfg := crashTestConfig()
	nodes := startCluster(t, 5, cfg)
	leaver := nodes[0] // every other node is connected to it
	events := watchEvents(t, nodes[1:])
	leaver.m.muted.Store(true)
	var mu sync.Mutex
	heard := map[peer.ID]bool{} // the members that took the goodbye in
	for _, n := range nodes[1:] {
		f := func(from peer.ID, msg *swim.Message) {
			if msg.Kind == swim.KindLeave && from == leaver.h.ID() {
				mu.Lock()
				heard[n.h.ID()] = true
				mu.Unlock()
			}
		}
		n.m.onDirect.Store(&f)
	}
	if err := leaver.m.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(heard) != len(nodes)-1 {
		t.Errorf("Leave returned before %d of %d members took the goodbye in", len(nodes)-1-len(heard), len(nodes)-1)
	}
	mu.Unlock()
	// Leave returns once every member has read the goodbye off its
	// stream; its loop takes it in order, before the evidence of the
	// connections that close next.
	for _, n := range nodes[1:] {
		waitState(t, n, leaver, StateLeft, time.Second)
	}
	leaver.stop()
	// The closed connections and the refused port are evidence a member
	// acts on in milliseconds (crashTestConfig): watch for a second.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		for _, e := range events() {
			if e.Peer == leaver.h.ID() && e.Kind != EventLeft {
				t.Fatalf("after a goodbye, an event %s", e.Kind)
			}
		}
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
			waitState(t, n, old, StateDead, silentLimit)
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

// A pause shorter than two ProbeTimeouts is never suspected: a watcher's
// probe, from its ping to the end of the helpers' relayed pings, lasts
// that long, and the paused node answers the pings that waited as soon as
// it resumes.
func TestShortPauseIsNeverDead(t *testing.T) {
	// Slower than testConfig: delivery under -race on a busy machine can
	// take a few hundred milliseconds.
	cfg := testConfig()
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.IndirectTimeout = 1500*time.Millisecond, time.Second, 2*time.Second
	nodes := startCluster(t, 5, cfg)
	quiet := nodes[2]
	events, cancel := nodes[0].m.Subscribe(64)
	defer cancel()
	resume := quiet.pause()
	time.Sleep(2 * cfg.ProbeTimeout * 6 / 10) // the condition under test is a pause of this length
	resume()
	time.Sleep(2 * time.Second) // and that nothing happens afterwards either
	for len(events) > 0 {
		if e := <-events; e.Peer == quiet.h.ID() && (e.Kind == EventDead || e.Kind == EventSuspect) {
			t.Fatalf("a pause shorter than two ProbeTimeouts gave %s", e.Kind)
		}
	}
}

func TestSilentNodeIsDeadThenAliveAgain(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 10, cfg)
	silent := nodes[5]
	resume := silent.pause() // like SIGSTOP: connections stay, nothing is answered
	for _, n := range nodes {
		if n != silent {
			waitState(t, n, silent, StateDead, silentLimit)
		}
	}
	resume() // SIGCONT
	for _, n := range nodes {
		if n != silent {
			waitState(t, n, silent, StateAlive, 5*time.Second)
		}
	}
}

// A member whose process hangs (heartbeats stop, pings go unanswered, its
// connections stay up) is dead everywhere: a watcher's probe accuses it
// and the others' probes confirm.
func TestUnansweredProbesFindSilentNode(t *testing.T) {
	cfg := testConfig()
	cfg.ProbeTimeout = 350 * time.Millisecond // room for -race on a busy machine
	nodes := startCluster(t, 6, cfg)
	silent := nodes[3]
	// libp2p pings are read and never answered either, until the prober
	// gives up.
	silent.h.SetStreamHandler(ping.ID, func(s network.Stream) { io.Copy(io.Discard, s); s.Reset() })
	silent.pause()
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
	cfg.ProbeInterval = 50 * time.Millisecond
	cfg.ProbeTimeout = 500 * time.Millisecond
	nodes := startCluster(t, 4, cfg)
	events, cancel := nodes[0].m.Subscribe(64)
	defer cancel()
	nodes[2].m.muted.Store(true) // no heartbeats, but it answers pings
	time.Sleep(2 * time.Second)  // the condition under test: 40 probe rounds
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
	// A probe that finds no answer takes 10 s, longer than the tests wait.
	cfg.ProbeInterval, cfg.ProbeTimeout = 20*time.Second, 10*time.Second
	// The refusal must come back within RedialTimeout to count: room for
	// -race on 2 cores shared with other test packages.
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
	v.pause()
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

// A node that found a killed member's port refused after its connection
// dropped does not check the port again when the others' suspicions of
// it arrive: one refusal per node and incarnation is all the core counts.
func TestOwnRefusalIsNotCheckedAgain(t *testing.T) {
	cfg := crashTestConfig()
	// Three refusals end the suspicion: a's and b's alone leave v suspect
	// when each hears the other's, so a second check would start for sure;
	// w, which has no connection to v, brings the third.
	cfg.Confirmations = 3
	a, b, v, w := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	connect(t, a, b)
	connect(t, w, a)
	for _, n := range []*tnode{a, b} {
		if err := n.h.Connect(context.Background(), peer.AddrInfo{ID: v.h.ID(), Addrs: addrsOver(t, v, true)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*tnode{a, b, v, w} {
		for _, of := range []*tnode{a, b, v, w} {
			if n != of {
				waitState(t, n, of, StateAlive, 10*time.Second)
			}
		}
	}
	var mu sync.Mutex
	refusals := map[peer.ID]int{} // by the node that found v refused
	for _, n := range []*tnode{a, b} {
		g := func(p peer.ID, ev swim.Evidence) {
			if p == v.h.ID() && ev == swim.EvidenceRefused {
				mu.Lock()
				refusals[n.h.ID()]++
				mu.Unlock()
			}
		}
		n.m.onEvidence.Store(&g)
	}
	crashTCP(t, v, a, b, w)
	for _, n := range []*tnode{a, b} {
		waitState(t, n, v, StateDead, 8*time.Second)
	}
	// A second check would start on the other's suspicion, before the
	// death, and end within tcpSettle; give it twice that.
	deadline := time.Now().Add(2 * tcpSettle)
	for time.Now().Before(deadline) {
		mu.Lock()
		ra, rb := refusals[a.h.ID()], refusals[b.h.ID()]
		mu.Unlock()
		if ra > 1 || rb > 1 {
			t.Fatalf("refusals found: a %d, b %d; want one each", ra, rb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if refusals[a.h.ID()] != 1 || refusals[b.h.ID()] != 1 {
		t.Fatalf("refusals found: %v; want one by each node", refusals)
	}
}

// Two TCP connections to a crashed member drop together, and each asks
// for a check: the second, asked while the first runs, does not run once
// the first found the port refused. (The hook asks for it as the first
// check reports, so it is always asked while the first is in flight.)
func TestRefusedCheckDoesNotRunAgain(t *testing.T) {
	cfg := crashTestConfig()
	a, v := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: v.h.ID(), Addrs: addrsOver(t, v, true)}); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, v, StateAlive, 10*time.Second)
	waitState(t, v, a, StateAlive, 10*time.Second)
	var refusals atomic.Int32
	g := func(p peer.ID, ev swim.Evidence) {
		if p == v.h.ID() && ev == swim.EvidenceRefused && refusals.Add(1) == 1 {
			a.m.startCheck(p, checkOnDisconnect, nil) // the other connection's drop
		}
	}
	a.m.onEvidence.Store(&g)
	crashTCP(t, v, a)
	waitState(t, a, v, StateDead, 8*time.Second)
	// A second check would end within tcpSettle of the first; give it
	// twice that.
	deadline := time.Now().Add(2 * tcpSettle)
	for time.Now().Before(deadline) && refusals.Load() <= 1 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := refusals.Load(); n != 1 {
		t.Fatalf("v's port found refused %d times, want once", n)
	}
}

// A check asked for while one runs that found no refusal runs when that
// one ends: the member may have crashed after it. Here no TCP address of
// the member is known, so each check finds it unreachable (a reset, not
// a refusal) at once.
func TestCheckWithoutRefusalRunsAgain(t *testing.T) {
	cfg := crashTestConfig()
	a, v := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	quic := addrsOver(t, v, false)
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: v.h.ID(), Addrs: quic}); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, v, StateAlive, 10*time.Second)
	var resets atomic.Int32
	g := func(p peer.ID, ev swim.Evidence) {
		if p == v.h.ID() && ev == swim.EvidenceReset && resets.Add(1) == 1 {
			a.m.startCheck(p, checkOnDisconnect, nil) // another drop, during the first check
		}
	}
	a.m.onEvidence.Store(&g)
	a.h.Peerstore().ClearAddrs(v.h.ID())
	a.h.Peerstore().AddAddrs(v.h.ID(), quic, peerstore.PermanentAddrTTL)
	a.m.startCheck(v.h.ID(), checkOnDisconnect, nil)
	deadline := time.Now().Add(2 * tcpSettle)
	for time.Now().Before(deadline) && resets.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := resets.Load(); n != 2 {
		t.Fatalf("v found unreachable by %d checks, want 2: the one asked for during the first did not run", n)
	}
}

// A suspected member that runs refutes on the topic and tells its accuser
// directly, the one that would declare it dead: here the topic's copy is
// lost (the member publishes nothing) and no probe runs, yet the accuser
// sees it alive again at once.
func TestRefutationReachesTheAccuserDirectly(t *testing.T) {
	cfg := crashTestConfig()
	cfg.SuspicionMin = time.Minute // dead only by confirmations, which never come
	a, b, c := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg), startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg), startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	connect(t, a, b)
	connect(t, b, c)
	connect(t, c, a)
	for _, n := range []*tnode{a, b, c} {
		for _, of := range []*tnode{a, b, c} {
			if n != of {
				waitState(t, n, of, StateAlive, 10*time.Second)
			}
		}
	}
	before := b.m.Incarnation()
	b.m.muted.Store(true)
	// a claims a refused connection to b: one refusal of the two that
	// would make b dead. b hears of it by the notice a suspect is sent
	// directly (the topic's copy may go only to c while a's mesh forms).
	if err := a.m.do(context.Background(), func(l *loop) {
		p := swimID(b.h.ID())
		l.core.Evidence(p, swim.EvidenceRefused)
		e, _ := l.core.Member(p)
		l.m.send(b.h.ID(), direct{msg: &swim.Message{Kind: swim.KindSuspect, From: swimID(l.self), Target: p, Inc: e.Inc, Refused: true}}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the accuser sees the member alive at a higher incarnation", func() bool {
		mem, _ := a.m.Member(b.h.ID())
		return mem.State == StateAlive && mem.Inc > before
	})
}

// A suspicion of a member that runs is not confirmed by a node that has
// no connection to it: its TCP check is accepted, and a dial that could
// not even start (no address) would not count either. The member is never
// dead there.
func TestSuspicionOfARunningMemberIsNotConfirmed(t *testing.T) {
	cfg := crashTestConfig()
	a, b, v := startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg), startTNode(t, nil, tcpAndQUIC, cfg)
	connect(t, a, b)
	connect(t, v, a) // b hears v only through a, and has no address of it
	for _, pair := range [][2]*tnode{{a, v}, {b, v}, {a, b}, {b, a}} {
		waitState(t, pair[0], pair[1], StateAlive, 10*time.Second)
	}
	b.h.Peerstore().ClearAddrs(v.h.ID())
	events, cancel := b.m.Subscribe(64)
	defer cancel()
	// a claims a refused connection: one refusal of the two that would
	// prove v gone.
	if err := a.m.do(context.Background(), func(l *loop) { l.core.Evidence(swimID(v.h.ID()), swim.EvidenceRefused) }); err != nil {
		t.Fatal(err)
	}
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

// Probes go to the watched members only: each node pings its Watchers
// successors on the ring, and others only when a ping-req asks it to, so a
// node's probes cost O(Watchers) whatever N; and a silent member is still
// probed.
func TestProbesGoToWatchedMembers(t *testing.T) {
	cfg := testConfig()
	cfg.Watchers = 2
	cfg.SuspicionMin = time.Minute // nobody is dead and gone meanwhile
	nodes := startCluster(t, 8, cfg)
	// A member known only from others' news has no address yet, so its
	// watchers reach it through others (ping-req) until its heartbeat.
	waitFor(t, 10*time.Second, "every node has every member's addresses", func() bool {
		for _, n := range nodes {
			for _, o := range nodes {
				if mem, _ := n.m.Member(o.h.ID()); n != o && len(mem.Addrs) == 0 {
					return false
				}
			}
		}
		return true
	})
	watched := map[peer.ID][]peer.ID{}
	for _, n := range nodes {
		if err := n.m.do(context.Background(), func(l *loop) {
			for _, id := range l.core.Watched() {
				watched[n.h.ID()] = append(watched[n.h.ID()], peerID(id))
			}
		}); err != nil {
			t.Fatal(err)
		}
		if len(watched[n.h.ID()]) != cfg.Watchers {
			t.Fatalf("%s watches %d members, want %d", n.h.ID().ShortString(), len(watched[n.h.ID()]), cfg.Watchers)
		}
	}
	type ping struct{ from, to peer.ID }
	var mu sync.Mutex
	pings := map[ping]int{}
	asked := map[ping]bool{} // a ping-req asked from to ping to
	// A member whose last connection dropped and whose port did not
	// answer a re-dial in time (a busy machine) is probed at once.
	evidence := map[ping]bool{}
	for _, n := range nodes {
		g := func(p peer.ID, ev swim.Evidence) {
			mu.Lock()
			defer mu.Unlock()
			if ev == swim.EvidenceReset {
				evidence[ping{n.h.ID(), p}] = true
			}
		}
		n.m.onEvidence.Store(&g)
		f := func(from peer.ID, msg *swim.Message) {
			mu.Lock()
			defer mu.Unlock()
			switch msg.Kind {
			case swim.KindPing:
				pings[ping{from, n.h.ID()}]++
			case swim.KindPingReq:
				asked[ping{n.h.ID(), peerID(msg.Target)}] = true
			}
		}
		n.m.onDirect.Store(&f)
	}
	time.Sleep(10 * cfg.ProbeInterval) // the condition under test: 10 probe rounds
	mu.Lock()
	pingedBy := map[peer.ID]int{}
	for p, k := range pings {
		if !slices.Contains(watched[p.from], p.to) && !asked[p] && !evidence[p] {
			t.Errorf("%s pinged %s %d times: neither watched, nor asked to, nor unreachable after a drop", p.from.ShortString(), p.to.ShortString(), k)
		}
		pingedBy[p.to]++
	}
	for _, n := range nodes {
		if pingedBy[n.h.ID()] == 0 {
			t.Errorf("%s was never pinged", n.h.ID().ShortString())
		}
	}
	clear(pings)
	mu.Unlock()
	silent := nodes[2]
	silent.pause()
	time.Sleep(2 * cfg.ProbeInterval)
	mu.Lock()
	defer mu.Unlock()
	for p := range pings {
		if p.to == silent.h.ID() {
			return
		}
	}
	t.Fatal("a silent member was not probed")
}

// As a network grows, every member's heartbeat period grows and the ring
// of watchers changes under the members' feet: nobody is declared dead
// while the network grows. A suspicion may come (16 nodes in one process
// under -race, on 2 cores shared with other tests, answer late: a late
// ack is what a suspicion is for), and the suspected member refutes it.
func TestGrowingNetworkDeclaresNobodyDead(t *testing.T) {
	cfg := testConfig()
	// The period grows with every member, to 1.6 s at 16. Probe timeouts
	// longer than testConfig's leave room for the delivery delays of 16
	// nodes under -race on 2 cores shared with other test packages (CI),
	// which this test is not about.
	cfg.ProbeTimeout, cfg.IndirectTimeout = time.Second, 2*time.Second
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
	if self, _ := first.m.Member(first.h.ID()); self.Period != 1600*time.Millisecond {
		t.Fatalf("period at 16 members = %s, want 1.6s", self.Period)
	}
	suspected := map[peer.ID]bool{}
	for len(events) > 0 {
		switch e := <-events; e.Kind {
		case EventDead:
			t.Fatalf("dead while the network grew: %s", e.Peer.ShortString())
		case EventSuspect:
			suspected[e.Peer] = true
		}
	}
	for _, o := range nodes[1:] {
		if suspected[o.h.ID()] {
			waitState(t, first, o, StateAlive, 5*time.Second)
		}
	}
}

func TestFalseSuspicionIsRefuted(t *testing.T) {
	cfg := testConfig()
	cfg.SuspicionMin = 5 * time.Second // the suspicion cannot end before its refutation
	nodes := startCluster(t, 5, cfg)
	liar, target := nodes[1], nodes[3]
	inc := target.m.Incarnation()
	mem, _ := liar.m.Member(target.h.ID())
	// The liar publishes a suspicion its failure detector never raised.
	if err := liar.m.do(context.Background(), func(l *loop) {
		l.publish(&swim.Message{Kind: swim.KindSuspect, From: swimID(liar.h.ID()), Target: swimID(target.h.ID()), Inc: mem.Inc})
	}); err != nil {
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

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("zero config: %+v, %v", c, err)
	}
	for name, bad := range map[string]Config{
		"negative probe interval": {ProbeInterval: -1},
		"negative redial timeout": {RedialTimeout: -1},
		"negative watchers":       {Watchers: -1},
		"suspicion multiplier":    {SuspicionMaxMult: 0.5},
		"negative heartbeat rate": {HeartbeatRate: -1},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// The defaults are the core's.
	sc := c.swimConfig("self", 7)
	d := swim.DefaultConfig()
	if sc.ProbePeriod != d.ProbePeriod || sc.ProbeTimeout != d.ProbeTimeout || sc.IndirectTimeout != d.IndirectTimeout ||
		sc.SuspicionMin != d.SuspicionMin || sc.SuspicionMaxMult != d.SuspicionMaxMult || sc.Watchers != d.Watchers ||
		sc.Helpers != d.Helpers || sc.Confirmations != d.Confirmations || sc.HeartbeatMin != d.HeartbeatMin ||
		sc.HeartbeatRate != d.HeartbeatRate || sc.ForgetAfter != d.ForgetAfter || sc.Self != "self" || sc.Inc != 7 {
		t.Fatalf("core config %+v, core defaults %+v", sc, d)
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

// Settled closes once a node has caught up on the table (a table
// exchange with a member, or one announced heartbeat period after it
// first heard one), by when it has heard of every live member; a node
// alone never settles.
func TestSettledAfterOnePeriod(t *testing.T) {
	cfg := testConfig()
	alone := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	select {
	case <-alone.m.Settled():
		t.Fatal("a node alone says it has heard every member")
	case <-time.After(5 * cfg.HeartbeatMin):
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

// fixedCoordinate is a node's network coordinate that never moves.
type fixedCoordinate struct{ c *coord.Coordinate }

func (f fixedCoordinate) Coordinate() *coord.Coordinate { return f.c }

// TestHeartbeatCarriesTheCoordinate: a member's network coordinate
// reaches the other members with its heartbeats.
func TestHeartbeatCarriesTheCoordinate(t *testing.T) {
	cfg := testConfig()
	want := &coord.Coordinate{Vec: []float64{0.012, -0.004}, Error: 0.3, Height: 0.001}
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	cfg.Coordinates = fixedCoordinate{want}
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	connect(t, a, b)
	waitFor(t, 15*time.Second, "a to hear b's coordinate", func() bool {
		m, ok := a.m.Member(b.h.ID())
		return ok && m.Coord != nil && reflect.DeepEqual(m.Coord, want)
	})
	if m, _ := b.m.Member(a.h.ID()); m.Coord != nil {
		t.Fatalf("b holds a coordinate %+v for a, which has none", m.Coord)
	}
}

// A node whose addresses change announces them at once, not at its next
// heartbeat: a member it is not connected to (two nodes behind NATs, say)
// then dials it where it can be reached now, through a relay.
func TestChangedAddressesAreAnnouncedAtOnce(t *testing.T) {
	cfg := testConfig()
	// Neither heartbeats nor pings (whose answers carry the answerer's
	// addresses) come within the test.
	cfg.HeartbeatMin, cfg.ProbeInterval = time.Hour, time.Hour
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	var addrs atomic.Pointer[[]ma.Multiaddr]
	first := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4040")}
	addrs.Store(&first)
	cfg.Addrs = func() []ma.Multiaddr { return *addrs.Load() }
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	connect(t, a, b)
	heard := func(want []ma.Multiaddr) func() bool {
		return func() bool {
			m, ok := a.m.Member(b.h.ID())
			return ok && slices.EqualFunc(m.Addrs, want, func(s string, a ma.Multiaddr) bool { return s == a.String() })
		}
	}
	waitFor(t, 10*time.Second, "a to hear b's first address", heard(first))
	// A node announces itself again announceDelay after a peer joins
	// it; that announcement is not what the test is about.
	waitFor(t, 5*time.Second, "b's announcements on joining to be out", func() bool {
		var pending bool
		_ = b.m.do(context.Background(), func(l *loop) { pending = !l.announceAt.IsZero() })
		return !pending
	})
	second := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4040"),
		ma.StringCast("/ip4/198.51.100.7/tcp/4040/p2p/12D3KooWK8E7JjtgT5aDKCDQ4dj51nmy5QkWBXNmDBjAT47jdxpp/p2p-circuit")}
	addrs.Store(&second)
	b.m.AddrsChanged()
	waitFor(t, 3*time.Second, "a to hear b's relay address", heard(second))
}

// TestWatchersConnectionsAreProtected: every node protects its
// connections to the members it watches and to those that watch it from
// the connection manager, and no others (a trim of either side would
// make both check the other and the next ping dial again); those are its
// Neighbours.
func TestWatchersConnectionsAreProtected(t *testing.T) {
	cfg := testConfig()
	cfg.Watchers = 2
	cfg.SuspicionMin = time.Minute
	nodes := startCluster(t, 8, cfg)
	waitFor(t, 10*time.Second, "each node protects exactly its watched and watching members", func() bool {
		for _, n := range nodes {
			var near []peer.ID
			if err := n.m.do(context.Background(), func(l *loop) {
				for _, id := range append(l.core.Watched(), l.core.WatchedBy()...) {
					near = append(near, peerID(id))
				}
			}); err != nil {
				t.Fatal(err)
			}
			if len(near) != 2*cfg.Watchers {
				return false
			}
			for _, o := range nodes {
				want := slices.Contains(near, o.h.ID())
				if o != n && (n.h.ConnManager().IsProtected(o.h.ID(), protectTag) != want || n.m.Neighbour(o.h.ID()) != want) {
					return false
				}
			}
		}
		return true
	})
}

// TestBulkSendsLeaveRoomForTheDetector: table exchanges and port checks
// take at most maxBulk of the sending goroutines, so a burst of them
// never stops a ping or an ack from going; past maxSending in all,
// anything more is dropped and counted.
func TestBulkSendsLeaveRoomForTheDetector(t *testing.T) {
	n := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", testConfig())
	release := make(chan struct{})
	block := func(ctx context.Context) {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	defer close(release)
	for i := range maxBulk {
		if !n.m.spawn(true, block) {
			t.Fatalf("bulk send %d refused under maxBulk", i)
		}
	}
	if n.m.spawn(true, block) {
		t.Fatal("a bulk send past maxBulk was taken")
	}
	for i := maxBulk; i < maxSending; i++ {
		if !n.m.spawn(false, block) {
			t.Fatalf("send %d refused with only maxBulk bulk ones running", i)
		}
	}
	if n.m.spawn(false, block) {
		t.Fatal("a send past maxSending was taken")
	}
	if got := n.m.Stats().SendDropped; got != 2 {
		t.Fatalf("SendDropped %d, want 2", got)
	}
}

// An idle node's cost does not grow with N: the pings and acks it gets
// from the few members on its ring update those members' LastSeen, which
// readers see at once, but its table, a copy of every member, is
// published only for a change a topic message brings.
func TestIdleNodePublishesItsTableRarely(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatMin = time.Minute // only pings and acks arrive in the window
	nodes := startCluster(t, 5, cfg)
	n := nodes[0]
	var got atomic.Int64
	f := func(peer.ID, *swim.Message) { got.Add(1) }
	n.m.onDirect.Store(&f)
	tables := func() (c int) {
		if err := n.m.do(context.Background(), func(l *loop) { c = l.tables }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	topic := func() int64 { st := n.m.Stats(); return st.Published + st.Received }
	t0, topic0, start := tables(), topic(), time.Now()
	waitFor(t, 20*time.Second, "30 direct messages received", func() bool { return got.Load() >= 30 })
	published, elapsed := tables()-t0, time.Since(start)
	// A topic message (the last announcements of the cluster's start)
	// may change the table; a ping or an ack changes only LastSeen.
	news := int(topic() - topic0)
	if limit := news + 2; published > limit {
		t.Fatalf("%d tables published for %d direct and %d topic messages in %v, want at most %d", published, got.Load(), news, elapsed, limit)
	}
	t.Logf("%d tables published for %d direct and %d topic messages in %v", published, got.Load(), news, elapsed.Round(time.Millisecond))
	// The members it exchanged pings with show it, all the same.
	fresh := 0
	for _, mem := range n.m.Members() {
		if !mem.Self && mem.LastSeen.After(start) {
			fresh++
		}
	}
	if fresh == 0 {
		t.Fatalf("no member's LastSeen is after the %d direct messages of the last %v", got.Load(), elapsed.Round(time.Millisecond))
	}
}

// Each shows the members Members shows, this node left out, with the same
// state and facts, and reflects a death as Members does.
func TestEachAgreesWithMembers(t *testing.T) {
	nodes := startCluster(t, 4, testConfig())
	n := nodes[0]
	check := func(step string) {
		t.Helper()
		want := map[peer.ID]Member{}
		for _, m := range n.m.Members() {
			if !m.Self {
				want[m.ID] = m
			}
		}
		got := 0
		n.m.Each(func(m Member) {
			got++
			w, ok := want[m.ID]
			if !ok || m.State != w.State || m.Inc != w.Inc || !slices.Equal(m.Addrs, w.Addrs) || m.FreeBytes != w.FreeBytes || m.Coord != w.Coord {
				t.Errorf("%s: Each gave %s %s inc %d addrs %v, Members %+v", step, m.ID, m.State, m.Inc, m.Addrs, w)
			}
		})
		if got != len(want) {
			t.Errorf("%s: Each gave %d members, Members %d others", step, got, len(want))
		}
	}
	check("all alive")
	nodes[3].stop()
	waitState(t, n, nodes[3], StateDead, 15*time.Second)
	check("one dead")
}

// The table readers see is a copy of the loop's records that shares the
// ones that did not change since the last copy (touch). A change made
// without touch would stay unseen by readers until that member changed
// again: each time the loop has flushed, the published table must hold
// every record as the loop does, whatever happened meanwhile
// (heartbeats, addresses, a death, a join, a leave).
func TestPublishedTableFollowsEveryChange(t *testing.T) {
	nodes := startCluster(t, 4, testConfig())
	check := func(step string) {
		t.Helper()
		for i, n := range nodes[:2] {
			var problems []string
			err := n.m.do(context.Background(), func(l *loop) {
				tab := l.m.snap.Load()
				if len(tab.members) != len(l.table) {
					problems = append(problems, fmt.Sprintf("%d members published, %d in the loop", len(tab.members), len(l.table)))
				}
				var liveIDs []peer.ID
				for p, rec := range l.table {
					if cp := tab.members[p]; cp == nil || !sameMember(cp, rec) {
						problems = append(problems, fmt.Sprintf("%s published as %+v, %+v in the loop", p, cp, rec))
					}
					if live(rec.State) {
						liveIDs = append(liveIDs, p)
					}
				}
				if !sameSet(liveIDs, tab.live) {
					problems = append(problems, fmt.Sprintf("live %v published, %v in the loop", tab.live, liveIDs))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s, node %d: %s", step, i, p)
			}
		}
	}
	// Heartbeats keep coming (every 100 ms a member, testConfig): each
	// changes its sender's number, some its facts.
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		check("heartbeats")
	}
	nodes[3].stop()
	waitState(t, nodes[0], nodes[3], StateDead, 15*time.Second)
	waitState(t, nodes[1], nodes[3], StateDead, 15*time.Second)
	check("one dead")
	joiner := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", testConfig())
	connect(t, joiner, nodes[0])
	waitState(t, nodes[0], joiner, StateAlive, 15*time.Second)
	waitState(t, nodes[1], joiner, StateAlive, 15*time.Second)
	check("one joined")
	if err := nodes[2].m.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, nodes[0], nodes[2], StateLeft, 15*time.Second)
	waitState(t, nodes[1], nodes[2], StateLeft, 15*time.Second)
	check("one left")
}

func sameSet(a, b []peer.ID) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(p peer.ID) bool { return !slices.Contains(b, p) })
}

// A member that hears a crashed member's refusal but cannot check its
// port (no connection to it, and only others' word on its addresses,
// which may be of an earlier run) asks the crashed member's neighbours
// for their refusals, and is dead with everyone else at once: not when
// the second watcher publishes its refusal (RefusalHold/2 later, 15 s
// here) nor when the suspicion times out (a minute here).
func TestMemberThatCannotCheckAsksForRefusals(t *testing.T) {
	cfg := crashTestConfig()
	cfg.Watchers, cfg.refusalHold, cfg.SuspicionMin = 2, 30*time.Second, 10*time.Second
	cfg.HeartbeatMin = time.Minute // no heartbeat gives the asker the member's own addresses
	nodes := make([]*tnode, 6)
	for i := range nodes {
		nodes[i] = startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
		if i > 0 {
			connect(t, nodes[i], nodes[0])
		}
	}
	for _, n := range nodes {
		for _, o := range nodes {
			waitState(t, n, o, StateAlive, 15*time.Second)
		}
	}
	// v and the asker j: j is neither a neighbour of v on the ring (those
	// watch v or are watched by it, so are connected to it), nor the hub.
	var v, j *tnode
	for _, cand := range nodes[1:] {
		for _, o := range nodes[1:] {
			if o != cand && !cand.m.Neighbour(o.h.ID()) {
				v, j = cand, o
			}
		}
		if v != nil {
			break
		}
	}
	if v == nil {
		t.Fatal("no member has a non-neighbour other than the hub")
	}
	for _, o := range nodes {
		if o != v && o != j {
			connect(t, j, o) // j asks without dialling
		}
	}
	if err := j.h.Network().ClosePeer(v.h.ID()); err != nil {
		t.Fatal(err)
	}
	if err := j.m.do(context.Background(), func(l *loop) { l.table[v.h.ID()].ownAddrs = false }); err != nil {
		t.Fatal(err)
	}
	var knowers []*tnode
	for _, o := range nodes {
		if o != v && o != j {
			knowers = append(knowers, o)
		}
	}
	for _, o := range knowers {
		connect(t, o, v) // each finds the port refused when v crashes
	}
	if j.m.connected(v.h.ID()) {
		t.Fatal("j is connected to v")
	}
	// j's questions, as its neighbours receive them. (A death can reach j
	// another way too, as news on a later message.)
	var asked atomic.Int64
	f := func(from peer.ID, msg *swim.Message) {
		if from == j.h.ID() && msg.Kind == swim.KindPingReq && msg.Target == swimID(v.h.ID()) {
			asked.Add(1)
		}
	}
	for _, o := range knowers {
		o.m.onDirect.Store(&f)
	}
	crashTCP(t, v, knowers...)
	t.Logf("j: dead after %s", waitState(t, j, v, StateDead, 3*time.Second))
	if asked.Load() == 0 {
		t.Fatal("j did not ask v's neighbours for their refusals")
	}
	for _, n := range knowers {
		waitState(t, n, v, StateDead, 3*time.Second)
	}
}
