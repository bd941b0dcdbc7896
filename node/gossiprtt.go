//go:build !nogossiprtt

package node

// gossipRTTScore turns on GossipSub's peer score from measured RTT (see
// peerScore). Benchmarks build a daemon without it (-tags nogossiprtt) to
// compare how fast news spreads across sites with and without it.
const gossipRTTScore = true
