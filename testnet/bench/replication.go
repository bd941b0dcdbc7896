package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/testnet"
)

// RepairResult holds the figures of repair: kill -9 of a holder to two
// alive holders again.
type RepairResult struct {
	N        int       `json:"n"`
	Size     int       `json:"size"`
	Ms       []float64 `json:"ms"`
	MedianMs float64   `json:"median_ms"`
	P99Ms    float64   `json:"p99_ms"`
}

// repairBench measures how long a file takes to stand at R = 2 alive
// holders again after one of its two holders is killed with SIGKILL, as a
// third node's catalog sees it.
func repairBench(args []string) (RepairResult, error) {
	fs := flag.NewFlagSet("repair", flag.ExitOnError)
	n := fs.Int("n", 10, "nodes")
	rounds := fs.Int("rounds", 10, "kills to time")
	size := fs.Int("size", 1<<20, "bytes of each shared file")
	keep := fs.Bool("keep", false, "keep the daemons' directory (and logs) when done")
	fs.Parse(args)
	fig := RepairResult{N: *n, Size: *size}
	if *n < 3 {
		return fig, errors.New("repair needs at least 3 nodes")
	}
	nw, cleanup, err := up(*n)
	if err != nil {
		return fig, err
	}
	defer done(nw, cleanup, *keep)
	if err := waitAllAlive(nw); err != nil {
		return fig, err
	}
	var times []time.Duration
	for r := 0; r < *rounds; r++ {
		pub := nw.Node(1 + r%*n)
		name := fmt.Sprintf("repair-%d.bin", r)
		body := make([]byte, *size)
		rand.Read(body)
		pc, err := clientOf(pub)
		if err != nil {
			return fig, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := pc.Share(ctx, api.ShareRequest{Name: name, Body: bytes.NewReader(body)})
		cancel()
		if err != nil {
			return fig, fmt.Errorf("share %s on node %d: %w", name, pub.Index, err)
		}
		if len(res.Replicas) != 1 {
			return fig, fmt.Errorf("share %s on node %d: replicas %v (%s), want 1", name, pub.Index, res.Replicas, res.ReplicaError)
		}
		rep := byID(nw, res.Replicas[0])
		if rep == nil || rep == pub {
			return fig, fmt.Errorf("share %s: replica %s is not another node of the network", name, res.Replicas[0])
		}
		victim, role := pub, "publisher"
		if r%2 == 1 {
			victim, role = rep, "replica"
		}
		var obs *testnet.Daemon
		for i := 0; i < *n; i++ {
			if d := nw.Node(1 + (r+*n/2+i)%*n); d != pub && d != rep {
				obs = d
				break
			}
		}
		oc, err := clientOf(obs)
		if err != nil {
			return fig, err
		}
		// Start from the state the measure ends in: both holders alive in the
		// observer's catalog.
		if _, _, err := waitHolders(oc, name, "", 2, 30*time.Second); err != nil {
			return fig, fmt.Errorf("node %d before the kill: %w", obs.Index, err)
		}
		victim.Kill()
		start := time.Now()
		hs, _, err := waitHolders(oc, name, victim.ID, 2, time.Minute)
		took := time.Since(start)
		if err != nil {
			for _, d := range []*testnet.Daemon{pub, rep, obs} {
				if d != victim {
					fmt.Printf("  node %d log tail:\n%s\n", d.Index, indent(d.LogTail(20)))
				}
			}
			return fig, fmt.Errorf("round %d: node %d: %w", r, obs.Index, err)
		}
		times = append(times, took)
		var newHolder string
		for _, h := range hs {
			if h != pub.ID && h != rep.ID {
				newHolder = nodeName(nw, h)
			}
		}
		fmt.Printf("round %d: %s shared on node %d (replica node %d), kill -9 node %d (%s): 2 alive holders on node %d after %s (new holder %s)\n",
			r, name, pub.Index, rep.Index, victim.Index, role, obs.Index, took.Round(time.Millisecond), newHolder)
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		err = victim.Start(ctx, bootstrapFor(nw, victim))
		cancel()
		if err != nil {
			return fig, err
		}
		if err := waitAllAlive(nw); err != nil {
			return fig, err
		}
	}
	fmt.Printf("\nN=%d R=2 size=%d  kill -9 of a holder to 2 alive holders: median %s p99 %s (n=%d)\n",
		*n, *size, pct(times, 50), pct(times, 99), len(times))
	fig.Ms, fig.MedianMs, fig.P99Ms = msList(times), ms(pct(times, 50)), ms(pct(times, 99))
	return fig, nil
}

// done stops the daemons and removes their directory, or with keep
// stops them and says where the directory (and the logs) stay.
func done(nw *testnet.Network, cleanup func(), keep bool) {
	if !keep {
		cleanup()
		return
	}
	nw.Down()
	fmt.Println("daemons' directory kept:", filepath.Dir(nw.Dir))
}

// waitHolders polls c's catalog until name has at least want holders in
// state alive, not counting skip; it returns them.
func waitHolders(c *api.Client, name, skip string, want int, limit time.Duration) ([]string, time.Duration, error) {
	start := time.Now()
	last := "no catalog answer"
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		es, err := c.Catalog(ctx, name)
		cancel()
		if err != nil {
			last = err.Error()
		}
		for _, e := range es {
			if e.Name != name {
				continue
			}
			var alive []string
			for _, h := range e.Holders {
				if h.State == "alive" && h.Peer != skip {
					alive = append(alive, h.Peer)
				}
			}
			if len(alive) >= want {
				return alive, time.Since(start), nil
			}
			last = fmt.Sprintf("holders %+v", e.Holders)
		}
		if time.Since(start) > limit {
			return nil, 0, fmt.Errorf("%s: fewer than %d alive holders after %s: %s", name, want, limit, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bootstrapFor is the address a restarted node bootstraps to: node 1's, or
// node 2's for node 1 itself.
func bootstrapFor(nw *testnet.Network, d *testnet.Daemon) string {
	if d == nw.Node(1) {
		return nw.Node(2).TCPAddr()
	}
	return nw.Node(1).TCPAddr()
}

func byID(nw *testnet.Network, id string) *testnet.Daemon {
	for _, d := range nw.Nodes {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// nodeName names a peer by its node number when it is one of nw's.
func nodeName(nw *testnet.Network, id string) string {
	if d := byID(nw, id); d != nil {
		return fmt.Sprintf("node %d", d.Index)
	}
	return id
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// churnFile is one file the churn bench gets.
type churnFile struct {
	name string
	sum  [32]byte
}

// ChurnResult holds the figures of churn: get availability while nodes
// are killed and restarted.
type ChurnResult struct {
	N               int     `json:"n"`
	DurationS       float64 `json:"duration_s"`
	Kills           int     `json:"kills"`
	Attempted       int     `json:"gets_attempted"`
	Succeeded       int     `json:"gets_succeeded"`
	AvailabilityPct float64 `json:"availability_pct"`
	P50Ms           float64 `json:"get_p50_ms"`
	P99Ms           float64 `json:"get_p99_ms"`
}

// churnBench kills a random node with SIGKILL, restarts it 5-10 s later,
// and again, for the duration, never more than one node down, while gets of
// the shared files run on the nodes that are up; it reports how many gets
// succeeded.
func churnBench(args []string) (ChurnResult, error) {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	n := fs.Int("n", 20, "nodes")
	dur := fs.Duration("duration", 2*time.Minute, "how long the churn lasts")
	files := fs.Int("files", 20, "files shared before the churn")
	rate := fs.Int("rate", 10, "gets started per second, at most")
	inflight := fs.Int("inflight", 10, "gets in flight, at most")
	keep := fs.Bool("keep", false, "keep the daemons' directory (and logs) when done")
	fs.Parse(args)
	fig := ChurnResult{N: *n, DurationS: dur.Seconds()}
	if *n < 3 || *rate < 1 || *inflight < 1 || *files < 1 {
		return fig, errors.New("churn needs at least 3 nodes, 1 file, a rate and an in-flight cap of 1 or more")
	}
	nw, cleanup, err := up(*n)
	if err != nil {
		return fig, err
	}
	defer done(nw, cleanup, *keep)
	if err := waitAllAlive(nw); err != nil {
		return fig, err
	}
	shared := make([]churnFile, *files)
	for i := range shared {
		d := nw.Node(1 + i%*n)
		body := make([]byte, 2048+mrand.IntN(6*1024))
		rand.Read(body)
		shared[i] = churnFile{name: fmt.Sprintf("churn-%02d.bin", i), sum: sha256.Sum256(body)}
		c, err := clientOf(d)
		if err != nil {
			return fig, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := c.Share(ctx, api.ShareRequest{Name: shared[i].name, Body: bytes.NewReader(body)})
		cancel()
		if err != nil {
			return fig, fmt.Errorf("share %s on node %d: %w", shared[i].name, d.Index, err)
		}
		if len(res.Replicas) != 1 {
			return fig, fmt.Errorf("share %s on node %d: replicas %v (%s), want 1", shared[i].name, d.Index, res.Replicas, res.ReplicaError)
		}
	}
	c1, err := clientOf(nw.Node(1))
	if err != nil {
		return fig, err
	}
	for _, f := range shared {
		if _, _, err := waitHolders(c1, f.name, "", 2, time.Minute); err != nil {
			return fig, err
		}
	}
	fmt.Printf("N=%d: %d files shared, each with 2 alive holders; churn for %s\n", *n, *files, *dur)

	var (
		mu       sync.Mutex
		down     *testnet.Daemon
		busy     = map[*testnet.Daemon]int{} // gets in flight per node
		lat      []time.Duration
		tried    int
		failed   int
		kills    int
		churnErr error
	)
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	start := time.Now()
	since := func() string { return time.Since(start).Round(time.Millisecond).String() }

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the killer: one node down at a time
		defer wg.Done()
		for ctx.Err() == nil {
			// A victim with no get in flight, so no get fails because the
			// node it asks is killed under it.
			var v *testnet.Daemon
			for v == nil && ctx.Err() == nil {
				mu.Lock()
				c := nw.Node(1 + mrand.IntN(*n))
				if busy[c] == 0 {
					v, down = c, c
				}
				mu.Unlock()
				if v == nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if v == nil {
				return
			}
			v.Kill()
			mu.Lock()
			kills++
			mu.Unlock()
			pause := 5*time.Second + mrand.N(5*time.Second)
			fmt.Printf("[%s] kill -9 node %d, restart in %s\n", since(), v.Index, pause.Round(time.Millisecond))
			select {
			case <-time.After(pause):
			case <-ctx.Done():
			}
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := v.Start(sctx, bootstrapFor(nw, v))
			scancel()
			mu.Lock()
			if err != nil {
				churnErr = fmt.Errorf("restart node %d: %w", v.Index, err)
				mu.Unlock()
				cancel()
				return
			}
			down = nil
			mu.Unlock()
			fmt.Printf("[%s] node %d restarted and ready\n", since(), v.Index)
		}
	}()

	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	var gets sync.WaitGroup
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		mu.Lock()
		inFlight := 0
		for _, k := range busy {
			inFlight += k
		}
		if inFlight >= *inflight {
			mu.Unlock()
			continue
		}
		var d *testnet.Daemon
		for d == nil || d == down {
			d = nw.Node(1 + mrand.IntN(*n))
		}
		busy[d]++
		tried++
		wasDown := down
		mu.Unlock()
		f := shared[mrand.IntN(len(shared))]
		gets.Add(1)
		go func() {
			defer gets.Done()
			t0 := time.Now()
			res, err := catOn(d, f)
			took := time.Since(t0)
			mu.Lock()
			busy[d]--
			if err == nil {
				lat = append(lat, took)
				mu.Unlock()
				return
			}
			failed++
			mu.Unlock()
			downName := "none"
			if wasDown != nil {
				downName = fmt.Sprintf("node %d", wasDown.Index)
			}
			fmt.Printf("[%s] FAILED get %s on node %d after %s (down at start: %s; provider %q): %v\n  node %d log tail:\n%s\n",
				since(), f.name, d.Index, took.Round(time.Millisecond), downName, res.Provider, err, d.Index, indent(d.LogTail(15)))
		}()
	}
	gets.Wait()
	wg.Wait()
	if churnErr != nil {
		return fig, churnErr
	}
	ok := tried - failed
	fmt.Printf("\nN=%d R=2 churn %s, %d kills (one node down at a time, 5-10 s each): gets attempted %d, succeeded %d, availability %.2f%%; get latency p50 %s p99 %s\n",
		*n, *dur, kills, tried, ok, 100*float64(ok)/float64(max(tried, 1)), pct(lat, 50), pct(lat, 99))
	fig.Kills, fig.Attempted, fig.Succeeded = kills, tried, ok
	fig.AvailabilityPct = 100 * float64(ok) / float64(max(tried, 1))
	fig.P50Ms, fig.P99Ms = ms(pct(lat, 50)), ms(pct(lat, 99))
	return fig, nil
}

// catOn gets f through d's API with a 30 s deadline and checks its bytes.
func catOn(d *testnet.Daemon, f churnFile) (api.GetResult, error) {
	c, err := clientOf(d)
	if err != nil {
		return api.GetResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, rc, err := c.Cat(ctx, f.name)
	if err != nil {
		return res, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return res, fmt.Errorf("read body: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), f.sum[:]) {
		return res, fmt.Errorf("%s: wrong bytes", f.name)
	}
	return res, nil
}
