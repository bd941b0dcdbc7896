package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/node/api"
)

// checkKVRecord is the KV store's extra check: a revocation must be signed
// by this network's authority, stored under the revoked peer's ID, and is
// never deleted.
func (n *Node) checkKVRecord(r *kv.Record) error {
	if r.NS != kv.NSRevoke {
		return nil
	}
	if n.gate == nil || n.cfg.Admission.Authority == nil {
		return errors.New("revocation: this node has no network authority")
	}
	if r.Deleted {
		return errors.New("revocation: revocations cannot be deleted")
	}
	rev, err := admit.DecodeRevocation(r.Value)
	if err != nil {
		return err
	}
	if rev.Peer.String() != r.Key {
		return fmt.Errorf("revocation of %s stored under %q", rev.Peer, r.Key)
	}
	return admit.VerifyRevocation(n.cfg.Admission.Authority, rev)
}

// revocationLoop applies the revocations the KV store holds to the gate:
// at start, and whenever the store signals revoked (a revocation kept,
// written here or arrived by gossip or anti-entropy), until ctx ends or
// the store closes revoked.
func (n *Node) revocationLoop(ctx context.Context, revoked <-chan struct{}) {
	seen := map[string]bool{}
	for {
		for _, r := range n.kv.List(kv.NSRevoke, "") {
			if seen[r.Key] {
				continue
			}
			seen[r.Key] = true
			if rev, err := admit.DecodeRevocation(r.Value); err == nil {
				if err := n.gate.Revoke(rev); err != nil {
					n.log.Warn("revocation", "peer", r.Key, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-revoked:
			if !ok {
				return
			}
		}
	}
}

// Revoke implements api.API: the revocation, signed by the authority, is
// applied here and spread to every node (kept in the KV store, so late
// joiners learn it too).
func (c *CoreAPI) Revoke(ctx context.Context, b []byte) (api.RevokeResult, error) {
	n := c.n
	if n.gate == nil || n.cfg.Admission.Authority == nil {
		return api.RevokeResult{}, api.Errorf(api.ErrBadInput, "revoke: this node runs without a network authority (start it with --authority)")
	}
	rev, err := admit.DecodeRevocation(b)
	if err == nil {
		err = admit.VerifyRevocation(n.cfg.Admission.Authority, rev)
	}
	if err != nil {
		return api.RevokeResult{}, api.Errorf(api.ErrBadInput, "revoke: %v", err)
	}
	if _, err := n.kv.Put(ctx, kv.NSRevoke, rev.Peer.String(), b, 0); err != nil {
		return api.RevokeResult{}, api.Errorf(nil, "revoke %s: %v", rev.Peer, err)
	}
	if err := n.gate.Revoke(rev); err != nil {
		return api.RevokeResult{}, err
	}
	return api.RevokeResult{Peer: rev.Peer.String(), Self: rev.Peer == n.host.ID()}, nil
}

// Gate returns the admission gate, nil in an open network.
func (n *Node) Gate() *admit.Gate { return n.gate }
