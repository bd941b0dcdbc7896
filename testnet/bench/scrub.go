package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/testnet"
)

// ScrubPoint is one scrub setting: the scrub's measured rate, the serving
// daemon's CPU while only the scrub runs, and the throughput of gets it
// serves meanwhile.
type ScrubPoint struct {
	RateMiBps       float64   `json:"rate_MiBps"` // --scrub-rate; 0 is off
	ScrubbedMiBps   float64   `json:"scrubbed_MiBps"`
	IdleCPUPercent  float64   `json:"idle_cpu_percent"` // of one core, no get running
	GetMBps         []float64 `json:"get_MBps"`
	MedianGetMBps   float64   `json:"median_get_MBps"`
	ScrubbedDuring  float64   `json:"scrubbed_MiBps_during_gets"`
	GetRatioVsNoScr float64   `json:"get_ratio_vs_off"`
}

// ScrubResult holds the figures of scrub.
type ScrubResult struct {
	StoreMiB int64        `json:"store_MiB"`
	GetSize  int64        `json:"get_size"`
	Runs     int          `json:"runs"`
	Window   float64      `json:"window_seconds"`
	Points   []ScrubPoint `json:"points"`
}

// scrubBench measures the background scrub's rate and its cost to a
// running node: for the scrub off and each rate, two daemons (R = 1);
// node 1 stores files of -store MiB in all (re-verified every second, so
// its scrub never rests) and a file of -get bytes; it reports the bytes
// scrubbed a second and node 1's CPU over -window with nothing else to
// do, then the median throughput of -runs gets of the file by node 2,
// served by node 1 while its scrub runs.
func scrubBench(args []string) (ScrubResult, error) {
	fs := flag.NewFlagSet("scrub", flag.ExitOnError)
	rates := fs.String("rates", "8,64", "scrub rates in MiB/s, comma-separated (off is always measured first)")
	store := fs.Int64("store", 256, "MiB stored on the scrubbing node, in 16 MiB files")
	getSize := fs.String("get", "128MiB", "size of the file got while the scrub runs")
	runs := fs.Int("runs", 5, "gets per setting")
	window := fs.Duration("window", 10*time.Second, "how long the scrub's rate and CPU are measured")
	fs.Parse(args)
	gs, err := parseSize(*getSize)
	if err != nil {
		return ScrubResult{}, err
	}
	fig := ScrubResult{StoreMiB: *store, GetSize: gs, Runs: *runs, Window: window.Seconds()}
	settings := []float64{0}
	for _, r := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			return fig, fmt.Errorf("bad rate %q", r)
		}
		settings = append(settings, v)
	}
	fmt.Printf("%10s  %12s  %10s  %14s  %14s  %s\n", "scrub", "scrubbed", "idle CPU", "get MB/s", "vs off", "runs (MB/s)")
	for _, rate := range settings {
		p, err := scrubPoint(rate, *store, gs, *runs, *window)
		if err != nil {
			return fig, err
		}
		if len(fig.Points) > 0 && fig.Points[0].MedianGetMBps > 0 {
			p.GetRatioVsNoScr = p.MedianGetMBps / fig.Points[0].MedianGetMBps
		} else {
			p.GetRatioVsNoScr = 1
		}
		fig.Points = append(fig.Points, p)
		var rs []string
		for _, v := range p.GetMBps {
			rs = append(rs, fmt.Sprintf("%.0f", v))
		}
		name := "off"
		if rate > 0 {
			name = fmt.Sprintf("%g MiB/s", rate)
		}
		fmt.Printf("%10s  %7.1f MiB/s  %9.1f%%  %14.1f  %13.2fx  %s (scrub %.1f MiB/s meanwhile)\n",
			name, p.ScrubbedMiBps, p.IdleCPUPercent, p.MedianGetMBps, p.GetRatioVsNoScr, strings.Join(rs, " "), p.ScrubbedDuring)
	}
	fmt.Printf("\n%d MiB stored on node 1 (scrub interval 1 s: the scrub never rests), %s got by node 2 from node 1, median of %d gets; CPU of node 1's daemon, %% of one core\n",
		*store, sizeName(gs), *runs)
	return fig, nil
}

// scrubPoint measures one setting on a fresh pair of daemons.
func scrubPoint(rate float64, storeMiB, getSize int64, runs int, window time.Duration) (ScrubPoint, error) {
	p := ScrubPoint{RateMiBps: rate}
	nw, cleanup, err := upWith(2, "--replicas", "1", "--scrub-rate", strconv.FormatFloat(rate, 'g', -1, 64), "--scrub-interval", "1s")
	if err != nil {
		return p, err
	}
	defer cleanup()
	n1 := nw.Node(1)
	c1, err := clientOf(n1)
	if err != nil {
		return p, err
	}
	c2, err := clientOf(nw.Node(2))
	if err != nil {
		return p, err
	}
	dir := filepath.Dir(nw.Dir)
	share := func(name string, size int64) error {
		src := filepath.Join(dir, name)
		if err := randomFile(src, size); err != nil {
			return err
		}
		defer os.Remove(src)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, err := c1.Share(ctx, api.ShareRequest{Name: name, Path: src})
		return err
	}
	for i := int64(0); i < storeMiB/16; i++ {
		if err := share(fmt.Sprintf("stored-%d.bin", i), 16<<20); err != nil {
			return p, err
		}
	}
	if err := share("got.bin", getSize); err != nil {
		return p, err
	}
	time.Sleep(2 * time.Second) // every file due again: the scrub is running (a bounded wait, not a condition)
	b0, t0, cpu0 := scrubbedBytes(n1), time.Now(), schedOr0(n1)
	time.Sleep(window)
	el := time.Since(t0).Seconds()
	p.ScrubbedMiBps = (scrubbedBytes(n1) - b0) / (1 << 20) / el
	p.IdleCPUPercent = (schedOr0(n1) - cpu0).Seconds() / el * 100
	b0, t0 = scrubbedBytes(n1), time.Now()
	for r := 0; r < runs; r++ {
		dst := filepath.Join(dir, "get.out")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		res, err := c2.Get(ctx, api.GetRequest{Ref: "got.bin", Path: dst})
		secs := time.Since(start).Seconds()
		cancel()
		os.Remove(dst)
		if err != nil {
			return p, fmt.Errorf("get: %w", err)
		}
		if res.Size != getSize {
			return p, fmt.Errorf("get: %d bytes, want %d", res.Size, getSize)
		}
		p.GetMBps = append(p.GetMBps, float64(getSize)/1e6/secs)
	}
	p.ScrubbedDuring = (scrubbedBytes(n1) - b0) / (1 << 20) / time.Since(t0).Seconds()
	p.MedianGetMBps = median(p.GetMBps)
	return p, nil
}

func schedOr0(d *testnet.Daemon) time.Duration {
	t, _ := schedTime(d.PID())
	return t
}

// scrubbedBytes reads p2pshare_scrub_bytes_total from d's /metrics.
func scrubbedBytes(d *testnet.Daemon) float64 {
	base, err := os.ReadFile(filepath.Join(d.Repo, "api"))
	if err != nil {
		return 0
	}
	tok, _ := os.ReadFile(filepath.Join(d.Repo, "api.token"))
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSpace(string(base))+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "p2pshare_scrub_bytes_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
