package share

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	routinghelpers "github.com/libp2p/go-libp2p-routing-helpers"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// Replicate reports the copies that already stand, not only those it made:
// the repair loop may copy a file between its store and the share's own
// Replicate call, and a share that then said "no replicas" would be wrong.
func TestReplicateReportsCopiesAlreadyMade(t *testing.T) {
	nodes := startRepNodes(t, 2)
	a, b := nodes[0], nodes[1]
	sum := sha256.Sum256([]byte("a file the repair loop already copied"))
	c := cidFromDigest(sum[:])
	a.dir.mu.Lock()
	a.dir.hs[c] = []catalog.Holder{{Peer: a.h.ID()}, {Peer: b.h.ID()}}
	a.dir.mu.Unlock()
	got, err := a.s.Replicate(context.Background(), c, 37)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != b.h.ID() {
		t.Fatalf("Replicate = %v, want the holder that has the copy, %s", got, b.h.ID())
	}
}

// memDirectory is one node's view of the catalog: the holdings it has
// heard of and the names it published. Each node of a test has its own,
// so a view can be stale.
type memDirectory struct {
	self  peer.ID
	mu    sync.Mutex
	hs    map[cid.Cid][]catalog.Holder
	names map[string]Resolved
	now   func() time.Time // the catalog's clock; time.Now when nil
}

func newMemDirectory(self peer.ID) *memDirectory {
	return &memDirectory{self: self, hs: map[cid.Cid][]catalog.Holder{}, names: map[string]Resolved{}}
}

func (d *memDirectory) LookupName(name string) (Resolved, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.names[name]
	return r, ok
}

func (d *memDirectory) FindName(_ context.Context, name string) (Resolved, error) {
	return Resolved{}, fmt.Errorf("name %q: %w", name, ErrNotFound)
}

func (d *memDirectory) PublishName(_ context.Context, name string, c cid.Cid, size int64) (time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now
	if d.now != nil {
		now = d.now
	}
	d.names[name] = Resolved{Name: name, CID: c, Size: size, Publisher: d.self, Time: now()}
	return d.names[name].Time, nil
}

func (d *memDirectory) RepublishNames(context.Context) (n, failed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.names), 0
}

func (d *memDirectory) Holdings(c cid.Cid) []catalog.Holder {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]catalog.Holder(nil), d.hs[c]...)
}

func (d *memDirectory) Publishers(c cid.Cid) []peer.ID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []peer.ID
	for _, r := range d.names {
		if r.CID == c && !slices.Contains(out, r.Publisher) {
			out = append(out, r.Publisher)
		}
	}
	return out
}

func (d *memDirectory) Hold(_ context.Context, c cid.Cid, custodyFor peer.ID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hs[c] = append(slices.DeleteFunc(d.hs[c], func(h catalog.Holder) bool { return h.Peer == d.self }), catalog.Holder{Peer: d.self, CustodyFor: custodyFor})
	return nil
}

func (d *memDirectory) Unhold(_ context.Context, c cid.Cid) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hs[c] = slices.DeleteFunc(d.hs[c], func(h catalog.Holder) bool { return h.Peer == d.self })
	return nil
}

// own returns the holding d's node recorded for itself.
func (d *memDirectory) own(c cid.Cid) (catalog.Holder, bool) {
	for _, h := range d.Holdings(c) {
		if h.Peer == d.self {
			return h, true
		}
	}
	return catalog.Holder{}, false
}

type repNode struct {
	h       host.Host
	s       *Service
	dir     *memDirectory
	cluster *varCluster
}

// varCluster is a network whose live members a test may change.
type varCluster struct {
	mu    sync.Mutex
	peers []Peer
	est   map[peer.ID]time.Duration // what RTT answers; none: 0
}

func (c *varCluster) Live() []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Peer(nil), c.peers...)
}

func (c *varCluster) Down(peer.ID) bool { return false }

func (c *varCluster) Measure(context.Context, []peer.ID) {}

// RTT is the RTT est gives p, 0 if none (share then asks the peerstore).
func (c *varCluster) RTT(p peer.ID) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.est[p]
}

// setRTT sets the RTT of member p.
func (c *varCluster) setRTT(p peer.ID, rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.peers {
		if c.peers[i].ID == p {
			c.peers[i].RTT = rtt
		}
	}
}

// startRepNodes starts n share services on loopback hosts that know each
// other's addresses, each with its own catalog view. Replication checks
// are left to the test (the loop waits an hour).
func startRepNodes(t *testing.T, n int) []repNode {
	t.Helper()
	return startRepNodesWith(t, n, nil)
}

// startRepNodesWith is startRepNodes with deps, if set, called on each
// service's collaborators before it is built.
func startRepNodesWith(t *testing.T, n int, deps func(i int, d *Deps)) []repNode {
	t.Helper()
	return startRepNodesCfg(t, n, Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: time.Hour}, deps)
}

