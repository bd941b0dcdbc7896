package share

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/p2pshare/p2pshare/catalog"
)

// noScrub is the configuration of tests that run the scrub themselves, or
// not at all.
var noScrub = Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: time.Hour, ScrubRate: -1}

// eventually waits until cond holds, failing t after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flipByte flips one bit of the byte at off in n's stored copy of c.
func flipByte(t *testing.T, n repNode, c cid.Cid, off int64) {
	t.Helper()
	f, err := os.OpenFile(n.s.store.path(c), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// holdBoth stores body on a and b, and tells every node's catalog that a
// and b hold it.
func holdBoth(t *testing.T, nodes []repNode, a, b repNode, body []byte) cid.Cid {
	t.Helper()
	c, _ := putHeld(t, a, string(body))
	putHeld(t, b, string(body))
	for _, n := range nodes {
		n.dir.mu.Lock()
		for _, h := range []repNode{a, b} {
			if h.h.ID() != n.h.ID() {
				n.dir.hs[c] = append(n.dir.hs[c], catalog.Holder{Peer: h.h.ID()})
			}
		}
		n.dir.mu.Unlock()
	}
	return c
}

// checkQuarantined fails t unless n quarantined c: not held, holding
// withdrawn from its catalog, the bad copy kept in quarantine/.
func checkQuarantined(t *testing.T, n repNode, c cid.Cid) {
	t.Helper()
	if q := n.s.Stats().Quarantined.Load(); q < 1 {
		t.Fatalf("quarantined = %d", q)
	}
	ents, err := os.ReadDir(filepath.Join(n.s.store.Dir(), "quarantine"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("quarantine/ = %v, %v: want the bad copy kept", ents, err)
	}
}

// The scrub re-hashes a held file through its token bucket (never faster
// than the rate), finds a flipped byte, quarantines the copy, withdraws the
// holding, and fetches a good copy from the other holder.
func TestScrubFindsAFlippedByteAtABoundedRate(t *testing.T) {
	a, _, c, body := rottenPair(t, 1<<20, 12345)
	held, _ := a.s.store.Held(c)
	const bps = 1 << 20 // 1 MiB/s: 1 MiB takes at least (1 MiB - the burst)/rate
	lim := rate.NewLimiter(bps, scrubChunk)
	start := time.Now()
	if err := a.s.scrubOne(context.Background(), lim, scrubChunk, held); err != nil {
		t.Fatal(err)
	}
	if el, min := time.Since(start), time.Duration(float64(len(body)-scrubChunk)/bps*float64(time.Second)); el < min*9/10 {
		t.Fatalf("scrubbed 1 MiB in %s, faster than its rate allows (%s)", el, min)
	}
	if got := a.s.Stats().ScrubbedBytes.Load(); got != int64(len(body)) {
		t.Fatalf("scrubbed %d bytes, want %d", got, len(body))
	}
	checkQuarantined(t, a, c)
	eventually(t, 10*time.Second, "a good copy restored and held again", func() bool {
		_, own := a.dir.own(c)
		return own && a.s.Stats().Restored.Load() == 1
	})
	if err := a.s.store.Verify(c); err != nil {
		t.Fatalf("restored copy: %v", err)
	}
}

// A scrub running in the background picks the file verified longest ago,
// finds it bad on its own and quarantines it; one just stored is not due.
func TestScrubLoopOldestVerifiedFirst(t *testing.T) {
	nodes := startRepNodesCfg(t, 2, Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: time.Hour,
		ScrubRate: 4 << 20, ScrubInterval: 500 * time.Millisecond}, nil)
	a, b := nodes[0], nodes[1]
	c := holdBoth(t, nodes, a, b, randomBytes(t, 200<<10))
	flipByte(t, a, c, 0)
	eventually(t, 10*time.Second, "the scrub quarantines the flipped copy", func() bool { return a.s.Stats().Quarantined.Load() == 1 })
	eventually(t, 10*time.Second, "a good copy restored", func() bool {
		_, own := a.dir.own(c)
		return own && a.s.Stats().Restored.Load() == 1
	})
	if err := a.s.store.Verify(c); err != nil {
		t.Fatal(err)
	}
}

func TestScrubNextPicksTheOldestVerified(t *testing.T) {
	nodes := startRepNodesCfg(t, 1, Config{ScrubRate: -1, ScrubInterval: time.Hour}, nil)
	a := nodes[0]
	c1, _ := putHeld(t, a, "one")
	c2, _ := putHeld(t, a, "two")
	c3, _ := putHeld(t, a, "three")
	now := time.Now()
	if h, wait := a.s.scrubNext(now); h != nil || wait < 59*time.Minute {
		t.Fatalf("scrubNext right after storing = %v, %s; want nothing due for an hour", h, wait)
	}
	setVerified(t, a.s.store, c1, now.Add(-2*time.Hour))
	setVerified(t, a.s.store, c2, now.Add(-3*time.Hour))
	setVerified(t, a.s.store, c3, now.Add(-30*time.Minute))
	for _, want := range []cid.Cid{c2, c1} {
		h, _ := a.s.scrubNext(now)
		if h == nil || h.CID != want {
			t.Fatalf("scrubNext = %v, want %s, verified longest ago", h, want)
		}
		if err := a.s.store.MarkVerified(want, now); err != nil {
			t.Fatal(err)
		}
	}
	if h, wait := a.s.scrubNext(now); h != nil || wait != 30*time.Minute {
		t.Fatalf("scrubNext = %v, %s; want nothing due for 30 min", h, wait)
	}
}

// setVerified sets c's verified-at mark to t, even back in time.
func setVerified(t *testing.T, s *Store, c cid.Cid, at time.Time) {
	t.Helper()
	h, ok := s.Held(c)
	if !ok {
		t.Fatalf("%s not held", c)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeld).Put(c.Bytes(), encodeHeld(h.Size, h.Added, at))
	}); err != nil {
		t.Fatal(err)
	}
}

