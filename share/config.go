package share

import (
	"fmt"
	"time"
)

// Config tunes the share service. DefaultConfig gives the defaults; every
// zero field of a Config passed to New is replaced by its default.
type Config struct {
	// MaxPartialBytes bounds the bytes kept for resuming interrupted gets
	// (in the store's partial directory); 0 means DefaultMaxPartialBytes,
	// negative keeps none (an interrupted get starts again from zero).
	MaxPartialBytes int64
	// MaxFileSize is the largest file that can be shared, stored or
	// fetched, in bytes. Default 4 GiB.
	MaxFileSize int64
	// MaxServes caps the transfers this node serves at once; a request past
	// it is answered "busy" and the getter moves on. Default 64.
	MaxServes int
	// MaxServesPerPeer caps the transfers one peer can hold open on this
	// node. Default 8.
	MaxServesPerPeer int
	// StallTimeout is how long a fetch waits for the next bytes from a
	// provider before it gives up on it and goes on with the next one; it
	// is also the serving side's idle deadline. Default 5 s.
	StallTimeout time.Duration
	// RequestTimeout bounds reading a request and its header. Default 10 s.
	RequestTimeout time.Duration
	// LookupTimeout bounds a name resolution and a provider search, so an
	// unknown name is answered instead of hanging. Default 10 s.
	LookupTimeout time.Duration
	// PingTimeout bounds the RTT measurement of a provider whose latency is
	// not yet known. Default 1 s.
	PingTimeout time.Duration
	// MaxProviders is how many providers a fetch considers. Default 20.
	MaxProviders int
	// ReprovideInterval is how often held CIDs are provided and published
	// names are put again, well before the DHT's records expire (provider
	// records 48 h, values 36 h). Default 12 h.
	ReprovideInterval time.Duration
	// Replicas is R, how many nodes keep a copy of each file: after a
	// share the publisher copies it to the R-1 closest live members, a
	// holder's death is repaired, a leaving node hands off first.
	// Default 2; 1 turns replication off.
	Replicas int
	// ReplicationInterval is how often a node checks that what it holds
	// still has R live holders (it also checks on every membership
	// change). Default 5 s.
	ReplicationInterval time.Duration
	// ReplicateTimeout bounds one copy to another node. Default 10 min.
	ReplicateTimeout time.Duration
	// ReplicationDelay is how long after start the first check waits, so
	// the node has heard the members and caught up with the catalog; at
	// most, when the node says sooner that it has (Deps.Ready).
	// Default 5 s.
	ReplicationDelay time.Duration
	// ScrubRate is the byte rate, per second, at which the background
	// scrub re-reads and re-hashes held files, oldest-verified first.
	// Default 8 MiB/s (about 675 GiB a day); negative turns the scrub off.
	ScrubRate int64
	// ScrubInterval is how long a file verified (stored, served or
	// scrubbed) waits before the scrub verifies it again, and how fresh a
	// verification must be for a copy to be pushed to another node
	// without hashing it first. Default 24 h.
	ScrubInterval time.Duration
	// DirectWait is how long a transfer to a peer reachable only through
	// a relay waits for a direct connection (hole punching) before it
	// goes over the relay. Default 3 s; negative: use the relay at once.
	DirectWait time.Duration
	// MaxUploadRate caps the bytes per second this node sends of files it
	// serves (gets and copies to other nodes), all transfers together; 0
	// is no limit. Gossip and the DHT are not counted.
	MaxUploadRate int64
	// MaxDownloadRate caps the bytes per second this node receives of
	// files it fetches (gets, replicas, repairs), all transfers together;
	// 0 is no limit.
	MaxDownloadRate int64
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		MaxFileSize:         4 << 30,
		MaxServes:           64,
		MaxServesPerPeer:    8,
		StallTimeout:        5 * time.Second,
		RequestTimeout:      10 * time.Second,
		LookupTimeout:       10 * time.Second,
		PingTimeout:         time.Second,
		MaxProviders:        20,
		ReprovideInterval:   12 * time.Hour,
		Replicas:            2,
		ReplicationInterval: 5 * time.Second,
		ReplicateTimeout:    10 * time.Minute,
		ReplicationDelay:    5 * time.Second,
		ScrubRate:           8 << 20,
		ScrubInterval:       24 * time.Hour,
		DirectWait:          3 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.MaxFileSize == 0 {
		c.MaxFileSize = d.MaxFileSize
	}
	if c.MaxServes == 0 {
		c.MaxServes = d.MaxServes
	}
	if c.MaxServesPerPeer == 0 {
		c.MaxServesPerPeer = d.MaxServesPerPeer
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = d.LookupTimeout
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = d.PingTimeout
	}
	if c.MaxProviders == 0 {
		c.MaxProviders = d.MaxProviders
	}
	if c.ReprovideInterval == 0 {
		c.ReprovideInterval = d.ReprovideInterval
	}
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.ReplicationInterval == 0 {
		c.ReplicationInterval = d.ReplicationInterval
	}
	if c.ReplicateTimeout == 0 {
		c.ReplicateTimeout = d.ReplicateTimeout
	}
	if c.ReplicationDelay == 0 {
		c.ReplicationDelay = d.ReplicationDelay
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = d.ScrubRate
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = d.ScrubInterval
	}
	if c.DirectWait == 0 {
		c.DirectWait = d.DirectWait
	}
	switch {
	case c.Replicas < 0 || c.Replicas > 16:
		return c, fmt.Errorf("share config: Replicas %d is outside 1..16", c.Replicas)
	case c.MaxFileSize < 0:
		return c, fmt.Errorf("share config: MaxFileSize %d is negative", c.MaxFileSize)
	case c.MaxServes < 0 || c.MaxServesPerPeer < 0 || c.MaxProviders < 0:
		return c, fmt.Errorf("share config: negative limit")
	case c.StallTimeout < 0 || c.RequestTimeout < 0 || c.LookupTimeout < 0 || c.PingTimeout < 0 || c.ReprovideInterval < 0 ||
		c.ReplicationInterval < 0 || c.ReplicateTimeout < 0 || c.ReplicationDelay < 0 || c.ScrubInterval < 0:
		return c, fmt.Errorf("share config: negative duration")
	}
	return c, nil
}
