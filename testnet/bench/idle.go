package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/testnet"
)

// LatencyResult holds the figures of latency: a 1 KiB get on a warm
// network through the API and through the CLI.
type LatencyResult struct {
	N        int     `json:"n"`
	APIp50Ms float64 `json:"api_p50_ms"`
	APIp99Ms float64 `json:"api_p99_ms"`
	APIGets  int     `json:"api_gets"`
	CLIp50Ms float64 `json:"cli_p50_ms"`
	CLIp99Ms float64 `json:"cli_p99_ms"`
	CLIGets  int     `json:"cli_gets"`
}

// latency measures 1 KiB gets on a warm network: through the API (Cat, the
// bytes streamed back) and through the CLI (a process per get).
func latency(args []string) (LatencyResult, error) {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	n := fs.Int("n", 20, "nodes")
	gets := fs.Int("gets", 200, "API gets to time")
	cliGets := fs.Int("cli-gets", 50, "CLI gets to time")
	fs.Parse(args)
	res := LatencyResult{N: *n}
	nw, cleanup, err := upAlive(*n, "--replicas", "1")
	if err != nil {
		return res, err
	}
	defer cleanup()
	dir := filepath.Dir(nw.Dir)
	src := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(src, []byte(strings.Repeat("p2pshare ", 1024/9+1)[:1024]), 0o644); err != nil {
		return res, err
	}
	c1, _ := clientOf(nw.Node(1))
	ctx := context.Background()
	if _, err := c1.Share(ctx, api.ShareRequest{Name: "small.txt", Path: src}); err != nil {
		return res, err
	}
	clients := make([]*api.Client, *n)
	for i, d := range nw.Nodes {
		clients[i], _ = clientOf(d)
	}
	get := func(c *api.Client) (time.Duration, error) {
		start := time.Now()
		_, body, err := c.Cat(ctx, "small.txt")
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil || len(b) != 1024 {
			return 0, fmt.Errorf("cat: %d bytes, %v", len(b), err)
		}
		return time.Since(start), nil
	}
	// Warm: every node resolves and fetches once.
	for _, c := range clients[1:] {
		if _, err := get(c); err != nil {
			return res, err
		}
	}
	var api []time.Duration
	for i := 0; i < *gets; i++ {
		d, err := get(clients[1+rand.IntN(*n-1)])
		if err != nil {
			return res, err
		}
		api = append(api, d)
	}
	var cli []time.Duration
	for i := 0; i < *cliGets; i++ {
		d := nw.Nodes[1+rand.IntN(*n-1)]
		out := filepath.Join(dir, "cli.out")
		start := time.Now()
		r := d.Run("get", "small.txt", "-o", out)
		if r.Code != 0 {
			return res, fmt.Errorf("cli get: %s", r.Stderr)
		}
		cli = append(cli, time.Since(start))
		os.Remove(out)
	}
	fmt.Printf("N=%d  1 KiB get, warm network: API p50 %s p99 %s (n=%d); CLI p50 %s p99 %s (n=%d)\n",
		*n, pctFine(api, 50), pctFine(api, 99), len(api), pctFine(cli, 50), pctFine(cli, 99), len(cli))
	res.APIp50Ms, res.APIp99Ms, res.APIGets = ms(pctFine(api, 50)), ms(pctFine(api, 99)), len(api)
	res.CLIp50Ms, res.CLIp99Ms, res.CLIGets = ms(pctFine(cli, 50)), ms(pctFine(cli, 99)), len(cli)
	return res, nil
}

func pctFine(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)].Round(10 * time.Microsecond)
}

// IdlePoint holds the figures of idle at one network size.
type IdlePoint struct {
	N             int     `json:"n"`
	UpMs          float64 `json:"up_ms"`
	AllAliveMs    float64 `json:"all_alive_ms"`
	RSSMedianMiB  float64 `json:"rss_median_MiB"`
	RSSMaxMiB     float64 `json:"rss_max_MiB"`
	PSSMedianMiB  float64 `json:"pss_median_MiB"`
	Procs         int     `json:"gomaxprocs"`
	NetworkCores  float64 `json:"network_cpu_cores"`
	PeersMedian   int     `json:"peers_median"`
	PeersMax      int     `json:"peers_max"`
	NewReadyMs    float64 `json:"new_daemon_ready_ms"`
	NewAliveOn1Ms float64 `json:"new_daemon_alive_on_node1_ms"`
	// Suspected and Dead count the verdicts the daemons logged from
	// the start to the end of the measuring window ("member suspect",
	// "member dead", one per daemon that came to it): in a network
	// where nothing failed, every one is false.
	Suspected int `json:"suspect_verdicts"`
	Dead      int `json:"dead_verdicts"`
}

