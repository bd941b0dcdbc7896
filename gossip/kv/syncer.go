package kv

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// catchUp is how often a node that is catching up tries an anti-entropy
// exchange.
const catchUp = 500 * time.Millisecond

// catchUpPeers is how many distinct peers a node that starts exchanges
// with before it keeps to SyncInterval. One may lack records the others
// have: a peer cut off as a record spread (a revoked node never hears of
// its own revocation) answers a joiner's first exchange with nothing new,
// and the next exchange, with a random peer, is SyncInterval later.
const catchUpPeers = 3

// syncer schedules anti-entropy (the exchange itself is sync.go's). A
// node catches up first: at once with each peer that connects, and every
// catchUp with a connected peer it has not exchanged with, until
// exchanges with catchUpPeers distinct peers have succeeded, or with
// every peer connected then (at least one); then with a random connected
// peer every SyncInterval, and a peer that connects later waits for it
// (a caught-up node does not send every joiner its store at once, on
// top of the joiner's own exchange). It owns the kick
// channel and the synced signal, closed after the first success.
type syncer struct {
	interval, timeout time.Duration
	log               *slog.Logger
	peers             func() []peer.ID
	exchange          func(context.Context, peer.ID) (SyncStats, error)
	after             func(time.Duration) <-chan time.Time // the clock: time.After
	pick              func(n int) int                      // a random index below n

	kick   chan peer.ID
	synced chan struct{} // closed after the first exchange that succeeded
}

func newSyncer(cfg *Config, log *slog.Logger, peers func() []peer.ID, exchange func(context.Context, peer.ID) (SyncStats, error)) *syncer {
	return &syncer{
		interval: cfg.SyncInterval, timeout: cfg.SyncTimeout, log: log, peers: peers, exchange: exchange,
		after: time.After, pick: rand.IntN, kick: make(chan peer.ID, 1), synced: make(chan struct{}),
	}
}

// connected tells the syncer that p just connected; it never blocks.
func (y *syncer) connected(p peer.ID) {
	select {
	case y.kick <- p:
	default:
	}
}

// run schedules exchanges until ctx ends.
func (y *syncer) run(ctx context.Context) {
	wait := y.after(0)
	done := map[peer.ID]bool{} // the peers of successful exchanges, while catching up
	caughtUp := false
	// fresh: the connected peers this node has not exchanged with.
	fresh := func() []peer.ID {
		var ps []peer.ID
		for _, p := range y.peers() {
			if !done[p] {
				ps = append(ps, p)
			}
		}
		return ps
	}
	for {
		var p peer.ID
		select {
		case <-ctx.Done():
			return
		case p = <-y.kick:
			if caughtUp || done[p] {
				continue
			}
		case <-wait:
		}
		if p == "" {
			var peers []peer.ID
			if !caughtUp {
				peers = fresh()
			}
			if len(peers) == 0 {
				peers = y.peers()
			}
			if len(peers) > 0 {
				p = peers[y.pick(len(peers))]
			}
		}
		if p != "" && y.syncWith(ctx, p, len(done) > 0) {
			if len(done) == 0 {
				close(y.synced)
			}
			if !caughtUp {
				done[p] = true
			}
		}
		if !caughtUp && len(done) > 0 && (len(done) >= catchUpPeers || len(fresh()) == 0) {
			caughtUp = true
		}
		next := y.interval
		if !caughtUp {
			next = catchUp
		}
		wait = y.after(next)
	}
}

// syncWith runs one exchange with p within the sync timeout and reports
// whether it succeeded.
func (y *syncer) syncWith(ctx context.Context, p peer.ID, synced bool) bool {
	ctx, cancel := context.WithTimeout(ctx, y.timeout)
	st, err := y.exchange(ctx, p)
	cancel()
	if err != nil {
		y.log.Debug("anti-entropy", "peer", p, "err", err)
		return false
	}
	if !synced || st.Received > 0 {
		y.log.Info("anti-entropy exchange", "peer", p, "sent", st.Sent, "received", st.Received, "applied", st.Applied)
	}
	return true
}
