package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
	"github.com/p2pshare/p2pshare/testnet/internet"
)

// NATResult holds the figures of nat.
type NATResult struct {
	DirectSecs    []float64 `json:"direct_s"`
	DirectMedian  float64   `json:"direct_median_s"`
	Failed        int       `json:"direct_failed"`
	Size          int64     `json:"size"`
	RawMBps       []float64 `json:"raw_MBps"`
	GetMBps       []float64 `json:"get_MBps"`
	RelayMBps     []float64 `json:"relayed_MBps"`
	RawMedian     float64   `json:"raw_median_MBps"`
	GetMedian     float64   `json:"get_median_MBps"`
	RelayedMedian float64   `json:"relayed_median_MBps"`
}

// natDaemons starts a daemon on each of hosts in in (the first is the
// others' bootstrap), listening on port 4040, with --replicas 1.
func natDaemons(ctx context.Context, in *internet.Internet, bin, dir string, hosts []string, args ...string) (*testnet.Network, error) {
	nw := testnet.New(bin, dir)
	nw.Args = append([]string{"--replicas", "1"}, args...)
	nw.Setup = func(d *testnet.Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix()
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/4040", h.IP), fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return nw, nw.Up(ctx, len(hosts))
}

// keepLogs copies the logs of nw's daemons into dir, named by host.
func keepLogs(nw *testnet.Network, dir string, hosts []string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "keep logs: %v\n", err)
		return
	}
	for i, h := range hosts {
		b, err := os.ReadFile(nw.Node(i + 1).Log)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, h+".log"), b, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "keep logs: %v\n", err)
		}
	}
}

// viaOf returns how d's connections to id run: "direct" if any is.
func viaOf(d *testnet.Daemon, id string) string {
	var ps []struct {
		ID  string `json:"id"`
		Via string `json:"via"`
	}
	if err := d.JSON(&ps, "peers", "--json"); err != nil {
		return ""
	}
	via := ""
	for _, p := range ps {
		if p.ID == id && (via == "" || p.Via == "direct") {
			via = p.Via
		}
	}
	return via
}

// shareOn shares a file of size random bytes on d and returns its CID.
func shareOn(d *testnet.Daemon, dir string, size int64) (string, error) {
	src := filepath.Join(dir, fmt.Sprintf("payload-%d.bin", size))
	if err := randomFile(src, size); err != nil {
		return "", err
	}
	var s struct {
		CID string `json:"cid"`
	}
	if err := d.JSON(&s, "share", src, "--json"); err != nil {
		return "", err
	}
	return s.CID, nil
}

var errNoDirect = errors.New("no direct connection 2 minutes after start")