// A holder whose copy rotted does not serve it: a one-chunk file is
// answered "not found", a longer one is cut before its last bytes, and the
// holder quarantines its copy and withdraws its holding.
func TestServeStopsARottenCopy(t *testing.T) {
	for _, size := range []int{1000, 3<<20 + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			nodes := startRepNodes(t, 2)
			a, b := nodes[0], nodes[1]
			c, _ := putHeld(t, a, string(randomBytes(t, size)))
			flipByte(t, a, c, int64(size-1))
			f, err := os.CreateTemp(t.TempDir(), "get")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, _, err := b.s.fetchFrom(context.Background(), a.h.ID(), c, 0, int64(size), &fileSink{f: f, h: newHasher(), buf: getCopyBuf()})
			if err == nil {
				t.Fatalf("fetched all %d bytes of a rotten copy without an error", n)
			}
			if n >= int64(size) {
				t.Fatalf("got %d of %d bytes", n, size)
			}
			eventually(t, 5*time.Second, "the holder quarantines its copy", func() bool { return a.s.Stats().Quarantined.Load() == 1 })
			checkQuarantined(t, a, c)
			if _, ok := a.s.store.Has(c); ok {
				t.Fatal("the rotten copy is still held")
			}
		})
	}
}

// A served resume from an offset hashes the bytes before it too: a flip
// before the offset is found.
func TestServeFromAnOffsetVerifiesTheWholeFile(t *testing.T) {
	nodes := startRepNodes(t, 2)
	a, b := nodes[0], nodes[1]
	size := 2<<20 + 5
	c, _ := putHeld(t, a, string(randomBytes(t, size)))
	flipByte(t, a, c, 10)
	f, err := os.CreateTemp(t.TempDir(), "get")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := b.s.fetchFrom(context.Background(), a.h.ID(), c, 1<<20, int64(size), &fileSink{f: f, h: newHasher(), buf: getCopyBuf()}); err == nil {
		t.Fatal("resumed transfer of a rotten copy ended without an error")
	}
	eventually(t, 5*time.Second, "quarantined", func() bool { return a.s.Stats().Quarantined.Load() == 1 })
}

