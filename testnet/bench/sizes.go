package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
)

// SizePoint holds the gets of one file size, in MB/s (10^6 bytes).
type SizePoint struct {
	Size          int64     `json:"size"`
	MBps          []float64 `json:"MBps"`
	Seconds       []float64 `json:"seconds"`
	MedianMBps    float64   `json:"median_MBps"`
	MedianSeconds float64   `json:"median_seconds"`
}

// SizesResult holds the figures of sizes.
type SizesResult struct {
	Runs   int         `json:"runs"`
	Points []SizePoint `json:"points"`
}

// defaultSizes are the file sizes of sizes: 1 KiB to 256 MiB, ×16 apart.
const defaultSizes = "1KiB,16KiB,256KiB,4MiB,64MiB,256MiB"

// sizes measures get throughput against file size: for each size, a random
// file shared on node 1 of two daemons (R = 1, so node 2 holds no copy) is
// got through node 2's API, runs times; it reports the median.
func sizes(args []string) (SizesResult, error) {
	fs := flag.NewFlagSet("sizes", flag.ExitOnError)
	list := fs.String("sizes", defaultSizes, "file sizes, comma-separated (suffixes KiB, MiB, GiB or none)")
	runs := fs.Int("runs", 3, "gets of each size")
	fs.Parse(args)
	fig := SizesResult{Runs: *runs}
	if *runs < 1 {
		return fig, fmt.Errorf("bad -runs %d", *runs)
	}
	var ss []int64
	for _, f := range strings.Split(*list, ",") {
		n, err := parseSize(f)
		if err != nil {
			return fig, err
		}
		ss = append(ss, n)
	}
	nw, cleanup, err := upWith(2, "--replicas", "1")
	if err != nil {
		return fig, err
	}
	defer cleanup()
	dir := filepath.Dir(nw.Dir)
	c1, err := clientOf(nw.Node(1))
	if err != nil {
		return fig, err
	}
	c2, err := clientOf(nw.Node(2))
	if err != nil {
		return fig, err
	}
	fmt.Printf("%10s  %12s  %12s  %s\n", "size", "median", "MB/s", "runs (MB/s)")
	for _, size := range ss {
		name := fmt.Sprintf("size-%d.bin", size)
		src := filepath.Join(dir, name)
		if err := randomFile(src, size); err != nil {
			return fig, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		_, err := c1.Share(ctx, api.ShareRequest{Name: name, Path: src})
		cancel()
		if err != nil {
			return fig, fmt.Errorf("share %s: %w", name, err)
		}
		p := SizePoint{Size: size}
		var runsText []string
		for r := 0; r < *runs; r++ {
			dst := filepath.Join(dir, "get.out")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			start := time.Now()
			res, err := c2.Get(ctx, api.GetRequest{Ref: name, Path: dst})
			secs := time.Since(start).Seconds()
			cancel()
			if err != nil {
				return fig, fmt.Errorf("get %s: %w", name, err)
			}
			if res.Size != size {
				return fig, fmt.Errorf("get %s: %d bytes, want %d", name, res.Size, size)
			}
			os.Remove(dst)
			p.Seconds = append(p.Seconds, secs)
			p.MBps = append(p.MBps, float64(size)/1e6/secs)
			runsText = append(runsText, fmt.Sprintf("%.1f", p.MBps[r]))
		}
		os.Remove(src)
		p.MedianSeconds = median(p.Seconds)
		p.MedianMBps = median(p.MBps)
		fig.Points = append(fig.Points, p)
		fmt.Printf("%10s  %12s  %12.1f  %s\n", sizeName(size),
			time.Duration(p.MedianSeconds*float64(time.Second)).Round(10*time.Microsecond), p.MedianMBps, strings.Join(runsText, " "))
	}
	fmt.Printf("\nget through the API between 2 daemons (R=1), median of %d runs per size\n", *runs)
	return fig, nil
}

// parseSize reads 1024, 1KiB, 4MiB or 1GiB.
func parseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", orig)
	}
	return n * mult, nil
}

// sizeName writes size in the largest binary unit that divides it.
func sizeName(size int64) string {
	switch {
	case size >= 1<<30 && size%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", size>>30)
	case size >= 1<<20 && size%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", size>>20)
	case size >= 1<<10 && size%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", size>>10)
	}
	return fmt.Sprintf("%d B", size)
}
