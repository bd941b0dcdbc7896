package testnet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

// SpreadConfig says how RunSpread runs.
type SpreadConfig struct {
	Bin, Dir string
	// PerSite is how many daemons run on each of the three sites; the
	// internet must have that many hosts a site (internet.Sites).
	PerSite int
	// Warm is how long the network runs after every node sees every other
	// alive and before the first write: time for the GossipSub meshes to
	// settle (GossipSub grafts by score once a minute).
	Warm time.Duration
	// Writes is how many key-value writes are timed, each on the next
	// site in turn and on the next node of that site (spreadWriter), so
	// every site writes from the third write on; Gap is the time between
	// two.
	Writes int
	Gap    time.Duration
	// StartGap is the network's Network.BatchGap: 0 starts every daemon
	// at once.
	StartGap time.Duration
	Logf     func(format string, args ...any)
}

// SpreadResult is what RunSpread measured.
type SpreadResult struct {
	// Delays are the times, in milliseconds, from a write's publication
	// to its receipt by another node, by where that node is: "same site"
	// as the writer, or the pair of sites ("site1-site2").
	Delays map[string][]float64
	// LocalHop counts, by the same groups, the receipts whose last hop
	// (the peer that forwarded the record) was on the receiver's site;
	// Receipts counts them all.
	LocalHop, Receipts map[string]int
	// Missing counts the receipts never logged.
	Missing int
	// SuspicionLines are the log lines of any suspicion, over the run:
	// the start of every daemon at once and their stop included.
	SuspicionLines []string
	// Settled is how long the network ran, before it was stopped, from a
	// minute after every node first saw every other alive; SettledLines
	// are those of SuspicionLines logged in that time.
	Settled      time.Duration
	SettledLines []string
}

// spreadSettle is how long after every node first sees every other alive
// RunSpread starts to count SpreadResult.SettledLines.
const spreadSettle = time.Minute

// RunSpread starts 3·cfg.PerSite daemons on the three sites of in (built
// from internet.Sites(cfg.PerSite, ...)), lets them settle, then times
// cfg.Writes key-value writes from the publisher's log line to every
// other node's: how fast news travels the GossipSub mesh to the writer's
// own site and to the others. The daemons run at debug level, which logs
// both ends. The daemons are stopped when it returns.
func RunSpread(ctx context.Context, in *internet.Internet, cfg SpreadConfig) (res SpreadResult, err error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.PerSite < 1 || cfg.Writes < 1 {
		return res, fmt.Errorf("spread: want at least one daemon a site and one write")
	}
	hostOf := func(i int) string { // i is 1-based
		return internet.LANHost(fmt.Sprintf("site%d", (i-1)/cfg.PerSite+1), (i-1)%cfg.PerSite)
	}
	nw := New(cfg.Bin, cfg.Dir)
	nw.Args = []string{"--replicas", "1", "--log-level", "debug"}
	nw.BatchGap = cfg.StartGap
	nw.Setup = func(d *Daemon) {
		h := in.Host(hostOf(d.Index))
		d.Prefix = h.Prefix()
		port := 4040 + d.Index
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/%d", h.IP, port), fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", h.IP, port)}
	}
	var settledAt time.Time // zero until every node saw every other alive
	defer func() {
		res.SuspicionLines = countSuspicions(nw)
		if !settledAt.IsZero() {
			res.Settled = max(time.Since(settledAt), 0)
			res.SettledLines = loggedSince(res.SuspicionLines, settledAt)
		}
		nw.Down()
	}()
	if err := nw.Up(ctx, 3*cfg.PerSite); err != nil {
		return res, err
	}
	if err := waitMembers(ctx, nw, nil, 2*time.Minute); err != nil {
		return res, err
	}
	settledAt = time.Now().Add(spreadSettle)
	logf("%d daemons up, all alive on all; warming for %s", len(nw.Nodes), cfg.Warm)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(cfg.Warm):
	}
	siteOf := map[string]string{}
	for _, d := range nw.Nodes {
		siteOf[d.ID] = strings.SplitN(hostOf(d.Index), "-", 2)[0]
	}
	var keys []string
	writer := map[string]*Daemon{}
	stamp := time.Now().UnixNano()
	for i := range cfg.Writes {
		d := nw.Nodes[spreadWriter(i, cfg.PerSite)]
		key := fmt.Sprintf("spread-%d-%d", stamp, i)
		if r := d.Run("kv", "put", key, "x"); r.Code != 0 {
			return res, fmt.Errorf("kv put on node %d: %s", d.Index, strings.TrimSpace(r.Stderr))
		}
		keys = append(keys, key)
		writer[key] = d
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(cfg.Gap):
		}
	}
	// Every node logs each receipt within a second on these paths; wait
	// until they have, or 15 s.
	var logs map[*Daemon]spreadLog
	deadline := time.Now().Add(15 * time.Second)
	for {
		logs = map[*Daemon]spreadLog{}
		missing := 0
		for _, d := range nw.Nodes {
			l, err := readSpreadLog(d.Log)
			if err != nil {
				return res, err
			}
			logs[d] = l
			for _, k := range keys {
				if writer[k] != d && l.received[k].at.IsZero() {
					missing++
				}
			}
		}
		res.Missing = missing
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	res.Delays, res.LocalHop, res.Receipts = map[string][]float64{}, map[string]int{}, map[string]int{}
	for _, k := range keys {
		w := writer[k]
		sent := logs[w].published[k]
		if sent.IsZero() {
			return res, fmt.Errorf("node %d did not log the publication of %s (is it at debug level?)", w.Index, k)
		}
		for _, d := range nw.Nodes {
			got, ok := logs[d].received[k]
			if d == w || !ok {
				continue
			}
			g := sitePair(siteOf[w.ID], siteOf[d.ID])
			res.Delays[g] = append(res.Delays[g], float64(got.at.Sub(sent))/float64(time.Millisecond))
			res.Receipts[g]++
			if siteOf[got.from] == siteOf[d.ID] {
				res.LocalHop[g]++
			}
		}
	}
	return res, nil
}

