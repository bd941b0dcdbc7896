package kv

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// catchUp is how often a node that has not yet completed an anti-entropy
// exchange tries one.
const catchUp = 500 * time.Millisecond

// syncer schedules anti-entropy (the exchange itself is sync.go's): every
// catchUp with a random connected peer, and at once with a peer that just
// connected, until one exchange succeeds; then with a random connected
// peer every SyncInterval. It owns the kick channel and the synced signal.
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
	synced := false
	for {
		var p peer.ID
		select {
		case <-ctx.Done():
			return
		case p = <-y.kick:
			if synced {
				continue
			}
		case <-wait:
		}
		if p == "" {
			if peers := y.peers(); len(peers) > 0 {
				p = peers[y.pick(len(peers))]
			}
		}
		if p != "" && y.syncWith(ctx, p, synced) && !synced {
			synced = true
			close(y.synced)
		}
		next := y.interval
		if !synced {
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
