package testnet

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Daemons run as a service would: JSON logs, a byte rate on uploads. A
// 2 MiB get from a node limited to 512 KiB/s takes at least its size over
// the limit, less the bucket's burst; every log line is a JSON object; the
// version is there without a daemon.
func TestE2EServiceFlags(t *testing.T) {
	const size, limit = 2 << 20, 512 << 10
	burst := limit / 10 // the bucket's: a tenth of a second of the limit
	nw := startNetwork(t, 2, "--replicas", "1", "--log-format", "json", "--max-upload-rate", "512KiB/s")
	dir := t.TempDir()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if r := nw.Node(1).Run("share", writeFile(t, dir, "big.bin", b)); r.Code != 0 {
		t.Fatalf("share: %s", r.Stderr)
	}
	out := filepath.Join(dir, "got.bin")
	start := time.Now()
	if r := nw.Node(2).Run("get", "big.bin", "-o", out); r.Code != 0 {
		t.Fatalf("get: %s", r.Stderr)
	}
	took := time.Since(start)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("got %d bytes (%v), want the %d shared", len(got), err, size)
	}
	floor := time.Duration(float64(size-burst) / float64(limit) * float64(time.Second))
	t.Logf("%d bytes from a node limited to %d B/s in %s; floor %s", size, limit, took.Round(time.Millisecond), floor)
	if took < floor {
		t.Fatalf("the get took %s, less than the %s a %d B/s upload limit allows", took, floor, limit)
	}
	if ceiling := 10*floor + 20*time.Second; took > ceiling {
		t.Fatalf("the get took %s, more than %s: the limit stalls transfers", took, ceiling)
	}

	f, err := os.Open(nw.Node(1).Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		if bytes.HasPrefix(sc.Bytes(), []byte("p2pshare daemon ready: ")) {
			continue // the ready line, on stdout, which the harness logs too
		}
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("log line %d is not a JSON log record: %q", lines+1, sc.Text())
		}
	}
	if lines == 0 {
		t.Fatal("the daemon logged nothing")
	}

	r := nw.RunCLI("version", "--json")
	var v struct{ Version, Commit, Go, OS, Arch string }
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &v) != nil || v.Version == "" || v.Go == "" {
		t.Fatalf("version --json: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
}
