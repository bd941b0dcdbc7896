package node

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

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
	return share.Resolved{Name: e.Name, CID: c, Size: e.Size, Publisher: e.Publisher}, true
}

func (d catalogDirectory) Holders(c cid.Cid) []peer.ID {
	hs := d.s.Holders(c.String())
	out := make([]peer.ID, len(hs))
	for i, h := range hs {
		out[i] = h.Peer
	}
	return out
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
