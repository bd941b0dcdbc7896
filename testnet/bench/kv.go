package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/testnet"
)

// KVResult holds the figures of kv: one put's convergence on every node,
// and a new node's catch-up on a network holding Keys keys.
type KVResult struct {
	N                int       `json:"n"`
	Rounds           int       `json:"rounds"`
	ConvergeMs       []float64 `json:"converge_ms,omitempty"`
	ConvergeMedianMs float64   `json:"converge_median_ms"`
	ConvergeP99Ms    float64   `json:"converge_p99_ms"`
	Keys             int       `json:"keys"`
	JoinNodes        int       `json:"join_nodes"`
	FillMs           float64   `json:"fill_ms,omitempty"`
	NewReadyMs       float64   `json:"new_node_ready_ms,omitempty"`
	NewAllKeysMs     float64   `json:"new_node_all_keys_ms,omitempty"`
}

// kvBench measures (1) how long one put takes to be readable on every node
// of an N-node network, and (2) how long a node that joins a network
// holding K keys takes to hold them all.
func kvBench(args []string) (KVResult, error) {
	fs := flag.NewFlagSet("kv", flag.ExitOnError)
	n := fs.Int("n", 20, "nodes for the convergence rounds")
	rounds := fs.Int("rounds", 20, "puts to time")
	keys := fs.Int("keys", 10000, "keys held by the network a new node joins (0: skip)")
	joinNodes := fs.Int("join-nodes", 3, "nodes of the network that holds -keys")
	fs.Parse(args)
	res := KVResult{N: *n, Rounds: *rounds, Keys: *keys, JoinNodes: *joinNodes}

	if *rounds > 0 {
		nw, cleanup, err := upAlive(*n)
		if err != nil {
			return res, err
		}
		var conv []time.Duration
		for r := 0; r < *rounds; r++ {
			w := nw.Node(1 + r%*n)
			d, err := converge(nw, w, fmt.Sprintf("bench/%d", r), fmt.Sprintf("value %d", r))
			if err != nil {
				cleanup()
				return res, err
			}
			conv = append(conv, d)
			fmt.Printf("put on node %d: on all %d nodes after %s\n", w.Index, *n, d.Round(time.Microsecond))
		}
		cleanup()
		fmt.Printf("\nN=%d  one put readable on every node: median %s p99 %s (n=%d)\n\n", *n, pct(conv, 50), pct(conv, 99), len(conv))
		res.ConvergeMs, res.ConvergeMedianMs, res.ConvergeP99Ms = msList(conv), ms(pct(conv, 50)), ms(pct(conv, 99))
	}

	if *keys > 0 {
		nw, cleanup, err := up(*joinNodes)
		if err != nil {
			return res, err
		}
		defer cleanup()
		start := time.Now()
		if err := fill(nw.Node(1), *keys); err != nil {
			return res, err
		}
		res.FillMs = ms(time.Since(start))
		fmt.Printf("wrote %d keys on node 1 in %s\n", *keys, time.Since(start).Round(time.Millisecond))
		for _, d := range nw.Nodes {
			if _, err := waitKeys(d, *keys, 5*time.Minute); err != nil {
				return res, err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start = time.Now()
		d, err := nw.Add(ctx, nw.Node(1).TCPAddr())
		if err != nil {
			return res, err
		}
		ready := time.Since(start)
		took, err := waitKeys(d, *keys, 5*time.Minute)
		if err != nil {
			return res, err
		}
		fmt.Printf("\nnew node joining a network of %d nodes holding %d keys: ready after %s, all keys after %s from start\n",
			*joinNodes, *keys, ready.Round(time.Millisecond), (ready + took).Round(time.Millisecond))
		res.NewReadyMs, res.NewAllKeysMs = ms(ready), ms(ready+took)
	}
	return res, nil
}

// converge puts key=value on w and returns when every node reads it.
func converge(nw *testnet.Network, w *testnet.Daemon, key, value string) (time.Duration, error) {
	clients := make([]*api.Client, len(nw.Nodes))
	for i, d := range nw.Nodes {
		c, err := clientOf(d)
		if err != nil {
			return 0, err
		}
		clients[i] = c
	}
	wc, _ := clientOf(w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := wc.KVPut(ctx, api.KVPutRequest{Key: key, Value: []byte(value)}); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	for i, c := range clients {
		if nw.Nodes[i] == w {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if e, err := c.KVGet(ctx, key); err == nil && e.Value == value {
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			failed.Store(fmt.Errorf("node %d never read %s", nw.Nodes[i].Index, key))
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return 0, err
	}
	return time.Since(start), nil
}

// fill writes k keys on d through its API, 8 at a time.
func fill(d *testnet.Daemon, k int) error {
	c, err := clientOf(d)
	if err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(k) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := c.KVPut(ctx, api.KVPutRequest{Key: fmt.Sprintf("fill/%06d", i), Value: []byte(fmt.Sprintf("value of key %d", i))})
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitKeys polls d until it lists at least k keys.
func waitKeys(d *testnet.Daemon, k int, limit time.Duration) (time.Duration, error) {
	c, err := clientOf(d)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		es, err := c.KVList(ctx)
		cancel()
		if err == nil && len(es) >= k {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("node %d holds %d of %d keys after %s", d.Index, len(es), k, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
