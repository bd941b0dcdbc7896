package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// detection measures failure detection and membership traffic at each of
// several network sizes: members (kill -9, SIGSTOP, SIGCONT) and traffic
// at every N, written to DIR/results.json and drawn against N in
// DIR/membership-vs-n.png.
func detection(args []string) error {
	fs := flag.NewFlagSet("detection", flag.ExitOnError)
	ns := fs.String("n", "20,50,100", "network sizes")
	rounds := fs.Int("rounds", 5, "kills and stops at each size, each")
	window := fs.Duration("window", 20*time.Second, "traffic's measuring window")
	out := fs.String("out", "testnet/bench-results/detection", "directory for results.json and the plot")
	startGapFlag(fs)
	procs := procsFlag(fs)
	fs.Parse(args)
	defer setProcs(*procs)()
	sizes, err := counts("-n", *ns, 3)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	begin := time.Now()
	r := newResults(begin)
	save := func() error {
		r.Finished, r.Seconds = time.Now().Format(time.RFC3339), time.Since(begin).Seconds()
		return writeJSON(filepath.Join(*out, "results.json"), r)
	}
	for _, n := range sizes {
		fmt.Printf("== N=%d\n", n)
		m, err := members([]string{"-n", strconv.Itoa(n), "-rounds", strconv.Itoa(*rounds)})
		if err != nil {
			return fmt.Errorf("members at N=%d: %w", n, err)
		}
		r.MembersVsN = append(r.MembersVsN, m)
		t, err := trafficAt(n, *window)
		if err != nil {
			return fmt.Errorf("traffic at N=%d: %w", n, err)
		}
		r.Traffic = append(r.Traffic, t)
		if err := save(); err != nil {
			return err
		}
	}
	path := filepath.Join(*out, "membership-vs-n.png")
	if err := plotMembership(r, path); err != nil {
		return err
	}
	r.Plots = []string{"membership-vs-n.png"}
	fmt.Println("plot:", path)
	return save()
}
