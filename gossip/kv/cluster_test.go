package kv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pshare/p2pshare/catalog"
)

// In-process multi-node tests: every node is a real libp2p host on
// loopback with GossipSub (StrictSign), a server-mode kad-dht that accepts
// kv records, and a Store on its own bbolt file. The helpers here are
// prefixed cl (and the tests TestCluster) so they cannot clash with the
// package's other test files.

// clConfig is fast enough for tests and slow enough for -race on 2
// cores.
func clConfig() Config {
	return Config{
		SyncInterval:  time.Second,
		SyncTimeout:   10 * time.Second,
		SweepInterval: 100 * time.Millisecond,
		DHTTimeout:    5 * time.Second,
	}
}

func clLogger() *slog.Logger {
	if os.Getenv("P2PSHARE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// clRejectCounter counts the KV messages a node's GossipSub rejected because
// the topic validator said so.
type clRejectCounter struct{ n atomic.Int64 }

func (c *clRejectCounter) Trace(evt *pb.TraceEvent) {
	if evt.GetType() != pb.TraceEvent_REJECT_MESSAGE {
		return
	}
	if rm := evt.GetRejectMessage(); rm.GetTopic() == Topic && rm.GetReason() == pubsub.RejectValidationFailed {
		c.n.Add(1)
	}
}

// clNode is one in-process node of a kv cluster.
type clNode struct {
	key     crypto.PrivKey
	path    string
	h       host.Host
	ps      *pubsub.PubSub
	dht     *dht.IpfsDHT
	s       *Store
	cancel  context.CancelFunc
	rejects *clRejectCounter
	links   []peer.ID // peers this node was connected to by the test
	down    bool
}

func clKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clStartNode starts a node with identity key (a new one when nil) on the
// bbolt file path (a new one when empty).
func clStartNode(t *testing.T, key crypto.PrivKey, path string) *clNode {
	t.Helper()
	return clStartNodeWith(t, key, path, clConfig())
}

// clStartNodeWith is clStartNode with the store's config cfg.
func clStartNodeWith(t *testing.T, key crypto.PrivKey, path string, cfg Config) *clNode {
	t.Helper()
	if key == nil {
		key = clKey(t)
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "kv.db")
	}
	n := &clNode{key: key, path: path, rejects: &clRejectCounter{}}
	ok := false
	defer func() {
		if !ok {
			n.stop()
		}
	}()
	var err error
	n.h, err = libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, n.cancel = context.WithCancel(context.Background())
	n.ps, err = pubsub.NewGossipSub(ctx, n.h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithEventTracer(n.rejects))
	if err != nil {
		t.Fatal(err)
	}
	n.dht, err = dht.New(n.h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix("/p2pshare"),
		dht.Validator(record.NamespacedValidator{DHTNamespace: Validator{}}))
	if err != nil {
		t.Fatal(err)
	}
	n.s, err = Open(n.h, n.ps, n.dht, path, cfg, clLogger())
	if err != nil {
		t.Fatal(err)
	}
	ok = true
	t.Cleanup(n.stop)
	return n
}

// stop closes the node (store, DHT, GossipSub, host) and keeps its key and
// bbolt file, so it can be started again.
func (n *clNode) stop() {
	if n.down {
		return
	}
	n.down = true
	if n.s != nil {
		_ = n.s.Close()
	}
	if n.dht != nil {
		_ = n.dht.Close()
	}
	if n.cancel != nil {
		n.cancel()
	}
	if n.h != nil {
		_ = n.h.Close()
	}
}

func (n *clNode) id() peer.ID { return n.h.ID() }

func (n *clNode) name() string { return n.id().ShortString() }

// stored returns the node's record of key, tombstones and expired records
// included; nil if it has none.
func (n *clNode) stored(ns, key string) *Record {
	r, _ := n.s.local.get(ns + "\x00" + key)
	return r
}

func clConnect(t *testing.T, a, b *clNode) {
	t.Helper()
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.id(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	a.links = append(a.links, b.id())
	b.links = append(b.links, a.id())
}

func clHasPeer(ps []peer.ID, p peer.ID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// clWaitReady waits until every node knows each peer it was connected to as
// subscribed to the KV topic (GossipSub delivers nothing before that) and
// has a non-empty DHT routing table.
func clWaitReady(t *testing.T, d time.Duration, nodes ...*clNode) {
	t.Helper()
	clWait(t, d, func() error {
		for _, n := range nodes {
			topicPeers := n.ps.ListPeers(Topic)
			for _, p := range n.links {
				if !clHasPeer(topicPeers, p) {
					return fmt.Errorf("%s does not see %s on the KV topic", n.name(), p.ShortString())
				}
			}
			if n.dht.RoutingTable().Size() == 0 {
				return fmt.Errorf("%s has an empty DHT routing table", n.name())
			}
		}
		return nil
	})
}

// clStart starts k nodes, each connected to the first and to its
// predecessor, and waits until they are ready.
func clStart(t *testing.T, k int) []*clNode {
	t.Helper()
	nodes := make([]*clNode, k)
	for i := range nodes {
		nodes[i] = clStartNode(t, nil, "")
		if i > 0 {
			clConnect(t, nodes[i], nodes[0])
		}
		if i > 1 {
			clConnect(t, nodes[i], nodes[i-1])
		}
	}
	clWaitReady(t, 15*time.Second, nodes...)
	return nodes
}

// clWait polls cond until it returns nil, failing the test with cond's
// last error after d. It returns how long it waited.
func clWait(t *testing.T, d time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clSameWrite reports whether a and b are the same write.
func clSameWrite(a, b *Record) bool {
	return a.NS == b.NS && a.Key == b.Key && a.Writer == b.Writer && a.Time == b.Time &&
		a.Deleted == b.Deleted && a.Expires == b.Expires && string(a.Value) == string(b.Value)
}

// clWaitWrite waits until every node's record of want's key is want.
func clWaitWrite(t *testing.T, d time.Duration, nodes []*clNode, want *Record) time.Duration {
	t.Helper()
	return clWait(t, d, func() error {
		for _, n := range nodes {
			got := n.stored(want.NS, want.Key)
			if got == nil {
				return fmt.Errorf("%s has no record of %q", n.name(), want.Key)
			}
			if !clSameWrite(got, want) {
				return fmt.Errorf("%s has %q by %s at %s, want by %s at %s", n.name(), want.Key,
					got.Writer.ShortString(), got.Time, want.Writer.ShortString(), want.Time)
			}
		}
		return nil
	})
}

func clCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	sum, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, sum)
}

// clRecord is a user record by key, written now (plus ahead).
func clRecord(t *testing.T, key crypto.PrivKey, k, v string, ahead time.Duration) *Record {
	t.Helper()
	r := &Record{NS: NSUser, Key: k, Value: []byte(v), Time: Timestamp{Wall: time.Now().Add(ahead).UnixNano()}}
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	return r
}

func clMarshal(t *testing.T, r *Record) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClusterPutIsReadOnAllTen(t *testing.T) {
	nodes := clStart(t, 10)
	ctx := t.Context()
	w := nodes[3]
	start := time.Now()
	rec, err := w.s.Put(ctx, NSUser, "greeting", []byte("hello, world"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Writer != w.id() {
		t.Fatalf("Put's record names %s as writer, want %s", rec.Writer, w.id())
	}
	clWait(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if _, ok := n.s.Local(NSUser, "greeting"); !ok {
				return fmt.Errorf("%s lacks the key", n.name())
			}
		}
		return nil
	})
	t.Logf("on all 10 nodes %s after the put started", time.Since(start).Round(time.Millisecond))
	for _, n := range nodes {
		for _, via := range []string{"Local", "Get"} {
			var got *Record
			if via == "Local" {
				got, _ = n.s.Local(NSUser, "greeting")
			} else if got, err = n.s.Get(ctx, NSUser, "greeting"); err != nil {
				t.Fatalf("%s: Get: %v", n.name(), err)
			}
			if string(got.Value) != "hello, world" || got.Writer != w.id() || got.Time != rec.Time {
				t.Fatalf("%s: %s = %q by %s at %s, want %q by %s at %s", n.name(), via,
					got.Value, got.Writer, got.Time, "hello, world", w.id(), rec.Time)
			}
		}
	}
}

func TestClusterConcurrentPutsConverge(t *testing.T) {
	nodes := clStart(t, 10)
	ctx := t.Context()
	writers := []*clNode{nodes[1], nodes[3], nodes[5], nodes[7], nodes[9]}
	recs := make([]*Record, len(writers))
	errs := make([]error, len(writers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			recs[i], errs[i] = w.s.Put(ctx, NSUser, "contested", []byte("from "+w.name()), 0)
		}()
	}
	close(start)
	wg.Wait()
	var winner *Record
	for i, r := range recs {
		if errs[i] != nil {
			t.Fatalf("put from %s: %v", writers[i].name(), errs[i])
		}
		if winner == nil || r.Wins(winner) {
			winner = r
		}
	}
	for _, r := range recs {
		if r != winner && !winner.Wins(r) {
			t.Fatalf("Wins is not a total order: %s at %s and %s at %s", winner.Writer, winner.Time, r.Writer, r.Time)
		}
	}
	d := clWaitWrite(t, 15*time.Second, nodes, winner)
	t.Logf("all 10 nodes agree on %s's write at %s after %s", winner.Writer.ShortString(), winner.Time, d.Round(time.Millisecond))
	for _, n := range nodes {
		got, err := n.s.Get(ctx, NSUser, "contested")
		if err != nil {
			t.Fatalf("%s: %v", n.name(), err)
		}
		if got.Writer != winner.Writer || got.Time != winner.Time || string(got.Value) != string(winner.Value) {
			t.Fatalf("%s: Get gives %s at %s, want %s at %s", n.name(), got.Writer, got.Time, winner.Writer, winner.Time)
		}
	}
}

func TestClusterTTLExpiresEverywhere(t *testing.T) {
	nodes := clStart(t, 10)
	ctx := t.Context()
	w := nodes[2]

	// A negative TTL is refused and writes nothing.
	if _, err := w.s.Put(ctx, NSUser, "negative", []byte("x"), -time.Second); !errors.Is(err, ErrBadTTL) {
		t.Fatalf("put with a negative TTL: %v, want ErrBadTTL", err)
	}
	if w.s.Len() != 0 || w.stored(NSUser, "negative") != nil {
		t.Fatalf("a refused put left %d records", w.s.Len())
	}

	// Every node watches for the key from before the put, so a slow put
	// (it waits for the DHT) does not hide a short visibility.
	const ttl = 1500 * time.Millisecond
	seen := make([]atomic.Bool, len(nodes))
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				if r, ok := n.s.Local(NSUser, "ephemeral"); ok && string(r.Value) == "soon gone" {
					seen[i].Store(true)
					return
				}
				select {
				case <-stopWatch:
					return
				case <-tick.C:
				}
			}
		}()
	}
	rec, err := w.s.Put(ctx, NSUser, "ephemeral", []byte("soon gone"), ttl)
	if err != nil {
		close(stopWatch)
		wg.Wait()
		t.Fatal(err)
	}
	if got := rec.ExpiresAt().Sub(rec.Time.Time()); got != ttl {
		t.Fatalf("record expires %s after it was written, want %s", got, ttl)
	}
	timer := time.NewTimer(time.Until(rec.ExpiresAt()))
	<-timer.C // the watchers run until the record expires
	close(stopWatch)
	wg.Wait()
	for i, n := range nodes {
		if !seen[i].Load() {
			t.Fatalf("%s never saw the key before it expired", n.name())
		}
	}

	d := clWait(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if n.stored(NSUser, "ephemeral") != nil {
				return fmt.Errorf("%s still keeps the expired record", n.name())
			}
			for _, r := range n.s.List(NSUser, "") {
				if r.Key == "ephemeral" {
					return fmt.Errorf("%s still lists the key", n.name())
				}
			}
		}
		return nil
	})
	t.Logf("swept everywhere %s after expiry", d.Round(time.Millisecond))
	for _, n := range nodes {
		if _, err := n.s.Get(ctx, NSUser, "ephemeral"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: Get after expiry: %v, want ErrNotFound", n.name(), err)
		}
		if _, ok := n.s.Local(NSUser, "ephemeral"); ok {
			t.Fatalf("%s: Local finds the expired key", n.name())
		}
		if n.s.Len() != 0 {
			t.Fatalf("%s keeps %d records, want 0", n.name(), n.s.Len())
		}
	}
}

