package kv

import (
	"fmt"
	"time"
)

// Config tunes the store. DefaultConfig gives the defaults; zero fields of a
// Config passed to Open take them.
type Config struct {
	// MaxValueSize is the largest value in bytes. Default 64 KiB.
	MaxValueSize int
	// MaxClockSkew is how far ahead of this node's clock a record's time
	// may be; a record from further in the future is rejected. Default 30 s.
	MaxClockSkew time.Duration
	// SyncInterval is how often the node runs an anti-entropy exchange with
	// one random connected peer (it also runs one as soon as it first
	// connects). Default 10 s.
	SyncInterval time.Duration
	// SyncTimeout bounds one anti-entropy exchange. Default 60 s.
	SyncTimeout time.Duration
	// TombstoneTTL is how long a delete is remembered (so an old copy
	// cannot bring the key back) before it is collected. Default 24 h.
	TombstoneTTL time.Duration
	// SweepInterval is how often expired entries and old tombstones are
	// dropped from memory and disk. Reads never return an expired entry,
	// whatever the sweep: it only reclaims space. Default 10 s.
	SweepInterval time.Duration
	// DHTTimeout bounds putting a record in, or getting one from, the DHT.
	// Default 10 s.
	DHTTimeout time.Duration
	// MaxTTL is the longest TTL a put may ask for. Default 10 years.
	MaxTTL time.Duration
	// MaxRecordsPerWriter caps the records of one writer this node keeps:
	// at most this many live records, and as many tombstones, per writer.
	// A received record past the cap is rejected, and this node's own
	// write past it fails with ErrWriterLimit, so one writer cannot grow
	// every node's memory and disk without bound. Default 10,000.
	MaxRecordsPerWriter int
	// Now is the wall clock: it stamps this node's writes (through the
	// hybrid logical clock) and, corrected by ClockOffset, judges the
	// records received. Default time.Now.
	Now func() time.Time
	// ClockOffset, when set, returns how far this node's clock is ahead of
	// the network's (negative: behind) and whether that is known. When it
	// is known, received records are judged by the network's time, not
	// this node's, and a node whose clock is off by more than MaxClockSkew
	// refuses every write with ErrClockOff: the network would reject them.
	ClockOffset func() (time.Duration, bool)
	// Check, when set, is asked about every record written or received
	// besides the store's own checks (node uses it to verify revocations
	// against the network authority); an error rejects the record.
	Check func(*Record) error
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		MaxValueSize:  64 << 10,
		MaxClockSkew:  30 * time.Second,
		SyncInterval:  10 * time.Second,
		SyncTimeout:   60 * time.Second,
		TombstoneTTL:  24 * time.Hour,
		SweepInterval: 10 * time.Second,
		DHTTimeout:    10 * time.Second,
		MaxTTL:        10 * 365 * 24 * time.Hour,

		MaxRecordsPerWriter: 10_000,
		Now:                 time.Now,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.MaxValueSize == 0 {
		c.MaxValueSize = d.MaxValueSize
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = d.MaxClockSkew
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = d.SyncInterval
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = d.SyncTimeout
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = d.TombstoneTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.DHTTimeout == 0 {
		c.DHTTimeout = d.DHTTimeout
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = d.MaxTTL
	}
	if c.MaxRecordsPerWriter == 0 {
		c.MaxRecordsPerWriter = d.MaxRecordsPerWriter
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.MaxValueSize < 0 || c.MaxValueSize > MaxValueSizeLimit:
		return c, fmt.Errorf("kv config: MaxValueSize %d is outside 1..%d", c.MaxValueSize, MaxValueSizeLimit)
	case c.MaxRecordsPerWriter < 0:
		return c, fmt.Errorf("kv config: MaxRecordsPerWriter %d is negative", c.MaxRecordsPerWriter)
	case c.MaxClockSkew < 0 || c.SyncInterval < 0 || c.SyncTimeout < 0 || c.TombstoneTTL < 0 ||
		c.SweepInterval < 0 || c.DHTTimeout < 0 || c.MaxTTL < 0:
		return c, fmt.Errorf("kv config: negative duration")
	}
	return c, nil
}
