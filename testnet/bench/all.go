package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Results is what all writes to DIR/results.json: the machine, the exact
// commands, and every figure.
type Results struct {
	Command   string   `json:"command"` // the command line of all
	Args      []string `json:"args"`
	Quick     bool     `json:"quick"`
	Date      string   `json:"date"`
	Finished  string   `json:"finished,omitempty"`
	Seconds   float64  `json:"seconds,omitempty"`
	GoVersion string   `json:"go_version"`
	Uname     string   `json:"uname"`
	Nproc     string   `json:"nproc"`
	CPU       string   `json:"cpu,omitempty"`
	Commit    string   `json:"commit,omitempty"`
	Steps     []Step   `json:"steps"`

	Throughput *ThroughputResult `json:"throughput,omitempty"`
	Sizes      *SizesResult      `json:"sizes,omitempty"`
	Scrub      *ScrubResult      `json:"scrub,omitempty"`
	Latency    *LatencyResult    `json:"latency,omitempty"`
	Members    *MembersResult    `json:"members,omitempty"`
	Traffic    []TrafficPoint    `json:"traffic,omitempty"`
	// MembersVsN are the detection times at each N of the traffic sizes,
	// for the plot of membership against N.
	MembersVsN []MembersResult `json:"members_vs_n,omitempty"`
	KV         *KVResult       `json:"kv,omitempty"`
	Repair     *RepairResult   `json:"repair,omitempty"`
	Churn      *ChurnResult    `json:"churn,omitempty"`
	Idle       []IdlePoint     `json:"idle,omitempty"`
	Plots      []string        `json:"plots,omitempty"`
}

// newResults returns the results of this command, started at begin, with
// what says where and on what they were measured.
func newResults(begin time.Time) *Results {
	r := &Results{
		Command:   "go run ./testnet/bench " + strings.Join(os.Args[1:], " "),
		Args:      os.Args[1:],
		Date:      begin.Format(time.RFC3339),
		GoVersion: cmdOut("go", "version"),
		Uname:     cmdOut("uname", "-a"),
		Nproc:     cmdOut("nproc"),
		CPU:       cpuModel(),
		Commit:    gitCommit(),
	}
	if r.Nproc == "" {
		r.Nproc = strconv.Itoa(runtime.NumCPU())
	}
	return r
}

