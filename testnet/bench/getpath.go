package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
)

// GetPathRow is the outcome of getpath: the same get written by the
// daemon and streamed through the command, runs interleaved.
type GetPathRow struct {
	Size          int64     `json:"size"`
	Runs          int       `json:"runs"`
	DaemonSeconds []float64 `json:"daemon_seconds"` // get --via-daemon, each run
	StreamSeconds []float64 `json:"stream_seconds"` // get --stream, each run
	DaemonMiBps   float64   `json:"daemon_mibps"`   // at the median time
	StreamMiBps   float64   `json:"stream_mibps"`   // at the median time
	Ratio         float64   `json:"ratio"`          // stream / daemon throughput
}

// getPathBench shares a -size random file on one daemon and gets it on
// another through the CLI -runs times each way, alternating: written by
// the daemon (--via-daemon) and streamed by the daemon to the command,
// which writes it (--stream). It prints the median throughput of each and
// their ratio.
func getPathBench(args []string) (GetPathRow, error) {
	fs := flag.NewFlagSet("getpath", flag.ExitOnError)
	size := fs.Int64("size", 256<<20, "file size in bytes")
	runs := fs.Int("runs", 5, "gets of each kind")
	fs.Parse(args)
	row := GetPathRow{Size: *size, Runs: *runs}
	nw, cleanup, err := upWith(2, "--replicas", "1")
	if err != nil {
		return row, err
	}
	defer cleanup()
	dir := filepath.Dir(nw.Dir)
	src := filepath.Join(dir, "payload.bin")
	if err := randomFile(src, *size); err != nil {
		return row, err
	}
	c1, _ := clientOf(nw.Node(1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c1.Share(ctx, api.ShareRequest{Name: "payload.bin", Path: src}); err != nil {
		return row, err
	}
	dst := filepath.Join(dir, "get.out")
	for i := 0; i < *runs; i++ {
		for _, how := range []string{"--via-daemon", "--stream"} {
			start := time.Now()
			r := nw.Node(2).Run("get", "payload.bin", "-o", dst, how)
			secs := time.Since(start).Seconds()
			if r.Code != 0 {
				return row, fmt.Errorf("get %s: exit %d: %s", how, r.Code, r.Stderr)
			}
			if fi, err := os.Stat(dst); err != nil || fi.Size() != *size {
				return row, fmt.Errorf("get %s: wrote %v (%v)", how, fi, err)
			}
			os.Remove(dst)
			if how == "--stream" {
				row.StreamSeconds = append(row.StreamSeconds, secs)
			} else {
				row.DaemonSeconds = append(row.DaemonSeconds, secs)
			}
			fmt.Printf("run %d %-12s %6.3f s  %7.1f MiB/s\n", i+1, how, secs, float64(*size)/secs/(1<<20))
		}
	}
	mib := float64(*size) / (1 << 20)
	row.DaemonMiBps = mib / median(row.DaemonSeconds)
	row.StreamMiBps = mib / median(row.StreamSeconds)
	row.Ratio = row.StreamMiBps / row.DaemonMiBps
	fmt.Printf("median: daemon writes %.1f MiB/s, command writes %.1f MiB/s: ratio %.3f\n", row.DaemonMiBps, row.StreamMiBps, row.Ratio)
	return row, nil
}
