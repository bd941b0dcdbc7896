package testnet

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// flipStoredByte flips one bit of the byte at off in d's stored copy of cid
// (REPO/store/blocks/CID), as a failing disk would.
func flipStoredByte(t *testing.T, d *Daemon, cid string, off int64) {
	t.Helper()
	p := filepath.Join(d.Repo, "store", "blocks", cid)
	b, err := os.ReadFile(p)
	if err != nil || off >= int64(len(b)) {
		t.Fatalf("read %s: %d bytes, %v", p, len(b), err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// storedIs reports whether d's stored copy of cid holds body.
func storedIs(d *Daemon, cid string, body []byte) bool {
	got, err := os.ReadFile(filepath.Join(d.Repo, "store", "blocks", cid))
	return err == nil && bytes.Equal(got, body)
}

// One flipped byte in a holder's stored copy is found (by the scrub, or by
// the holder's own get), the copy quarantined and replaced from the good
// holder; then the good holder is killed with kill -9 and another node
// still gets the file, verified.
func TestE2EBitRotRepairedAndSurvivesKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		find func(t *testing.T, rotten *Daemon, dir, name string, body []byte)
	}{
		{"scrub", []string{"--scrub-interval", "2s"}, func(t *testing.T, rotten *Daemon, _, _ string, _ []byte) {
			waitFor(t, 20*time.Second, "the scrub quarantines the rotten copy", func() (bool, string) {
				_, m := scrape(t, rotten, true)
				q := m["p2pshare_copies_quarantined_total"]
				return q >= 1, "quarantined " + ftoa(q)
			})
		}},
		{"own get", nil, func(t *testing.T, rotten *Daemon, dir, name string, body []byte) {
			var g getOut
			out := filepath.Join(dir, "own.bin")
			if err := rotten.JSON(&g, "get", name, "-o", out, "--json"); err != nil {
				t.Fatalf("the rotten holder's own get: %v", err)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, body) || g.Provider == rotten.ID {
				t.Fatalf("own get from %s: %d bytes, want the file from another holder", g.Provider, len(got))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := startNetwork(t, 4, tc.args...)
			waitAllAlive(t, nw, 20*time.Second)
			dir := t.TempDir()
			body := make([]byte, 3<<20+11)
			_, _ = rand.Read(body)
			rotten := nw.Node(2)
			var s shareOut
			if err := rotten.JSON(&s, "share", writeFile(t, dir, "disk.img", body), "--json"); err != nil {
				t.Fatal(err)
			}
			if len(s.Replicas) != 1 {
				t.Fatalf("share: replicas %v, want one", s.Replicas)
			}
			good := nw.byID(s.Replicas[0])
			flipStoredByte(t, rotten, s.CID, 2<<20)
			tc.find(t, rotten, dir, "disk.img", body)
			waitFor(t, 20*time.Second, "the rotten copy replaced by a good one, held again", func() (bool, string) {
				hs, state := liveHolders(nw.Node(1), "disk.img")
				return storedIs(rotten, s.CID, body) && slices.Contains(hs, rotten.ID), state
			})
			if _, m := scrape(t, rotten, true); m["p2pshare_copies_restored_total"] < 1 {
				t.Fatalf("copies_restored_total = %v", m["p2pshare_copies_restored_total"])
			}
			good.Kill()
			getter := nw.Node(3)
			if getter == good {
				getter = nw.Node(4)
			}
			var g getOut
			out := filepath.Join(dir, "after.bin")
			if err := getter.JSON(&g, "get", "disk.img", "-o", out, "--json"); err != nil {
				t.Fatalf("get after the good holder was killed: %v", err)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes from %s, not the file", len(got), g.Provider)
			}
		})
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
