package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/p2pshare/p2pshare/testnet/membersim"
)

// simBench runs the membership simulator (testnet/membersim) at each N,
// prints each report, and with -out writes the reports as JSON and their
// plot against N.
//
//	go run ./testnet/bench sim -n 100,1000,10000 -seed 1 -out docs/bench
func simBench(args []string) ([]*membersim.Report, error) {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	ns := fs.String("n", "100,1000,10000", "members, comma-separated")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same report")
	loss := fs.Float64("loss", 0.01, "probability that a transmission is lost")
	silent := fs.Int("silent", 10, "members that go silent")
	joins := fs.Int("joins", 10, "members that join")
	partition := fs.Float64("partition", 0, "fraction of members cut off for -partition-for after the warm-up")
	partFor := fs.Duration("partition-for", 5*time.Second, "how long the partition lasts")
	out := fs.String("out", "", "directory for membersim.json and membersim-vs-n.png")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	nodes, err := counts("-n", *ns, 10)
	if err != nil {
		return nil, err
	}
	var reps []*membersim.Report
	for _, n := range nodes {
		p := membersim.DefaultParams(n)
		p.Seed, p.Loss, p.Silent, p.Joins = *seed, *loss, *silent, *joins
		p.PartitionFrac, p.PartitionFor = *partition, *partFor
		start := time.Now()
		r := membersim.Run(p)
		fmt.Printf("%s\n(%.1f s wall time on this machine, one goroutine, GOMAXPROCS %d)\n\n", r, time.Since(start).Seconds(), runtime.GOMAXPROCS(0))
		reps = append(reps, r)
	}
	if *out == "" {
		return reps, nil
	}
	if err := writeJSON(filepath.Join(*out, "membersim.json"), reps); err != nil {
		return nil, err
	}
	return reps, plotSim(reps, filepath.Join(*out, "membersim-vs-n.png"))
}

// counts parses a comma-separated list of counts of at least least, the
// value of flag name.
func counts(name, list string, least int) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < least {
			return nil, fmt.Errorf("%s %q: want counts of at least %d, comma-separated", name, s, least)
		}
		out = append(out, n)
	}
	return out, nil
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// plotSim draws detection and join times (top) and traffic per member
// (bottom) against N, on a log scale of N.
func plotSim(reps []*membersim.Report, path string) error {
	if len(reps) == 0 {
		return errNoData
	}
	top, bot := plot.New(), plot.New()
	top.Title.Text = fmt.Sprintf("Membership core, simulated: detection and join against N (loss %.0f %%, seed %d)", 100*reps[0].Loss, reps[0].Seed)
	top.Y.Label.Text = "seconds"
	bot.Title.Text = "Membership traffic per member against N (simulated; libp2p framing, no TCP/IP headers)"
	bot.Y.Label.Text = "bytes/s per member"
	for _, p := range []*plot.Plot{top, bot} {
		p.X.Label.Text = "N (members, log scale)"
		p.X.Tick.Marker = logTicks{}
		p.Y.Min = 0
		p.Y.Tick.Marker = plainTicks{}
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
	}
	line := func(f func(*membersim.Report) float64) plotter.XYs {
		var xys plotter.XYs
		for _, r := range reps {
			xys = append(xys, plotter.XY{X: math.Log10(float64(r.N)), Y: f(r)})
		}
		return xys
	}
	dash := []vg.Length{vg.Points(6), vg.Points(3)}
	for _, l := range []struct {
		f      func(*membersim.Report) float64
		color  int
		dashes []vg.Length
		name   string
	}{
		{func(r *membersim.Report) float64 { return r.DeadFirst.Median }, 0, nil, "silent member dead on the first member, median"},
		{func(r *membersim.Report) float64 { return r.DeadAll.Median }, 1, nil, "silent member dead on every member, median"},
		{func(r *membersim.Report) float64 { return r.DeadAll.P99 }, 1, dash, "silent member dead on every member, p99"},
		{func(r *membersim.Report) float64 { return r.JoinAll.Median }, 2, nil, "join known on every member, median"},
	} {
		if err := addLine(top, line(l.f), l.color, l.dashes, l.name); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		f      func(*membersim.Report) float64
		color  int
		dashes []vg.Length
		name   string
	}{
		{func(r *membersim.Report) float64 { return r.BytesOut }, 0, nil, "sent, median member"},
		{func(r *membersim.Report) float64 { return r.BytesIn }, 1, nil, "received, median member"},
		{func(r *membersim.Report) float64 { return r.BytesOutMax }, 0, dash, "sent, busiest member"},
		{func(r *membersim.Report) float64 { return r.IdleBytesOut }, 2, nil, "sent, median member, idle (no failure, join or stall)"},
	} {
		if err := addLine(bot, line(l.f), l.color, l.dashes, l.name); err != nil {
			return err
		}
	}
	ymax := func(f func(*membersim.Report) float64) float64 {
		m := 0.0
		for _, r := range reps {
			m = math.Max(m, f(r))
		}
		return m * 1.45 // room for the legend
	}
	top.Y.Max = ymax(func(r *membersim.Report) float64 { return r.DeadAll.P99 })
	bot.Y.Max = ymax(func(r *membersim.Report) float64 { return r.BytesOutMax })
	img := vgimg.New(9*vg.Inch, 10*vg.Inch)
	plots := [][]*plot.Plot{{top}, {bot}}
	cs := plot.Align(plots, draw.Tiles{Rows: 2, Cols: 1, PadY: 8 * vg.Millimeter, PadX: 4 * vg.Millimeter}, draw.New(img))
	for i, row := range plots {
		row[0].Draw(cs[i][0])
	}
	return writeTo(path, vgimg.PngCanvas{Canvas: img})
}
