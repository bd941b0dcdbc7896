package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/share"
)

// DefaultPort is the TCP and UDP (QUIC) port a node listens on by default.
const DefaultPort = 4040

// Config configures a Node. Start from DefaultConfig (a node meant to meet
// other machines) or DefaultLocalConfig (loopback only, no mDNS: tests and
// the testnet) and override fields.
type Config struct {
	// RepoDir is the node's directory. Required.
	RepoDir string
	// ListenAddrs are the multiaddrs to listen on. Default: TCP and QUIC on
	// DefaultPort on every IPv4 and IPv6 interface.
	ListenAddrs []ma.Multiaddr
	// Bootstrap peers to join through, each a multiaddr ending in /p2p/ID.
	// The node dials them at start and, with backoff, whenever it has no
	// peer at all. Default none.
	Bootstrap []peer.AddrInfo
	// MDNS turns on discovery of other nodes on the local network. Default
	// true in DefaultConfig, false in DefaultLocalConfig (every daemon on one
	// machine would otherwise join every other).
	MDNS bool
	// MaxPeers is the connection manager's high watermark: past it, the
	// least useful connections older than a minute are closed until
	// three quarters of MaxPeers are left, besides those never closed
	// (to the members a node watches and that watch it, and to its
	// GossipSub mesh peers). Default 32: each connection costs a daemon about
	// 0.16 MiB and a share of its idle CPU (go run ./testnet/bench idle),
	// and GossipSub, the DHT and membership need only a few peers each;
	// files are fetched over connections of their own.
	MaxPeers int
	// BootstrapBackoff is the first retry delay of bootstrap dialing; it
	// doubles up to BootstrapBackoffMax. Defaults 250 ms and 30 s.
	BootstrapBackoff    time.Duration
	BootstrapBackoffMax time.Duration
	// SwarmKey, when set, makes the node part of a private network: it
	// talks only to nodes with the same key. libp2p's private networks work
	// over TCP only, so QUIC listen addresses are dropped. Default none.
	SwarmKey pnet.PSK
	// Announce, when set, are the addresses the node announces instead of
	// its listen addresses and those its peers observe (relay addresses
	// are added while it is private): for a node behind a port forward or
	// in a container. Default none: announce what libp2p finds.
	Announce []ma.Multiaddr
	// Relays are the relays this node reserves a slot on while it is
	// private (AutoNAT says it cannot be dialled), so that others reach it
	// through them and then hole-punch. Default: the bootstrap peers.
	Relays []peer.AddrInfo
	// PortMap asks the local router for a port mapping (UPnP IGD,
	// NAT-PMP). Default true in DefaultConfig, false in
	// DefaultLocalConfig.
	PortMap bool
	// Reachability, when not Unknown, is taken as this node's
	// reachability instead of what AutoNAT finds (tests, and a node known
	// to sit behind a NAT). Default Unknown: detect.
	Reachability network.Reachability
	// Relay limits the Circuit Relay v2 service a publicly reachable node
	// offers the admitted peers (see RelayLimits).
	Relay RelayLimits
	// Admission says who may join (authority and tickets, allowlist);
	// the zero value is an open network. See admit.Config.
	Admission admit.Config
	// Gossip configures membership (see gossip.Config for defaults).
	Gossip gossip.Config
	// KV configures the key-value store and catalog (see kv.Config).
	KV kv.Config
	// Share configures the share service (see share.Config for defaults).
	Share share.Config
	// SecretFiles are files that share refuses to read, besides the repo's
	// own (its identity key, API token and every other file in it), each
	// with what it is ("swarm key"): the daemon gives its swarm key and
	// authority key files. Files that hold a key are refused anyway.
	SecretFiles map[string]string
	// NewIdentity makes a new identity key when the repo's is missing,
	// even in a repo that has been used (see Repo.LoadIdentity). Default
	// false: a used repo without its key refuses to start.
	NewIdentity bool
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the node's wall clock: it stamps records, clock readings
	// sent to peers and checks tickets. Default time.Now. (Tests shift it
	// to play a machine whose clock is wrong.)
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config for a node in repo.
func DefaultConfig(repo string) Config {
	return Config{
		RepoDir: repo,
		ListenAddrs: mustAddrs(
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
			fmt.Sprintf("/ip6/::/tcp/%d", DefaultPort),
			fmt.Sprintf("/ip6/::/udp/%d/quic-v1", DefaultPort),
		),
		MDNS:                true,
		PortMap:             true,
		Relay:               DefaultRelayLimits(),
		MaxPeers:            32,
		BootstrapBackoff:    250 * time.Millisecond,
		BootstrapBackoffMax: 30 * time.Second,
		Gossip:              gossip.DefaultConfig(),
		KV:                  kv.DefaultConfig(),
		Share:               share.DefaultConfig(),
	}
}

// DefaultLocalConfig is DefaultConfig for a node that talks to other nodes
// on this machine only: loopback on random ports, no mDNS.
func DefaultLocalConfig(repo string) Config {
	c := DefaultConfig(repo)
	c.ListenAddrs = mustAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")
	c.MDNS = false
	c.PortMap = false
	return c
}

func mustAddrs(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}

func (c Config) validate() error {
	switch {
	case c.RepoDir == "":
		return fmt.Errorf("config: no repo directory")
	case len(c.ListenAddrs) == 0:
		return fmt.Errorf("config: no listen address")
	case c.MaxPeers < 4:
		return fmt.Errorf("config: MaxPeers %d is below 4", c.MaxPeers)
	case c.Relay.MaxDuration <= 0 || c.Relay.MaxData <= 0 || c.Relay.MaxReservations <= 0 || c.Relay.MaxCircuits <= 0:
		return fmt.Errorf("config: relay limits %+v: every limit must be positive", c.Relay)
	case c.BootstrapBackoff <= 0 || c.BootstrapBackoffMax < c.BootstrapBackoff:
		return fmt.Errorf("config: bootstrap backoff %s..%s is not a range", c.BootstrapBackoff, c.BootstrapBackoffMax)
	}
	return nil
}

// ParseBootstrap parses bootstrap multiaddrs (each must end in /p2p/PEER_ID),
// merging addresses of the same peer.
func ParseBootstrap(ss []string) ([]peer.AddrInfo, error) {
	var addrs []ma.Multiaddr
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w", s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf("bootstrap address %q: must end in /p2p/PEER_ID: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap addresses: %w", err)
	}
	return infos, nil
}

// ParseListen parses listen multiaddrs.
func ParseListen(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}
