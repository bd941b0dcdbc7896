package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// quietLogger keeps test output readable; set P2PSHARE_TEST_LOG=1 to see logs.
func quietLogger() *slog.Logger {
	if os.Getenv("P2PSHARE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestNode starts a loopback node in a temp repo, closed at cleanup.
func newTestNode(t *testing.T, mod func(*Config), bootstrap ...peer.AddrInfo) *Node {
	t.Helper()
	n, err := New(testConfig(t, mod, bootstrap...))
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

// testConfig is the configuration of a loopback test node in a temp repo.
func testConfig(t *testing.T, mod func(*Config), bootstrap ...peer.AddrInfo) Config {
	t.Helper()
	cfg := DefaultLocalConfig(t.TempDir())
	cfg.Bootstrap = bootstrap
	cfg.Logger = quietLogger()
	cfg.Share.StallTimeout = 500 * time.Millisecond
	cfg.Share.LookupTimeout = 3 * time.Second
	// These tests pin which provider serves a get; replication (tested end
	// to end in testnet/) would add holders they do not expect.
	cfg.Share.Replicas = 1
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func addrInfo(n *Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
}

// newTestNetwork starts k nodes bootstrapped to the first, each configured
// by mod if set, and waits until every routing table holds every other node.
func newTestNetwork(t *testing.T, k int, mod ...func(*Config)) []*Node {
	t.Helper()
	var m func(*Config)
	if len(mod) > 0 {
		m = mod[0]
	}
	nodes := []*Node{newTestNode(t, m)}
	for i := 1; i < k; i++ {
		nodes = append(nodes, newTestNode(t, m, addrInfo(nodes[0])))
	}
	waitFor(t, 15*time.Second, "routing tables to fill", func() bool {
		for _, n := range nodes {
			if n.DHT().RoutingTable().Size() < k-1 {
				n.peering.refreshDHT()
				return false
			}
		}
		return true
	})
	return nodes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func shareBytes(t *testing.T, n *Node, name string, b []byte) api.ShareResult {
	t.Helper()
	res, err := n.API().Share(context.Background(), api.ShareRequest{Name: name, Body: bytes.NewReader(b)})
	if err != nil {
		t.Fatalf("share %s: %v", name, err)
	}
	return res
}

func getInto(t *testing.T, n *Node, ref string) (api.GetResult, []byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out")
	res, err := n.API().Get(context.Background(), api.GetRequest{Ref: ref, Path: path})
	if err != nil {
		return res, nil, err
	}
	b, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatalf("read fetched file: %v", rerr)
	}
	return res, b, nil
}

func TestShareGetAcrossFiveNodes(t *testing.T) {
	nodes := newTestNetwork(t, 5)
	data := randomBytes(t, 3<<20+17)
	sr := shareBytes(t, nodes[1], "notes.txt", data)
	if !sr.Published || sr.Size != int64(len(data)) || sr.CID != share.ComputeCID(data).String() {
		t.Fatalf("share result %+v", sr)
	}
	// The name is findable the moment share returns, from every node.
	for i, n := range []*Node{nodes[4], nodes[0], nodes[3]} {
		res, got, err := getInto(t, n, "notes.txt")
		if err != nil {
			t.Fatalf("get on node %d: %v", i, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("get on node %d: bytes differ", i)
		}
		if res.Provider != nodes[1].Host().ID().String() {
			t.Fatalf("provider %s, want the sharer %s", res.Provider, nodes[1].Host().ID())
		}
		if res.CID != sr.CID || res.Name != "notes.txt" || res.Size != sr.Size {
			t.Fatalf("get result %+v", res)
		}
	}
	// By CID, without a name.
	res, got, err := getInto(t, nodes[2], sr.CID)
	if err != nil || !bytes.Equal(got, data) || res.Name != "" {
		t.Fatalf("get by CID: %+v, %v", res, err)
	}
	// The sharer itself serves from its own store.
	res, _, err = getInto(t, nodes[1], "notes.txt")
	if err != nil || res.Provider != nodes[1].Host().ID().String() {
		t.Fatalf("get on the sharer: %+v, %v", res, err)
	}
}

func TestLatestPublishWins(t *testing.T) {
	nodes := newTestNetwork(t, 3)
	shareBytes(t, nodes[0], "report.txt", []byte("version one\n"))
	second := shareBytes(t, nodes[1], "report.txt", []byte("version two\n"))
	// share pushes its record to every connected peer before it returns,
	// but gives up on one after 2 s (gossip brings it later): under -race
	// on a loaded machine, wait for the record rather than fail on a push
	// that ran out of time.
	waitFor(t, 10*time.Second, "version two in node 2's catalog", func() bool {
		e, ok := nodes[2].KV().Lookup("report.txt")
		return ok && e.CID == second.CID
	})
	res, got, err := getInto(t, nodes[2], "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "version two\n" || res.CID != second.CID || res.Provider != nodes[1].Host().ID().String() {
		t.Fatalf("got %q from %s, want version two from %s", got, res.Provider, nodes[1].Host().ID())
	}
}

func TestGetUnknownNameAnswersQuickly(t *testing.T) {
	nodes := newTestNetwork(t, 3)
	start := time.Now()
	_, _, err := getInto(t, nodes[2], "no-such-file.txt")
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("want a 404 not found, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("unknown name took %s", d)
	}
	// A CID nobody holds: no provider.
	_, _, err = getInto(t, nodes[2], share.ComputeCID([]byte("nobody has this")).String())
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("want not found for a CID nobody holds, got %v", err)
	}
}

// misbehave makes n serve ProtocolID badly: serve writes the response for a
// request of a file of the given bytes.
func misbehave(n *Node, serve func(st network.Stream, req share.Request, data []byte), data []byte) {
	n.Host().SetStreamHandler(share.ProtocolID, func(st network.Stream) {
		req, err := share.ReadRequest(bufio.NewReader(st))
		if err != nil {
			_ = st.Reset()
			return
		}
		serve(st, req, data)
	})
}

// provideAs makes n announce c in the DHT without holding it.
// provideAs makes n claim to hold c, in the DHT and in the catalog, and
// waits until every node in seers knows the claim (a get asks the holders
// the catalog knows before the DHT).
func provideAs(t *testing.T, n *Node, c string, seers ...*Node) {
	t.Helper()
	cc, err := share.ParseCID(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DHT().Provide(context.Background(), cc, true); err != nil {
		t.Fatalf("provide: %v", err)
	}
	if err := n.KV().PublishHolding(context.Background(), cc, ""); err != nil {
		t.Fatalf("publish holding: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, o := range seers {
		for !holdsPer(o, n, c) {
			if time.Now().After(deadline) {
				t.Fatalf("node %s never learned that %s holds %s", o.Host().ID(), n.Host().ID(), c)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func holdsPer(o, n *Node, c string) bool {
	for _, h := range o.KV().Holders(c) {
		if h.Peer == n.Host().ID() {
			return true
		}
	}
	return false
}

// preferPeer makes getter rank bad before good by RTT.
func preferPeer(getter, bad, good *Node) {
	ps := getter.Host().Peerstore()
	ps.RecordLatency(bad.Host().ID(), time.Microsecond)
	ps.RecordLatency(good.Host().ID(), time.Second)
}

func TestGetSkipsCorruptProvider(t *testing.T) {
	nodes := newTestNetwork(t, 5)
	good, bad, getter := nodes[1], nodes[2], nodes[4]
	data := randomBytes(t, 1<<20)
	sr := shareBytes(t, good, "data.txt", data)
	misbehave(bad, func(st network.Stream, req share.Request, data []byte) {
		corrupt := bytes.Clone(data)
		corrupt[len(corrupt)/2] ^= 0xff
		_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(data))}))
		_, _ = st.Write(corrupt[req.Offset:])
		_ = st.Close()
	}, data)
	provideAs(t, bad, sr.CID, getter)
	preferPeer(getter, bad, good)

	res, got, err := getInto(t, getter, "data.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ from the shared ones")
	}
	if res.Provider != good.Host().ID().String() {
		t.Fatalf("served by %s, want the honest %s", res.Provider, good.Host().ID())
	}
	if len(res.Attempts) != 2 || res.Attempts[0].Peer != bad.Host().ID().String() ||
		res.Attempts[0].Error == "" || res.Attempts[1].Offset != 0 {
		t.Fatalf("attempts %+v: want the corrupt provider first, then a restart from 0", res.Attempts)
	}
}

func TestGetResumesFromOffsetAfterBrokenTransfer(t *testing.T) {
	nodes := newTestNetwork(t, 4)
	good, bad, getter := nodes[1], nodes[2], nodes[3]
	data := randomBytes(t, 2<<20)
	sr := shareBytes(t, good, "big.txt", data)
	const half = 1 << 20
	misbehave(bad, func(st network.Stream, req share.Request, data []byte) {
		_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(data))}))
		_, _ = st.Write(data[req.Offset:half])
		_ = st.Reset()
	}, data)
	provideAs(t, bad, sr.CID, getter)
	preferPeer(getter, bad, good)

	res, got, err := getInto(t, getter, sr.CID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || res.Provider != good.Host().ID().String() {
		t.Fatalf("bytes equal %v, provider %s", bytes.Equal(got, data), res.Provider)
	}
	if len(res.Attempts) != 2 || res.Attempts[1].Offset != res.Attempts[0].Bytes || res.Attempts[0].Bytes == 0 {
		t.Fatalf("attempts %+v: want the second provider to resume where the first broke off", res.Attempts)
	}
}

func TestGetMovesOnFromStalledProvider(t *testing.T) {
	nodes := newTestNetwork(t, 4)
	good, bad, getter := nodes[1], nodes[2], nodes[3]
	data := randomBytes(t, 256<<10)
	sr := shareBytes(t, good, "slow.txt", data)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	misbehave(bad, func(st network.Stream, req share.Request, data []byte) {
		_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusOK, Size: int64(len(data))}))
		_, _ = st.Write(data[req.Offset : req.Offset+1000])
		<-release // then say nothing
		_ = st.Reset()
	}, data)
	provideAs(t, bad, sr.CID, getter)
	preferPeer(getter, bad, good)

	start := time.Now()
	res, got, err := getInto(t, getter, "slow.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || res.Provider != good.Host().ID().String() {
		t.Fatalf("bytes equal %v, provider %s", bytes.Equal(got, data), res.Provider)
	}
	if res.Attempts[0].Error == "" || res.Attempts[1].Offset != 1000 {
		t.Fatalf("attempts %+v", res.Attempts)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stall detection took %s with a 500 ms stall timeout", d)
	}
}

