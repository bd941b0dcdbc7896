package share

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// recentCopyTTL is how long this node counts a copy it saw made before the
// catalog lists it. Gossip brings the holder's own record within a second
// or two; a minute covers a slow network, and is short enough that a copy
// dropped since (a custody copy given back) is soon forgotten.
const recentCopyTTL = time.Minute

// recentCopies remembers the copies this node saw made: the peers that
// answered one of its pushes with a verified, stored copy, and those that
// pushed it a copy from their own (see noteAskerHolds). The catalog
// learns of a copy by gossip from its holder, so a node that shares a file
// and leaves, or repairs, at once would otherwise not count the copy it
// just made, and would copy the file again.
type recentCopies struct {
	mu sync.Mutex
	m  map[cid.Cid]map[peer.ID]recentCopy
}

type recentCopy struct {
	custodyFor peer.ID
	at         time.Time
}

// add records that p holds c (in custody for custodyFor, if set), and
// forgets every copy older than recentCopyTTL. Pushes are rare next to
// merges (one per held file per replication check), so the sweep is here.
func (r *recentCopies) add(c cid.Cid, p, custodyFor peer.ID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rc := range r.m {
		r.expire(id, rc, now)
	}
	if r.m == nil {
		r.m = map[cid.Cid]map[peer.ID]recentCopy{}
	}
	if r.m[c] == nil {
		r.m[c] = map[peer.ID]recentCopy{}
	}
	r.m[c][p] = recentCopy{custodyFor: custodyFor, at: now}
}

// expire forgets the copies of c older than recentCopyTTL; r.mu is held.
func (r *recentCopies) expire(c cid.Cid, rc map[peer.ID]recentCopy, now time.Time) {
	for p, x := range rc {
		if now.Sub(x.at) > recentCopyTTL {
			delete(rc, p)
		}
	}
	if len(rc) == 0 {
		delete(r.m, c)
	}
}

// merge returns hs with the recent copies of c that hs does not list. It
// forgets c's copies older than recentCopyTTL, and those the catalog lists:
// from then on the catalog says whether the copy is still held.
func (r *recentCopies) merge(c cid.Cid, hs []catalog.Holder, now time.Time) []catalog.Holder {
	r.mu.Lock()
	defer r.mu.Unlock()
	rc := r.m[c]
	r.expire(c, rc, now)
	if len(rc) == 0 {
		return hs
	}
	listed := make(map[peer.ID]bool, len(hs))
	for _, h := range hs {
		listed[h.Peer] = true
	}
	for p, x := range rc {
		if listed[p] {
			delete(rc, p)
			continue
		}
		hs = append(hs, catalog.Holder{Peer: p, CustodyFor: x.custodyFor})
	}
	if len(rc) == 0 {
		delete(r.m, c)
	}
	return hs
}
