package testnet

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

// SitesTopology is the network RunSites runs on: three sites of three
// hosts with one-way delays of 15 ms (sites 1-2), 22 ms (1-3) and 30 ms
// (2-3) between them, and the given loss (0.01 is 1 %) on every uplink.
func SitesTopology(loss float64) internet.Topology { return internet.Sites(3, loss) }

// SitesPathRTT is the RTT of the paths between the sites of
// SitesTopology, by pair as SitesResult.RTTs names them.
var SitesPathRTT = map[string]float64{"site1-site2": 30, "site1-site3": 44, "site2-site3": 60}

// sitesHosts are the hosts of RunSites' first six daemons: three on site
// 1, two on site 2, one alone on site 3. Each node that leaves runs on
// sitesLeaverHost, beside the one on site 3.
var sitesHosts = []string{"site1-a", "site1-b", "site1-c", "site2-a", "site2-b", "site3-a"}

const sitesLeaverHost = "site3-b"

// SitesConfig says how RunSites runs.
type SitesConfig struct {
	Bin, Dir string
	// Trials is how many times each choice is made.
	Trials int
	// Soak is how long, after the trials, the members tables are watched
	// for a live node not seen alive.
	Soak time.Duration
	Logf func(format string, args ...any)
}

// Choice is how often one kind of "closest" choice picked the nearest
// site, with the site of every pick.
type Choice struct {
	Kind    string
	Want    string // the nearest site
	Nearest int
	Trials  int
	Picks   []string
}

func (c Choice) String() string {
	return fmt.Sprintf("%s: nearest (%s) chosen %d of %d (picks %s)", c.Kind, c.Want, c.Nearest, c.Trials, strings.Join(c.Picks, " "))
}

// SitesResult is what RunSites measured.
type SitesResult struct {
	Choices []Choice
	// NotAlive lists every time a node saw a running node in a state
	// other than alive, after all had first seen each other alive.
	NotAlive []string
	// SuspicionLines counts the log lines, over every daemon, of a member
	// turning suspect or dead, a probe left unanswered or a suspicion
	// refuted.
	SuspicionLines []string
	// RTTs is the range of rtt_ms the members tables showed at the end,
	// by pair of sites ("site1-site2"), and "same site".
	RTTs map[string][2]float64
	// RTTEsts is the same for rtt_est_ms, the estimates from network
	// coordinates (a pair is absent while no estimate was shown).
	RTTEsts map[string][2]float64
	// Nodes are the daemons that ran, stopped.
	Nodes []*Daemon
}