// idle measures, for each N, the time from a daemon's start to ready and
// joined, then each idle daemon's RSS and the whole network's CPU.
func idle(args []string) ([]IdlePoint, error) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	ns := fs.String("n", "10,50,100", "network sizes")
	settle := fs.Duration("settle", 20*time.Second, "wait before measuring")
	window := fs.Duration("window", 10*time.Second, "CPU measuring window")
	hold := fs.Duration("hold", 0, "keep each network running this long after measuring it, or after failing, to look at it")
	procs := procsFlag(fs)
	startGapFlag(fs)
	fs.Parse(args)
	defer setProcs(*procs)()
	var out []IdlePoint
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			return out, fmt.Errorf("bad -n %q", s)
		}
		start := time.Now()
		nw, cleanup, err := up(n)
		if err != nil {
			return out, err
		}
		upTook := time.Since(start)
		if err := waitAllAlive(nw); err != nil {
			if *hold > 0 {
				fmt.Fprintf(os.Stderr, "bench: %v\nholding the network in %s for %s\n", err, nw.Dir, *hold)
				holdFor(*hold)
			}
			cleanup()
			return out, err
		}
		joined := time.Since(start)
		time.Sleep(*settle)
		cpu0 := cpuTime(nw)
		time.Sleep(*window)
		cpu1 := cpuTime(nw)
		var rss, pss []float64
		for _, d := range nw.Nodes {
			rss = append(rss, statusMiB(fmt.Sprintf("/proc/%d/status", d.PID()), "VmRSS:"))
			pss = append(pss, statusMiB(fmt.Sprintf("/proc/%d/smaps_rollup", d.PID()), "Pss:"))
		}
		sort.Float64s(rss)
		sort.Float64s(pss)
		cores := (cpu1 - cpu0).Seconds() / window.Seconds()
		suspected, dead := countLogged(nw, `msg="member suspect"`), countLogged(nw, `msg="member dead"`)
		peers := peerCounts(nw)
		// One more daemon: start to ready, and to alive on node 1.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t0 := time.Now()
		d, err := nw.Add(ctx, nw.Node(1).TCPAddr())
		cancel()
		if err != nil {
			cleanup()
			return out, err
		}
		ready := time.Since(t0)
		c1, _ := clientOf(nw.Node(1))
		for stateOn(c1, d.ID) != "alive" && time.Since(t0) < time.Minute {
			time.Sleep(5 * time.Millisecond)
		}
		seen := time.Since(t0)
		if *hold > 0 {
			fmt.Fprintf(os.Stderr, "bench: holding the network in %s for %s\n", nw.Dir, *hold)
			holdFor(*hold)
		}
		cleanup()
		fmt.Printf("N=%d (GOMAXPROCS %s): up %s, all alive everywhere %s; idle RSS per daemon median %.1f MiB max %.1f MiB (PSS median %.1f MiB); whole network CPU %.2f cores; connected peers per daemon median %d max %d; a new daemon ready %s, alive on node 1 %s; false verdicts logged until measured: %d suspect, %d dead\n",
			n, procsName(*procs), upTook.Round(time.Millisecond), joined.Round(time.Millisecond), rss[len(rss)/2], rss[len(rss)-1], pss[len(pss)/2], cores, peers[len(peers)/2], peers[len(peers)-1], ready.Round(time.Millisecond), seen.Round(time.Millisecond), suspected, dead)
		out = append(out, IdlePoint{N: n, UpMs: ms(upTook), AllAliveMs: ms(joined), RSSMedianMiB: rss[len(rss)/2], RSSMaxMiB: rss[len(rss)-1],
			PSSMedianMiB: pss[len(pss)/2], Procs: *procs, NetworkCores: cores, PeersMedian: peers[len(peers)/2], PeersMax: peers[len(peers)-1], NewReadyMs: ms(ready), NewAliveOn1Ms: ms(seen),
			Suspected: suspected, Dead: dead})
	}
	return out, nil
}

// holdFor waits d, or until the bench is interrupted (SIGINT, SIGTERM):
// then the network it holds is stopped as after the wait.
func holdFor(d time.Duration) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// countLogged counts the lines of every daemon's log that contain s.
func countLogged(nw *testnet.Network, s string) int {
	k := 0
	for _, d := range nw.Nodes {
		b, err := os.ReadFile(d.Log)
		if err == nil {
			k += bytes.Count(b, []byte(s))
		}
	}
	return k
}

// peerCounts returns each daemon's number of connected peers, sorted.
func peerCounts(nw *testnet.Network) []int {
	var out []int
	for _, d := range nw.Nodes {
		c, err := clientOf(d)
		if err != nil {
			out = append(out, 0)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ps, _ := c.Peers(ctx)
		cancel()
		out = append(out, len(ps))
	}
	sort.Ints(out)
	return out
}

// cpuTime returns the CPU time the daemons have used so far. It sums the
// scheduler's exact run time of every thread (/proc/PID/task/*/schedstat,
// in nanoseconds) rather than utime+stime, which the kernel samples at
// each clock tick: an idle daemon runs in bursts of a few hundred
// microseconds, often right after the tick that woke its timers, and
// tick sampling can miss them. Where schedstat is missing it falls back
// to the ticks.
func cpuTime(nw *testnet.Network) time.Duration {
	var total time.Duration
	for _, d := range nw.Nodes {
		if t, ok := schedTime(d.PID()); ok {
			total += t
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.PID()))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 12 {
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			k, _ := strconv.ParseInt(fields[12], 10, 64)
			total += time.Duration(u+k) * 10 * time.Millisecond // USER_HZ = 100
		}
	}
	return total
}

// schedTime sums the run time of pid's threads from their schedstat files.
func schedTime(pid int) (time.Duration, bool) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		fs := strings.Fields(string(b))
		if len(fs) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
	}
	return total, true
}

// statusMiB reads a "Key: N kB" line of a /proc file, in MiB.
func statusMiB(path, key string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// procsFlag defines -procs on fs: the GOMAXPROCS of each daemon.
func procsFlag(fs *flag.FlagSet) *int {
	return fs.Int("procs", 0, "GOMAXPROCS of each daemon (0: Go's default, the number of cores)")
}

// setProcs makes the daemons started from now on run with GOMAXPROCS p
// (Go's default if p is 0), and returns what undoes it.
func setProcs(p int) func() {
	if p <= 0 {
		return func() {}
	}
	os.Setenv("GOMAXPROCS", strconv.Itoa(p))
	return func() { os.Unsetenv("GOMAXPROCS") }
}

func procsName(p int) string {
	if p == 0 {
		return "default"
	}
	return strconv.Itoa(p)
}
