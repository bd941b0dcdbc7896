package share

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/catalog"
)

// A file moved between two real hosts under a byte rate takes at least
// its size over the rate, less the bucket's burst, whichever side is
// limited and whether it is a get or a copy to another node.
func TestTransfersKeepToTheRateLimit(t *testing.T) {
	const size, limit = 2 << 20, 1 << 20 // 2 MiB at 1 MiB/s: about 2 s each
	burst := int64(newBandwidth(limit).Burst())
	base := Config{Replicas: 2, ReplicationDelay: time.Hour, ReplicationInterval: time.Hour}
	up, down := base, base
	up.MaxUploadRate = limit
	down.MaxDownloadRate = limit
	for _, tc := range []struct {
		name string
		cfg  Config
		copy bool // b copies the file to a (replication) instead of a getting it
	}{
		{"get, the server's upload limited", up, false},
		{"get, the getter's download limited", down, false},
		{"replica, the sender's upload limited", up, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := startRepNodesCfg(t, 2, tc.cfg, nil)
			a, b := nodes[0], nodes[1]
			c, n := putHeld(t, b, string(randomBytes(t, size)))
			a.dir.mu.Lock()
			a.dir.hs[c] = []catalog.Holder{{Peer: b.h.ID()}}
			a.dir.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			if tc.copy {
				if _, err := b.s.pushTo(ctx, a.h.ID(), c, n, ""); err != nil {
					t.Fatalf("copy to a: %v", err)
				}
			} else {
				root, err := os.OpenRoot(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				if _, err := a.s.Get(ctx, c.String(), root, "out", nil); err != nil {
					t.Fatalf("get: %v", err)
				}
			}
			took := time.Since(start)
			floor := time.Duration(float64(n-burst) / limit * float64(time.Second))
			t.Logf("%d bytes at a limit of %d B/s in %s (%.0f B/s); floor %s", n, limit, took.Round(time.Millisecond), float64(n)/took.Seconds(), floor)
			if took < floor {
				t.Fatalf("%d bytes under a %d B/s limit took %s, less than the %s the limit allows", n, limit, took, floor)
			}
			if ceiling := 10*floor + 10*time.Second; took > ceiling {
				t.Fatalf("took %s, more than %s: the limit stalls transfers", took, ceiling)
			}
		})
	}
}
