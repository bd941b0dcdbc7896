package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet/coordsim"
)

// coordsBench runs the network coordinate simulator (testnet/coordsim) at
// each N, prints each report, and with -out writes them as JSON.
//
//	go run ./testnet/bench coords -n 100 -seed 1
func coordsBench(args []string) ([]*coordsim.Report, error) {
	fs := flag.NewFlagSet("coords", flag.ContinueOnError)
	ns := fs.String("n", "100", "nodes, comma-separated")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same report")
	wan := fs.String("wan", "world", "the sites: world (5 sites, 15 to 230 ms) or sites3 (the emulated internet's 30/44/60 ms)")
	jitter := fs.Float64("jitter", 15, "the most a sample adds to the true RTT, ms")
	conns := fs.Int("conns", 32, "connections per node")
	minutes := fs.String("at", "2,5,10,20", "checkpoints, minutes, comma-separated")
	out := fs.String("out", "", "directory for coordsim.json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	nodes, err := counts("-n", *ns, 2)
	if err != nil {
		return nil, err
	}
	var at []time.Duration
	for _, m := range strings.Split(*minutes, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(m), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-at %q: want positive minutes, comma-separated", m)
		}
		at = append(at, time.Duration(v*float64(time.Minute)))
	}
	var reps []*coordsim.Report
	for _, n := range nodes {
		p := coordsim.DefaultParams(n)
		p.Seed, p.Jitter, p.Conns = *seed, *jitter, *conns
		switch *wan {
		case "world":
		case "sites3":
			p.Sites, p.WAN = coordsim.ThreeSites()
		default:
			return nil, fmt.Errorf("-wan %q: want world or sites3", *wan)
		}
		p.Checkpoints = at
		start := time.Now()
		r, err := coordsim.Run(p)
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s\n(%.1f s wall time on this machine)\n\n", r, time.Since(start).Seconds())
		reps = append(reps, r)
	}
	if *out == "" {
		return reps, nil
	}
	return reps, writeJSON(filepath.Join(*out, "coordsim.json"), reps)
}
