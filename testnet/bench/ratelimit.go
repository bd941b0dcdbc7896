package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
)

// RateLimitRow is one transfer of ratelimit: a get between two daemons
// with one direction limited.
type RateLimitRow struct {
	Side     string  `json:"side"`  // "upload" (the server) or "download" (the getter)
	Limit    int64   `json:"limit"` // bytes/s
	Size     int64   `json:"size"`
	Seconds  float64 `json:"seconds"`
	Achieved float64 `json:"achieved"` // bytes/s
	Ratio    float64 `json:"ratio"`    // achieved / limit
}

// rateLimitBench gets a file of about -secs seconds of each limit from one
// daemon to another, the server's --max-upload-rate or the getter's
// --max-download-rate set to it (the same flag on both daemons: the other
// side's limit is on the other direction), and prints the achieved rate
// against the limit.
func rateLimitBench(args []string) ([]RateLimitRow, error) {
	fs := flag.NewFlagSet("ratelimit", flag.ExitOnError)
	limits := fs.String("limits", "1MiB/s,4MiB/s,16MiB/s,64MiB/s", "comma-separated limits, in the daemon's units")
	secs := fs.Float64("secs", 4, "seconds each transfer should take at its limit")
	fs.Parse(args)
	var rows []RateLimitRow
	for _, l := range strings.Split(*limits, ",") {
		bps, err := benchRate(l)
		if err != nil {
			return rows, err
		}
		for _, side := range []string{"upload", "download"} {
			row, err := limitedGet(side, l, bps, int64(float64(bps)**secs))
			if err != nil {
				return rows, fmt.Errorf("%s limit %s: %w", side, l, err)
			}
			fmt.Printf("%-8s limit %-8s %4d MiB in %6.2f s: %6.2f MiB/s, %.3f of the limit\n",
				side, l, row.Size>>20, row.Seconds, row.Achieved/(1<<20), row.Ratio)
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// benchRate reads the binary-prefixed limits ratelimit takes.
func benchRate(s string) (int64, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil {
		return 0, fmt.Errorf("limit %q: %w", s, err)
	}
	switch strings.TrimSuffix(unit, "/s") {
	case "KiB":
		return n << 10, nil
	case "MiB":
		return n << 20, nil
	}
	return 0, fmt.Errorf("limit %q: want KiB/s or MiB/s", s)
}

func limitedGet(side, limit string, bps, size int64) (RateLimitRow, error) {
	row := RateLimitRow{Side: side, Limit: bps, Size: size}
	nw, cleanup, err := upWith(2, "--replicas", "1", "--max-"+side+"-rate", limit)
	if err != nil {
		return row, err
	}
	defer cleanup()
	dir := filepath.Dir(nw.Dir)
	src := filepath.Join(dir, "payload.bin")
	if err := randomFile(src, size); err != nil {
		return row, err
	}
	c1, _ := clientOf(nw.Node(1))
	c2, _ := clientOf(nw.Node(2))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c1.Share(ctx, api.ShareRequest{Name: "payload.bin", Path: src}); err != nil {
		return row, err
	}
	dst := filepath.Join(dir, "get.out")
	start := time.Now()
	if _, err := c2.Get(ctx, api.GetRequest{Ref: "payload.bin", Path: dst}); err != nil {
		return row, err
	}
	row.Seconds = time.Since(start).Seconds()
	os.Remove(dst)
	row.Achieved = float64(size) / row.Seconds
	row.Ratio = row.Achieved / float64(bps)
	return row, nil
}