// timeToDirect builds a public host and two home NATs, starts a daemon on
// each, and returns the time from the NATed daemons' start to their direct
// (hole-punched) connection: the one behind nat2 fetches a small file the
// other shares, over the relay, and the hole punch follows.
func timeToDirect(bin string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in, err := internet.Build(ctx, internet.TwoNATs(internet.KindMasquerade, internet.KindMasquerade, internet.Link{Delay: 5 * time.Millisecond}))
	if err != nil {
		return 0, err
	}
	defer in.Close()
	dir, err := os.MkdirTemp("", "p2pshare-bench-nat-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	hosts := []string{"pub", "nat1-a", "nat2-a"}
	nw := testnet.New(bin, filepath.Join(dir, "net"))
	nw.Args = []string{"--replicas", "1"}
	nw.Setup = func(d *testnet.Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix()
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/4040", h.IP), fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP)}
	}
	defer nw.Down()
	os.MkdirAll(nw.Dir, 0o755)
	pub, err := nw.Add(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := nw.Add(ctx, pub.TCPAddr()); errs <- err }()
	}
	for range 2 {
		if e := <-errs; e != nil {
			return 0, e
		}
	}
	a, b := nw.Node(2), nw.Node(3)
	if a.Index != 2 || in.Host("nat1-a") == nil {
		return 0, fmt.Errorf("unexpected network")
	}
	cid, err := shareOn(a, dir, 1<<10)
	if err != nil {
		return 0, err
	}
	for {
		if time.Since(start) > 2*time.Minute {
			return 0, errNoDirect
		}
		if viaOf(a, b.ID) == "direct" && viaOf(b, a.ID) == "direct" {
			return time.Since(start).Seconds(), nil
		}
		// Until the two have met, ask for the file (a NATed node's first
		// relay address comes some 15 s after its start).
		if viaOf(b, a.ID) == "" {
			b.Run("get", cid, "-o", filepath.Join(dir, "got"), "--force")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nat measures what crossing NATs costs: the time two NATed daemons take
// from start to a hole-punched connection, and a get's throughput over a
// 30 ms round trip, against a raw libp2p stream over the same path, and
// over a relay against direct at the same round trip.
func nat(args []string) (NATResult, error) {
	fs := flag.NewFlagSet("nat", flag.ExitOnError)
	rounds := fs.Int("rounds", 10, "fresh internets timed from start to a direct connection")
	size := fs.Int64("size", 64<<20, "file size in bytes")
	runs := fs.Int("runs", 3, "transfers of each kind (interleaved)")
	logs := fs.String("logs", "", "run the throughput daemons at debug level and keep their logs in this directory")
	fs.Parse(args)
	fig := NATResult{Size: *size}
	bin, err := benchBinary()
	if err != nil {
		return fig, err
	}
	for r := 0; r < *rounds; r++ {
		secs, err := timeToDirect(bin)
		if errors.Is(err, errNoDirect) {
			fig.Failed++
			fmt.Printf("round %d: %v\n", r+1, err)
			continue
		}
		if err != nil {
			return fig, fmt.Errorf("round %d: %w", r+1, err)
		}
		fig.DirectSecs = append(fig.DirectSecs, secs)
		fmt.Printf("round %d: direct %.1f s after start\n", r+1, secs)
	}
	if len(fig.DirectSecs) > 0 {
		fig.DirectMedian = median(fig.DirectSecs)
		fmt.Printf("\nstart to hole-punched connection: %d of %d rounds, median %.1f s\n\n", len(fig.DirectSecs), *rounds, fig.DirectMedian)
	}
	if *runs == 0 {
		return fig, nil
	}

	// pub relays at no delay; h1, h2 and both routers are 15 ms from the
	// segment: h1-h2 and nat1-a-pub-nat2-a are both 30 ms round trips.
	l := internet.Link{Delay: 15 * time.Millisecond}
	topo := internet.Topology{
		Hosts: []internet.Host{{Name: "pub"}, {Name: "h1", Link: l}, {Name: "h2", Link: l}},
		Routers: []internet.Router{
			{Name: "nat1", Kind: internet.KindMasquerade, Link: l, Hosts: []internet.Host{{Name: "nat1-a"}}},
			{Name: "nat2", Kind: internet.KindHard, Link: l, Hosts: []internet.Host{{Name: "nat2-a"}}},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	in, err := internet.Build(ctx, topo)
	if err != nil {
		return fig, err
	}
	defer in.Close()
	dir, err := os.MkdirTemp("", "p2pshare-bench-nat-")
	if err != nil {
		return fig, err
	}
	defer os.RemoveAll(dir)
	hosts := []string{"pub", "h1", "h2", "nat1-a", "nat2-a"}
	var debug []string
	if *logs != "" {
		debug = []string{"--log-level", "debug"}
	}
	nw, err := natDaemons(ctx, in, bin, filepath.Join(dir, "net"), hosts, debug...)
	if nw != nil {
		defer nw.Down()
		if *logs != "" {
			defer keepLogs(nw, *logs, hosts)
		}
	}
	if err != nil {
		return fig, err
	}
	h1, h2, n1, n2 := nw.Node(2), nw.Node(3), nw.Node(4), nw.Node(5)
	// The NATed nodes reserve relay slots once AutoNAT finds them private.
	for _, d := range []*testnet.Daemon{n1, n2} {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			var id struct {
				PublicAddrs []string `json:"public_addrs"`
			}
			if d.JSON(&id, "id", "--json") == nil && strings.Contains(strings.Join(id.PublicAddrs, " "), "/p2p-circuit") {
				break
			}
			if time.Now().After(deadline) {
				return fig, fmt.Errorf("node %d has no relay address a minute after start", d.Index)
			}
		}
	}
	src := filepath.Join(dir, "payload.bin")
	if err := randomFile(src, *size); err != nil {
		return fig, err
	}
	want, err := fileSHA(src)
	if err != nil {
		return fig, err
	}
	var s struct {
		CID string `json:"cid"`
	}
	if err := h1.JSON(&s, "share", src, "--json"); err != nil {
		return fig, err
	}
	direct := s.CID
	// Other bytes of the same size, held by nat1-a alone.
	src2 := filepath.Join(dir, "payload2.bin")
	if err := randomFile(src2, *size); err != nil {
		return fig, err
	}
	want2, err := fileSHA(src2)
	if err != nil {
		return fig, err
	}
	if err := n1.JSON(&s, "share", src2, "--json"); err != nil {
		return fig, err
	}
	relayedCID := s.CID

	self, err := os.Executable()
	if err != nil {
		return fig, err
	}
	h1Host := in.Host("h1")
	addr, stopRaw, err := startRawServer(h1Host.Prefix(), src, fmt.Sprintf("/ip4/%s/tcp/4050", h1Host.IP))
	if err != nil {
		return fig, err
	}
	defer stopRaw()
	h2Host := in.Host("h2")

	mb := float64(*size) / 1e6
	timedGet := func(d *testnet.Daemon, cid, from string) (float64, string, error) {
		want := want
		if cid == relayedCID {
			want = want2
		}
		dst := filepath.Join(dir, "get.out")
		defer os.Remove(dst)
		start := time.Now()
		var g struct {
			Via      string  `json:"via"`
			Provider string  `json:"provider"`
			Millis   float64 `json:"elapsed_ms"`
		}
		if err := d.JSON(&g, "get", cid, "-o", dst, "--json", "--force"); err != nil {
			return 0, "", err
		}
		secs := time.Since(start).Seconds()
		fmt.Printf("  get on node %d: %.0f ms, of which %.0f ms in the daemon's get\n", d.Index, secs*1000, g.Millis)
		if sum, err := fileSHA(dst); err != nil || sum != want {
			return 0, "", fmt.Errorf("get: hash %s (%v), want %s", sum, err, want)
		}
		if g.Provider != from {
			return 0, "", fmt.Errorf("get served by %s, want %s", g.Provider, from)
		}
		return mb / secs, g.Via, nil
	}
	// The relayed get waits for a hole punch that cannot work (nat2 is a
	// symmetric NAT) once: warm it up so the runs time the transfer.
	if _, _, err := timedGet(n2, relayedCID, n1.ID); err != nil {
		return fig, fmt.Errorf("relayed warm-up: %w", err)
	}
	if _, _, err := timedGet(h2, direct, h1.ID); err != nil {
		return fig, fmt.Errorf("direct warm-up: %w", err)
	}
	for r := 0; r < *runs; r++ {
		dst := filepath.Join(dir, "raw.out")
		o, err := exec.Command(h2Host.Prefix()[0], append(h2Host.Prefix()[1:], self, "rawget", addr, dst, "warm")...).Output()
		if err != nil {
			return fig, fmt.Errorf("raw get: %w", err)
		}
		var secs float64
		var sum string
		fmt.Sscanf(string(o), "%f %s", &secs, &sum)
		os.Remove(dst)
		if sum != want {
			return fig, fmt.Errorf("raw get: hash %s, want %s", sum, want)
		}
		fig.RawMBps = append(fig.RawMBps, mb/secs)
		g, via, err := timedGet(h2, direct, h1.ID)
		if err != nil {
			return fig, err
		}
		if via != "direct" {
			return fig, fmt.Errorf("h1 to h2 via %s", via)
		}
		fig.GetMBps = append(fig.GetMBps, g)
		rg, via, err := timedGet(n2, relayedCID, n1.ID)
		if err != nil {
			return fig, err
		}
		if via != "relayed" {
			return fig, fmt.Errorf("nat1-a to nat2-a via %s, want relayed", via)
		}
		fig.RelayMBps = append(fig.RelayMBps, rg)
		fmt.Printf("run %d (30 ms RTT): raw stream %.1f MB/s   get direct %.1f MB/s   get relayed %.1f MB/s\n", r+1, fig.RawMBps[r], g, rg)
	}
	fig.RawMedian, fig.GetMedian, fig.RelayedMedian = median(fig.RawMBps), median(fig.GetMBps), median(fig.RelayMBps)
	fmt.Printf("\n%d MiB over a 30 ms round trip, %d runs, medians: raw libp2p stream %.1f MB/s; p2pshare get direct %.1f MB/s (ratio %.2f); relayed %.1f MB/s (%.2f of direct)\n",
		*size>>20, *runs, fig.RawMedian, fig.GetMedian, fig.GetMedian/fig.RawMedian, fig.RelayedMedian, fig.RelayedMedian/fig.GetMedian)
	b, _ := json.Marshal(fig)
	fmt.Printf("%s\n", b)
	return fig, nil
}