// A getter that received a whole transfer that does not hash to its CID
// tells the provider and tries it last while its penalty lasts, however low
// its RTT.
func TestFetchDemotesAProviderThatSentCorruptBytes(t *testing.T) {
	nodes := startRepNodes(t, 2)
	getter, good := nodes[0], nodes[1]
	body := randomBytes(t, 4096)
	c, _ := putHeld(t, good, string(body))

	// A provider that answers every request with the right size and the
	// wrong bytes, and records the reports it gets.
	liar, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liar.Close() })
	bad := bytes.Clone(body)
	bad[100] ^= 1
	liar.SetStreamHandler(ProtocolID, func(st network.Stream) {
		defer st.Close()
		_, _ = st.Write(AppendResponseHeader(nil, ResponseHeader{Status: StatusOK, Size: int64(len(bad))}))
		_, _ = st.Write(bad)
	})
	reports := make(chan string, 4)
	liar.SetStreamHandler(ReportProtocol, func(st network.Stream) {
		defer st.Close()
		var r badCopyReport
		if err := readJSONLine(st, &r); err == nil {
			reports <- r.CID
		}
	})
	ps := getter.h.Peerstore()
	ps.AddAddrs(liar.ID(), liar.Addrs(), time.Hour)
	ps.RecordLatency(liar.ID(), time.Microsecond)
	ps.RecordLatency(good.h.ID(), time.Second)
	getter.dir.mu.Lock()
	getter.dir.hs[c] = []catalog.Holder{{Peer: liar.ID()}, {Peer: good.h.ID()}}
	getter.dir.mu.Unlock()

	order := func() []peer.ID {
		cands, _ := getter.s.providers(context.Background(), c, nil, false)
		var ids []peer.ID
		for _, c := range cands {
			ids = append(ids, c.id)
		}
		return ids
	}
	if o := order(); len(o) != 2 || o[0] != liar.ID() {
		t.Fatalf("order before = %v, want the lowest RTT, %s, first", o, liar.ID())
	}
	f, err := os.CreateTemp(t.TempDir(), "get")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out GetResult
	if err := getter.s.fetch(context.Background(), c, int64(len(body)), f, "", &out, nil); err != nil {
		t.Fatal(err)
	}
	if out.Provider != good.h.ID() || len(out.Attempts) != 2 || out.Attempts[0].Err != ErrHashMismatch.Error() {
		t.Fatalf("attempts = %+v, want the liar then the good holder", out.Attempts)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, body) {
		t.Fatal("fetched bytes differ")
	}
	select {
	case got := <-reports:
		if got != c.String() {
			t.Fatalf("report names %s, want %s", got, c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the provider was not told its copy failed verification")
	}
	if o := order(); len(o) != 2 || o[0] != good.h.ID() {
		t.Fatalf("order after = %v, want %s first: the liar is demoted", o, good.h.ID())
	}
}

// A report is not taken on trust: a good copy stays, a bad one (found by
// the re-hash the report triggers) is quarantined.
func TestReportIsVerifiedNotTrusted(t *testing.T) {
	nodes := startRepNodes(t, 2)
	holder, getter := nodes[0], nodes[1]
	good, _ := putHeld(t, holder, "a good copy")
	rotten, _ := putHeld(t, holder, "a copy that will rot")
	flipByte(t, holder, rotten, 3)
	// Both were verified when stored: only a mark older than reportGrace
	// is re-hashed on a report.
	setVerified(t, holder.s.store, good, time.Now().Add(-time.Hour))
	setVerified(t, holder.s.store, rotten, time.Now().Add(-time.Hour))
	report := func(c cid.Cid) {
		st, err := getter.h.NewStream(context.Background(), holder.h.ID(), ReportProtocol)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(badCopyReport{CID: c.String()})
		_, _ = st.Write(append(b, '\n'))
		st.Close()
	}
	// One report is checked at a time: the second waits for the first.
	report(good)
	eventually(t, 5*time.Second, "the good copy re-verified", func() bool {
		h, ok := holder.s.store.Held(good)
		return ok && time.Since(h.Verified) < time.Minute && !holder.s.reportBusy.Load()
	})
	report(rotten)
	eventually(t, 5*time.Second, "the rotten copy quarantined", func() bool { return holder.s.Stats().Quarantined.Load() == 1 })
	if _, ok := holder.s.store.Has(good); !ok {
		t.Fatal("the good copy was dropped on a report")
	}
	if _, ok := holder.s.store.Has(rotten); ok {
		t.Fatal("the rotten copy is still held")
	}
}

func TestPushBackoff(t *testing.T) {
	var b pushBackoff
	c := ComputeCID([]byte("x"))
	p := peer.ID("target")
	t0 := time.Unix(1000, 0)
	if !b.ready(c, p, t0) {
		t.Fatal("not ready before any failure")
	}
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute} {
		if got := b.failed(c, p, t0); got != want {
			t.Fatalf("failure %d: wait %s, want %s", i+1, got, want)
		}
		if b.ready(c, p, t0.Add(want-time.Millisecond)) || !b.ready(c, p, t0.Add(want)) {
			t.Fatalf("failure %d: ready before or not after %s", i+1, want)
		}
		if !b.ready(c, "other", t0) {
			t.Fatal("another target waits too")
		}
	}
	b.succeeded(c, p)
	if !b.ready(c, p, t0) {
		t.Fatal("still waiting after a success")
	}
}

