package share

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A share records its name in the Directory, keeps it with the time the
// Directory (the catalog, on the node's clock) gave the record, and
// answers a resolve of that name from it.
func TestShareRecordsTheNameInTheDirectory(t *testing.T) {
	at := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)
	nodes := startRepNodesCfg(t, 1, Config{Replicas: 1}, nil)
	nodes[0].dir.now = func() time.Time { return at }
	res, err := nodes[0].s.Share(context.Background(), strings.NewReader("stamped"), "stamped.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Time.Equal(at) {
		t.Fatalf("share result dated %s, want the record's time %s", res.Time, at)
	}
	if names := nodes[0].s.Store().Names(); len(names) != 1 || !names[0].Time.Equal(at) {
		t.Fatalf("the store keeps published names %v, want one dated %s", names, at)
	}
	got, err := nodes[0].s.Resolve(context.Background(), "stamped.txt")
	if err != nil || !got.CID.Equals(res.CID) || got.Size != res.Size || got.Publisher != nodes[0].h.ID() || !got.Time.Equal(at) {
		t.Fatalf("Resolve = %+v, %v; want %s of %d bytes published by this node at %s", got, err, res.CID, res.Size, at)
	}
}
