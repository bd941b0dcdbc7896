package share

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// stubDirectory is a catalog that knows the holders of every file.
type stubDirectory struct{ holdings []Holding }

func (d stubDirectory) LookupName(string) (Resolved, bool)           { return Resolved{}, false }
func (d stubDirectory) Holdings(cid.Cid) []Holding                   { return d.holdings }
func (d stubDirectory) Hold(context.Context, cid.Cid, peer.ID) error { return nil }
func (d stubDirectory) Unhold(context.Context, cid.Cid) error        { return nil }

// stubCluster is a network whose live members are its elements.
type stubCluster []Peer

func (c stubCluster) Live() []Peer      { return c }
func (c stubCluster) Down(peer.ID) bool { return false }

// Replicate reports the copies that already stand, not only those it made:
// the repair loop may copy a file between its store and the share's own
// Replicate call, and a share that then said "no replicas" would be wrong.
func TestReplicateReportsCopiesAlreadyMade(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	st, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(h, nil, st, Config{Replicas: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	holder, _ := peer.IDFromPrivateKey(key)
	s.SetDirectory(stubDirectory{holdings: []Holding{{Peer: h.ID()}, {Peer: holder}}})
	s.StartReplication(stubCluster{{ID: holder, RTT: time.Millisecond}})
	sum := sha256.Sum256([]byte("a file the repair loop already copied"))
	got, err := s.Replicate(context.Background(), cidFromDigest(sum[:]), 37)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != holder {
		t.Fatalf("Replicate = %v, want the holder that has the copy, %s", got, holder)
	}
}