// RunSites starts daemons in in (built from SitesTopology) and makes each
// kind of closest choice cfg.Trials times: (a) a share's replica from a
// node with site mates (want: its site) and from the node alone on site 3
// (want: site 1, 22 ms against 30), (c) a get on site 2 of a file held on
// sites 1 and 3 (want: site 1, 15 ms against 30), (b) a node that joins
// site 3, shares and leaves (its file's second copy, beside site 3's other
// node, wants site 1). Throughout, every node's members table must show
// every running node alive. The daemons are stopped when it returns.
func RunSites(ctx context.Context, in *internet.Internet, cfg SitesConfig) (res SitesResult, err error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	nw := New(cfg.Bin, cfg.Dir)
	nw.Args = []string{"--replicas", "2"}
	hostOf := func(i int) string {
		if i <= len(sitesHosts) {
			return sitesHosts[i-1]
		}
		return sitesLeaverHost
	}
	defer func() { res.Nodes = nw.Nodes }()
	nw.Setup = func(d *Daemon) {
		h := in.Host(hostOf(d.Index))
		port := 4040 + d.Index // a leaver's successor does not wait for the port
		d.Prefix = h.Prefix()
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/%d", h.IP, port), fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", h.IP, port)}
	}
	defer func() {
		// Counted before the stop: a stopping node's peers see its
		// connections refused and suspect it, rightly.
		res.SuspicionLines = countSuspicions(nw)
		nw.Down()
	}()
	if err := nw.Up(ctx, len(sitesHosts)); err != nil {
		return res, err
	}
	siteOf := map[string]string{}
	site := func(d *Daemon) string { return strings.SplitN(hostOf(d.Index), "-", 2)[0] }
	for _, d := range nw.Nodes {
		siteOf[d.ID] = site(d)
	}
	if err := waitMembers(ctx, nw, nil, 60*time.Second); err != nil {
		return res, err
	}
	logf("%d daemons up, all alive on all", len(nw.Nodes))
	watch := func() {
		res.NotAlive = append(res.NotAlive, notAlive(nw, nil)...)
	}

	dir := filepath.Join(cfg.Dir, "files")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	file := func(name string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(name+": "+time.Now().String()+"\n"), 0o644)
	}
	share := func(d *Daemon, name string) (shareRepOutput, error) {
		var s shareRepOutput
		p, err := file(name)
		if err != nil {
			return s, err
		}
		if err := d.JSON(&s, "share", p, "--json"); err != nil {
			return s, err
		}
		if len(s.Replicas) != 1 {
			return s, fmt.Errorf("share %s on node %d: replicas %v (%s), want one", name, d.Index, s.Replicas, s.Error)
		}
		return s, nil
	}
	pickOf := func(c *Choice, id, want string) {
		c.Trials++
		got := siteOf[id]
		if got == "" {
			got = "?" + id
		}
		if got == want {
			c.Nearest++
		}
		c.Picks = append(c.Picks, got)
	}
	pick := func(c *Choice, id string) { pickOf(c, id, c.Want) }

	// (a) replicas: from a node with site mates, and from the node alone.
	same := Choice{Kind: "replica, sharer with site mates", Want: "site1"}
	alone := Choice{Kind: "replica, sharer alone on its site", Want: "site1"}
	var spread []shareRepOutput // held on sites 1 and 3
	for i := range cfg.Trials {
		s, err := share(nw.Node(2+i%2), fmt.Sprintf("same-%d.txt", i))
		if err != nil {
			return res, err
		}
		pick(&same, s.Replicas[0])
		if s, err = share(nw.Node(6), fmt.Sprintf("alone-%d.txt", i)); err != nil {
			return res, err
		}
		pick(&alone, s.Replicas[0])
		spread = append(spread, s)
	}
	logf("%v", same)
	logf("%v", alone)
	watch()

	// (c) gets on site 2 of files held on sites 1 and 3 (or, after a
	// replica misplaced, on sites 2 and 3: the nearest is then site 2).
	get := Choice{Kind: "get provider, holders on sites 1 and 3, getter on site 2", Want: "site1"}
	for i, s := range spread {
		want := get.Want
		if siteOf[s.Replicas[0]] == "site2" {
			want = "site2"
		}
		d := nw.Node(4 + i%2)
		var g struct {
			Provider string `json:"provider"`
		}
		if err := d.JSON(&g, "get", s.CID, "-o", filepath.Join(dir, fmt.Sprintf("got-%d", i)), "--json"); err != nil {
			return res, err
		}
		pickOf(&get, g.Provider, want)
	}
	logf("%v", get)
	watch()

	// (b) a node joins site 3, shares (its replica stays on site 3) and
	// leaves: the file's new copy goes to the nearest other site.
	joined := Choice{Kind: "replica, sharer joined site 3", Want: "site3"}
	leave := Choice{Kind: "relocation on leave from site 3, site mate already holding", Want: "site1"}
	for i := range cfg.Trials {
		l, err := nw.Add(ctx, nw.Node(1).TCPAddr())
		if err != nil {
			return res, err
		}
		siteOf[l.ID] = site(l)
		// It shares as soon as it knows the members, before it has
		// necessarily met them all: its choice must measure them.
		if err := waitMembers(ctx, nw, l, 60*time.Second); err != nil {
			return res, err
		}
		s, err := share(l, fmt.Sprintf("leaver-%d.txt", i))
		if err != nil {
			return res, err
		}
		pick(&joined, s.Replicas[0])
		var out struct {
			Moved []struct {
				CID string `json:"cid"`
				To  string `json:"to"`
			} `json:"moved"`
		}
		if err := l.JSON(&out, "leave", "--json"); err != nil {
			return res, err
		}
		if err := l.Wait(15 * time.Second); err != nil {
			return res, fmt.Errorf("node %d did not stop after leave: %w", l.Index, err)
		}
		for _, m := range out.Moved {
			if m.CID == s.CID {
				pick(&leave, m.To)
			}
		}
		if len(out.Moved) == 0 {
			leave.Trials++
			leave.Picks = append(leave.Picks, "none")
		}
		watch()
	}
	logf("%v", joined)
	logf("%v", leave)
	res.Choices = []Choice{same, alone, joined, get, leave}

	// (d) no live node is suspected: watch every node's table for Soak.
	for end := time.Now().Add(cfg.Soak); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(min(10*time.Second, time.Until(end))):
		}
		watch()
	}
	watch()
	res.RTTs, res.RTTEsts = memberRTTs(nw, siteOf)
	return res, nil
}