// startRepNodesCfg is startRepNodesWith with the services' configuration.
func startRepNodesCfg(t *testing.T, n int, cfg Config, deps func(i int, d *Deps)) []repNode {
	t.Helper()
	nodes := make([]repNode, n)
	for i := range nodes {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		nodes[i] = repNode{h: h, dir: newMemDirectory(h.ID()), cluster: &varCluster{}}
	}
	for i := range nodes {
		a := &nodes[i]
		for j, b := range nodes {
			if i != j {
				a.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), time.Hour)
				a.cluster.peers = append(a.cluster.peers, Peer{ID: b.h.ID(), RTT: time.Duration(j+1) * time.Millisecond})
			}
		}
		st, err := OpenStore(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		d := Deps{Directory: a.dir, Cluster: a.cluster}
		if deps != nil {
			deps(i, &d)
		}
		a.s, err = New(a.h, routinghelpers.Null{}, st, d, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.s.Close(); st.Close() })
	}
	return nodes
}

// A node that leaves right after sharing has not yet heard, through the
// catalog, of the replica its share made: its leave must count the copy it
// saw made, move the file to one other node only, and leave the replica an
// ordinary copy (a custody copy is given back and dropped when the owner
// returns, which would leave fewer than R copies).
func TestRelocateRightAfterReplicateCountsTheReplica(t *testing.T) {
	nodes := startRepNodes(t, 4)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	id, size := putHeld(t, a, "a file shared a moment before its node leaves\n")
	reps, err := a.s.Replicate(ctx, id, size)
	if err != nil || len(reps) != 1 || reps[0].ID != b.h.ID() {
		t.Fatalf("Replicate = %v, %v; want a copy on the closest node %s", reps, err, b.h.ID())
	}
	// a's catalog still lists only a: b's holding is in b's catalog. And b
	// is now the farthest node, so the leave does not even ask it.
	a.cluster.setRTT(b.h.ID(), time.Second)
	moved, err := a.s.Relocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || moved[0].To != nodes[2].h.ID() || moved[0].CID != id {
		t.Fatalf("Relocate moved %+v, want %s to the closest non-holder %s only", moved, id, nodes[2].h.ID())
	}
	checkHolding(t, b, id, "")
	checkHolding(t, nodes[2], id, a.h.ID())
	if _, ok := nodes[3].s.Store().Has(id); ok {
		t.Fatalf("a third copy on %s", nodes[3].h.ID())
	}
}

// A leave that asks for custody a node that already holds the file (its
// own copy, which the leaver's catalog has not heard of) gets "had it":
// that node keeps its copy as its own, and the leave counts it and moves
// the file to one other node only.
func TestRelocateToAHolderKeepsItsCopy(t *testing.T) {
	nodes := startRepNodes(t, 4)
	a, b := nodes[0], nodes[1]
	body := "a file two nodes shared on their own\n"
	id, _ := putHeld(t, a, body)
	putHeld(t, b, body)
	moved, err := a.s.Relocate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || moved[0].To != nodes[2].h.ID() || moved[0].CID != id {
		t.Fatalf("Relocate moved %+v, want %s to %s only", moved, id, nodes[2].h.ID())
	}
	checkHolding(t, b, id, "")
	checkHolding(t, nodes[2], id, a.h.ID())
}

// putHeld stores body on n and records n's holding in its catalog.
func putHeld(t *testing.T, n repNode, body string) (cid.Cid, int64) {
	t.Helper()
	ctx := context.Background()
	c, size, err := n.s.Store().Put(ctx, strings.NewReader(body), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.dir.Hold(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	return c, size
}

// checkHolding fails t unless n holds c, recorded in n's catalog as held
// in custody for custodyFor ("" for its own copy).
func checkHolding(t *testing.T, n repNode, c cid.Cid, custodyFor peer.ID) {
	t.Helper()
	if _, ok := n.s.Store().Has(c); !ok {
		t.Fatalf("%s does not hold %s", n.h.ID(), c)
	}
	// The copy is in the store a moment before its record is written:
	// give the record that moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := n.dir.own(c); ok {
			break
		}
	}
	if h, ok := n.dir.own(c); !ok || h.CustodyFor != custodyFor {
		t.Fatalf("%s records %+v (recorded: %v), want custody for %q", n.h.ID(), h, ok, custodyFor)
	}
}

