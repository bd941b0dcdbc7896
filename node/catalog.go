package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/p2pshare/p2pshare/catalog"
	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/share"
)

// catalogDirectory lets share resolve, publish and republish names and
// find holders in the catalog that gossip/kv keeps: a name's one record
// is the catalog's, with its copy in the DHT.
type catalogDirectory struct{ s *kv.Store }

func resolvedOf(e kv.Entry) (share.Resolved, bool) {
	c, err := cid.Decode(e.CID)
	if err != nil {
		return share.Resolved{}, false
	}
	return share.Resolved{Name: e.Name, CID: c, Size: e.Size, Publisher: e.Publisher, Time: e.Time}, true
}

func (d catalogDirectory) LookupName(name string) (share.Resolved, bool) {
	e, ok := d.s.Lookup(name)
	if !ok {
		return share.Resolved{}, false
	}
	return resolvedOf(e)
}

func (d catalogDirectory) FindName(ctx context.Context, name string) (share.Resolved, error) {
	e, err := d.s.FindName(ctx, name)
	if errors.Is(err, kv.ErrNotFound) {
		return share.Resolved{}, fmt.Errorf("%w: %v", share.ErrNotFound, err)
	}
	if err != nil {
		return share.Resolved{}, err
	}
	r, ok := resolvedOf(e)
	if !ok {
		return share.Resolved{}, fmt.Errorf("name %q: %w (its record names no valid CID)", name, share.ErrNotFound)
	}
	return r, nil
}

func (d catalogDirectory) PublishName(ctx context.Context, name string, c cid.Cid, size int64) (time.Time, error) {
	return d.s.PublishName(ctx, name, c, size, time.Time{})
}

func (d catalogDirectory) RepublishNames(ctx context.Context) (n, failed int) {
	return d.s.RepublishNames(ctx)
}

func (d catalogDirectory) Holdings(c cid.Cid) []catalog.Holder { return d.s.Holders(c.String()) }

func (d catalogDirectory) Publishers(c cid.Cid) []peer.ID { return d.s.Publishers(c.String()) }

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
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	for _, pn := range n.store.Names() {
		if _, err := n.kv.PublishName(ctx, pn.Name, pn.CID, pn.Size, pn.Time); err != nil && ctx.Err() == nil {
			n.log.Warn("announce name in the catalog", "name", pn.Name, "err", err)
		}
	}
	for _, h := range n.store.List() {
		if err := n.kv.PublishHolding(ctx, h.CID, ""); err != nil && ctx.Err() == nil {
			n.log.Warn("announce holding in the catalog", "cid", h.CID, "err", err)
		}
	}
}

// restoreNames puts back into a rebuilt store metadata the names this node
// published, from the catalog, so that they are announced again at every
// start.
func (n *Node) restoreNames() {
	self := n.host.ID()
	restored := 0
	for _, e := range n.kv.Catalog("") {
		c, err := cid.Decode(e.CID)
		if e.Publisher != self || err != nil {
			continue
		}
		if _, held := n.store.Has(c); !held {
			continue
		}
		if err := n.store.PutName(share.PublishedName{Name: e.Name, CID: c, Size: e.Size, Time: e.Time}); err != nil {
			n.log.Warn("restore a published name", "name", e.Name, "err", err)
			continue
		}
		restored++
	}
	n.log.Info("restored the names this node published from the catalog", "names", restored)
}

// KV returns the node's key-value store and catalog.
func (n *Node) KV() *kv.Store { return n.kv }

// memberAddrInfo is p with the addresses its last heartbeat announced, if
// it is in m's members table.
func memberAddrInfo(m *gossip.Membership, p peer.ID) peer.AddrInfo {
	if mb, ok := m.Member(p); ok {
		return mb.AddrInfo()
	}
	return peer.AddrInfo{ID: p}
}

// membershipCluster lets share's replication see who is up, and measure
// RTTs before it ranks peers by them (or estimate them: see nearness).
type membershipCluster struct {
	m *gossip.Membership
	n *Node
}

func (c membershipCluster) Live() []share.Peer {
	var out []share.Peer
	c.m.Each(func(m gossip.Member) {
		if m.State == gossip.StateAlive || m.State == gossip.StateSuspect {
			out = append(out, share.Peer{ID: m.ID, RTT: c.n.near.rankRTT(m.ID, m.Coord), Free: m.FreeBytes})
		}
	})
	return out
}

func (c membershipCluster) Measure(ctx context.Context, ps []peer.ID) { c.n.measure(ctx, ps) }

func (c membershipCluster) RTT(p peer.ID) time.Duration {
	m, _ := c.m.Member(p) // a peer that is no member has no coordinate
	return c.n.near.rankRTT(p, m.Coord)
}

func (c membershipCluster) Down(p peer.ID) bool {
	m, ok := c.m.Member(p)
	return ok && (m.State == gossip.StateDead || m.State == gossip.StateLeft)
}

