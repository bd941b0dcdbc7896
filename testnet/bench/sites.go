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

// sitesBench runs testnet.RunSites on the emulated three-site internet:
// how often each "closest" choice picks the nearest site, the rtt_ms (and
// the rtt_est_ms, once coordinates have settled) the members tables show
// for each pair of sites, and whether any live node was suspected during
// the trials and the soak that follows.
func sitesBench(args []string) (testnet.SitesResult, error) {
	fs := flag.NewFlagSet("sites", flag.ExitOnError)
	trials := fs.Int("trials", 20, "trials of each choice")
	soak := fs.Duration("soak", 5*time.Minute, "how long to watch for suspicions after the trials")
	loss := fs.Float64("loss", 1, "packet loss on every uplink, in percent")
	fs.Parse(args)
	if *loss < 0 || *loss >= 100 {
		return testnet.SitesResult{}, fmt.Errorf("-loss %g: want a percentage from 0 to below 100", *loss)
	}
	bin, err := benchBinary()
	if err != nil {
		return testnet.SitesResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *soak+time.Duration(*trials)*time.Minute+5*time.Minute)
	defer cancel()
	in, err := internet.Build(ctx, testnet.SitesTopology(*loss/100))
	if err != nil {
		return testnet.SitesResult{}, fmt.Errorf("emulated internet: %w", err)
	}
	defer in.Close()
	dir, err := os.MkdirTemp("", "p2pshare-bench-sites-")
	if err != nil {
		return testnet.SitesResult{}, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	res, err := testnet.RunSites(ctx, in, testnet.SitesConfig{Bin: bin, Dir: dir, Trials: *trials, Soak: *soak,
		Logf: func(f string, a ...any) {
			fmt.Printf("%s  %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(f, a...))
		}})
	if err != nil {
		return res, err
	}
	fmt.Printf("three sites, one-way 15/22/30 ms, %g %% loss, %d trials of each choice, %s soak:\n", *loss, *trials, *soak)
	for _, c := range res.Choices {
		fmt.Printf("  %s: nearest chosen %d of %d\n", c.Kind, c.Nearest, c.Trials)
	}
	var pairs []string
	for p := range res.RTTs {
		pairs = append(pairs, p)
	}
	sort.Strings(pairs)
	for _, p := range pairs {
		r := res.RTTs[p]
		fmt.Printf("  rtt_ms %s: %.1f-%.1f (links: %.0f ms)", p, r[0], r[1], testnet.SitesPathRTT[p])
		if e, ok := res.RTTEsts[p]; ok {
			fmt.Printf("; rtt_est_ms %.1f-%.1f", e[0], e[1])
		}
		fmt.Println()
	}
	fmt.Printf("  live nodes seen not alive: %d; suspicion log lines: %d (all nodes, whole run)\n", len(res.NotAlive), len(res.SuspicionLines))
	for _, s := range res.NotAlive {
		fmt.Println("   ", s)
	}
	return res, nil
}
