// Command bench runs p2pshare's benchmarks against networks of real daemon
// processes on this machine and prints their figures (recorded in
// BENCHMARKS.md with the command that produced them).
//
//	go run ./testnet/bench members -n 20 -rounds 10   # detection of kill -9 and SIGSTOP
//	go run ./testnet/bench traffic -n 10,20,50        # membership traffic per node
//	go run ./testnet/bench detection -n 20,50,100 -rounds 5 -out DIR  # members and traffic at each N, with a plot
//	go run ./testnet/bench load -n 10 -duration 5m    # false positives with both cores busy (-settle, -start-gap, -procs for big N)
//	go run ./testnet/bench kv -n 20 -rounds 20 -keys 10000  # KV convergence and catch-up
//	go run ./testnet/bench throughput -size 268435456 -runs 5  # get vs a raw libp2p stream
//	go run ./testnet/bench latency -n 20 -gets 200    # 1 KiB get on a warm network
//	go run ./testnet/bench idle -n 10,50,100          # RSS and CPU per idle daemon, start to joined
//	go run ./testnet/bench repair -n 10 -rounds 10 -size 1048576  # back to R=2 after a holder's kill -9
//	go run ./testnet/bench churn -n 20 -duration 2m   # get availability while nodes are killed and restarted
//	go run ./testnet/bench sizes -runs 3              # get throughput against file size, 1 KiB to 256 MiB
//	go run ./testnet/bench getpath -size 268435456 -runs 5  # get written by the daemon vs streamed to the command
//	go run ./testnet/bench scrub -rates 8,64 -runs 5  # the scrub's rate, CPU, and a concurrent get's throughput
//	go run ./testnet/bench sites -trials 20 -soak 5m [-loss 5]  # nearest-site choices on an emulated 3-site WAN, and suspicions under loss (root)
//	go run ./testnet/bench nat -rounds 10 -size 67108864 -runs 3  # across NATs: start to hole punch, get vs raw stream and relayed vs direct at 30 ms RTT (root)
//	go run ./testnet/bench sim -n 100,1000,10000 -seed 1 -out DIR  # the membership core simulated at N members, with a plot
//	go run ./testnet/bench coords -n 100 -seed 1      # network coordinates simulated at N nodes on a 5-site WAN: estimates of unconnected pairs
//	go run ./testnet/bench all -out DIR [-quick]      # all of the above in one run: DIR/results.json, logs, PNG plots
//	go run ./testnet/bench plot -out DIR              # draw DIR's plots again from DIR/results.json
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/p2pshare/p2pshare/gossip/swim"
	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/testnet"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench all|plot|members|detection|traffic|load|kv|latency|idle|throughput|sizes|nat|repair|churn|scrub|sites|spread|ratelimit|sim|coords|getpath [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "all":
		err = all(os.Args[2:])
	case "plot":
		err = replot(os.Args[2:])
	case "members":
		_, err = members(os.Args[2:])
	case "detection":
		err = detection(os.Args[2:])
	case "traffic":
		_, err = traffic(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "kv":
		_, err = kvBench(os.Args[2:])
	case "latency":
		_, err = latency(os.Args[2:])
	case "idle":
		_, err = idle(os.Args[2:])
	case "throughput":
		_, err = throughput(os.Args[2:])
	case "sizes":
		_, err = sizes(os.Args[2:])
	case "nat":
		_, err = nat(os.Args[2:])
	case "rawserve":
		err = rawServe(os.Args[2:])
	case "rawget":
		err = rawGet(os.Args[2:])
	case "repair":
		_, err = repairBench(os.Args[2:])
	case "churn":
		_, err = churnBench(os.Args[2:])
	case "scrub":
		_, err = scrubBench(os.Args[2:])
	case "sites":
		_, err = sitesBench(os.Args[2:])
	case "ratelimit":
		_, err = rateLimitBench(os.Args[2:])
	case "sim":
		_, err = simBench(os.Args[2:])
	case "coords":
		_, err = coordsBench(os.Args[2:])
	case "getpath":
		_, err = getPathBench(os.Args[2:])
	case "spread":
		_, err = spreadBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// up builds the binary and starts n daemons in a fresh directory.
func up(n int) (*testnet.Network, func(), error) { return upWith(n) }

// upAlive is upWith, then waits until every node sees every other alive;
// on failure nothing is left running.
func upAlive(n int, args ...string) (*testnet.Network, func(), error) {
	nw, cleanup, err := upWith(n, args...)
	if err != nil {
		return nil, nil, err
	}
	if err := waitAllAlive(nw); err != nil {
		cleanup()
		return nil, nil, err
	}
	return nw, cleanup, nil
}

// The daemon binary every network of one bench run uses: $P2PSHARE_BIN,
// or p2pshare built from this tree once, in binDir.
var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

func benchBinary() (string, error) {
	binOnce.Do(func() {
		if binPath = os.Getenv("P2PSHARE_BIN"); binPath != "" {
			return
		}
		if binDir, binErr = os.MkdirTemp("", "p2pshare-bench-bin-"); binErr == nil {
			binPath, binErr = testnet.Build(binDir)
		}
	})
	return binPath, binErr
}

// startGap is the networks' testnet.Network.BatchGap (the -start-gap
// flag of the subcommands that start big networks).
var startGap time.Duration

// startGapFlag defines -start-gap on fs, into startGap. Its default is
// startGap's value, so a benchmark another one calls (members, called by
// detection) keeps its caller's.
func startGapFlag(fs *flag.FlagSet) {
	fs.DurationVar(&startGap, "start-gap", startGap, "wait between batches of daemons started (see testnet.Network.BatchGap); 0 starts them all at once")
}

// keepEnv, when set, keeps the repos and logs of the networks upWith
// starts, to read what the daemons logged after a run.
const keepEnv = "P2PSHARE_BENCH_KEEP"

// upWith is up with extra daemon flags.
func upWith(n int, args ...string) (*testnet.Network, func(), error) {
	bin, err := benchBinary()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "p2pshare-bench-")
	if err != nil {
		return nil, nil, err
	}
	nw := testnet.New(bin, filepath.Join(dir, "net"))
	nw.Args = args
	nw.BatchGap = startGap
	if err := os.MkdirAll(nw.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	cleanup := func() { nw.Down(); os.RemoveAll(dir) }
	if os.Getenv(keepEnv) != "" {
		cleanup = func() {
			nw.Down()
			fmt.Fprintf(os.Stderr, "bench: the daemons' repos and logs are kept in %s\n", nw.Dir)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+time.Duration(n/testnet.StartBatch)*startGap)
	defer cancel()
	if err := nw.Up(ctx, n); err != nil {
		cleanup()
		return nil, nil, err
	}
	return nw, cleanup, nil
}

func clientOf(d *testnet.Daemon) (*api.Client, error) { return api.Dial(d.Repo) }

// stateOn asks d what state it gives peer id.
func stateOn(c *api.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ms, err := c.Members(ctx)
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.ID == id {
			return m.State
		}
	}
	return ""
}

// waitAll polls every running node but skip, in parallel, until each shows
// id in state want; it returns when the last one does.
func waitAll(nw *testnet.Network, skip *testnet.Daemon, id, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(nw.Nodes))
	for _, d := range nw.Nodes {
		if d == skip || !d.Running() {
			continue
		}
		c, err := clientOf(d)
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stateOn(c, id) != want {
				if time.Since(start) > limit {
					errs <- fmt.Errorf("node %d does not see %s %s after %s; its membership log:\n%s", d.Index, id, want, limit, membershipLog(d))
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

func waitAllAlive(nw *testnet.Network) error {
	// Each daemon's table is read once a second (with a random phase):
	// reading every table for every member every few milliseconds, as
	// waitAll does for one member, would cost a network of 100 daemons
	// on two cores thousands of requests a second, enough to starve the
	// membership it waits for.
	const every, limit = time.Second, 2 * time.Minute
	start := time.Now()
	ids := map[string]bool{}
	for _, d := range nw.Nodes {
		if d.Running() {
			ids[d.ID] = true
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(nw.Nodes))
	for _, d := range nw.Nodes {
		if !d.Running() {
			continue
		}
		c, err := clientOf(d)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.Int64N(int64(every))))
			for {
				missing := allAliveOn(c, ids, d.ID)
				if missing == "" {
					return
				}
				if time.Since(start) > limit {
					errs <- fmt.Errorf("node %d does not see %s alive after %s; its membership log:\n%s", d.Index, missing, limit, membershipLog(d))
					return
				}
				time.Sleep(every)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// allAliveOn returns one of ids (but self) that c does not show alive, or
// "" when it shows them all alive.
func allAliveOn(c *api.Client, ids map[string]bool, self string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := c.Members(ctx)
	if err != nil {
		return "(the API: " + err.Error() + ")"
	}
	alive := map[string]bool{}
	for _, m := range ms {
		alive[m.ID] = m.State == "alive"
	}
	for id := range ids {
		if id != self && !alive[id] {
			return id
		}
	}
	return ""
}

// MembersResult holds the figures of members: how long every other node
// takes to see a node dead after kill -9 and after SIGSTOP.
type MembersResult struct {
	N            int       `json:"n"`
	Rounds       int       `json:"rounds"`
	KillMs       []float64 `json:"kill_ms"`
	StopMs       []float64 `json:"sigstop_ms"`
	KillMedianMs float64   `json:"kill_median_ms"`
	KillP99Ms    float64   `json:"kill_p99_ms"`
	StopMedianMs float64   `json:"sigstop_median_ms"`
	StopP99Ms    float64   `json:"sigstop_p99_ms"`
	// BackMs is how long after SIGCONT every node saw the stopped node
	// alive again.
	BackMs       []float64 `json:"sigcont_ms"`
	BackMedianMs float64   `json:"sigcont_median_ms"`
	BackP99Ms    float64   `json:"sigcont_p99_ms"`
	// KillPublished and KillReceived are, for each kill, the membership
	// topic messages the other nodes published and received in the 2 s
	// after it, less those of 2 s of idle just before (from their
	// /metrics). The network's heartbeats (0.5 a second, each received
	// by every node) fall in either window at random, so each figure is
	// within about one heartbeat's deliveries (N) of the kill's own; at
	// small N one can come out negative.
	KillPublished []float64 `json:"kill_published"`
	KillReceived  []float64 `json:"kill_received"`
}

// topicCounts sums membership_published_total and
// membership_received_total over the running nodes but skip.
func topicCounts(nw *testnet.Network, skip *testnet.Daemon) ([2]float64, error) {
	var sum [2]float64
	for _, d := range nw.Nodes {
		if d == skip || !d.Running() {
			continue
		}
		code, m, err := d.Scrape(true)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("HTTP %d", code)
		}
		if err != nil {
			return sum, fmt.Errorf("/metrics of node %d: %w", d.Index, err)
		}
		sum[0] += m["p2pshare_membership_published_total"]
		sum[1] += m["p2pshare_membership_received_total"]
	}
	return sum, nil
}

// deadMsgs and backMsgs are the log messages of a member declared dead
// and of one seen alive again.
var (
	deadMsgs = []string{"member dead"}
	backMsgs = []string{"member alive-again", "member rejoined"}
)

func members(args []string) (MembersResult, error) {
	fs := flag.NewFlagSet("members", flag.ExitOnError)
	n := fs.Int("n", 20, "nodes")
	rounds := fs.Int("rounds", 10, "kills and stops to measure, each")
	startGapFlag(fs)
	procs := procsFlag(fs)
	fs.Parse(args)
	defer setProcs(*procs)()
	res := MembersResult{N: *n, Rounds: *rounds}
	nw, cleanup, err := upAlive(*n)
	if err != nil {
		return res, err
	}
	defer cleanup()
	var kills, stops, backs []time.Duration
	// restarted is when each victim of a kill was started again: a member
	// that joined less than the join grace ago is not accused of an
	// unanswered probe (see swim.Config.JoinGrace), and a SIGSTOP round
	// measures the detection of a silent member, so it waits that out.
	restarted := map[*testnet.Daemon]time.Time{}
	grace := swim.DefaultConfig().JoinGrace
	for r := 0; r < *rounds; r++ {
		v := nw.Node(2 + r%(*n-1))
		// The membership topic's messages the kill costs: those of the
		// 2 s after it, less those of 2 s of idle just before.
		idle0, err0 := topicCounts(nw, v)
		time.Sleep(2 * time.Second)
		idle1, err1 := topicCounts(nw, v)
		time.Sleep(300 * time.Millisecond) // the scrape's own load gone
		w := watchLogs(nw)
		at := time.Now()
		v.Kill()
		d, err := w.wait(v, v.ID, deadMsgs, at, 30*time.Second)
		if err != nil {
			return res, err
		}
		kills = append(kills, d)
		time.Sleep(time.Until(at.Add(2 * time.Second)))
		after, err2 := topicCounts(nw, v)
		if err := errors.Join(err0, err1, err2); err != nil {
			// The detection time stands; the kill's messages are not
			// counted, rather than counted wrong.
			fmt.Printf("kill -9 node %d: dead everywhere after %s; its membership messages not counted: %v\n", v.Index, d.Round(time.Millisecond), err)
		} else {
			pub := (after[0] - idle1[0]) - (idle1[0] - idle0[0])
			recv := (after[1] - idle1[1]) - (idle1[1] - idle0[1])
			res.KillPublished, res.KillReceived = append(res.KillPublished, pub), append(res.KillReceived, recv)
			fmt.Printf("kill -9 node %d: dead everywhere after %s; membership messages for it: %.0f published, %.0f received (whole network, over idle)\n",
				v.Index, d.Round(time.Millisecond), pub, recv)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = v.Start(ctx, nw.Node(1).TCPAddr())
		cancel()
		if err != nil {
			return res, err
		}
		restarted[v] = time.Now()
		// Every node, the restarted one included, must know every other
		// before the next round, or a node could miss a member it never heard.
		if err := waitAllAlive(nw); err != nil {
			return res, err
		}
	}
	for r := 0; r < *rounds; r++ {
		v := nw.Node(2 + r%(*n-1))
		if at, ok := restarted[v]; ok {
			time.Sleep(time.Until(at.Add(grace + time.Second)))
		}
		w := watchLogs(nw)
		at := time.Now()
		if err := v.Pause(); err != nil {
			return res, err
		}
		d, err := w.wait(v, v.ID, deadMsgs, at, 30*time.Second)
		if err != nil {
			v.Resume()
			return res, err
		}
		w = watchLogs(nw)
		at = time.Now()
		v.Resume()
		b, err := w.wait(v, v.ID, backMsgs, at, 30*time.Second)
		if err != nil {
			return res, err
		}
		stops = append(stops, d)
		backs = append(backs, b)
		fmt.Printf("SIGSTOP node %d: dead everywhere after %s, alive everywhere %s after SIGCONT\n", v.Index, d.Round(time.Millisecond), b.Round(time.Millisecond))
		if err := waitAllAlive(nw); err != nil {
			return res, err
		}
	}
	fmt.Printf("\nN=%d  kill -9: median %s p99 %s (n=%d)   SIGSTOP: median %s p99 %s (n=%d)   SIGCONT to alive: median %s p99 %s\n",
		*n, pct(kills, 50), pct(kills, 99), len(kills), pct(stops, 50), pct(stops, 99), len(stops), pct(backs, 50), pct(backs, 99))
	res.KillMs, res.StopMs, res.BackMs = msList(kills), msList(stops), msList(backs)
	res.BackMedianMs, res.BackP99Ms = ms(pct(backs, 50)), ms(pct(backs, 99))
	res.KillMedianMs, res.KillP99Ms = ms(pct(kills, 50)), ms(pct(kills, 99))
	res.StopMedianMs, res.StopP99Ms = ms(pct(stops, 50)), ms(pct(stops, 99))
	return res, nil
}

// pct returns the p-th percentile (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)].Round(time.Millisecond)
}

// ms is d in milliseconds, for results.json.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// TrafficPoint holds the figures of traffic at one network size, in bytes
// per second per node, in+out.
type TrafficPoint struct {
	N               int     `json:"n"`
	WindowSeconds   float64 `json:"window_s"`
	GossipMedian    float64 `json:"gossip_median_Bps"`
	GossipMin       float64 `json:"gossip_min_Bps"`
	GossipMax       float64 `json:"gossip_max_Bps"`
	AllLibp2pMedian float64 `json:"all_libp2p_median_Bps"`
}

func traffic(args []string) ([]TrafficPoint, error) {
	fs := flag.NewFlagSet("traffic", flag.ExitOnError)
	ns := fs.String("n", "10,20,50", "network sizes")
	window := fs.Duration("window", 20*time.Second, "measuring window")
	fs.Parse(args)
	var out []TrafficPoint
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return out, err
		}
		p, err := trafficAt(n, *window)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// gossipBytes is a node's membership traffic: GossipSub (its topics) and
// the failure detector's direct messages (pings, ping-reqs, table
// exchanges).
func gossipBytes(st api.Stats) (in, out int64) {
	for p, t := range st.Protocols {
		if strings.HasPrefix(p, "/meshsub/") || strings.HasPrefix(p, "/p2pshare/swim/") {
			in += t.InBytes
			out += t.OutBytes
		}
	}
	return in, out
}

// quiet waits until the daemons of nw logged no suspect or dead verdict
// for d, or for at most limit.
func quiet(nw *testnet.Network, d, limit time.Duration) {
	verdicts := func() int { return countLogged(nw, `msg="member suspect"`) + countLogged(nw, `msg="member dead"`) }
	start, last, since := time.Now(), verdicts(), time.Now()
	for time.Since(since) < d && time.Since(start) < limit {
		time.Sleep(time.Second)
		if v := verdicts(); v != last {
			last, since = v, time.Now()
		}
	}
}

func trafficAt(n int, window time.Duration) (TrafficPoint, error) {
	nw, cleanup, err := upAlive(n)
	if err != nil {
		return TrafficPoint{}, err
	}
	defer cleanup()
	time.Sleep(5 * time.Second) // let the mesh settle after joins before measuring
	// A network that starts on a small machine may suspect members for a
	// while after all are alive (see idle's false verdicts): the window
	// starts once no verdict was logged for 10 s.
	quiet(nw, 10*time.Second, 2*time.Minute)
	snap := func() ([]api.Stats, error) {
		out := make([]api.Stats, len(nw.Nodes))
		for i, d := range nw.Nodes {
			c, err := clientOf(d)
			if err != nil {
				return nil, err
			}
			if out[i], err = c.Stats(context.Background()); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	a, err := snap()
	if err != nil {
		return TrafficPoint{}, err
	}
	start := time.Now()
	time.Sleep(window)
	b, err := snap()
	if err != nil {
		return TrafficPoint{}, err
	}
	secs := time.Since(start).Seconds()
	var gossip, total []float64
	for i := range a {
		ai, ao := gossipBytes(a[i])
		bi, bo := gossipBytes(b[i])
		gossip = append(gossip, float64(bi-ai+bo-ao)/secs)
		total = append(total, float64(b[i].Total.InBytes-a[i].Total.InBytes+b[i].Total.OutBytes-a[i].Total.OutBytes)/secs)
	}
	sort.Float64s(gossip)
	sort.Float64s(total)
	fmt.Printf("N=%d  membership (GossipSub and the detector's pings) bytes/s per node, in+out: median %.0f (min %.0f, max %.0f); all libp2p traffic per node: median %.0f B/s\n",
		n, gossip[len(gossip)/2], gossip[0], gossip[len(gossip)-1], total[len(total)/2])
	// Each protocol's share: the median node's bytes/s in+out.
	var protos []string
	for p := range b[0].Protocols {
		protos = append(protos, p)
	}
	sort.Strings(protos)
	for _, p := range protos {
		var v []float64
		for i := range a {
			d := b[i].Protocols[p].InBytes - a[i].Protocols[p].InBytes + b[i].Protocols[p].OutBytes - a[i].Protocols[p].OutBytes
			v = append(v, float64(d)/secs)
		}
		sort.Float64s(v)
		fmt.Printf("N=%d  %s: median %.0f B/s per node\n", n, p, v[len(v)/2])
	}
	return TrafficPoint{N: n, WindowSeconds: secs, GossipMedian: gossip[len(gossip)/2], GossipMin: gossip[0],
		GossipMax: gossip[len(gossip)-1], AllLibp2pMedian: total[len(total)/2]}, nil
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	n := fs.Int("n", 10, "nodes")
	dur := fs.Duration("duration", 5*time.Minute, "how long to keep both cores busy")
	settle := fs.Duration("settle", 0, "wait this long after every node is alive everywhere before the load")
	startGapFlag(fs)
	procs := procsFlag(fs)
	fs.Parse(args)
	defer setProcs(*procs)()
	nw, cleanup, err := upAlive(*n)
	if err != nil {
		return err
	}
	defer cleanup()
	atUp := countEvents(nw)
	time.Sleep(*settle)
	before := countEvents(nw)
	if *settle > 0 {
		fmt.Printf("N=%d, settling %s before the load: %d dead and %d suspect events\n",
			*n, *settle, before["dead"]-atUp["dead"], before["suspect"]-atUp["suspect"])
	}
	// Burn every core for the whole duration, bounded by time.
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < runtime.NumCPU(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for ctx.Err() == nil {
				sha256.Sum256(buf)
			}
		}()
	}
	wg.Wait()
	time.Sleep(3 * time.Second) // let late events land in the logs
	after := countEvents(nw)
	fmt.Printf("N=%d, %s with %d cores busy: %d dead and %d suspect events (false positives: no node was stopped)\n",
		*n, *dur, runtime.NumCPU(), after["dead"]-before["dead"], after["suspect"]-before["suspect"])
	return nil
}

// membershipLog returns the membership lines of d's log.
func membershipLog(d *testnet.Daemon) string {
	b, _ := os.ReadFile(d.Log)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "component=members") || strings.Contains(l, "started") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// countEvents counts membership events in every node's log.
func countEvents(nw *testnet.Network) map[string]int {
	out := map[string]int{}
	for _, d := range nw.Nodes {
		b, _ := os.ReadFile(d.Log)
		out["dead"] += strings.Count(string(b), `msg="member dead"`)
		out["suspect"] += strings.Count(string(b), `msg="member suspect"`)
	}
	return out
}