// spreadWriter is the index in the network's nodes (site 1's first, then
// site 2's, then site 3's, perSite each) of the node that makes write i
// (from 0): the sites in turn, and in each its nodes in turn.
func spreadWriter(i, perSite int) int { return i%3*perSite + i/3%perSite }

// sitePair names where a receiver is from a writer: "same site", or the
// two sites in order.
func sitePair(a, b string) string {
	if a == b {
		return "same site"
	}
	if a > b {
		a, b = b, a
	}
	return a + "-" + b
}

// spreadLog is what one daemon's log says of key-value records: when it
// published each key, and when (and from which peer) it received each.
type spreadLog struct {
	published map[string]time.Time
	received  map[string]receipt
}

type receipt struct {
	at   time.Time
	from string
}

// readSpreadLog reads the "record published" and "record received" lines
// of a daemon's debug log; the first receipt of a key counts.
func readSpreadLog(path string) (spreadLog, error) {
	l := spreadLog{published: map[string]time.Time{}, received: map[string]receipt{}}
	f, err := os.Open(path)
	if err != nil {
		return l, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="record `) {
			continue
		}
		f := logFields(line)
		pub := f["msg"] == "record published"
		if !pub && f["msg"] != "record received" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, f["time"])
		if err != nil || f["key"] == "" {
			continue
		}
		if pub {
			l.published[f["key"]] = at
		} else if _, seen := l.received[f["key"]]; !seen {
			l.received[f["key"]] = receipt{at: at, from: f["from"]}
		}
	}
	return l, sc.Err()
}

// logFields splits a slog text line into its key=value fields; a quoted
// value is unquoted, and a word without "=" is skipped.
func logFields(line string) map[string]string {
	out := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexAny(line, "= ")
		if eq < 0 {
			break
		}
		if line[eq] == ' ' { // a word without a value
			line = line[eq:]
			continue
		}
		k, rest := line[:eq], line[eq+1:]
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ := strconv.Unquote(q)
			out[k], line = v, rest[len(q):]
			continue
		}
		v, after, _ := strings.Cut(rest, " ")
		out[k], line = v, after
	}
	return out
}

// SpreadGroups returns the groups of r.Delays, same site first, then by
// pair of sites.
func (r SpreadResult) SpreadGroups() []string {
	var gs []string
	for g := range r.Delays {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		if (gs[i] == "same site") != (gs[j] == "same site") {
			return gs[i] == "same site"
		}
		return gs[i] < gs[j]
	})
	return gs
}
