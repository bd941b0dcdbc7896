// Package coord owns network coordinates: a point for each node such that
// the distance between two points estimates the RTT between the two
// nodes, so a node can rank a member it never measured. It is Vivaldi
// (Dabek et al., SIGCOMM 2004) with the refinements of Serf's coordinate
// package: a Euclidean vector plus a height (the node's access link,
// which every path to it crosses), an error estimate that weighs each
// update, an adjustment term that absorbs what the Euclidean space cannot
// (Lee et al., 2010), a weak gravity towards the origin that keeps the
// whole system from drifting (Ledlie et al., NSDI 2007), and a filter of
// each peer's recent RTT samples.
//
// A Client keeps one node's coordinate: Update moves it by one RTT sample
// to a peer whose coordinate it knows, DistanceTo estimates the RTT to any
// coordinate. Coordinates travel between nodes (p2pshare puts them in
// membership heartbeats); Validate checks one received from the wire
// before anything uses it. Units are milliseconds. The package is pure:
// no network, no clock, randomness injected through Config.
package coord
