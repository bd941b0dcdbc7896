package kv

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/internal/bg"
)

// newTestIntake is an intake judging by the wall clock w, keeping into
// keep (nil: nowhere).
func newTestIntake(w *fakeWall, self peer.ID, keep func([]*Record) (int, error)) *intake {
	cfg := DefaultConfig()
	cfg.Now = w.now
	cfg.MaxValueSize = 16
	cfg.Check = func(r *Record) error {
		if r.NS == NSRevoke {
			return errors.New("no authority here")
		}
		return nil
	}
	if keep == nil {
		keep = func(rs []*Record) (int, error) { return len(rs), nil }
	}
	return newIntake(&cfg, slog.New(slog.DiscardHandler), self, func(Timestamp) {}, keep)
}

func TestIntakeValidate(t *testing.T) {
	k, other := testKey(t, 1), testKey(t, 2)
	rec := func(ns, key, value string, d time.Duration, ttl time.Duration) *Record {
		r := &Record{NS: ns, Key: key, Value: []byte(value), Time: Timestamp{Wall: testWall + int64(d)}}
		if ttl > 0 {
			r.Expires = r.Time.Wall + int64(ttl)
		}
		return signRecord(t, r, k)
	}
	tests := []struct {
		name   string
		msg    *pubsub.Message
		want   pubsub.ValidationResult
		reason string // counted in Rejected; "" none
	}{
		{"a fresh record", gossipMessage(t, rec(NSUser, "a", "v", 0, 0)), pubsub.ValidationAccept, ""},
		{"20 s ahead, within the skew", gossipMessage(t, rec(NSUser, "a", "v", 20*time.Second, 0)), pubsub.ValidationAccept, ""},
		{"90 s ahead", gossipMessage(t, rec(NSUser, "a", "v", 90*time.Second, 0)), pubsub.ValidationReject, RejectFuture},
		{"expired", gossipMessage(t, rec(NSUser, "a", "v", -time.Hour, time.Minute)), pubsub.ValidationIgnore, ""},
		{"a value over the limit", gossipMessage(t, rec(NSUser, "a", "seventeen bytes!!", 0, 0)), pubsub.ValidationReject, RejectTooLarge},
		{"refused by Check", gossipMessage(t, rec(NSRevoke, idOf(t, other).String(), "x", 0, 0)), pubsub.ValidationReject, RejectDenied},
		{"not a record", &pubsub.Message{Message: &pb.Message{Data: []byte("{"), From: []byte(idOf(t, k))}}, pubsub.ValidationReject, RejectInvalid},
		{"relayed as another's own", &pubsub.Message{Message: &pb.Message{Data: marshalRecord(t, rec(NSUser, "a", "v", 0, 0)), From: []byte(idOf(t, other))}}, pubsub.ValidationReject, RejectInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newTestIntake(&fakeWall{t: time.Unix(0, testWall)}, "", nil)
			got := in.validate(context.Background(), "", tt.msg)
			if got != tt.want {
				t.Fatalf("validation %v, want %v", got, tt.want)
			}
			if _, ok := tt.msg.ValidatorData.(*Record); ok != (tt.want == pubsub.ValidationAccept) {
				t.Fatalf("ValidatorData holds a record: %v, want %v", ok, tt.want == pubsub.ValidationAccept)
			}
			var st Stats
			in.counts(&st)
			total := 0
			for _, n := range st.Rejected {
				total += n
			}
			if tt.reason == "" && total != 0 || tt.reason != "" && (total != 1 || st.Rejected[tt.reason] != 1) {
				t.Fatalf("Rejected = %v, want one %q", st.Rejected, tt.reason)
			}
		})
	}
}

// The intake keeps what other nodes gossip, not this node's own records
// (already kept when written), and counts what was kept.
func TestIntakeReceiveKeepsOthersRecords(t *testing.T) {
	self, other := testKey(t, 1), testKey(t, 2)
	kept := make(chan *Record, 16)
	in := newTestIntake(&fakeWall{t: time.Unix(0, testWall)}, idOf(t, self), func(rs []*Record) (int, error) {
		for _, r := range rs {
			kept <- r
		}
		return len(rs), nil
	})
	msgs := make(chan *pubsub.Message, 16)
	for i, k := range []string{"mine", "theirs-1", "theirs-2"} {
		key := self
		if i > 0 {
			key = other
		}
		m := gossipMessage(t, signRecord(t, userRecord(k, "v"), key))
		if in.validate(context.Background(), "", m) != pubsub.ValidationAccept {
			t.Fatalf("%s not accepted", k)
		}
		msgs <- m
	}
	g := bg.New()
	g.Go(func(ctx context.Context) {
		in.receive(ctx, g, func(ctx context.Context) (*pubsub.Message, error) {
			select {
			case m := <-msgs:
				return m, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	})
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case r := <-kept:
			got = append(got, r.Key)
		case <-deadline:
			t.Fatalf("kept %v, want theirs-1 and theirs-2", got)
		}
	}
	g.Close()
	if got[0] != "theirs-1" || got[1] != "theirs-2" || len(kept) != 0 {
		t.Fatalf("kept %v (and %d more), want theirs-1 and theirs-2", got, len(kept))
	}
	var st Stats
	in.counts(&st)
	if st.AppliedGossip != 2 {
		t.Fatalf("AppliedGossip = %d, want 2", st.AppliedGossip)
	}
}
