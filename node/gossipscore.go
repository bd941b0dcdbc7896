package node

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GossipSub's peer score, here, is its application-specific part (P5)
// alone: rttScoreWeight · rttScore(the peer's measured RTT), so nearer
// peers score higher. The mesh uses it where it grows past Dhi (peers
// graft onto a node as it grafts onto others): it keeps the Dscore
// best-scoring peers, the nearest, and picks the rest at random, among
// them far ones, so a site is never cut off from the others. A mesh that
// never grows past Dhi keeps its first, random picks: the score shapes
// the mesh, it does not choose it.
//
// GossipSub's opportunistic grafting is off (its threshold is 0, under
// every RTT score): grafting only peers nearer than the mesh's median,
// once a minute, drew every mesh of a site into the site, and news
// crossed between sites only by gossip, at the next heartbeat (writes
// reached the other sites of the emulated internet up to 0.9 s late; see
// BENCHMARKS.md, News across sites).
//
// The score is never negative, so it can never push a peer below a
// threshold, and never above rttScoreWeight, so it can lift a peer that
// GossipSub's penalties would push under a threshold by that much at
// most: the thresholds sit ten and more times lower. p2pshare's networks are of admitted, trusted nodes, and
// GossipSub's other components (time in mesh, deliveries, IP colocation,
// behaviour penalties) are left out; IP colocation in particular would
// penalise every node of a testnet on 127.0.0.1.
const (
	// rttScoreRef is the RTT that scores one half: a peer much nearer
	// scores about 1, a peer 3 times as far about 1/4.
	rttScoreRef = 20 * time.Millisecond
	// rttScoreWeight is the weight of the RTT score: small against the
	// thresholds below.
	rttScoreWeight = 1.0
)

// rttScore maps an RTT to (0, 1], higher for nearer peers: rttScoreRef /
// (rttScoreRef + rtt). An unmeasured peer (rtt 0) scores as one at
// rttScoreRef: neither preferred nor avoided.
func rttScore(rtt time.Duration) float64 {
	if rtt <= 0 {
		rtt = rttScoreRef
	}
	return float64(rttScoreRef) / float64(rttScoreRef+rtt)
}

// peerScore is the peer scoring of the node's GossipSub, given the
// measured RTT of a peer (0 if unmeasured). rtt is called from
// GossipSub's event loop, often: it must be quick and must not call into
// GossipSub.
func peerScore(rtt func(peer.ID) time.Duration) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		AppSpecificScore:  func(p peer.ID) float64 { return rttScore(rtt(p)) },
		AppSpecificWeight: rttScoreWeight,
		// No counter is weighted, so their decay changes no score: a
		// long interval spares an idle daemon a wake-up a second.
		DecayInterval: time.Minute,
		DecayToZero:   pubsub.DefaultDecayToZero,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:   -10,
		PublishThreshold:  -50,
		GraylistThreshold: -80,
		// Out of the RTT score's reach: peer exchange is off anyway.
		AcceptPXThreshold: 10 * rttScoreWeight,
		// No mesh's median score is below 0: no opportunistic grafting.
		OpportunisticGraftThreshold: 0,
	}
	return params, thresholds
}
