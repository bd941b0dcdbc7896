package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotThroughput draws get throughput (MB/s) against file size (log x)
// from the sizes figures, with the raw libp2p stream of the throughput
// figures as a reference line.
func plotThroughput(r *Results, path string) error {
	if r.Sizes == nil || len(r.Sizes.Points) == 0 {
		return errNoData
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("p2pshare get throughput against file size\n2 daemons on loopback, R=1, get through the API; %s cores, %s", r.Nproc, r.Date[:10])
	p.X.Label.Text = "file size (log scale)"
	p.Y.Label.Text = "throughput (MB/s, 1 MB = 10^6 bytes)"
	p.X.Scale = plot.LogScale{}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.YOffs = -vg.Points(6)
	p.Y.Tick.Marker = plainTicks{}
	p.Add(plotter.NewGrid())

	var med, all plotter.XYs
	var ticks []plot.Tick
	ymax := 0.0
	for _, pt := range r.Sizes.Points {
		x := float64(pt.Size)
		med = append(med, plotter.XY{X: x, Y: pt.MedianMBps})
		for _, v := range pt.MBps {
			all = append(all, plotter.XY{X: x, Y: v})
			ymax = math.Max(ymax, v)
		}
		ticks = append(ticks, plot.Tick{Value: x, Label: sizeName(pt.Size)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)

	line, points, err := plotter.NewLinePoints(med)
	if err != nil {
		return err
	}
	line.Color, points.Color = plotutil.Color(0), plotutil.Color(0)
	line.Width = vg.Points(2)
	points.Shape = draw.CircleGlyph{}
	points.Radius = vg.Points(3.5)
	p.Add(line, points)
	p.Legend.Add(fmt.Sprintf("p2pshare get, median of %d runs (labels: MB/s, time per get)", r.Sizes.Runs), line, points)
	var texts []string
	for _, pt := range r.Sizes.Points {
		texts = append(texts, fmt.Sprintf("%.3g MB/s\n%s", pt.MedianMBps, secondsText(pt.MedianSeconds)))
	}
	// Each median's label: above its point in the lower half of the plot,
	// below it in the upper half (where the legend and the raw line are).
	top := 0.0
	for _, pt := range r.Sizes.Points {
		top = math.Max(top, pt.MedianMBps)
	}
	for i := range texts {
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: med[i : i+1], Labels: texts[i : i+1]})
		if err != nil {
			return err
		}
		st := &labels.TextStyle[0]
		st.Font.Size = vg.Points(9)
		st.XAlign, st.YAlign = draw.XCenter, draw.YBottom
		labels.Offset = vg.Point{Y: vg.Points(6)}
		if med[i].Y > top/2 {
			st.YAlign = draw.YTop
			labels.Offset.Y = -vg.Points(8)
		}
		switch i {
		case 0:
			st.XAlign = draw.XLeft
		case len(texts) - 1:
			st.XAlign = draw.XRight
		}
		p.Add(labels)
	}

	if r.Sizes.Runs > 1 {
		s, err := plotter.NewScatter(all)
		if err != nil {
			return err
		}
		s.Color = color.Gray{Y: 120}
		s.Shape = draw.CrossGlyph{}
		s.Radius = vg.Points(3)
		p.Add(s)
		p.Legend.Add("single runs", s)
	}

	if t := r.Throughput; t != nil && t.RawMedian > 0 {
		lo, hi := float64(r.Sizes.Points[0].Size), float64(r.Sizes.Points[len(r.Sizes.Points)-1].Size)
		raw, err := plotter.NewLine(plotter.XYs{{X: lo, Y: t.RawMedian}, {X: hi, Y: t.RawMedian}})
		if err != nil {
			return err
		}
		raw.Color = plotutil.Color(1)
		raw.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		raw.Width = vg.Points(1.5)
		p.Add(raw)
		p.Legend.Add(fmt.Sprintf("raw libp2p stream into SHA-256 + file, %s (median of %d)", sizeName(t.Size), t.Runs), raw)
		ymax = math.Max(ymax, t.RawMedian)
	}
	p.Y.Max = ymax * 1.25 // room for the legend
	return p.Save(9*vg.Inch, 6*vg.Inch, path)
}

// plotMembership draws, against N, the membership (GossipSub) traffic per
// node and the time until every node sees a node dead after kill -9 and
// after SIGSTOP, in two panels of one image.
func plotMembership(r *Results, path string) error {
	if len(r.Traffic) == 0 && len(r.MembersVsN) == 0 {
		return errNoData
	}
	var nticks []plot.Tick
	seen := map[int]bool{}
	addTick := func(n int) {
		if !seen[n] {
			seen[n] = true
			nticks = append(nticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
		}
	}
	for _, t := range r.Traffic {
		addTick(t.N)
	}
	for _, m := range r.MembersVsN {
		addTick(m.N)
	}

	top := plot.New()
	top.Title.Text = fmt.Sprintf("Membership traffic per node against network size (loopback, %s cores, %s)", r.Nproc, r.Date[:10])
	top.X.Label.Text = "N (daemons in the network)"
	top.Y.Label.Text = "bytes/s per node (in + out)"
	top.Y.Min = 0
	top.Y.Tick.Marker = plainTicks{}
	top.X.Tick.Marker = plot.ConstantTicks(nticks)
	top.Legend.Top, top.Legend.Left = true, true
	top.Legend.YOffs = -vg.Points(6)
	top.Add(plotter.NewGrid())
	if len(r.Traffic) > 0 {
		var gossip, total plotter.XYs
		var spread plotter.YErrors
		ymax := 0.0
		for _, t := range r.Traffic {
			gossip = append(gossip, plotter.XY{X: float64(t.N), Y: t.GossipMedian})
			total = append(total, plotter.XY{X: float64(t.N), Y: t.AllLibp2pMedian})
			spread = append(spread, struct{ Low, High float64 }{t.GossipMedian - t.GossipMin, t.GossipMax - t.GossipMedian})
			ymax = math.Max(ymax, math.Max(t.GossipMax, t.AllLibp2pMedian))
		}
		if err := addLine(top, gossip, 0, nil, "membership (GossipSub and the detector's pings), median node; bars: min to max"); err != nil {
			return err
		}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{gossip, spread})
		if err != nil {
			return err
		}
		eb.Color = plotutil.Color(0)
		top.Add(eb)
		if err := addLine(top, total, 2, []vg.Length{vg.Points(6), vg.Points(3)}, "all libp2p traffic, median node"); err != nil {
			return err
		}
		top.Y.Max = ymax * 1.35
	}

	bot := plot.New()
	bot.Title.Text = "Failure detection time against network size"
	bot.X.Label.Text = "N (daemons in the network)"
	bot.Y.Label.Text = "until every node sees it dead, or alive again (s, log scale)"
	bot.X.Tick.Marker = plot.ConstantTicks(nticks)
	bot.Legend.Top, bot.Legend.Left = true, true
	bot.Legend.YOffs = -vg.Points(6)
	bot.Add(plotter.NewGrid())
	if len(r.MembersVsN) > 0 {
		var km, kp, sm, sp, bm plotter.XYs
		ymin, ymax := math.Inf(1), 0.0
		for _, m := range r.MembersVsN {
			x := float64(m.N)
			km = append(km, plotter.XY{X: x, Y: m.KillMedianMs / 1000})
			kp = append(kp, plotter.XY{X: x, Y: m.KillP99Ms / 1000})
			sm = append(sm, plotter.XY{X: x, Y: m.StopMedianMs / 1000})
			sp = append(sp, plotter.XY{X: x, Y: m.StopP99Ms / 1000})
			if m.BackMedianMs > 0 {
				bm = append(bm, plotter.XY{X: x, Y: m.BackMedianMs / 1000})
				ymin = math.Min(ymin, m.BackMedianMs/1000)
			}
			ymax = math.Max(ymax, math.Max(m.KillP99Ms, m.StopP99Ms)/1000)
			ymin = math.Min(ymin, math.Min(m.KillMedianMs, m.StopMedianMs)/1000)
		}
		// kill -9 is found in tens of milliseconds, SIGSTOP in seconds: a
		// log scale shows both. The lines hold log10 of the seconds on a
		// linear axis labelled in seconds (plot's LogScale misplaces a long
		// axis label's box and leaves a gap above the data).
		if ymin > 0 {
			for _, xys := range []plotter.XYs{km, kp, sm, sp, bm} {
				for i := range xys {
					xys[i].Y = math.Log10(xys[i].Y)
				}
			}
			bot.Y.Tick.Marker = logTicks{}
			bot.Y.Min, bot.Y.Max = math.Log10(ymin/2), math.Log10(ymax*10) // room for the legend
		} else {
			bot.Y.Label.Text = "until every node sees it dead, or alive again (s)"
			bot.Y.Min, bot.Y.Max = 0, ymax*1.45
			bot.Y.Tick.Marker = plainTicks{}
		}
		dash := []vg.Length{vg.Points(4), vg.Points(3)}
		rounds := roundsText(r.MembersVsN)
		for _, l := range []struct {
			xys    plotter.XYs
			color  int
			dashes []vg.Length
			name   string
		}{
			{km, 0, nil, "kill -9, median" + rounds},
			{kp, 0, dash, "kill -9, p99"},
			{sm, 1, nil, "SIGSTOP, median"},
			{sp, 1, dash, "SIGSTOP, p99"},
			{bm, 2, nil, "SIGCONT until alive everywhere, median"},
		} {
			if len(l.xys) == 0 {
				continue
			}
			if err := addLine(bot, l.xys, l.color, l.dashes, l.name); err != nil {
				return err
			}
		}
	}

	const w, h = 9 * vg.Inch, 10 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 8 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	top.Draw(tiles.At(dc, 0, 0))
	bot.Draw(tiles.At(dc, 0, 1))
	png := vgimg.PngCanvas{Canvas: img}
	return writeTo(path, png)
}

// roundsText says how many kills and stops each N's detection figures
// rest on.
func roundsText(ms []MembersResult) string {
	s := " ("
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("N=%d: %d rounds", m.N, m.Rounds)
	}
	return s + ")"
}

func addLine(p *plot.Plot, xys plotter.XYs, c int, dashes []vg.Length, name string) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, pts.Color = plotutil.Color(c), plotutil.Color(c)
	l.Width = vg.Points(1.5)
	l.Dashes = dashes
	pts.Shape = draw.CircleGlyph{}
	pts.Radius = vg.Points(3)
	p.Add(l, pts)
	p.Legend.Add(name, l, pts)
	return nil
}

func writeTo(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plainTicks are plot's default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// secondsText writes s seconds with 3 significant digits in s, ms or µs.
func secondsText(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	}
	return fmt.Sprintf("%.3g µs", s*1e6)
}

// logTicks mark an axis of log10 values at 1, 2 and 5 times each power of
// ten, labelled with the values themselves, with unlabelled ticks between.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	lo, hi = math.Pow(10, lo), math.Pow(10, hi)
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow10(int(e)) <= hi; e++ {
		dec := math.Pow10(int(e))
		for i := 1; i < 10; i++ {
			v := dec * float64(i)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: math.Log10(v)}
			if i == 1 || i == 2 || i == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}