// A node asked to copy a file fetches it from the asker first: the asker is
// up and holds it, while another holder in the catalog may have died a
// moment ago and still have the lowest RTT in the peerstore (a dial to it
// can take seconds; bench repair saw 4 s repairs after killing a
// publisher).
func TestProvidersPutThePreferredPeerFirst(t *testing.T) {
	nodes := startRepNodes(t, 3)
	a, asker, other := nodes[0], nodes[1], nodes[2]
	sum := sha256.Sum256([]byte("a file to copy"))
	c := cidFromDigest(sum[:])
	a.dir.mu.Lock()
	a.dir.hs[c] = []catalog.Holder{{Peer: other.h.ID()}, {Peer: asker.h.ID()}}
	a.dir.mu.Unlock()
	ps := a.h.Peerstore()
	ps.RecordLatency(other.h.ID(), time.Microsecond)
	ps.RecordLatency(asker.h.ID(), time.Second)
	cands, fromDHT := a.s.providers(context.Background(), c, nil, false, asker.h.ID())
	if fromDHT || len(cands) != 2 || cands[0].id != asker.h.ID() || cands[1].id != other.h.ID() {
		t.Fatalf("providers = %v (DHT %v), want the asker %s, then %s", candIDs(cands), fromDHT, asker.h.ID(), other.h.ID())
	}
	// Without a preference, the lowest RTT comes first.
	if cands, _ := a.s.providers(context.Background(), c, nil, false); len(cands) != 2 || cands[0].id != other.h.ID() {
		t.Fatalf("providers without a preference = %v, want %s first", candIDs(cands), other.h.ID())
	}
}

// Providers are ranked by the RTT the Cluster gives (an estimate from
// network coordinates, for a member the node has not measured), before
// the peerstore's latency, and none is pinged.
func TestProvidersRankByTheClustersRTT(t *testing.T) {
	nodes := startRepNodes(t, 3)
	a, near, far := nodes[0], nodes[1], nodes[2]
	sum := sha256.Sum256([]byte("a file held near and far"))
	c := cidFromDigest(sum[:])
	a.dir.mu.Lock()
	a.dir.hs[c] = []catalog.Holder{{Peer: far.h.ID()}, {Peer: near.h.ID()}}
	a.dir.mu.Unlock()
	a.h.Peerstore().RecordLatency(far.h.ID(), time.Microsecond) // long ago, say
	a.cluster.mu.Lock()
	a.cluster.est = map[peer.ID]time.Duration{near.h.ID(): 5 * time.Millisecond, far.h.ID(): 80 * time.Millisecond}
	a.cluster.mu.Unlock()
	cands, _ := a.s.providers(context.Background(), c, nil, false)
	if len(cands) != 2 || cands[0].id != near.h.ID() || cands[0].rtt != 5*time.Millisecond || cands[1].rtt != 80*time.Millisecond {
		t.Fatalf("providers = %v (%v), want %s (5 ms) first, then %s (80 ms)", candIDs(cands), cands, near.h.ID(), far.h.ID())
	}
	for _, n := range []repNode{near, far} {
		if a.h.Network().Connectedness(n.h.ID()) == network.Connected {
			t.Fatalf("ranking %s dialled it", n.h.ID())
		}
	}
}

func candIDs(cs []candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.id.String())
	}
	return out
}

// A node that says it has caught up (Deps.Ready) runs its first
// replication check then, not ReplicationDelay (an hour here) after start:
// a file with one holder is copied at once, and not before.
func TestReplicationReadyEndsTheDelay(t *testing.T) {
	ready := make(chan struct{})
	nodes := startRepNodesWith(t, 2, func(i int, d *Deps) {
		if i == 0 {
			d.Ready = []<-chan struct{}{ready}
		}
	})
	a, b := nodes[0], nodes[1]
	id, _ := putHeld(t, a, "one holder, R=2\n")
	time.Sleep(300 * time.Millisecond) // the condition under test: nothing happens meanwhile
	if _, ok := b.s.Store().Has(id); ok {
		t.Fatal("copied before the node was ready")
	}
	close(ready)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := b.s.Store().Has(id); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not copied within 10 s of ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkHolding(t, b, id, "")
}

// A sharer's repair may copy its file before the share records the
// sharer's own holding in the catalog. The node that got the copy then
// counts the sharer, which pushed it, as a holder: it sees R copies, not
// one, and does not copy the file to a third node.
func TestRepairByASharerNotYetListedMakesNoThirdCopy(t *testing.T) {
	nodes := startRepNodes(t, 3)
	a, b, third := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	c, _, err := a.s.Store().Put(ctx, strings.NewReader("a file whose share is still publishing\n"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	a.s.checkReplicas(ctx)
	checkHolding(t, b, c, "")
	// b ranks the sharer last, so a b that saw itself alone would copy to
	// the third node.
	b.cluster.setRTT(a.h.ID(), time.Second)
	b.s.checkReplicas(ctx)
	if _, ok := third.s.Store().Has(c); ok {
		t.Fatalf("b copied %s to a third node: it did not count the sharer that pushed it", c)
	}
	if _, ok := a.dir.own(c); ok {
		t.Fatal("the sharer's holding is in its catalog: the test no longer shows a share in progress")
	}
}
