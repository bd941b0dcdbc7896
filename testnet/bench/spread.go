package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
	"github.com/p2pshare/p2pshare/testnet/internet"
)

// spreadBench times how fast a key-value write reaches the other nodes of
// the emulated three-site internet, on the writer's own site and on each
// other site, with GossipSub's RTT score (this tree's daemon) and without
// it (the same tree built with -tags nogossiprtt: a mesh drawn at random).
// Each round runs one network of each kind in turn, alternating which
// goes first.
func spreadBench(args []string) (all map[string]testnet.SpreadResult, err error) {
	fs := flag.NewFlagSet("spread", flag.ExitOnError)
	perSite := fs.Int("per-site", 6, "daemons on each of the three sites")
	warm := fs.Duration("warm", 3*time.Minute, "time for the meshes to settle before the first write")
	writes := fs.Int("writes", 36, "key-value writes timed in each network, by every node in turn")
	gap := fs.Duration("gap", 500*time.Millisecond, "time between two writes")
	rounds := fs.Int("rounds", 1, "networks of each kind")
	loss := fs.Float64("loss", 0, "packet loss on every uplink, in percent")
	startGapFlag(fs)
	procs := procsFlag(fs)
	fs.Parse(args)
	defer setProcs(*procs)()
	if *perSite < 1 || *perSite > 200 || *writes < 1 || *rounds < 1 || *loss < 0 || *loss >= 100 {
		return nil, fmt.Errorf("spread: want -per-site 1..200, -writes and -rounds at least 1, -loss from 0 to below 100")
	}
	bin, err := benchBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "p2pshare-bench-spread-")
	if err != nil {
		return nil, err
	}
	keep := os.Getenv(keepEnv) != ""
	defer func() {
		// A failed run keeps its daemons' logs: a network that does
		// not settle is worth reading.
		if keep || err != nil {
			fmt.Fprintf(os.Stderr, "bench: the daemons' repos and logs are kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	flat, err := testnet.BuildTagged(dir, "p2pshare-nogossiprtt", "nogossiprtt")
	if err != nil {
		return nil, err
	}
	per := *warm + time.Duration(*writes)*(*gap) + 5*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(2**rounds)*per)
	defer cancel()
	in, err := internet.Build(ctx, internet.Sites(*perSite, *loss/100))
	if err != nil {
		return nil, fmt.Errorf("emulated internet: %w", err)
	}
	defer in.Close()
	kinds := []struct{ name, bin string }{{"RTT score", bin}, {"no RTT score", flat}}
	all = map[string]testnet.SpreadResult{}
	start := time.Now()
	for r := range *rounds {
		for i := range kinds {
			k := kinds[(i+r)%2]
			ndir, err := os.MkdirTemp(dir, "net-")
			if err != nil {
				return all, err
			}
			res, err := testnet.RunSpread(ctx, in, testnet.SpreadConfig{
				Bin: k.bin, Dir: ndir, PerSite: *perSite, Warm: *warm, Writes: *writes, Gap: *gap, StartGap: startGap,
				Logf: func(f string, a ...any) {
					fmt.Printf("%s  %s: %s\n", time.Since(start).Round(time.Second), k.name, fmt.Sprintf(f, a...))
				}})
			if err != nil {
				return all, fmt.Errorf("%s: %w", k.name, err)
			}
			fmt.Printf("%s  %s: %d receipts missing, %d suspicion log lines (%d in the %s from a minute after all were alive to the stop); median (p90) ms:",
				time.Since(start).Round(time.Second), k.name, res.Missing, len(res.SuspicionLines), len(res.SettledLines), res.Settled.Round(time.Second))
			// Each network's own figures: how its mesh formed shows in
			// its tail, which the pooled figures blur.
			for _, g := range res.SpreadGroups() {
				d := append([]float64(nil), res.Delays[g]...)
				sort.Float64s(d)
				fmt.Printf(" %s %.0f (%.0f);", g, median(d), quantileOf(d, 0.9))
			}
			fmt.Println()
			all[k.name] = mergeSpread(all[k.name], res)
		}
	}
	fmt.Printf("\nthree sites of %d daemons, one-way 15/22/30 ms between sites, %g %% loss, %d writes a network, %d network(s) of each kind, %s warm-up:\n",
		*perSite, *loss, *writes, *rounds, *warm)
	fmt.Printf("%-14s %-12s %9s %10s %10s %10s %14s\n", "daemon", "receiver", "receipts", "median ms", "p90 ms", "max ms", "last hop local")
	for _, k := range kinds {
		res := all[k.name]
		for _, g := range res.SpreadGroups() {
			d := append([]float64(nil), res.Delays[g]...)
			sort.Float64s(d)
			fmt.Printf("%-14s %-12s %9d %10.1f %10.1f %10.1f %13.0f%%\n", k.name, g, len(d), median(d), quantileOf(d, 0.9), d[len(d)-1],
				100*float64(res.LocalHop[g])/float64(max(res.Receipts[g], 1)))
		}
		fmt.Printf("%-14s missing receipts %d, suspicion log lines %d, %d of them in %s settled\n",
			k.name, res.Missing, len(res.SuspicionLines), len(res.SettledLines), res.Settled.Round(time.Second))
	}
	return all, nil
}

// mergeSpread adds b's figures to a's.
func mergeSpread(a, b testnet.SpreadResult) testnet.SpreadResult {
	if a.Delays == nil {
		a.Delays, a.LocalHop, a.Receipts = map[string][]float64{}, map[string]int{}, map[string]int{}
	}
	for g, d := range b.Delays {
		a.Delays[g] = append(a.Delays[g], d...)
		a.LocalHop[g] += b.LocalHop[g]
		a.Receipts[g] += b.Receipts[g]
	}
	a.Missing += b.Missing
	a.SuspicionLines = append(a.SuspicionLines, b.SuspicionLines...)
	a.SettledLines = append(a.SettledLines, b.SettledLines...)
	a.Settled += b.Settled
	return a
}

// quantileOf is the q-quantile of sorted xs (nearest rank).
func quantileOf(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
