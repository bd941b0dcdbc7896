// Package catalog is the vocabulary of the network's catalog that both
// sides of it speak: the rule for the names of files (ValidateName), which
// share applies when a user shares or gets a file and gossip/kv when a
// name record is written or received, by gossip, by anti-entropy or from
// the DHT; and a holder of a file (Holder), which gossip/kv records and
// share counts. It imports nothing of the project, so share and gossip/kv
// reach the same definitions without importing each other.
package catalog

import "github.com/libp2p/go-libp2p/core/peer"

// Holder is one peer holding a file, in custody for another peer (that
// left the network) when CustodyFor is set.
type Holder struct {
	Peer       peer.ID
	CustodyFor peer.ID
}
