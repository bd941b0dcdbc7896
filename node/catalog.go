package node

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/share"
)

// catalogDirectory lets share resolve names and find holders in the
// catalog that gossip/kv keeps.
type catalogDirectory struct{ s *kv.Store }

func (d catalogDirectory) LookupName(name string) (share.Resolved, bool) {
	e, ok := d.s.Lookup(name)
	if !ok {
		return share.Resolved{}, false
	}
	c, err := cid.Decode(e.CID)
	if err != nil {
		return share.Resolved{}, false
	}
	return share.Resolved{Name: e.Name, CID: c, Size: e.Size, Publisher: e.Publisher, Time: e.Time}, true
}

func (d catalogDirectory) Holdings(c cid.Cid) []share.Holding {
	hs := d.s.Holders(c.String())
	out := make([]share.Holding, len(hs))
	for i, h := range hs {
		out[i] = share.Holding{Peer: h.Peer, CustodyFor: h.CustodyFor}
	}
	return out
}

func (d catalogDirectory) Hold(ctx context.Context, c cid.Cid, custodyFor peer.ID) error {
	return d.s.PublishHolding(ctx, c, custodyFor)
}

func (d catalogDirectory) Unhold(ctx context.Context, c cid.Cid) error {
	return d.s.DropHolding(ctx, c)
}

// announceCatalog puts this node's names and holdings in the catalog at
// start, so a catalog that lost them (or a node that shared before the
// catalog existed) has them again. Names keep their original record time,
// so a later publish of the same name by another node still wins.
func (n *Node) announceCatalog() {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	for _, rec := range n.store.Names() {
		if err := n.kv.PublishName(ctx, rec.Name, rec.CID, rec.Size, rec.Time); err != nil && ctx.Err() == nil {
			n.log.Warn("announce name in the catalog", "name", rec.Name, "err", err)
		}
	}
	for _, h := range n.store.List() {
		if err := n.kv.PublishHolding(ctx, h.CID, ""); err != nil && ctx.Err() == nil {
			n.log.Warn("announce holding in the catalog", "cid", h.CID, "err", err)
		}
	}
}

// KV returns the node's key-value store and catalog.
func (n *Node) KV() *kv.Store { return n.kv }

// membershipCluster lets share's replication see who is up.
type membershipCluster struct{ m *gossip.Membership }

func (c membershipCluster) Live() []share.Peer {
	var out []share.Peer
	for _, m := range c.m.Members() {
		if !m.Self && (m.State == gossip.StateAlive || m.State == gossip.StateSuspect) {
			out = append(out, share.Peer{ID: m.ID, RTT: m.RTT})
		}
	}
	return out
}

// watchMembers asks share for a replication check on every membership
// change (a death to repair, a return to give files back to) and drops
// dead and departed members from the DHT's routing table.
func (n *Node) watchMembers(events <-chan gossip.Event) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if e.Kind == gossip.EventDead || e.Kind == gossip.EventLeft {
				// The DHT would keep querying a gone peer and wait out its
				// dial timeout (seconds) on every lookup, provide and put.
				n.dht.RoutingTable().RemovePeer(e.Peer)
			}
			n.share.KickReplication()
		}
	}
}
