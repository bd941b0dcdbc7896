package testnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkGet measures `p2pshare get` of a random file between two daemon
// processes on loopback, through the CLI, end to end: name resolution,
// provider lookup, the transfer, hashing and the write. Sizes can be chosen
// with P2PSHARE_BENCH_SIZES (bytes, comma separated); the default is 256 MiB.
//
//	go test -run '^$' -bench BenchmarkGet -benchtime 5x ./testnet/
func BenchmarkGet(b *testing.B) {
	sizes := []int64{256 << 20}
	if s := os.Getenv("P2PSHARE_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			var n int64
			fmt.Sscan(f, &n)
			sizes = append(sizes, n)
		}
	}
	nw := New(bin, b.TempDir())
	defer nw.Down()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nw.Up(ctx, 2); err != nil {
		b.Fatal(err)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			dir := b.TempDir()
			src := filepath.Join(dir, "src.bin")
			f, err := os.Create(src)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyN(f, rand.Reader, size); err != nil {
				b.Fatal(err)
			}
			f.Close()
			name := fmt.Sprintf("bench-%d.bin", size)
			if r := nw.Node(1).Run("share", src, "--name", name); r.Code != 0 {
				b.Fatal(r.Stderr)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
				if r := nw.Node(2).Run("get", name, "-o", out); r.Code != 0 {
					b.Fatal(r.Stderr)
				}
				b.StopTimer()
				os.Remove(out)
				b.StartTimer()
			}
		})
	}
}