// watchMembers asks share for a replication check on every membership
// change (a death to repair, a return to give files back to) and drops
// dead and departed members from the DHT's routing table.
//
// A member heard again has its swarm dial backoff cleared, and one back
// from the dead (the other side of a healed partition, say) also gets an
// anti-entropy exchange at once from its neighbours on the members' ring
// (gossip.Membership.Neighbour): what each side wrote while apart reached
// only its own side, and gossip does not send it again. One exchange per
// rejoinInterval is enough, as the nodes of each side already agree among
// themselves; the periodic exchange with a random peer alone would take
// several SyncIntervals to spread it. Only the returned member's 2k
// neighbours exchange with it, not every node: in a network of hundreds,
// every node dialling a member that was wrongly declared dead for a moment
// (a busy machine) would bury it in connections, which the connection
// manager then trims, which sends both sides to re-check each other. The
// nodes of a side that are not its neighbours get its writes from the
// periodic exchange.
func (n *Node) watchMembers(events <-chan gossip.Event) {
	dead := map[peer.ID]bool{}
	var lastSync time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			switch e.Kind {
			case gossip.EventDead, gossip.EventLeft:
				// The DHT would keep querying a gone peer and wait out its
				// dial timeout (seconds) on every lookup, provide and put.
				n.dht.RoutingTable().RemovePeer(e.Peer)
				dead[e.Peer] = e.Kind == gossip.EventDead
			case gossip.EventAliveAgain, gossip.EventRejoined:
				// Its heartbeats arrive again: the swarm's dial backoff
				// from failed dials while it was silent (minutes after a
				// long cut) would make every get and push to it fail.
				if sw, ok := n.host.Network().(*swarm.Swarm); ok {
					sw.Backoff().Clear(e.Peer)
				}
				if dead[e.Peer] && n.memb.Neighbour(e.Peer) && time.Since(lastSync) >= rejoinInterval {
					lastSync = time.Now()
					p := e.Peer
					n.bg.Go(func(context.Context) { n.syncWithReturned(p) })
				}
				delete(dead, e.Peer)
			}
			n.share.KickReplication()
		}
	}
}

// syncWithReturned runs one anti-entropy exchange with a member back from
// the dead, trying up to three times, a second apart; if all fail, the
// periodic exchange will do it later.
func (n *Node) syncWithReturned(p peer.ID) {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		var err error
		if n.host.Network().Connectedness(p) != network.Connected {
			// The failed dials of a cut may have put p in the swarm's
			// dial backoff.
			err = n.host.Connect(network.WithForceDirectDial(ctx, "anti-entropy with a returned member"), memberAddrInfo(n.memb, p))
		}
		var st kv.SyncStats
		if err == nil {
			st, err = n.kv.SyncWith(ctx, p)
		}
		cancel()
		if err == nil {
			n.log.Info("anti-entropy with a returned member", "peer", p, "received", st.Received, "applied", st.Applied)
			return
		}
		if try == 3 {
			n.log.Info("anti-entropy with a returned member failed; left to the periodic exchange", "peer", p, "err", err)
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// catalogPushTimeout bounds pushCatalog.
const catalogPushTimeout = 2 * time.Second

// pushCatalog runs an anti-entropy exchange with every connected peer at once,
// so that when share returns every reachable node's catalog already holds
// the new name: a get anywhere then resolves it from the catalog, without
// asking the DHT whether a newer record exists. Only the digest bucket of
// the new records differs, so each exchange is small. A member that cannot
// be reached in time learns the name by gossip and anti-entropy later.
func (n *Node) pushCatalog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, catalogPushTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range n.host.Network().Peers() {
		wg.Add(1)
		go func(p peer.ID) {
			defer wg.Done()
			if _, err := n.kv.SyncWith(ctx, p); err != nil {
				n.log.Debug("push catalog", "peer", p, "err", err)
			}
		}(p)
	}
	wg.Wait()
}

// oldNameDHTNamespace is the DHT namespace where nodes of earlier releases
// put a second, differently signed record of each name. A name's one
// record is the catalog's (its DHT copy is under kv.DHTNamespace); nodes
// of those releases still learn and spread names through the catalog.
const oldNameDHTNamespace = "p2pshare-name"

// oldNameValidator refuses every record of oldNameDHTNamespace, so this
// node neither stores nor serves them, and says so in the log at most once
// a minute (a node of an earlier release puts its names at every
// reprovide).
type oldNameValidator struct {
	log    *slog.Logger
	logged atomic.Int64 // unix nanoseconds of the last log line
}

var errOldNameRecord = errors.New("p2pshare: name record of an earlier release refused: names travel as catalog records (under /" + kv.DHTNamespace + "/name/ in the DHT); upgrade the node that put it")

// Validate implements record.Validator: it refuses the record.
func (v *oldNameValidator) Validate(key string, _ []byte) error {
	now := time.Now().UnixNano()
	if last := v.logged.Load(); now-last >= int64(time.Minute) && v.logged.CompareAndSwap(last, now) {
		v.log.Info("refused a DHT name record of an earlier release; names travel as catalog records", "key", key)
	}
	return errOldNameRecord
}

// Select implements record.Validator: no record of the namespace is valid.
func (v *oldNameValidator) Select(string, [][]byte) (int, error) { return 0, errOldNameRecord }
