package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"

	"github.com/p2pshare/p2pshare/gossip/kv"
)

// A node whose catalog never heard of a name by gossip resolves it through
// the copy of the name's catalog record in the DHT, and gets the file.
func TestNameFoundThroughTheDHTCopy(t *testing.T) {
	nodes := newTestNetwork(t, 3)
	data := []byte("found through the DHT\n")
	sr := shareBytes(t, nodes[1], "held.txt", data)
	// A name record of nodes[1]'s that only the DHT holds: no catalog has
	// it, as for a node that missed the gossip and the anti-entropy.
	v, _ := json.Marshal(kv.NameValue{CID: sr.CID, Size: sr.Size})
	rec := &kv.Record{NS: kv.NSName, Key: "dht-only.txt", Value: v, Time: kv.Timestamp{Wall: time.Now().UnixNano()}}
	if err := rec.Sign(nodes[1].Host().Peerstore().PrivKey(nodes[1].Host().ID())); err != nil {
		t.Fatal(err)
	}
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].DHT().PutValue(context.Background(), kv.DHTKey(kv.NSName, rec.Key), b); err != nil {
		t.Fatalf("put the name record in the DHT: %v", err)
	}
	if _, ok := nodes[2].KV().Lookup(rec.Key); ok {
		t.Fatal("the catalog knows a name only the DHT has")
	}
	res, got, err := getInto(t, nodes[2], rec.Key)
	if err != nil {
		t.Fatalf("get of a name only the DHT has: %v", err)
	}
	if !bytes.Equal(got, data) || res.CID != sr.CID || res.Name != rec.Key || res.Provider != nodes[1].Host().ID().String() {
		t.Fatalf("get result %+v, %q; want %s from %s", res, got, sr.CID, nodes[1].Host().ID())
	}
	if e, ok := nodes[2].KV().Lookup(rec.Key); !ok || e.Publisher != nodes[1].Host().ID() {
		t.Fatalf("the name found in the DHT is not kept in the catalog: %+v", e)
	}
}

// A shared name's record goes into the DHT as the catalog's record itself.
func TestSharePutsTheCatalogRecordInTheDHT(t *testing.T) {
	nodes := newTestNetwork(t, 3)
	sr := shareBytes(t, nodes[0], "in-dht.txt", []byte("in the DHT\n"))
	local, ok := nodes[0].KV().Local(kv.NSName, "in-dht.txt")
	if !ok {
		t.Fatal("the sharer's catalog has no record of the name")
	}
	b, err := nodes[2].DHT().GetValue(context.Background(), kv.DHTKey(kv.NSName, "in-dht.txt"))
	if err != nil {
		t.Fatalf("the shared name is not in the DHT: %v", err)
	}
	got, err := kv.Unmarshal(b)
	if err != nil || got.Writer != local.Writer || got.Time != local.Time || !bytes.Equal(got.Value, local.Value) || !bytes.Equal(got.Sig, local.Sig) {
		t.Fatalf("the DHT holds %+v (%v), want the catalog's record %+v", got, err, local)
	}
	var nv kv.NameValue
	if err := json.Unmarshal(got.Value, &nv); err != nil || nv.CID != sr.CID {
		t.Fatalf("the DHT's record names %+v (%v), want %s", nv, err, sr.CID)
	}
}

// logWatch is a log handler that notes whether a line whose message
// holds want was logged.
type logWatch struct {
	want string
	seen atomic.Bool
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.want) {
		w.seen.Store(true)
	}
	return nil
}

// acceptAll is the validator of a node of an earlier release for its name
// namespace, as far as this test needs: it takes any record.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

// A DHT name record of an earlier release, put by a node of that release,
// is refused by this release's nodes, which say so in their log and keep
// running; the names they share still resolve.
func TestOldDHTNameRecordsAreRefused(t *testing.T) {
	logs := &logWatch{want: "refused a DHT name record of an earlier release"}
	first := newTestNode(t, func(c *Config) { c.Logger = slog.New(logs) })
	nodes := []*Node{first, newTestNode(t, nil, addrInfo(first))}
	waitFor(t, 15*time.Second, "routing tables to fill", func() bool {
		for _, n := range nodes {
			if n.DHT().RoutingTable().Size() < 1 {
				n.peering.refreshDHT()
				return false
			}
		}
		return true
	})

	// A DHT peer of the earlier release.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	old, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(DHTPrefix),
		dht.Validator(record.NamespacedValidator{oldNameDHTNamespace: acceptAll{}, kv.DHTNamespace: kv.Validator{}}))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := h.Connect(ctx, addrInfo(n)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "the old peer's routing table to fill", func() bool {
		if old.RoutingTable().Size() < len(nodes) {
			_ = <-old.ForceRefresh()
			return false
		}
		return true
	})
	key := "/" + oldNameDHTNamespace + "/old.txt"
	_ = old.PutValue(ctx, key, []byte(`{"name":"old.txt"}`))
	waitFor(t, 10*time.Second, "the refusal in the log", func() bool {
		return logs.seen.Load()
	})
	for _, n := range nodes {
		if _, err := n.DHT().GetValue(ctx, key); err == nil {
			t.Fatalf("node %s gives a name record of an earlier release", n.Host().ID())
		}
		if err := n.DHT().PutValue(ctx, key, []byte(`{"name":"old.txt"}`)); !errors.Is(err, errOldNameRecord) {
			t.Fatalf("put of an old name record on %s: %v, want it refused", n.Host().ID(), err)
		}
	}
	// The nodes keep working: a name shared now resolves on the other.
	sr := shareBytes(t, nodes[0], "new.txt", []byte("new\n"))
	if res, _, err := getInto(t, nodes[1], "new.txt"); err != nil || res.CID != sr.CID {
		t.Fatalf("get of a name shared after the refusal: %+v, %v", res, err)
	}
}
