package kv

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSyncerSchedule drives the syncer on an injected clock: each step
// fires the pending timer or kicks a peer, and checks with whom an
// exchange ran and which wait the syncer asked for next.
func TestSyncerSchedule(t *testing.T) {
	const interval = 10 * time.Second
	type step struct {
		kick     peer.ID       // kick this peer; "": fire the timer
		fail     bool          // the exchange, if any, fails
		wantPeer peer.ID       // the exchange's peer; "": none
		wantNext time.Duration // the next wait asked for; -1: none
		synced   bool          // Synced is closed after the step
	}
	a, b, c, d := peer.ID("peer-a"), peer.ID("peer-b"), peer.ID("peer-c"), peer.ID("peer-d")
	tests := []struct {
		name  string
		peers []peer.ID
		steps []step
	}{
		{"no peer: keep trying every catch-up period", nil, []step{
			{wantNext: catchUp}, {wantNext: catchUp},
		}},
		{"failures retry at catch-up, the first success switches to the interval", []peer.ID{a}, []step{
			{fail: true, wantPeer: a, wantNext: catchUp},
			{fail: true, wantPeer: a, wantNext: catchUp},
			{wantPeer: a, wantNext: interval, synced: true},
			{wantPeer: a, wantNext: interval, synced: true},
			{fail: true, wantPeer: a, wantNext: interval, synced: true},
		}},
		{"a peer that connects before the first success is synced with at once, then the one not yet", []peer.ID{a}, []step{
			{fail: true, wantPeer: a, wantNext: catchUp},
			{kick: b, wantPeer: b, wantNext: catchUp, synced: true},
			{wantPeer: a, wantNext: interval, synced: true},
		}},
		{"a peer that connects after catching up waits for the interval", []peer.ID{a}, []step{
			{wantPeer: a, wantNext: interval, synced: true},
			{kick: b, wantNext: -1, synced: true},
			{wantPeer: a, wantNext: interval, synced: true},
		}},
		{"catching up goes through three peers, then keeps to the interval", []peer.ID{a, b, c}, []step{
			{wantPeer: a, wantNext: catchUp, synced: true},
			{fail: true, wantPeer: b, wantNext: catchUp, synced: true},
			{wantPeer: b, wantNext: catchUp, synced: true},
			{wantPeer: c, wantNext: interval, synced: true},
			{kick: d, wantNext: -1, synced: true},
			{wantPeer: a, wantNext: interval, synced: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type wait struct {
				d  time.Duration
				ch chan time.Time
			}
			waits := make(chan wait, 1)
			calls := make(chan peer.ID, 1)
			results := make(chan error, 1)
			cfg := DefaultConfig()
			cfg.SyncInterval = interval
			y := newSyncer(&cfg, slog.New(slog.DiscardHandler), func() []peer.ID { return tt.peers },
				func(ctx context.Context, p peer.ID) (SyncStats, error) {
					select {
					case calls <- p:
					case <-ctx.Done():
						return SyncStats{}, ctx.Err()
					}
					select {
					case err := <-results:
						return SyncStats{}, err
					case <-ctx.Done():
						return SyncStats{}, ctx.Err()
					}
				})
			y.pick = func(int) int { return 0 }
			y.after = func(d time.Duration) <-chan time.Time {
				w := wait{d, make(chan time.Time, 1)}
				waits <- w
				return w.ch
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); y.run(ctx) }()
			defer func() { cancel(); <-done }()
			next := func() wait {
				t.Helper()
				select {
				case w := <-waits:
					return w
				case <-time.After(10 * time.Second):
					t.Fatal("the syncer asked for no wait")
					return wait{}
				}
			}
			cur := next()
			if cur.d != 0 {
				t.Fatalf("first wait %s, want 0: a node syncs at start", cur.d)
			}
			for i, s := range tt.steps {
				if s.kick != "" {
					y.connected(s.kick)
				} else {
					cur.ch <- time.Now()
				}
				if s.wantPeer != "" {
					select {
					case p := <-calls:
						if p != s.wantPeer {
							t.Fatalf("step %d: exchange with %s, want %s", i, p, s.wantPeer)
						}
					case <-time.After(10 * time.Second):
						t.Fatalf("step %d: no exchange, want one with %s", i, s.wantPeer)
					}
					var err error
					if s.fail {
						err = errors.New("unreachable")
					}
					results <- err
				}
				if s.wantNext >= 0 {
					cur = next()
					if cur.d != s.wantNext {
						t.Fatalf("step %d: next wait %s, want %s", i, cur.d, s.wantNext)
					}
				}
				select {
				case <-y.synced:
					if !s.synced {
						t.Fatalf("step %d: synced, want not yet", i)
					}
				default:
					if s.synced {
						t.Fatalf("step %d: not synced, want synced", i)
					}
				}
			}
		})
	}
}