// Repair does not ask a member whose announced free space cannot hold the
// file.
func TestCandidatesSkipMembersWithoutRoom(t *testing.T) {
	live := map[peer.ID]Peer{
		"full":    {ID: "full", RTT: time.Millisecond, Free: 10 << 20},
		"roomy":   {ID: "roomy", RTT: 2 * time.Millisecond, Free: 10 << 30},
		"unknown": {ID: "unknown", RTT: 3 * time.Millisecond},
	}
	var s Service
	got := s.candidates(live, nil, 100<<20)
	if len(got) != 2 || got[0].ID != "roomy" || got[1].ID != "unknown" {
		t.Fatalf("candidates = %v, want roomy then unknown", got)
	}
	if got := s.candidates(live, nil, 1<<20); len(got) != 2 {
		t.Fatalf("candidates for 1 MiB = %v: 10 MiB free is less than 1 MiB plus the margin", got)
	}
}

// rotAndRecover stores a file on a and b, flips a byte of a's copy, lets
// find make a notice, then checks that a holds a good copy again and that
// the file is still got, verified, from a after b died.
func rotAndRecover(t *testing.T, cfg Config, find func(t *testing.T, getter, a repNode, c cid.Cid, body []byte)) {
	nodes := startRepNodesCfg(t, 3, cfg, nil)
	a, b, getter := nodes[0], nodes[1], nodes[2]
	body := randomBytes(t, 2<<20+99)
	c := holdBoth(t, nodes, a, b, body)
	flipByte(t, a, c, 1<<20)
	getter.h.Peerstore().RecordLatency(a.h.ID(), time.Microsecond)
	getter.h.Peerstore().RecordLatency(b.h.ID(), time.Second)
	find(t, getter, a, c, body)
	eventually(t, 15*time.Second, "a holds a good copy again", func() bool {
		_, own := a.dir.own(c)
		return own && a.s.Stats().Restored.Load() == 1
	})
	if err := a.s.store.Verify(c); err != nil {
		t.Fatalf("a's copy after the repair: %v", err)
	}
	b.s.Close()
	b.h.Close()
	res := getFile(t, getter, c, body)
	if res.Provider != a.h.ID() {
		t.Fatalf("got from %s, want a, %s", res.Provider, a.h.ID())
	}
}

