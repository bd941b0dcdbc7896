package kv

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors of a write this node refuses because the network would refuse it.
var (
	// ErrClockOff: this node's clock is too far from the network's (see
	// ClockError).
	ErrClockOff = errors.New("clock off")
	// ErrWriterLimit: this node already holds MaxRecordsPerWriter records
	// of its own (see WriterLimitError).
	ErrWriterLimit = errors.New("per-writer record limit reached")
)

// ClockError is a write refused because this node's clock is off from the
// network's by more than the records allow.
type ClockError struct {
	Offset time.Duration // this node's clock minus the network's
	Limit  time.Duration
}

func (e *ClockError) Error() string {
	dir, d := "ahead of", e.Offset
	if d < 0 {
		dir, d = "behind", -d
	}
	return fmt.Sprintf("this node's clock is %s %s the network (limit %s): fix the system clock (NTP) and retry",
		roundOffset(d), dir, e.Limit)
}

// Unwrap makes a ClockError match ErrClockOff.
func (e *ClockError) Unwrap() error { return ErrClockOff }

// roundOffset rounds an offset for a message: to the second past a
// minute, to the millisecond below.
func roundOffset(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// WriterLimitError is a write refused because this node holds the
// per-writer limit of its own records.
type WriterLimitError struct {
	Limit     int
	Tombstone bool          // the limit of tombstones, not of live records
	TTL       time.Duration // how long a tombstone is kept
}

func (e *WriterLimitError) Error() string {
	if e.Tombstone {
		return fmt.Sprintf("this node holds the per-writer limit of %d deleted records: each is forgotten %s after its delete", e.Limit, e.TTL)
	}
	return fmt.Sprintf("this node holds the per-writer limit of %d records: delete some or raise the limit", e.Limit)
}

// Unwrap makes a WriterLimitError match ErrWriterLimit.
func (e *WriterLimitError) Unwrap() error { return ErrWriterLimit }

// Reasons a received record is rejected, as counted in Stats.Rejected.
const (
	RejectFuture    = "future"     // written further ahead than MaxClockSkew
	RejectWriterCap = "writer_cap" // its writer holds MaxRecordsPerWriter records here
	RejectInvalid   = "invalid"    // malformed, badly signed, or relayed by another peer
	RejectTooLarge  = "too_large"  // a value over this node's MaxValueSize
	RejectDenied    = "denied"     // refused by Config.Check (a revocation not by the authority)
)

// rejectReason classifies an error of admit.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, ErrFuture):
		return RejectFuture
	case errors.Is(err, errTooLarge):
		return RejectTooLarge
	case errors.Is(err, errDenied):
		return RejectDenied
	}
	return RejectInvalid
}

var (
	errTooLarge = errors.New("value too large")
	errDenied   = errors.New("denied")
)

// maxFutureKept bounds how many records rejected as from the future a store
// remembers, and maxWarned how many writers it remembers having warned
// about.
const (
	maxFutureKept = 8192
	maxWarned     = 1024
)

// futureKey identifies a record rejected as from the future.
type futureKey struct {
	writer peer.ID
	id     string
	t      Timestamp
}

// futureSet remembers records rejected as from the future, so they stay
// rejected once this node's clock has caught up with them: accepted then,
// such a record would override writes acknowledged since. It holds at most
// maxFutureKept, forgetting the oldest first. Callers hold intake.mu.
type futureSet struct {
	m     map[futureKey]struct{}
	order []futureKey
}

func (f *futureSet) add(r *Record) {
	k := futureKey{r.Writer, r.ID(), r.Time}
	if _, ok := f.m[k]; ok {
		return
	}
	if f.m == nil {
		f.m = map[futureKey]struct{}{}
	}
	if len(f.order) >= maxFutureKept {
		delete(f.m, f.order[0])
		f.order = f.order[1:]
	}
	f.m[k] = struct{}{}
	f.order = append(f.order, k)
}

func (f *futureSet) has(r *Record) bool {
	_, ok := f.m[futureKey{r.Writer, r.ID(), r.Time}]
	return ok
}

// networkNow is the network's time as this node knows it: its clock
// corrected by its measured offset to the network, when measured.
func (c *Config) networkNow() time.Time {
	now := c.Now()
	if c.ClockOffset != nil {
		if d, ok := c.ClockOffset(); ok {
			now = now.Add(-d)
		}
	}
	return now
}

// clockTrusted reports whether this node can judge a record's time: its
// offset to the network is measured, or not measured at all (no
// ClockOffset configured).
func (c *Config) clockTrusted() bool {
	if c.ClockOffset == nil {
		return true
	}
	_, ok := c.ClockOffset()
	return ok
}

// CheckClock returns a *ClockError if this node's clock is off from the
// network's by more than MaxClockSkew, nil if it is not or if the offset
// is not measured yet.
func (s *Store) CheckClock() error {
	if s.cfg.ClockOffset == nil {
		return nil
	}
	d, ok := s.cfg.ClockOffset()
	if !ok || (d <= s.cfg.MaxClockSkew && d >= -s.cfg.MaxClockSkew) {
		return nil
	}
	return &ClockError{Offset: d, Limit: s.cfg.MaxClockSkew}
}

// extraCheck applies Check; records of NSRevoke need one.
func (c *Config) extraCheck(r *Record) error {
	if c.Check != nil {
		if err := c.Check(r); err != nil {
			return fmt.Errorf("%w: %w: %v", ErrBadRecord, errDenied, err)
		}
	} else if r.NS == NSRevoke {
		return fmt.Errorf("%w: revocations need a network authority", ErrBadRecord)
	}
	return nil
}

// checkOwnWrite refuses a write the network would refuse: this node's
// clock is off, or it holds the per-writer limit of its own records.
func (s *Store) checkOwnWrite(ns, key string, deleted bool) error {
	if err := s.CheckClock(); err != nil {
		return err
	}
	return s.local.checkRoom(s.self, ns, key, deleted)
}