func TestBusyProviderIsSkipped(t *testing.T) {
	nodes := newTestNetwork(t, 4)
	good, bad, getter := nodes[1], nodes[2], nodes[3]
	data := []byte("small file\n")
	sr := shareBytes(t, good, "small.txt", data)
	misbehave(bad, func(st network.Stream, _ share.Request, _ []byte) {
		_, _ = st.Write(share.AppendResponseHeader(nil, share.ResponseHeader{Status: share.StatusBusy, Message: "busy"}))
		_ = st.Close()
	}, data)
	provideAs(t, bad, sr.CID, getter)
	preferPeer(getter, bad, good)
	res, got, err := getInto(t, getter, "small.txt")
	if err != nil || !bytes.Equal(got, data) || res.Provider != good.Host().ID().String() {
		t.Fatalf("get: %+v, %v", res, err)
	}
}

func TestShareWithoutPeersIsAnnouncedOnJoin(t *testing.T) {
	lone := newTestNode(t, nil)
	data := []byte("shared before anyone was there\n")
	sr := shareBytes(t, lone, "early.txt", data)
	if sr.Published {
		t.Fatal("a node without peers says it published")
	}
	late := newTestNode(t, nil, addrInfo(lone))
	var got []byte
	waitFor(t, 15*time.Second, "the early name to become resolvable", func() bool {
		_, b, err := getInto(t, late, "early.txt")
		got = b
		return err == nil
	})
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

// A node that loses its last peer dials its bootstrap peers again at
// once, not after the long wait it keeps while it has peers.
func TestBootstrapRedialsAfterLosingEveryPeer(t *testing.T) {
	boot := newTestNode(t, nil)
	n := newTestNode(t, nil, addrInfo(boot))
	connected := func() bool { return n.Host().Network().Connectedness(boot.Host().ID()) == network.Connected }
	waitFor(t, 10*time.Second, "the first connection", connected)
	time.Sleep(500 * time.Millisecond) // the condition under test: the loop has gone to its long sleep
	if err := n.Host().Network().ClosePeer(boot.Host().ID()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "a new connection to the bootstrap peer", connected) // the long sleep is 30 s
	t.Logf("reconnected %s after losing every peer", time.Since(start).Round(time.Millisecond))
}

func TestOutputStaysInsideItsDirectory(t *testing.T) {
	nodes := newTestNetwork(t, 2)
	sr := shareBytes(t, nodes[0], "x.txt", []byte("x"))
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, bad := range []string{"../escape.txt", "sub/../../escape.txt", "..", "/etc/passwd"} {
		if _, err := nodes[1].ShareService().Get(context.Background(), sr.CID, root, bad, nil); !errors.Is(err, share.ErrBadName) {
			t.Errorf("output name %q: want ErrBadName, got %v", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.txt")); err == nil {
		t.Fatal("a file was written outside the target directory")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left %d files behind in the target directory", len(ents))
	}
}

func TestCatStreamsVerifiedBytes(t *testing.T) {
	nodes := newTestNetwork(t, 2)
	data := randomBytes(t, 100_000)
	sr := shareBytes(t, nodes[0], "cat.txt", data)
	res, rc, err := nodes[1].API().Cat(context.Background(), "cat.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) || res.CID != sr.CID {
		t.Fatalf("cat: %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestRepoLockRefusesSecondNode(t *testing.T) {
	n := newTestNode(t, nil)
	cfg := DefaultLocalConfig(n.Repo().Dir)
	cfg.Logger = quietLogger()
	if _, err := New(cfg); !errors.Is(err, ErrRepoLocked) {
		t.Fatalf("second node on one repo: want ErrRepoLocked, got %v", err)
	}
}

func TestRestartKeepsIdentityAndFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultLocalConfig(dir)
	cfg.Logger = quietLogger()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := n.Host().ID()
	sr := shareBytes(t, n, "keep.txt", []byte("kept\n"))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if n2.Host().ID() != id {
		t.Fatalf("identity changed across restart: %s -> %s", id, n2.Host().ID())
	}
	c, _ := share.ParseCID(sr.CID)
	if _, ok := n2.ShareService().Store().Has(c); !ok {
		t.Fatal("store lost a file across restart")
	}
}
