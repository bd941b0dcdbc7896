package kv

import (
	"context"
	"fmt"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/p2pshare/p2pshare/internal/bg"
)

func TestWatchers(t *testing.T) {
	rev := func(key string) *Record { return &Record{NS: NSRevoke, Key: key} }
	tests := []struct {
		name       string
		ns, prefix string
		kept       [][]*Record // batches kept, in order
		signals    int         // signals waiting after (coalesced: 0 or 1)
	}{
		{"a record of the namespace", NSRevoke, "", [][]*Record{{rev("p1")}}, 1},
		{"many batches coalesce into one signal", NSRevoke, "", [][]*Record{{rev("p1")}, {rev("p2"), rev("p3")}, {rev("p4")}}, 1},
		{"another namespace", NSRevoke, "", [][]*Record{{userRecord("p1", "v")}}, 0},
		{"the prefix matches", NSRevoke, "12D", [][]*Record{{rev("12D3Koo")}}, 1},
		{"the prefix does not match", NSRevoke, "12D", [][]*Record{{rev("Qm")}}, 0},
		{"nothing kept", NSRevoke, "", [][]*Record{{}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w watchers
			ch, stop := w.add(tt.ns, tt.prefix)
			for _, b := range tt.kept {
				w.notify(b) // never blocks, whoever reads
			}
			got := 0
			for len(ch) > 0 {
				<-ch
				got++
			}
			if got != tt.signals {
				t.Fatalf("%d signals, want %d", got, tt.signals)
			}
			stop()
			if _, open := <-ch; open {
				t.Fatal("the channel is open after stop")
			}
			stop()               // a second stop is harmless
			w.notify(tt.kept[0]) // and so is a record after it
		})
	}
}

func TestWatchersClose(t *testing.T) {
	var w watchers
	a, stopA := w.add(NSRevoke, "")
	w.close()
	if _, open := <-a; open {
		t.Fatal("close left a watcher's channel open")
	}
	stopA() // after close: harmless
	b, _ := w.add(NSRevoke, "")
	if _, open := <-b; open {
		t.Fatal("a watch added after close is open")
	}
	w.notify([]*Record{{NS: NSRevoke, Key: "p"}})
}

// A store's watch fires for its own writes; records from gossip and
// anti-entropy are covered by TestWatchGossipIntake and TestClusterWatch.
func TestStoreWatchOwnWrite(t *testing.T) {
	n := clStartNode(t, nil, "")
	ch, stop := n.s.Watch(NSUser, "w/")
	defer stop()
	ctx := context.Background()
	if _, err := n.s.Put(ctx, NSUser, "other", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("a write outside the prefix signalled the watch")
	default:
	}
	if _, err := n.s.Put(ctx, NSUser, "w/1", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("a write under the prefix did not signal the watch")
	}
}

// A watch fires for a record that arrives by anti-entropy and for one
// that arrives by gossip.
func TestClusterWatch(t *testing.T) {
	cfg := clConfig()
	cfg.SyncInterval = time.Hour // after the first exchange, only gossip
	a, b := clStartNodeWith(t, nil, "", cfg), clStartNodeWith(t, nil, "", cfg)
	ch, stop := b.s.Watch(NSUser, "w/")
	defer stop()
	ctx := t.Context()
	signalled := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(15 * time.Second):
			t.Fatalf("the watch was not signalled by a record that arrived by %s", what)
		}
	}
	// Written before the nodes meet, the record can reach b only by
	// anti-entropy.
	if _, err := a.s.Put(ctx, NSUser, "w/before", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	clConnect(t, b, a)
	signalled("anti-entropy")
	if _, ok := b.s.Local(NSUser, "w/before"); !ok || b.s.Stats().AppliedSync == 0 {
		t.Fatalf("signalled, but b holds the record: %v, applied by sync: %d", ok, b.s.Stats().AppliedSync)
	}
	for _, n := range []*clNode{a, b} {
		select {
		case <-n.s.Synced():
		case <-time.After(15 * time.Second):
			t.Fatalf("%s never synced", n.name())
		}
	}
	// Gossip carries a's writes once the topic's mesh has formed: write
	// outside the watched prefix until one arrives.
	for i := 0; b.s.Stats().AppliedGossip == 0; i++ {
		if i == 75 {
			t.Fatal("no record arrived by gossip in 15 s")
		}
		if _, err := a.s.Put(ctx, NSUser, fmt.Sprintf("probe/%d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case <-ch:
		t.Fatal("a record outside the prefix signalled the watch")
	default:
	}
	synced := b.s.Stats().AppliedSync
	if _, err := a.s.Put(ctx, NSUser, "w/after", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	signalled("gossip")
	if st := b.s.Stats(); st.AppliedSync != synced {
		t.Fatalf("signalled, but %d records arrived by anti-entropy meanwhile", st.AppliedSync-synced)
	}
	if _, ok := b.s.Local(NSUser, "w/after"); !ok {
		t.Fatal("signalled, but b does not hold the gossiped record")
	}
}

// A watch fires for a record the gossip intake keeps.
func TestWatchGossipIntake(t *testing.T) {
	s := testStore()
	s.cfg.Now = func() time.Time { return time.Unix(0, testWall) }
	ch, stop := s.Watch(NSUser, "")
	defer stop()
	m := gossipMessage(t, signRecord(t, userRecord("k", "v"), testKey(t, 2)))
	if s.intake.validate(context.Background(), "", m) != pubsub.ValidationAccept {
		t.Fatal("record not accepted")
	}
	msgs := make(chan *pubsub.Message, 1)
	msgs <- m
	g := bg.New()
	defer g.Close()
	g.Go(func(ctx context.Context) {
		s.intake.receive(ctx, g, func(ctx context.Context) (*pubsub.Message, error) {
			select {
			case m := <-msgs:
				return m, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch was not signalled by a gossiped record")
	}
	if _, ok := s.Local(NSUser, "k"); !ok {
		t.Fatal("signalled, but the store does not hold the record")
	}
}
