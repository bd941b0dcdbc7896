package node

import (
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dhtTableTag is the tag go-libp2p-kad-dht protects the peers of its
// routing table's two widest buckets with (and tags the others with, at
// a value of 5).
const dhtTableTag = "kbucket"

// dhtTableValue is the connection manager's value of a peer the DHT would
// have protected: above the DHT's other peers (5), below a GossipSub mesh
// peer (20, and protected).
const dhtTableValue = 10

// boundedConns is the host's connection manager, with one change: the
// peers the DHT protects are valued instead of protected.
//
// The connection manager trims only when the connections it may close
// (neither protected nor in their grace period) outnumber its low
// watermark, and then down to that watermark: every protected peer comes
// on top of it. The DHT protects up to two buckets' worth (2·K) of
// peers, so with MaxPeers 32 a node of a 100-node network kept about 45
// connections, each with its goroutines and buffers. Valued, those peers
// are still the last the trim closes after the mesh's, the watchers' and
// the busy ones, and MaxPeers bounds the rest.
type boundedConns struct {
	connmgr.ConnManager
}

// Protect implements connmgr.ConnManager.
func (c boundedConns) Protect(p peer.ID, tag string) {
	if tag == dhtTableTag {
		c.ConnManager.TagPeer(p, tag, dhtTableValue)
		return
	}
	c.ConnManager.Protect(p, tag)
}

// Unprotect implements connmgr.ConnManager.
func (c boundedConns) Unprotect(p peer.ID, tag string) bool {
	if tag == dhtTableTag {
		c.ConnManager.UntagPeer(p, tag)
		return c.ConnManager.IsProtected(p, "")
	}
	return c.ConnManager.Unprotect(p, tag)
}
