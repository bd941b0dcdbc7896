//go:build linux

package share

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	routinghelpers "github.com/libp2p/go-libp2p-routing-helpers"

	"github.com/p2pshare/p2pshare/catalog"
)

// smallDisk mounts a tmpfs of size bytes on a new directory, for a full
// disk that is real; it skips t where mounting is not allowed.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): no full disk to test with", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// A get whose output disk fills up says so, as this node's problem, and
// does not blame (or go on to) the providers.
func TestGetOntoAFullDiskIsThisNodesProblem(t *testing.T) {
	full := smallDisk(t, "1m")
	nodes := startRepNodes(t, 2)
	a, b := nodes[0], nodes[1]
	c, _ := putHeld(t, b, string(randomBytes(t, 3<<20)))
	a.dir.mu.Lock()
	a.dir.hs[c] = []catalog.Holder{{Peer: b.h.ID()}}
	a.dir.mu.Unlock()
	root, err := os.OpenRoot(full)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = a.s.Get(context.Background(), c.String(), root, "out", nil)
	if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrNoProviders) {
		t.Fatalf("get onto a full disk: %v; want ErrNoSpace, not a provider's failure", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "no space left on this node's disk ("+full+"): free space and retry") {
		t.Fatalf("message %q does not say what to do", msg)
	}
	if a.s.penalties.has(b.h.ID(), time.Now()) {
		t.Fatal("the provider was blamed for this node's full disk")
	}
	if ents, _ := os.ReadDir(full); len(ents) != 0 {
		t.Fatalf("left behind on the full disk: %v", ents)
	}
}

// A node asked to hold a copy its disk cannot take answers so, and the
// asker reports it as the target's full disk.
func TestReplicaOntoAFullDiskIsRefused(t *testing.T) {
	full := smallDisk(t, "2m")
	nodes := startRepNodes(t, 1)
	a := nodes[0]
	c, size := putHeld(t, a, string(randomBytes(t, 3<<20)))

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(full, nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Directory: newMemDirectory(h.ID()), Cluster: &varCluster{}}
	s, err := New(h, routinghelpers.Null{}, st, deps, Config{ReplicationDelay: time.Hour, ReplicationInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); st.Close(); h.Close() })
	a.h.Peerstore().AddAddrs(h.ID(), h.Addrs(), time.Hour)

	_, err = a.s.pushTo(context.Background(), h.ID(), c, size, "")
	if err == nil || !strings.Contains(err.Error(), "no space left on the disk of "+h.ID().String()) {
		t.Fatalf("push onto a full disk: %v; want the target's full disk", err)
	}
	if _, ok := st.Has(c); ok {
		t.Fatal("a partial copy is held")
	}
}