// Step is one benchmark run by all.
type Step struct {
	Name    string  `json:"name"`
	Command string  `json:"command"`
	Log     string  `json:"log"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// all runs every benchmark in sequence, tees each one's output to
// DIR/NAME.txt, writes DIR/results.json (after every step, so a failed run
// keeps what it measured) and draws DIR/get-throughput.png and
// DIR/membership-vs-n.png.
func all(args []string) error {
	fs := flag.NewFlagSet("all", flag.ExitOnError)
	out := fs.String("out", "testnet/bench-results", "directory for results.json, the logs and the plots")
	quick := fs.Bool("quick", false, "small networks, few rounds and short durations: a smoke run of a few minutes")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("all: unexpected arguments %q", fs.Args())
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	begin := time.Now()
	r := newResults(begin)
	r.Quick = *quick
	fmt.Printf("%s\n%s, %s, %s cores (%s), commit %s\n\n", r.Command, r.Date, r.GoVersion, r.Nproc, r.CPU, r.Commit)

	// The parameters of each benchmark: the full run is the one recorded in
	// BENCHMARKS.md; -quick only checks that everything runs.
	p := struct {
		throughput, sizes, latency, members, traffic, kv, repair, churn, idle, scrub []string
		detectionNs                                                                  []int
		detectionRounds                                                              string
	}{
		throughput:      []string{"-size", "268435456", "-runs", "5"},
		sizes:           []string{"-sizes", defaultSizes, "-runs", "3"},
		latency:         []string{"-n", "20", "-gets", "200", "-cli-gets", "50"},
		members:         []string{"-n", "20", "-rounds", "10"},
		traffic:         []string{"-n", "10,20,50"},
		detectionNs:     []int{10, 20, 50},
		detectionRounds: "3",
		kv:              []string{"-n", "20", "-rounds", "20", "-keys", "10000"},
		repair:          []string{"-n", "10", "-rounds", "10", "-size", "1048576"},
		churn:           []string{"-n", "20", "-duration", "2m"},
		idle:            []string{"-n", "10,50,100", "-procs", "1", "-settle", "2m", "-window", "20s"},
		scrub:           []string{"-rates", "8,64", "-runs", "5"},
	}
	if *quick {
		p.throughput = []string{"-size", "67108864", "-runs", "2"}
		p.sizes = []string{"-sizes", "1KiB,16KiB,256KiB,4MiB,64MiB", "-runs", "2"}
		p.latency = []string{"-n", "5", "-gets", "50", "-cli-gets", "10"}
		p.members = []string{"-n", "5", "-rounds", "2"}
		p.traffic = []string{"-n", "5,10", "-window", "5s"}
		p.detectionNs, p.detectionRounds = []int{5, 10}, "2"
		p.kv = []string{"-n", "5", "-rounds", "5", "-keys", "1000"}
		p.repair = []string{"-n", "5", "-rounds", "2", "-size", "65536"}
		p.churn = []string{"-n", "5", "-duration", "20s"}
		p.idle = []string{"-n", "5,10", "-settle", "5s", "-window", "5s"}
		p.scrub = []string{"-rates", "8", "-store", "32", "-get", "16MiB", "-runs", "2", "-window", "3s"}
	}

	save := func() {
		b, err := json.MarshalIndent(r, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(*out, "results.json"), append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: results.json:", err)
		}
	}
	var failed []string
	// run runs one benchmark with its output teed to DIR/log.txt.
	run := func(name, log string, args []string, f func([]string) error) {
		cmd := "go run ./testnet/bench " + strings.Join(append([]string{name}, args...), " ")
		st := Step{Name: name, Command: cmd, Log: log + ".txt"}
		start := time.Now()
		err := teeTo(filepath.Join(*out, st.Log), func() error {
			fmt.Printf("=== %s   (%s)\n", cmd, time.Now().Format(time.RFC3339))
			return f(args)
		})
		st.Seconds = time.Since(start).Seconds()
		if err != nil {
			st.Error = err.Error()
			failed = append(failed, log)
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", log, err)
		}
		fmt.Printf("=== %s: %.0f s\n\n", log, st.Seconds)
		r.Steps = append(r.Steps, st)
		save()
	}

	run("throughput", "throughput", p.throughput, func(a []string) error {
		v, err := throughput(a)
		r.Throughput = keep(v, err)
		return err
	})
	run("sizes", "sizes", p.sizes, func(a []string) error {
		v, err := sizes(a)
		r.Sizes = keep(v, err)
		return err
	})
	run("scrub", "scrub", p.scrub, func(a []string) error {
		v, err := scrubBench(a)
		r.Scrub = keep(v, err)
		return err
	})
	run("latency", "latency", p.latency, func(a []string) error {
		v, err := latency(a)
		r.Latency = keep(v, err)
		return err
	})
	run("members", "members", p.members, func(a []string) error {
		v, err := members(a)
		r.Members = keep(v, err)
		return err
	})
	run("traffic", "traffic", p.traffic, func(a []string) error {
		v, err := traffic(a)
		r.Traffic = v
		return err
	})
	// Detection against N: members at each N of traffic, with few rounds;
	// the members run above stands for its own N.
	for _, n := range p.detectionNs {
		if r.Members != nil && r.Members.N == n {
			r.MembersVsN = append(r.MembersVsN, *r.Members)
			continue
		}
		run("members", fmt.Sprintf("members-n%d", n), []string{"-n", strconv.Itoa(n), "-rounds", p.detectionRounds}, func(a []string) error {
			v, err := members(a)
			if err == nil {
				r.MembersVsN = append(r.MembersVsN, v)
			}
			return err
		})
	}
	slices.SortFunc(r.MembersVsN, func(a, b MembersResult) int { return a.N - b.N })
	run("kv", "kv", p.kv, func(a []string) error {
		v, err := kvBench(a)
		r.KV = keep(v, err)
		return err
	})
	run("repair", "repair", p.repair, func(a []string) error {
		v, err := repairBench(a)
		r.Repair = keep(v, err)
		return err
	})
	run("churn", "churn", p.churn, func(a []string) error {
		v, err := churnBench(a)
		r.Churn = keep(v, err)
		return err
	})
	run("idle", "idle", p.idle, func(a []string) error {
		v, err := idle(a)
		r.Idle = v
		return err
	})

	failed = append(failed, drawPlots(r, *out)...)
	r.Finished = time.Now().Format(time.RFC3339)
	r.Seconds = time.Since(begin).Seconds()
	save()
	fmt.Printf("results: %s (%s)\n", filepath.Join(*out, "results.json"), time.Since(begin).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// drawPlots draws the plots of r into dir and names those it could not.
func drawPlots(r *Results, dir string) (failed []string) {
	r.Plots = nil
	for _, pl := range []struct {
		name string
		draw func(*Results, string) error
	}{{"get-throughput.png", plotThroughput}, {"membership-vs-n.png", plotMembership}} {
		path := filepath.Join(dir, pl.name)
		if err := pl.draw(r, path); err != nil {
			failed = append(failed, pl.name)
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", pl.name, err)
			continue
		}
		r.Plots = append(r.Plots, pl.name)
		fmt.Println("plot:", path)
	}
	return failed
}

// replot draws the plots again from DIR/results.json, without running
// anything.
func replot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ExitOnError)
	dir := fs.String("out", "testnet/bench-results", "directory of results.json; the plots go there too")
	fs.Parse(args)
	b, err := os.ReadFile(filepath.Join(*dir, "results.json"))
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	if failed := drawPlots(&r, *dir); len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// keep returns &v when err is nil, else nil: a failed benchmark's figures
// are partial and stay out of results.json (its log holds what it printed).
func keep[T any](v T, err error) *T {
	if err != nil {
		return nil
	}
	return &v
}

// teeTo runs f with os.Stdout and os.Stderr copied, as they are, to the
// file at path as well.
func teeTo(path string, f func() error) error {
	lf, err := os.Create(path)
	if err != nil {
		return err
	}
	defer lf.Close()
	origOut, origErr := os.Stdout, os.Stderr
	ro, wo, err := os.Pipe()
	if err != nil {
		return err
	}
	re, we, err := os.Pipe()
	if err != nil {
		ro.Close()
		wo.Close()
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(io.MultiWriter(origOut, lf), ro) }()
	go func() { defer wg.Done(); io.Copy(io.MultiWriter(origErr, lf), re) }()
	os.Stdout, os.Stderr = wo, we
	ferr := f()
	os.Stdout, os.Stderr = origOut, origErr
	wo.Close()
	we.Close()
	copied := make(chan struct{})
	go func() { wg.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(10 * time.Second): // a child process still holds a pipe
		fmt.Fprintln(os.Stderr, "bench: output of", path, "still open after 10 s; log may be cut short")
	}
	ro.Close()
	re.Close()
	return ferr
}

func cmdOut(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// gitCommit is HEAD, with "+dirty" when the tree has changes.
func gitCommit() string {
	c := cmdOut("git", "rev-parse", "--short", "HEAD")
	if c == "" {
		return ""
	}
	if cmdOut("git", "status", "--porcelain", "--untracked-files=no") != "" {
		c += "+dirty"
	}
	return c
}

var errNoData = errors.New("no figures to plot")
