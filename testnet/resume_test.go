package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestE2EGetResumesAfterKill9 cuts a get through the command (the daemon
// streams, the command writes) by killing the getting daemon with SIGKILL
// mid-transfer; the next get of the same name continues from the offset the
// daemon had synced, and the bytes verify.
func TestE2EGetResumesAfterKill9(t *testing.T) {
	// One copy (R=1) and a slow server, so the transfer takes seconds.
	nw := startNetwork(t, 2, "--replicas", "1")
	server, getter := nw.Node(1), nw.Node(2)
	server.Stop(10 * time.Second)
	server.Args = []string{"--max-upload-rate", "8MiB/s"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := server.Start(ctx, getter.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	const size = 48 << 20
	content := make([]byte, size)
	rand.Read(content)
	src := writeFile(t, t.TempDir(), "big.bin", content)
	var sh shareOut
	if err := server.JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	target := filepath.Join(out, "big.bin")
	done := make(chan Result, 1)
	go func() { done <- getter.Run("get", "big.bin", "-o", target, "--stream") }()
	partial := filepath.Join(getter.Repo, "store", "partial")
	waitFor(t, 30*time.Second, "24 MiB of the file in the getter's partial store", func() (bool, string) {
		n := partialBytes(partial)
		return n >= 24<<20 && n < size, fmt.Sprintf("%d bytes", n)
	})
	getter.Kill()
	if r := <-done; r.Code == 0 {
		t.Fatal("the get succeeded although its daemon was killed")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("the cut get left %s in the output directory", ents[0].Name())
	}
	if err := getter.Start(ctx, server.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	if r := getter.Run("get", "big.bin", "-o", target, "--stream"); r.Code != 0 {
		t.Fatalf("get after the restart: exit %d: %s", r.Code, r.Stderr)
	}
	b, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(b, content) {
		t.Fatalf("the resumed file differs from the shared one (%v)", err)
	}
	logb, _ := os.ReadFile(getter.Log)
	m := regexp.MustCompile(`resuming get.*offset=(\d+)`).FindSubmatch(logb)
	if m == nil {
		t.Fatalf("the getter's log does not say it resumed:\n%s", getter.LogTail(20))
	}
	if off, _ := strconv.ParseInt(string(m[1]), 10, 64); off <= 0 || off >= size {
		t.Fatalf("resumed at offset %d, want a checkpoint inside the file", off)
	}
	if n := partialBytes(partial); n != 0 {
		t.Fatalf("the partial store keeps %d bytes after the get completed", n)
	}
}