// shareRepOutput is what `share --json` says, with its replicas.
type shareRepOutput struct {
	CID      string   `json:"cid"`
	Replicas []string `json:"replicas"`
	Error    string   `json:"replica_error"`
}

// memberState is one row of `members --json`.
type memberState struct {
	ID    string  `json:"id"`
	State string  `json:"state"`
	Self  bool    `json:"self"`
	RTT   float64 `json:"rtt_ms"`
	Est   float64 `json:"rtt_est_ms"`
}

// notAlive returns "node I sees ID STATE" for every running node seen in a
// state other than alive by a running node (by observer only, if set).
func notAlive(nw *Network, observer *Daemon) []string {
	running := map[string]bool{}
	for _, d := range nw.Nodes {
		if d.Running() {
			running[d.ID] = true
		}
	}
	var out []string
	for _, d := range nw.Nodes {
		if !running[d.ID] || (observer != nil && d != observer) {
			continue
		}
		var ms []memberState
		if err := d.JSON(&ms, "members", "--json"); err != nil {
			out = append(out, fmt.Sprintf("node %d: %v", d.Index, err))
			continue
		}
		seen := map[string]bool{}
		for _, m := range ms {
			seen[m.ID] = true
			if running[m.ID] && m.State != "alive" {
				out = append(out, fmt.Sprintf("node %d sees %s %s", d.Index, m.ID, m.State))
			}
		}
		for id := range running {
			if !seen[id] {
				out = append(out, fmt.Sprintf("node %d does not know %s", d.Index, id))
			}
		}
	}
	return out
}

// waitMembers waits until every running node (observer only, if set)
// sees every running node alive.
func waitMembers(ctx context.Context, nw *Network, observer *Daemon, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		bad := notAlive(nw, observer)
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("members not all alive after %s: %s", limit, strings.Join(bad, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// suspicionMarks are the log messages of a member turning suspect or
// dead, a probe unanswered and a suspicion refuted.
var suspicionMarks = []string{`msg="member suspect"`, `msg="member dead"`, `msg="member did not answer a probe"`, `msg="refuting suspicion"`}

// countSuspicions returns the lines of every daemon's log holding a
// suspicion mark, each prefixed with the daemon's index.
func countSuspicions(nw *Network) []string {
	var lines []string
	for _, d := range nw.Nodes {
		b, _ := os.ReadFile(d.Log)
		for _, line := range strings.Split(string(b), "\n") {
			for _, m := range suspicionMarks {
				if strings.Contains(line, m) {
					lines = append(lines, fmt.Sprintf("node %d: %s", d.Index, line))
					break
				}
			}
		}
	}
	return lines
}

// loggedSince returns the lines of countSuspicions whose daemon logged
// them at t or later, by the time= field of slog's text format.
func loggedSince(lines []string, t time.Time) []string {
	var out []string
	for _, l := range lines {
		_, rest, ok := strings.Cut(l, "time=")
		if !ok {
			continue
		}
		stamp, _, _ := strings.Cut(rest, " ")
		if at, err := time.Parse(time.RFC3339Nano, stamp); err == nil && !at.Before(t) {
			out = append(out, l)
		}
	}
	return out
}

// memberRTTs returns the ranges of rtt_ms and of rtt_est_ms the running
// nodes' members tables show, by pair of sites.
func memberRTTs(nw *Network, siteOf map[string]string) (rtts, ests map[string][2]float64) {
	rtts, ests = map[string][2]float64{}, map[string][2]float64{}
	widen := func(out map[string][2]float64, key string, v float64) {
		r, ok := out[key]
		if !ok {
			r = [2]float64{math.Inf(1), 0}
		}
		out[key] = [2]float64{min(r[0], v), max(r[1], v)}
	}
	for _, d := range nw.Nodes {
		if !d.Running() {
			continue
		}
		var ms []memberState
		if d.JSON(&ms, "members", "--json") != nil {
			continue
		}
		for _, m := range ms {
			a, b := siteOf[d.ID], siteOf[m.ID]
			if m.Self || b == "" || m.State != "alive" {
				continue
			}
			key := "same site"
			if a != b {
				key = min(a, b) + "-" + max(a, b)
			}
			if m.RTT > 0 {
				widen(rtts, key, m.RTT)
			}
			if m.Est > 0 {
				widen(ests, key, m.Est)
			}
		}
	}
	return rtts, ests
}
