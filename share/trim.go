package share

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// A file can end with more than R live holders: two holders whose views of
// a burst of deaths differed each repaired it, or a node thought dead came
// back. Its holders trim the surplus themselves, under a rule that keeps R
// copies whatever each holder's view of the others:
//
//   - a publisher of the file (a node a name was shared on) keeps its copy,
//     and so does a custody holder (its copy goes by its give-back);
//   - any other holder x drops its copy only once R other holders, each a
//     publisher of the file or lower than x in peer ID, have each confirmed
//     directly that they hold it (a replicate request, answered once the
//     copy is stored).
//
// The lowest holder that drops was confirmed R holders that never drop:
// publishers, or holders lower than it, which do not drop either. And a
// file past R always has a holder that may drop: its highest non-publisher.
// The surplus must also have lasted a ReplicationInterval, so a view in
// the middle of a burst of changes trims nothing.

// surplusSeen is when each file was first seen, check after check, with
// more than R live holders. checkReplicas alone uses it.
type surplusSeen map[cid.Cid]time.Time

// trimRank orders holders for the trim: publishers first, then by peer ID.
func trimRank(publishers []peer.ID) func(a, b peer.ID) int {
	return func(a, b peer.ID) int {
		pa, pb := slices.Contains(publishers, a), slices.Contains(publishers, b)
		switch {
		case pa && !pb:
			return -1
		case pb && !pa:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
}

// published reports whether this node published a name for c, by its
// store's record of its names or by the catalog.
func (s *Service) published(c cid.Cid, publishers []peer.ID) bool {
	if slices.Contains(publishers, s.h.ID()) {
		return true
	}
	for _, n := range s.store.Names() {
		if n.CID == c {
			return true
		}
	}
	return false
}

// trimSurplus drops this node's copy of held if the rule above allows it:
// holdings is what the catalog says, live the live members. It reports
// whether the copy was dropped.
func (s *Service) trimSurplus(ctx context.Context, held Held, holdings []catalog.Holder, live map[peer.ID]Peer) bool {
	publishers := s.dir.Publishers(held.CID)
	self := s.h.ID()
	if s.published(held.CID, publishers) {
		return false
	}
	rank := trimRank(publishers)
	var below []peer.ID // the live holders that may stand for this copy, by rank
	for _, h := range holdings {
		if _, ok := live[h.Peer]; ok && h.Peer != self && h.CustodyFor == "" && rank(h.Peer, self) < 0 {
			below = append(below, h.Peer)
		}
	}
	if len(below) < s.cfg.Replicas {
		return false
	}
	slices.SortFunc(below, rank)
	confirmed := 0
	for _, p := range below {
		if confirmed == s.cfg.Replicas {
			break
		}
		if _, err := s.pushTo(ctx, p, held.CID, held.Size, ""); err != nil {
			if errors.Is(err, ErrHashMismatch) {
				return false // this node's copy was bad: quarantined already
			}
			s.log.Info("trim: a holder did not confirm its copy", "cid", held.CID, "holder", p, "err", err)
			continue
		}
		confirmed++
	}
	if confirmed < s.cfg.Replicas {
		return false
	}
	if err := s.dir.Unhold(ctx, held.CID); err != nil {
		s.log.Warn("trim: drop holding", "cid", held.CID, "err", err)
		return false
	}
	if err := s.store.Remove(held.CID); err != nil {
		s.log.Warn("trim: drop the surplus copy", "cid", held.CID, "err", err)
		return false
	}
	s.stats.Trimmed.Add(1)
	s.log.Info("trim: dropped a surplus copy, R other holders confirmed theirs", "cid", held.CID, "live_holders", len(holdings))
	return true
}
