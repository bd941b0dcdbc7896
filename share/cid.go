package share

import (
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// CIDs in p2pshare are CIDv1, raw codec, sha2-256 multihash over the whole
// file: anyone can compute a file's CID with sha256sum and a base32 encoder.

// newHasher returns the hash whose digest, through cidFromDigest, is a file's CID.
func newHasher() hash.Hash { return sha256.New() }

// cidFromDigest wraps a sha2-256 digest into a CIDv1 raw.
func cidFromDigest(d []byte) cid.Cid {
	m, err := mh.Encode(d, mh.SHA2_256)
	if err != nil {
		panic(err) // only on a wrong digest length: a programming error
	}
	return cid.NewCidV1(cid.Raw, m)
}

// ComputeCID returns the CID of b.
func ComputeCID(b []byte) cid.Cid {
	d := sha256.Sum256(b)
	return cidFromDigest(d[:])
}

// ParseCID parses s and checks that it is a CID this network can serve:
// version 1, raw codec, sha2-256.
func ParseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w %q: %v", ErrBadCID, s, err)
	}
	if err := checkCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// checkCID rejects CIDs that are not CIDv1 raw sha2-256.
func checkCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: empty", ErrBadCID)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != sha256.Size {
		return fmt.Errorf("%w %s: want CIDv1 raw sha2-256", ErrBadCID, c)
	}
	return nil
}

// digestOf returns the sha2-256 digest inside c (checked by checkCID).
func digestOf(c cid.Cid) []byte {
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return nil
	}
	return d.Digest
}
