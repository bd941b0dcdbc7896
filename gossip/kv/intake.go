package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/bg"
)

// intake judges the records other nodes send, by gossip or anti-entropy:
// it is the KV topic's validator, checks each record against this node's
// limits, remembers the records rejected as from the future, counts and
// logs rejections, and hands the gossiped records to keep, in batches. Its
// methods are safe for concurrent use.
type intake struct {
	cfg     *Config // read only
	log     *slog.Logger
	self    peer.ID
	observe func(Timestamp)              // tells the clock of a record's time
	keep    func([]*Record) (int, error) // keeps verified records

	mu            sync.Mutex // guards everything below
	future        futureSet
	warned        map[string]struct{}
	rejected      map[string]int // by reason
	appliedGossip int
}

func newIntake(cfg *Config, log *slog.Logger, self peer.ID, observe func(Timestamp), keep func([]*Record) (int, error)) *intake {
	return &intake{cfg: cfg, log: log, self: self, observe: observe, keep: keep, warned: map[string]struct{}{}, rejected: map[string]int{}}
}

// counts adds the intake's counters to st.
func (in *intake) counts(st *Stats) {
	in.mu.Lock()
	st.AppliedGossip = in.appliedGossip
	st.Rejected = make(map[string]int, len(in.rejected))
	for k, v := range in.rejected {
		st.Rejected[k] = v
	}
	in.mu.Unlock()
}

// validate is the KV topic's validator: the record must be well formed,
// signed by the peer that published it, and not from the future; an expired
// one is ignored.
func (in *intake) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	r, err := Unmarshal(msg.Data)
	if err != nil {
		in.reject(msg.GetFrom(), RejectInvalid, err)
		return pubsub.ValidationReject
	}
	if msg.GetFrom() != r.Writer {
		in.reject(msg.GetFrom(), RejectInvalid, fmt.Errorf("%w: a record of %s published as its own", ErrBadRecord, r.Writer))
		return pubsub.ValidationReject
	}
	if err := in.admit(r, in.cfg.networkNow()); err != nil {
		if errors.Is(err, ErrExpired) {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	}
	msg.ValidatorData = r
	return pubsub.ValidationAccept
}

// admit checks a verified record from another node against this node's
// limits: not from further in the future than MaxClockSkew, now or when it
// was first received, not expired, a value no larger than MaxValueSize. A
// rejected record is counted (see Stats.Rejected) and its writer warned
// about once.
func (in *intake) admit(r *Record, now time.Time) error {
	err := in.check(r, now)
	if err != nil && !errors.Is(err, ErrExpired) {
		in.reject(r.Writer, rejectReason(err), err)
	}
	return err
}

func (in *intake) check(r *Record, now time.Time) error {
	in.mu.Lock()
	was := in.future.has(r)
	in.mu.Unlock()
	if was {
		return fmt.Errorf("%w: %w: rejected on receipt, and for good", ErrBadRecord, ErrFuture)
	}
	if len(r.Value) > in.cfg.MaxValueSize {
		return fmt.Errorf("%w: %w: %d bytes, this node's limit is %d", ErrBadRecord, errTooLarge, len(r.Value), in.cfg.MaxValueSize)
	}
	if err := in.cfg.extraCheck(r); err != nil {
		return err
	}
	err := r.Check(now, in.cfg.MaxClockSkew)
	if errors.Is(err, ErrFuture) && in.cfg.clockTrusted() {
		// For good: accepted once this node's clock caught up with it,
		// it would override every write acknowledged in between.
		in.mu.Lock()
		in.future.add(r)
		in.mu.Unlock()
	}
	return err
}

// reject counts a record rejected for reason and warns about its writer
// once (per reason, while at most maxWarned writers are remembered).
func (in *intake) reject(writer peer.ID, reason string, err error) {
	k := string(writer) + "\x00" + reason
	in.mu.Lock()
	in.rejected[reason]++
	_, seen := in.warned[k]
	if !seen {
		if len(in.warned) >= maxWarned {
			in.warned = map[string]struct{}{}
		}
		in.warned[k] = struct{}{}
	}
	in.mu.Unlock()
	if seen {
		in.log.Debug("rejected a record", "writer", writer, "reason", reason, "err", err)
		return
	}
	in.log.Warn("rejected a record (further records of this writer rejected for the same reason are logged at debug level)",
		"writer", writer, "reason", reason, "err", err)
}

// maxApplyBatch bounds how many received records one disk transaction
// keeps.
const maxApplyBatch = 512

// receive hands the records the validator accepted, read by next until it
// fails, to a goroutine of g that keeps them.
func (in *intake) receive(ctx context.Context, g *bg.Group, next func(context.Context) (*pubsub.Message, error)) {
	recs := make(chan *Record, maxApplyBatch)
	if !g.Go(func(context.Context) { in.keepLoop(recs) }) {
		return
	}
	defer close(recs)
	for {
		msg, err := next(ctx)
		if err != nil {
			return
		}
		r, ok := msg.ValidatorData.(*Record)
		if !ok || msg.GetFrom() == in.self {
			continue
		}
		in.observe(r.Time)
		// With the publisher's "record published", the time a record
		// took to reach each node (testnet/bench spread reads both).
		in.log.Debug("record received", "ns", r.NS, "key", r.Key, "from", msg.ReceivedFrom)
		select {
		case recs <- r:
		case <-ctx.Done():
			return
		}
	}
}

// keepLoop keeps received records, as many as have arrived in one
// transaction, so a burst of writes costs one fsync, not one each.
func (in *intake) keepLoop(recs <-chan *Record) {
	for r := range recs {
		batch := []*Record{r}
	drain:
		for len(batch) < maxApplyBatch {
			select {
			case r, ok := <-recs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		n, err := in.keep(batch)
		if err != nil {
			in.log.Warn("apply KV updates", "records", len(batch), "err", err)
			continue
		}
		in.mu.Lock()
		in.appliedGossip += n
		in.mu.Unlock()
	}
}
