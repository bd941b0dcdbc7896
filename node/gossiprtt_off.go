//go:build nogossiprtt

package node

// gossipRTTScore is off in a daemon built with -tags nogossiprtt: its
// GossipSub mesh is drawn at random, as before the RTT score. For
// benchmarks only (testnet/bench spread).
const gossipRTTScore = false
