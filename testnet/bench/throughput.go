package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/p2pshare/p2pshare/node/api"
)

const rawProtocol = "/p2pshare-bench/raw/1.0.0"

// rawHost is a libp2p host with the transport stack p2pshare dials first
// (TCP, TLS, yamux), listening as listen says.
func rawHost(listen libp2p.Option) (host.Host, error) {
	return libp2p.New(listen,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
	)
}

// rawServe (a child process) serves FILE to every stream of rawProtocol
// and prints its address; it runs until stdin closes. A second argument is
// the multiaddr to listen on (default /ip4/127.0.0.1/tcp/0).
func rawServe(args []string) error {
	listen := "/ip4/127.0.0.1/tcp/0"
	if len(args) > 1 {
		listen = args[1]
	}
	h, err := rawHost(libp2p.ListenAddrStrings(listen))
	if err != nil {
		return err
	}
	defer h.Close()
	file := args[0]
	h.SetStreamHandler(rawProtocol, func(s network.Stream) {
		defer s.Close()
		f, err := os.Open(file)
		if err != nil {
			s.Reset()
			return
		}
		defer f.Close()
		_, _ = io.CopyBuffer(s, f, make([]byte, 1<<20))
	})
	fmt.Printf("%s/p2p/%s\n", h.Addrs()[0], h.ID())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// rawGet (a child process) fetches over rawProtocol from ADDR into OUT,
// hashing as it writes, and prints the seconds taken and the hash. The
// time includes the connection's setup, unless a third argument "warm"
// asks for the stream alone on a connection already open.
func rawGet(args []string) error {
	ai, err := peer.AddrInfoFromString(args[0])
	if err != nil {
		return err
	}
	h, err := rawHost(libp2p.NoListenAddrs)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := h.Connect(ctx, *ai); err != nil {
		return err
	}
	if len(args) > 2 && args[2] == "warm" {
		// Time the stream alone, on a connection already open (as a
		// get's is): one ping round trip lets yamux measure the RTT its
		// window growth needs.
		if r := <-ping.Ping(ctx, h, ai.ID); r.Error != nil {
			return fmt.Errorf("ping: %w", r.Error)
		}
		start = time.Now()
	}
	s, err := h.NewStream(ctx, ai.ID, rawProtocol)
	if err != nil {
		return err
	}
	f, err := os.Create(args[1])
	if err != nil {
		return err
	}
	sum := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(f, sum), s, make([]byte, 1<<20)); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("%.6f %s\n", time.Since(start).Seconds(), hex.EncodeToString(sum.Sum(nil)))
	return nil
}

// ThroughputResult holds the figures of throughput, in MB/s (10^6 bytes).
type ThroughputResult struct {
	Size      int64     `json:"size"`
	Runs      int       `json:"runs"`
	RawMBps   []float64 `json:"raw_MBps"`
	APIMBps   []float64 `json:"api_MBps"`
	CLIMBps   []float64 `json:"cli_MBps"`
	RawMedian float64   `json:"raw_median_MBps"`
	APIMedian float64   `json:"api_median_MBps"`
	CLIMedian float64   `json:"cli_median_MBps"`
	APIRatio  float64   `json:"api_ratio"`
	CLIRatio  float64   `json:"cli_ratio"`
}

// throughput compares, in one run and between the same two kinds of
// process on this machine, a p2pshare get of a file between two daemons
// with a raw libp2p stream of the same bytes into a SHA-256-and-file sink.
func throughput(args []string) (ThroughputResult, error) {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	size := fs.Int64("size", 256<<20, "file size in bytes")
	runs := fs.Int("runs", 5, "transfers of each kind (interleaved)")
	fs.Parse(args)
	fig := ThroughputResult{Size: *size, Runs: *runs}

	nw, cleanup, err := upWith(2, "--replicas", "1")
	if err != nil {
		return fig, err
	}
	defer cleanup()
	dir := filepath.Dir(nw.Dir)
	src := filepath.Join(dir, "payload.bin")
	if err := randomFile(src, *size); err != nil {
		return fig, err
	}
	want, err := fileSHA(src)
	if err != nil {
		return fig, err
	}
	c1, _ := clientOf(nw.Node(1))
	c2, _ := clientOf(nw.Node(2))
	ctx := context.Background()
	if _, err := c1.Share(ctx, api.ShareRequest{Name: "payload.bin", Path: src}); err != nil {
		return fig, err
	}
	self, err := os.Executable()
	if err != nil {
		return fig, err
	}
	addr, stopRaw, err := startRawServer(nil, src)
	if err != nil {
		return fig, err
	}
	defer stopRaw()

	var raws, gets, cliGets []float64
	mb := float64(*size) / 1e6
	for r := 0; r < *runs; r++ {
		dst := filepath.Join(dir, "raw.out")
		o, err := exec.Command(self, "rawget", addr, dst).Output()
		if err != nil {
			return fig, fmt.Errorf("raw get: %w", err)
		}
		var secs float64
		var sum string
		fmt.Sscanf(string(o), "%f %s", &secs, &sum)
		if sum != want {
			return fig, fmt.Errorf("raw get: hash %s, want %s", sum, want)
		}
		os.Remove(dst)
		raws = append(raws, mb/secs)

		dst = filepath.Join(dir, "get.out")
		start := time.Now()
		res, err := c2.Get(ctx, api.GetRequest{Ref: "payload.bin", Path: dst})
		if err != nil {
			return fig, err
		}
		apiSecs := time.Since(start).Seconds()
		os.Remove(dst)
		gets = append(gets, mb/apiSecs)
		_ = res

		start = time.Now()
		rr := nw.Node(2).Run("get", "payload.bin", "-o", dst)
		if rr.Code != 0 {
			return fig, fmt.Errorf("cli get: %s", rr.Stderr)
		}
		cliGets = append(cliGets, mb/time.Since(start).Seconds())
		os.Remove(dst)
		fmt.Printf("run %d: raw stream %.0f MB/s   p2pshare get (API) %.0f MB/s   (CLI) %.0f MB/s\n", r+1, raws[r], gets[r], cliGets[r])
	}
	mr, mg, mc := median(raws), median(gets), median(cliGets)
	fmt.Printf("\n%d MiB, %d runs, medians: raw libp2p stream %.0f MB/s; p2pshare get via API %.0f MB/s (ratio %.2f), via CLI %.0f MB/s (ratio %.2f)\n",
		*size>>20, *runs, mr, mg, mg/mr, mc, mc/mr)
	fig.RawMBps, fig.APIMBps, fig.CLIMBps = raws, gets, cliGets
	fig.RawMedian, fig.APIMedian, fig.CLIMedian = mr, mg, mc
	fig.APIRatio, fig.CLIRatio = mg/mr, mc/mr
	return fig, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func randomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// startRawServer starts this program's rawserve (the raw libp2p stream the
// get is compared with) serving src, run under prefix (say ip netns exec
// NS) and with its listen address when given, and returns the address it
// printed and a function that stops it.
func startRawServer(prefix []string, src string, listen ...string) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	argv := append(append(append([]string{}, prefix...), self, "rawserve", src), listen...)
	srv := exec.Command(argv[0], argv[1:]...)
	stdin, _ := srv.StdinPipe()
	out, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { stdin.Close(); srv.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("raw server: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}
