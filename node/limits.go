package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/share"
)

// perPeerStreams caps, for each of p2pshare's own protocols, the streams
// one peer may hold open with this node at once (inbound and in all), on
// top of libp2p's defaults for its own services and the system-wide
// limits. A peer past its cap has its new streams refused; the share
// service also answers "busy" past MaxServesPerPeer.
var perPeerStreams = map[protocol.ID]int{
	share.ProtocolID:        16,
	share.ReplicateProtocol: 4,
	kv.SyncProtocol:         2,
	admit.Protocol:          2,
	// One long-lived stream each way; a replaced one may linger a moment.
	gossip.SwimStreamProtocol: 4,
}

// newResourceManager returns libp2p's resource manager with limits sized
// for this machine (libp2p's scaling defaults: 1/8 of the memory and half
// the file descriptors, split across system, transient, services,
// protocols and peers) plus p2pshare's per-peer protocol caps. Its
// Prometheus metrics (libp2p_rcmgr_*) are off: they are fed by a trace of
// every reservation, which formats a timestamp for each stream opened and
// each buffer released, and that cost an idle daemon of a 50-node
// network 7 % of its CPU and a share of its garbage.
func newResourceManager() (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for p, n := range perPeerStreams {
		limits.AddProtocolPeerLimit(p, rcmgr.BaseLimit{StreamsInbound: n, StreamsOutbound: n, Streams: 2 * n, Memory: 64 << 20}, rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
