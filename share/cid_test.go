package share

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
)

func TestComputeCIDMatchesSHA256(t *testing.T) {
	data := []byte("hello\n")
	sum := sha256.Sum256(data)
	// `printf 'hello\n' | sha256sum`
	if got := hex.EncodeToString(sum[:]); got != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Fatalf("sha256(hello\\n) = %s", got)
	}
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	want := cid.NewCidV1(cid.Raw, m)
	got := ComputeCID(data)
	if !got.Equals(want) {
		t.Fatalf("ComputeCID(hello\\n) = %s, want %s", got, want)
	}
	if !bytes.Equal(digestOf(got), sum[:]) {
		t.Errorf("digestOf = %x, want %x", digestOf(got), sum)
	}
	// The string form is base32 CIDv1 ("bafk..." for raw sha2-256).
	if s := got.String(); len(s) != 59 || s[:4] != "bafk" {
		t.Errorf("String() = %q, want a 59-character bafk... CID", s)
	}
	if got.Equals(ComputeCID([]byte("hello"))) {
		t.Error("different bytes gave the same CID")
	}
}

func TestParseCID(t *testing.T) {
	c := ComputeCID([]byte("parse me"))
	good := []string{
		c.String(),
		c.Encode(multibase.MustNewEncoder(multibase.Base58BTC)), // same CID, other base
		c.Encode(multibase.MustNewEncoder(multibase.Base36)),
	}
	for _, s := range good {
		got, err := ParseCID(s)
		if err != nil {
			t.Errorf("ParseCID(%q): %v", s, err)
			continue
		}
		if !got.Equals(c) {
			t.Errorf("ParseCID(%q) = %s, want %s", s, got, c)
		}
	}

	m512, err := mh.Sum([]byte("x"), mh.SHA2_512, -1)
	if err != nil {
		t.Fatal(err)
	}
	mID, err := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"",
		"garbage",
		"bafk",
		c.String()[:len(c.String())-1], // truncated
		c.String() + "a",
		"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", // CIDv0
		cid.NewCidV0(c.Hash()).String(),
		cid.NewCidV1(cid.DagProtobuf, c.Hash()).String(), // dag-pb CIDv1
		cid.NewCidV1(cid.DagCBOR, c.Hash()).String(),
		cid.NewCidV1(cid.Raw, m512).String(),
		cid.NewCidV1(cid.Raw, mID).String(),
	} {
		if got, err := ParseCID(s); !errors.Is(err, ErrBadCID) {
			t.Errorf("ParseCID(%q) = %s, %v; want ErrBadCID", s, got, err)
		}
	}
}

func TestCheckCIDUndef(t *testing.T) {
	if err := checkCID(cid.Undef); !errors.Is(err, ErrBadCID) {
		t.Errorf("checkCID(Undef) = %v, want ErrBadCID", err)
	}
	if err := checkCID(ComputeCID(nil)); err != nil {
		t.Errorf("checkCID(ComputeCID(nil)) = %v", err)
	}
}
