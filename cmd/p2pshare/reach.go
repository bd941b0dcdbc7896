package main

import (
	"fmt"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/pflag"

	"github.com/p2pshare/p2pshare/node"
)

// reachFlags sets cfg's reachability, relay and hole punching options from
// the daemon's flags; a malformed value is a usage error.
func reachFlags(f *pflag.FlagSet, cfg *node.Config) error {
	as, _ := f.GetStringArray(optAnnounce)
	for _, s := range as {
		a, err := parseAnnounce(s)
		if err != nil {
			return usageError{fmt.Sprintf("--%s %q: %v", optAnnounce, s, err)}
		}
		cfg.Announce = append(cfg.Announce, a)
	}
	rs, _ := f.GetStringArray(optRelay)
	for _, s := range rs {
		ai, err := node.ParseBootstrap([]string{s})
		if err != nil {
			return usageError{fmt.Sprintf("--%s %q: want a relay's multiaddr ending in /p2p/PEER_ID", optRelay, s)}
		}
		cfg.Relays = append(cfg.Relays, ai...)
	}
	if off, _ := f.GetBool(optNoPortMap); off {
		cfg.PortMap = false
	}
	cfg.Relay.MaxDuration, _ = f.GetDuration(optRelayMaxDur)
	if cfg.Relay.MaxDuration <= 0 {
		return usageError{fmt.Sprintf("--%s %s: must be positive", optRelayMaxDur, cfg.Relay.MaxDuration)}
	}
	mib, _ := f.GetInt64(optRelayMaxMB)
	if mib <= 0 || mib > 1<<30 {
		return usageError{fmt.Sprintf("--%s %d: want MiB from 1 to %d", optRelayMaxMB, mib, 1<<30)}
	}
	cfg.Relay.MaxData = mib << 20
	wait, _ := f.GetDuration(optDirectWait)
	if wait < 0 || wait > 5*time.Minute {
		return usageError{fmt.Sprintf("--%s %s: want 0 to 5m", optDirectWait, wait)}
	}
	cfg.Share.DirectWait = wait
	if wait == 0 {
		cfg.Share.DirectWait = -1 // use the relay at once
	}
	return nil
}

// parseAnnounce parses an address to announce: a dialable multiaddr of
// this node, without its /p2p/ID.
func parseAnnounce(s string) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4040): %w", err)
	}
	first, _ := ma.SplitFirst(a)
	switch first.Protocol().Code {
	case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
	default:
		return nil, fmt.Errorf("must start with /ip4, /ip6 or /dns (e.g. /ip4/203.0.113.7/tcp/4040)")
	}
	if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
		if _, err := a.ValueForProtocol(ma.P_UDP); err != nil {
			return nil, fmt.Errorf("names no TCP or UDP port (e.g. /ip4/203.0.113.7/tcp/4040)")
		}
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return nil, fmt.Errorf("must not end in /p2p/PEER_ID: it is this node's own address")
	}
	return a, nil
}