func TestClusterDeleteWinsThenPutWinsAgain(t *testing.T) {
	nodes := clStart(t, 10)
	ctx := t.Context()
	a, b, c := nodes[1], nodes[6], nodes[9]

	put, err := a.s.Put(ctx, NSUser, "doomed", []byte("v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	clWaitWrite(t, 10*time.Second, nodes, put)

	tomb, err := b.s.Delete(ctx, NSUser, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if !tomb.Deleted || tomb.Writer != b.id() || !tomb.Wins(put) {
		t.Fatalf("tombstone %+v does not win over the put", tomb)
	}
	clWaitWrite(t, 10*time.Second, nodes, tomb)
	for _, n := range nodes {
		if _, err := n.s.Get(ctx, NSUser, "doomed"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: Get after delete: %v, want ErrNotFound", n.name(), err)
		}
		if _, ok := n.s.Local(NSUser, "doomed"); ok {
			t.Fatalf("%s: Local finds the deleted key", n.name())
		}
		if l := n.s.List(NSUser, ""); len(l) != 0 {
			t.Fatalf("%s lists %d keys after the delete", n.name(), len(l))
		}
	}
	if _, err := c.s.Delete(ctx, NSUser, "doomed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted key: %v, want ErrNotFound", err)
	}

	again, err := c.s.Put(ctx, NSUser, "doomed", []byte("v2"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Wins(tomb) {
		t.Fatalf("a put after the delete (at %s) does not win over the tombstone (at %s)", again.Time, tomb.Time)
	}
	clWaitWrite(t, 10*time.Second, nodes, again)
	for _, n := range nodes {
		got, err := n.s.Get(ctx, NSUser, "doomed")
		if err != nil || string(got.Value) != "v2" || got.Writer != c.id() {
			t.Fatalf("%s: Get after the new put: %v, %v", n.name(), got, err)
		}
	}

	before := nodes[4].s.Len()
	if _, err := nodes[4].s.Delete(ctx, NSUser, "never-written"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing key: %v, want ErrNotFound", err)
	}
	if got := nodes[4].s.Len(); got != before {
		t.Fatalf("deleting a missing key changed Len from %d to %d", before, got)
	}
}

func TestClusterRestartedNodeCatchesUp(t *testing.T) {
	nodes := clStart(t, 4)
	ctx := t.Context()
	victim := nodes[2]
	others := []*clNode{nodes[0], nodes[1], nodes[3]}

	var old []*Record
	for _, w := range []struct {
		n   *clNode
		key string
	}{{victim, "old-a"}, {nodes[0], "old-b"}, {nodes[1], "old-c"}} {
		r, err := w.n.s.Put(ctx, NSUser, w.key, []byte("before "+w.key), 0)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, r)
	}
	for _, r := range old {
		clWaitWrite(t, 10*time.Second, nodes, r)
	}

	key, path := victim.key, victim.path
	victim.stop()

	// Writes the victim misses: new keys, an overwrite, a delete and a
	// catalog name.
	var missed []*Record
	add := func(r *Record, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, r)
	}
	add(nodes[0].s.Put(ctx, NSUser, "new-1", []byte("while down 1"), 0))
	add(nodes[1].s.Put(ctx, NSUser, "new-2", []byte("while down 2"), 0))
	add(nodes[3].s.Put(ctx, NSUser, "old-b", []byte("overwritten while down"), 0))
	add(nodes[1].s.Delete(ctx, NSUser, "old-c"))
	iso := clCID(t, "catch-up.iso")
	if _, err := nodes[0].s.PublishName(ctx, "catch-up.iso", iso, 4096, time.Now()); err != nil {
		t.Fatal(err)
	}
	missed = append(missed, nodes[0].stored(NSName, "catch-up.iso"))
	for _, r := range missed {
		clWaitWrite(t, 10*time.Second, others, r)
	}

	back := clStartNode(t, key, path)
	if back.id() != victim.id() {
		t.Fatalf("restarted as %s, want %s", back.id(), victim.id())
	}
	// The old data survived the restart, before any peer is reached.
	for _, r := range old {
		got := back.stored(r.NS, r.Key)
		if got == nil || !clSameWrite(got, r) {
			t.Fatalf("after the restart the local copy of %q is %+v, want %+v", r.Key, got, r)
		}
	}
	if got := back.s.Len(); got != len(old) {
		t.Fatalf("after the restart the store has %d records, want %d", got, len(old))
	}

	clConnect(t, back, nodes[3])
	d := clWait(t, 15*time.Second, func() error {
		for _, r := range append(missed, old[0]) {
			got := back.stored(r.NS, r.Key)
			if got == nil || !clSameWrite(got, r) {
				return fmt.Errorf("the restarted node's %q is %+v, want %+v", r.Key, got, r)
			}
		}
		return nil
	})
	st := back.s.Stats()
	t.Logf("caught up %s after reconnecting: %d records applied by anti-entropy, %d by gossip (%d exchanges)",
		d.Round(time.Millisecond), st.AppliedSync, st.AppliedGossip, st.Syncs)
	if st.AppliedSync == 0 {
		t.Fatalf("the restarted node applied nothing by anti-entropy: %+v", st)
	}
	if _, err := back.s.Get(ctx, NSUser, "old-c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the key deleted while down: %v, want ErrNotFound", err)
	}
	if r, err := back.s.Get(ctx, NSUser, "old-b"); err != nil || string(r.Value) != "overwritten while down" {
		t.Fatalf("the key overwritten while down: %v, %v", r, err)
	}
	if e, ok := back.s.Lookup("catch-up.iso"); !ok || e.CID != iso.String() || e.Publisher != nodes[0].id() {
		t.Fatalf("catalog name published while down: %+v, %v", e, ok)
	}
	if got, want := back.s.Len(), nodes[0].s.Len(); got != want {
		t.Fatalf("restarted node keeps %d records, the others %d", got, want)
	}
}

func TestClusterLateJoinerGetsEverything(t *testing.T) {
	nodes := clStart(t, 3)
	ctx := t.Context()
	// The network already holds 500 keys. Writing them one Put at a time
	// costs an fsync per record on every node, so most are written as a
	// node writes them but applied in one transaction, not published: they
	// reach the other members by anti-entropy, as they would reach a node
	// that was away. A few go through Put.
	const keys = 500
	const puts = 20
	for i, n := range nodes {
		var batch []*Record
		for k := i; k < keys-puts; k += len(nodes) {
			r := &Record{NS: NSUser, Key: fmt.Sprintf("bulk/%04d", k), Value: []byte(fmt.Sprintf("value %d", k)), Time: n.s.clock.Now()}
			if err := r.Sign(n.key); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, r)
		}
		if _, err := n.s.apply(batch); err != nil {
			t.Fatal(err)
		}
	}
	for k := keys - puts; k < keys; k++ {
		if _, err := nodes[k%len(nodes)].s.Put(ctx, NSUser, fmt.Sprintf("bulk/%04d", k), []byte(fmt.Sprintf("value %d", k)), 0); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"alpha.txt", "Beta Movie.mkv", "gamma.tar.gz", "delta.iso", "epsilon.pdf"}
	for i, name := range names {
		n := nodes[i%len(nodes)]
		c := clCID(t, name)
		if _, err := n.s.PublishName(ctx, name, c, int64(100*i), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := n.s.PublishHolding(ctx, c, ""); err != nil {
			t.Fatal(err)
		}
	}
	want := keys + 2*len(names)
	clWait(t, 20*time.Second, func() error {
		for _, n := range nodes {
			if got := n.s.Len(); got != want {
				return fmt.Errorf("%s keeps %d records, want %d", n.name(), got, want)
			}
		}
		return nil
	})

	late := clStartNode(t, nil, "")
	clConnect(t, late, nodes[1])
	d := clWait(t, 20*time.Second, func() error {
		if got := late.s.Len(); got != want {
			return fmt.Errorf("the late joiner keeps %d records, want %d", got, want)
		}
		return nil
	})
	t.Logf("the late joiner got %d records after %s (%d by anti-entropy)", want, d.Round(time.Millisecond), late.s.Stats().AppliedSync)

	ref := nodes[0]
	if got, exp := late.s.Catalog(""), ref.s.Catalog(""); !reflect.DeepEqual(got, exp) {
		t.Fatalf("late joiner's catalog differs:\n got %+v\nwant %+v", got, exp)
	}
	if got := len(late.s.Catalog("")); got != len(names) {
		t.Fatalf("catalog has %d names, want %d", got, len(names))
	}
	for _, ns := range []string{NSUser, NSName, NSHold} {
		got, exp := late.s.List(ns, ""), ref.s.List(ns, "")
		if len(got) != len(exp) {
			t.Fatalf("namespace %s: late joiner lists %d records, want %d", ns, len(got), len(exp))
		}
		for i := range got {
			if !clSameWrite(got[i], exp[i]) {
				t.Fatalf("namespace %s: record %d is %q by %s at %s, want %q by %s at %s", ns, i,
					got[i].Key, got[i].Writer, got[i].Time, exp[i].Key, exp[i].Writer, exp[i].Time)
			}
		}
	}
}

// clForger is a GossipSub peer without a store: it publishes whatever bytes
// it likes on the KV topic, and speaks the sync protocol by hand.
type clForger struct {
	h      host.Host
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	cancel context.CancelFunc
}

func clStartForger(t *testing.T) *clForger {
	t.Helper()
	f := &clForger{}
	var err error
	f.h, err = libp2p.New(libp2p.Identity(clKey(t)), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, f.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		if f.topic != nil {
			_ = f.topic.Close()
		}
		f.cancel()
		_ = f.h.Close()
	})
	// Flood publishing sends each message straight to every peer on the
	// topic, so every node judges every forgery itself.
	f.ps, err = pubsub.NewGossipSub(ctx, f.h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	if f.topic, err = f.ps.Join(Topic); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *clForger) key() crypto.PrivKey { return f.h.Peerstore().PrivKey(f.h.ID()) }

func TestClusterForgedRecordsAreRejected(t *testing.T) {
	nodes := clStart(t, 4)
	ctx := t.Context()
	f := clStartForger(t)
	for _, n := range nodes {
		if err := f.h.Connect(ctx, peer.AddrInfo{ID: n.id(), Addrs: n.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	// The forger publishes without subscribing (from its fanout): it needs
	// only to know every node as subscribed.
	clWait(t, 10*time.Second, func() error {
		fp := f.ps.ListPeers(Topic)
		for _, n := range nodes {
			if !clHasPeer(fp, n.id()) {
				return fmt.Errorf("the forger does not see %s on the topic", n.name())
			}
		}
		return nil
	})

	keyA := clKey(t) // a writer that never publishes itself
	byA := clRecord(t, keyA, "gossip-relayed", "signed by A, published by B", 0)
	broken := clRecord(t, f.key(), "gossip-broken-sig", "original", 0)
	broken.Value = []byte("tampered after signing")
	future := clRecord(t, f.key(), "gossip-future", "from the future", 10*time.Minute)
	good := clRecord(t, f.key(), "gossip-good", "fine", 0)
	for _, r := range []*Record{byA, broken, future, good} {
		if err := f.topic.Publish(ctx, clMarshal(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	// Every node judges each message: the three forgeries are rejected by
	// the validator, the good one is applied.
	clWait(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if got := n.rejects.n.Load(); got < 3 {
				return fmt.Errorf("%s rejected %d messages, want 3", n.name(), got)
			}
			if n.stored(NSUser, good.Key) == nil {
				return fmt.Errorf("%s lacks the valid record", n.name())
			}
		}
		return nil
	})
	for _, n := range nodes {
		for _, r := range []*Record{byA, broken, future} {
			if got := n.stored(NSUser, r.Key); got != nil {
				t.Fatalf("%s applied the forged record %q: %+v", n.name(), r.Key, got)
			}
		}
		if got := n.s.Len(); got != 1 {
			t.Fatalf("%s keeps %d records, want 1", n.name(), got)
		}
	}

	// The sync protocol, driven by hand: forgeries among the records the
	// initiator sends are dropped, the valid one in the same exchange kept.
	x := nodes[2]
	str, err := f.h.NewStream(ctx, x.id(), SyncProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer str.Close()
	_ = str.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(str), bufio.NewWriter(str)
	if err := writeFrame(w, make([]byte, digestSize)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	theirs, err := readFrame(r, digestSize)
	if err != nil || len(theirs) != digestSize {
		t.Fatalf("responder's digest: %d bytes, %v", len(theirs), err)
	}
	sent := 0
	for {
		b, err := readFrame(r, MaxRecordSize)
		if err != nil {
			t.Fatalf("reading the responder's records: %v", err)
		}
		if len(b) == 0 {
			break
		}
		if _, err := Unmarshal(b); err != nil {
			t.Fatalf("the responder sent an invalid record: %v", err)
		}
		sent++
	}
	if sent != x.s.Len() {
		t.Fatalf("the responder sent %d records against an empty digest, it keeps %d", sent, x.s.Len())
	}

	wrongWriter := clRecord(t, f.key(), "sync-wrong-writer", "signed by B, claims A", 0)
	wrongWriter.Writer = byA.Writer
	syncBroken := clRecord(t, keyA, "sync-broken-sig", "original", 0)
	syncBroken.Value = []byte("tampered")
	syncFuture := clRecord(t, keyA, "sync-future", "later", 10*time.Minute)
	holding := &Record{NS: NSHold, Key: clCID(t, "x").String() + "/" + x.id().String(), Time: Timestamp{Wall: time.Now().UnixNano()}}
	if err := holding.Sign(keyA); err != nil { // A claims that x holds the file
		t.Fatal(err)
	}
	valid := clRecord(t, keyA, "sync-valid", "relayed by anti-entropy", 0)
	forged := []*Record{wrongWriter, syncBroken, syncFuture, holding}
	for _, rec := range append(forged, valid) {
		if err := writeFrame(w, clMarshal(t, rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFrame(w, []byte("this is not a record")); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := str.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The responder closes the stream once it has applied what it kept.
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the exchange the responder sent %d more bytes, %v", len(rest), err)
	}
	if got := x.stored(NSUser, valid.Key); got == nil || !clSameWrite(got, valid) {
		t.Fatalf("the valid record sent by anti-entropy was not kept: %+v", got)
	}
	for _, rec := range forged {
		if got := x.stored(rec.NS, rec.Key); got != nil {
			t.Fatalf("the forged record %q sent by anti-entropy was kept: %+v", rec.Key, got)
		}
	}
	if got := x.s.Len(); got != 2 {
		t.Fatalf("after the exchange %s keeps %d records, want 2", x.name(), got)
	}
	// The valid record reaches the others by anti-entropy; the forged ones
	// never do.
	clWaitWrite(t, 10*time.Second, nodes, valid)
	for _, n := range nodes {
		if got := n.s.Len(); got != 2 {
			t.Fatalf("%s keeps %d records, want 2", n.name(), got)
		}
	}
}

func TestClusterBadInputIsRefused(t *testing.T) {
	nodes := clStart(t, 2)
	ctx := t.Context()
	n := nodes[0]
	max := n.s.Config().MaxValueSize
	cases := []struct {
		name  string
		ns    string
		key   string
		value []byte
		want  error
	}{
		{"empty key", NSUser, "", []byte("v"), ErrBadKey},
		{"257-byte key", NSUser, strings.Repeat("k", MaxKeyLen+1), []byte("v"), ErrBadKey},
		{"control character", NSUser, "bad\x01key", []byte("v"), ErrBadKey},
		{"newline", NSUser, "bad\nkey", []byte("v"), ErrBadKey},
		{"DEL", NSUser, "bad\x7fkey", []byte("v"), ErrBadKey},
		{"C1 control", NSUser, "bad\u0085key", []byte("v"), ErrBadKey},
		{"invalid UTF-8", NSUser, "bad\xffkey", []byte("v"), ErrBadKey},
		{"value over MaxValueSize", NSUser, "big", make([]byte, max+1), ErrBadValue},
		{"unknown namespace", "nope", "k", []byte("v"), nil},
	}
	for _, c := range cases {
		_, err := n.s.Put(ctx, c.ns, c.key, c.value, 0)
		if err == nil {
			t.Fatalf("%s: put accepted", c.name)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		if err.Error() == "" {
			t.Fatalf("%s: empty error message", c.name)
		}
		t.Logf("%s: %v", c.name, err)
		if c.want == ErrBadKey {
			if _, err := n.s.Get(ctx, c.ns, c.key); !errors.Is(err, ErrBadKey) {
				t.Fatalf("%s: Get: %v, want ErrBadKey", c.name, err)
			}
			if _, err := n.s.Delete(ctx, c.ns, c.key); !errors.Is(err, ErrBadKey) {
				t.Fatalf("%s: Delete: %v, want ErrBadKey", c.name, err)
			}
		}
	}
	for _, m := range nodes {
		if got := m.s.Len(); got != 0 {
			t.Fatalf("%s keeps %d records after refused writes", m.name(), got)
		}
	}

	// The limits themselves are allowed.
	edge, err := n.s.Put(ctx, NSUser, strings.Repeat("k", MaxKeyLen), make([]byte, max), 0)
	if err != nil {
		t.Fatalf("put of a %d-byte key and a %d-byte value: %v", MaxKeyLen, max, err)
	}
	clWaitWrite(t, 10*time.Second, nodes, edge)
}

func TestClusterGetFallsBackToTheDHT(t *testing.T) {
	nodes := clStart(t, 4)
	ctx := t.Context()
	y, x := nodes[1], nodes[3]
	rec := clRecord(t, y.key, "only-in-dht", "put in the DHT, never published", 0)
	if err := y.dht.PutValue(ctx, DHTKey(NSUser, rec.Key), clMarshal(t, rec)); err != nil {
		t.Fatalf("put in the DHT: %v", err)
	}
	for _, n := range nodes {
		if n.stored(NSUser, rec.Key) != nil {
			t.Fatalf("%s has the record in its store before asking", n.name())
		}
	}
	if _, ok := x.s.Local(NSUser, rec.Key); ok {
		t.Fatal("Local finds a key only the DHT has")
	}
	start := time.Now()
	got, err := x.s.Get(ctx, NSUser, rec.Key)
	if err != nil {
		t.Fatalf("Get of a key only the DHT has: %v", err)
	}
	t.Logf("found in the DHT after %s", time.Since(start).Round(time.Millisecond))
	if !clSameWrite(got, rec) {
		t.Fatalf("Get gives %+v, want %+v", got, rec)
	}
	if local, ok := x.s.Local(NSUser, rec.Key); !ok || !clSameWrite(local, rec) {
		t.Fatalf("the record found in the DHT is not kept locally: %+v", local)
	}
	// A key that is nowhere is not found, after asking the DHT.
	if _, err := x.s.Get(ctx, NSUser, "nowhere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a key that is nowhere: %v, want ErrNotFound", err)
	}
}

func TestClusterCatalogSearchAndHolders(t *testing.T) {
	nodes := clStart(t, 4)
	ctx := t.Context()
	reader := nodes[3]
	pubs := []struct {
		n    *clNode
		name string
		size int64
	}{
		{nodes[0], "Holiday-Photos.zip", 1 << 20},
		{nodes[1], "old HOLIDAY notes.txt", 2048},
		{nodes[2], "report.pdf", 512},
	}
	for _, p := range pubs {
		if _, err := p.n.s.PublishName(ctx, p.name, clCID(t, p.name), p.size, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	clWait(t, 10*time.Second, func() error {
		if got := len(reader.s.Catalog("")); got != len(pubs) {
			return fmt.Errorf("the reader's catalog has %d names, want %d", got, len(pubs))
		}
		return nil
	})
	for _, term := range []string{"holiday", "HOLIDAY", "HoLiDaY", "oLiDa"} {
		got := reader.s.Catalog(term)
		if len(got) != 2 || got[0].Name != "Holiday-Photos.zip" || got[1].Name != "old HOLIDAY notes.txt" {
			t.Fatalf("Catalog(%q) = %+v, want the two holiday names", term, got)
		}
	}
	if got := reader.s.Catalog("REPORT"); len(got) != 1 || got[0].Name != "report.pdf" {
		t.Fatalf("Catalog(REPORT) = %+v", got)
	}
	if got := reader.s.Catalog("no such name"); len(got) != 0 {
		t.Fatalf("Catalog of a missing term = %+v", got)
	}
	for i, e := range reader.s.Catalog("") {
		p := pubs[i] // pubs is sorted by name, as Catalog is
		if e.Name != p.name || e.CID != clCID(t, p.name).String() || e.Size != p.size || e.Publisher != p.n.id() {
			t.Fatalf("entry %+v, want cid of %q, size %d, publisher %s", e, p.name, p.size, p.n.id())
		}
	}

	// A second name for the photos' bytes, by another node: both
	// published them, each once however many names.
	if _, err := nodes[2].s.PublishName(ctx, "photos-copy.zip", clCID(t, "Holiday-Photos.zip"), 1<<20, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].s.PublishName(ctx, "photos-again.zip", clCID(t, "Holiday-Photos.zip"), 1<<20, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantPubs := []peer.ID{nodes[0].id(), nodes[2].id()}
	slices.Sort(wantPubs)
	clWait(t, 10*time.Second, func() error {
		if got := reader.s.Publishers(clCID(t, "Holiday-Photos.zip").String()); !slices.Equal(got, wantPubs) {
			return fmt.Errorf("Publishers = %v, want %v", got, wantPubs)
		}
		return nil
	})
	if got := reader.s.Publishers(clCID(t, "nothing by that name").String()); len(got) != 0 {
		t.Fatalf("Publishers of an unnamed file = %v", got)
	}

	photos := clCID(t, "Holiday-Photos.zip")
	if err := nodes[0].s.PublishHolding(ctx, photos, ""); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].s.PublishHolding(ctx, photos, nodes[1].id()); err != nil {
		t.Fatal(err)
	}
	wantHolders := []catalog.Holder{{Peer: nodes[0].id()}, {Peer: nodes[2].id(), CustodyFor: nodes[1].id()}}
	if wantHolders[1].Peer < wantHolders[0].Peer {
		wantHolders[0], wantHolders[1] = wantHolders[1], wantHolders[0]
	}
	clWait(t, 10*time.Second, func() error {
		if got := reader.s.Holders(photos.String()); !reflect.DeepEqual(got, wantHolders) {
			return fmt.Errorf("Holders = %+v, want %+v", got, wantHolders)
		}
		return nil
	})
	if e, ok := reader.s.Lookup("Holiday-Photos.zip"); !ok || !reflect.DeepEqual(e.Holders, wantHolders) {
		t.Fatalf("Lookup = %+v, %v; want holders %+v", e, ok, wantHolders)
	}
	if err := nodes[0].s.DropHolding(ctx, photos); err != nil {
		t.Fatal(err)
	}
	clWait(t, 10*time.Second, func() error {
		got := reader.s.Holders(photos.String())
		if len(got) != 1 || got[0].Peer != nodes[2].id() {
			return fmt.Errorf("Holders after a drop = %+v, want only %s", got, nodes[2].id())
		}
		return nil
	})
}

// Synced closes only once the store has had an anti-entropy exchange: a
// store alone is not caught up, and one connected to a peer soon is.
func TestClusterSyncedAfterFirstExchange(t *testing.T) {
	a, b := clStartNode(t, nil, ""), clStartNode(t, nil, "")
	select {
	case <-a.s.Synced():
		t.Fatal("a store with no peer says it has caught up")
	case <-time.After(time.Second):
	}
	clConnect(t, a, b)
	for _, n := range []*clNode{a, b} {
		select {
		case <-n.s.Synced():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not synced 10 s after connecting", n.name())
		}
	}
}

// A published name is put in the DHT as the very record the catalog
// keeps, and a node whose catalog has never heard of a name finds it
// there, keeps it and answers from it.
func TestClusterNameFoundInTheDHT(t *testing.T) {
	nodes := clStart(t, 4)
	ctx := t.Context()
	y, x := nodes[1], nodes[3]

	// What PublishName puts in the DHT is the catalog's record itself.
	c := clCID(t, "published.iso")
	at, err := y.s.PublishName(ctx, "published.iso", c, 4096, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	local := y.stored(NSName, "published.iso")
	if local == nil || !local.Time.Time().Equal(at) {
		t.Fatalf("PublishName returned time %s; the catalog keeps %+v", at, local)
	}
	b, err := x.dht.GetValue(ctx, DHTKey(NSName, "published.iso"))
	if err != nil {
		t.Fatalf("the published name is not in the DHT: %v", err)
	}
	if got, err := Unmarshal(b); err != nil || !clSameWrite(got, local) {
		t.Fatalf("the DHT holds %+v (%v), want the catalog's record %+v", got, err, local)
	}

	// A name record only the DHT has.
	v, _ := json.Marshal(NameValue{CID: clCID(t, "only-in-dht.txt").String(), Size: 7})
	rec := &Record{NS: NSName, Key: "only-in-dht.txt", Value: v, Time: Timestamp{Wall: time.Now().UnixNano()}}
	if err := rec.Sign(y.key); err != nil {
		t.Fatal(err)
	}
	if err := y.dht.PutValue(ctx, DHTKey(NSName, rec.Key), clMarshal(t, rec)); err != nil {
		t.Fatalf("put in the DHT: %v", err)
	}
	if _, ok := x.s.Lookup(rec.Key); ok {
		t.Fatal("the catalog knows a name only the DHT has")
	}
	e, err := x.s.FindName(ctx, rec.Key)
	if err != nil {
		t.Fatalf("FindName of a name only the DHT has: %v", err)
	}
	if e.Name != rec.Key || e.CID != clCID(t, "only-in-dht.txt").String() || e.Size != 7 || e.Publisher != y.id() || !e.Time.Equal(rec.Time.Time()) {
		t.Fatalf("FindName = %+v, want the DHT's record %+v", e, rec)
	}
	if _, ok := x.s.Lookup(rec.Key); !ok {
		t.Fatal("the name found in the DHT is not kept in the catalog")
	}
	if _, err := x.s.FindName(ctx, "nowhere.txt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindName of a name that is nowhere: %v, want ErrNotFound", err)
	}
}