// getFile gets c on n into a temp directory and checks its bytes.
func getFile(t *testing.T, n repNode, c cid.Cid, body []byte) GetResult {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.s.Get(ctx, c.String(), root, "out", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes (%v), not the file", len(got), err)
	}
	return res
}

// A rotten copy found by serving it: the getter still gets the file (from
// the good holder), the rotten holder is replaced, and the file outlives
// the good holder.
func TestRottenCopyFoundByServingIsReplaced(t *testing.T) {
	rotAndRecover(t, noScrub, func(t *testing.T, getter, a repNode, c cid.Cid, body []byte) {
		getFile(t, getter, c, body)
		if q := a.s.Stats().Quarantined.Load(); q != 1 {
			t.Fatalf("the holder that served a rotten copy quarantined %d", q)
		}
	})
}

// The same, found by the background scrub.
func TestRottenCopyFoundByScrubIsReplaced(t *testing.T) {
	cfg := Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: time.Hour, ScrubRate: 16 << 20, ScrubInterval: time.Second}
	rotAndRecover(t, cfg, func(t *testing.T, _, a repNode, _ cid.Cid, _ []byte) {
		eventually(t, 15*time.Second, "the scrub finds the rotten copy", func() bool { return a.s.Stats().Quarantined.Load() == 1 })
	})
}

// A node's own get of a file whose local copy rotted gets it from the
// network, and quarantines and replaces its copy.
func TestLocalGetOfARottenCopyFetchesAGoodOne(t *testing.T) {
	a, b, c, body := rottenPair(t, 300<<10, 7)
	res := getFile(t, a, c, body)
	if res.Provider != b.h.ID() {
		t.Fatalf("got from %s, want the good holder %s", res.Provider, b.h.ID())
	}
	eventually(t, 10*time.Second, "a's copy replaced", func() bool { return a.s.Stats().Restored.Load() == 1 })
	if err := a.s.store.Verify(c); err != nil {
		t.Fatal(err)
	}
}

// rottenPair starts two nodes without a scrub that both hold a file of
// size random bytes, and flips the byte at off of the first one's copy.
func rottenPair(t *testing.T, size int, off int64) (a, b repNode, c cid.Cid, body []byte) {
	t.Helper()
	nodes := startRepNodesCfg(t, 2, noScrub, nil)
	a, b = nodes[0], nodes[1]
	body = randomBytes(t, size)
	c = holdBoth(t, nodes, a, b, body)
	flipByte(t, a, c, off)
	return a, b, c, body
}

// Repair never copies from a copy it has not verified: a holder whose copy
// rotted since its last verification finds it on its way to push it,
// quarantines it instead, and no copy is made from it.
func TestRepairDoesNotPushARottenCopy(t *testing.T) {
	nodes := startRepNodesCfg(t, 2, noScrub, nil)
	a, b := nodes[0], nodes[1]
	c, _ := putHeld(t, a, string(randomBytes(t, 100<<10)))
	flipByte(t, a, c, 99)
	setVerified(t, a.s.store, c, time.Now().Add(-48*time.Hour))
	a.s.checkReplicas(context.Background())
	if _, ok := b.s.store.Has(c); ok {
		t.Fatal("a copy was made from a rotten source")
	}
	if q := a.s.Stats().Quarantined.Load(); q != 1 {
		t.Fatalf("quarantined = %d, want the rotten source found before the push", q)
	}
	if _, own := a.dir.own(c); own {
		t.Fatal("the rotten holder still counts as a holder")
	}
	if r := a.s.Stats().Repairs.Load(); r != 0 {
		t.Fatalf("repairs = %d", r)
	}
	if st := a.s.Stats(); st.ServedBytes.Load() != 0 || st.ServedFailed.Load() != 0 {
		t.Fatalf("the rotten source was served (%d bytes): found by serving, not before the push", st.ServedBytes.Load())
	}
}
