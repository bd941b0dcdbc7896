package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node"
	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// Daemon option names.
const (
	optListen      = "listen"
	optBootstrap   = "bootstrap"
	optAPI         = "api"
	optNoMDNS      = "no-mdns"
	optSwarmKey    = "swarm-key"
	optMaxPeers    = "max-peers"
	optMaxFileSize = "max-file-size"
	optMaxResume   = "max-resume-bytes"
	optLogLevel    = "log-level"
	optLogFormat   = "log-format"
	optMaxUpRate   = "max-upload-rate"
	optMaxDownRate = "max-download-rate"
	optLocal       = "local"
	optReplicas    = "replicas"
	optScrubRate   = "scrub-rate"
	optScrubEvery  = "scrub-interval"
	optMaxRecords  = "max-records-per-writer"
	optAuthority   = "authority"
	optTicket      = "ticket"
	optAllow       = "allow"
	optNewIdentity = "new-identity"
	optAnnounce    = "announce"
	optRelay       = "relay"
	optNoPortMap   = "no-port-map"
	optRelayMaxDur = "relay-max-duration"
	optRelayMaxMB  = "relay-max-data"
	optDirectWait  = "direct-wait"
)

// daemonGOGC is the garbage collector's target the daemon runs with, unless
// GOGC is set in its environment. An idle daemon's live heap is a few MiB,
// and Go's default of 100 lets the heap grow by as much again, plus the
// stacks, between collections. 25 takes about 3.5 MiB (a fifth) off each
// idle daemon of a 100-node testnet, at no measurable CPU cost: an idle
// daemon allocates little, and transfers reuse their buffers (go run
// ./testnet/bench idle -n 100, run with GOGC=100 and with GOGC=25).
const daemonGOGC = 25

// swarmKeyFile is the swarm key a daemon picks up from its repo.
const swarmKeyFile = "swarm.key"

func newDaemonCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a p2pshare node in the foreground",
		Long: `daemon runs a node: it listens for peers (TCP and QUIC; TCP alone with a
swarm key), joins the network through the bootstrap peers and mDNS, serves
the files it holds, and serves the local API that the other commands use. It prints one ready line on
stdout once it is up, logs on stderr, and stops on SIGINT or SIGTERM (a
second signal forces the exit).

Across the internet it finds out whether it can be dialled from outside
(AutoNAT) and asks the router for a port mapping (--no-port-map: don't).
A public node serves the DHT and relays for admitted peers; a node behind
a NAT reserves a slot on a relay (its bootstrap peers, --relay, or a
connected public member) and moves to a direct connection by hole
punching. --announce gives the addresses of a node behind a port forward.

The API listens on loopback only (--api, default a random port); its
address is written to REPO/api and its bearer token to REPO/api.token.

The peer ID is the repo's identity key, REPO/identity.key, made at the
first start. A repo that has been used and lost its key refuses to start,
naming its old peer ID: restore the key from a backup, or start with
--new-identity to make a new identity on purpose. A damaged metadata
database (REPO/store/meta.db, REPO/kv.db) is moved aside, kept, and
rebuilt: from the content store, and from peers.

The daemon runs Go's garbage collector at GOGC=25, which keeps an idle
daemon small; set GOGC in its environment to choose another value.`,
		Example: `  # a first node, listening on loopback only, without mDNS
  p2pshare daemon --repo /tmp/n1 --listen /ip4/127.0.0.1/tcp/4041 --no-mdns
  # a second node joining through the first
  p2pshare daemon --repo /tmp/n2 --listen /ip4/127.0.0.1/tcp/4042 --no-mdns \
      --bootstrap /ip4/127.0.0.1/tcp/4041/p2p/12D3KooW...
  # behind a NAT, joining a network through its public node
  p2pshare daemon --bootstrap /dns4/share.example.org/tcp/4040/p2p/12D3KooW...`,
		Args: exactArgs(0, "no arguments"),
		RunE: runDaemon,
	}
	f := cmd.Flags()
	f.StringArray(optListen, nil, fmt.Sprintf("multiaddr to listen on, repeatable (default TCP and QUIC on port %d, all interfaces)", node.DefaultPort))
	f.StringArray(optBootstrap, nil, "multiaddr of a peer to join through, ending in /p2p/PEER_ID; repeatable")
	f.String(optAPI, "127.0.0.1:0", "HOST:PORT of the local API (loopback only; port 0 picks a free one)")
	f.Bool(optNoMDNS, false, "do not discover peers on the local network with mDNS")
	f.String(optSwarmKey, "", "swarm key file: talk only to nodes with the same key (TCP only; default REPO/swarm.key if present)")
	f.Int(optMaxPeers, node.DefaultConfig("").MaxPeers, "connections kept open to other peers; past it the least useful are closed")
	f.Int64(optMaxFileSize, 4<<30, "largest file in bytes this node shares, stores or fetches")
	f.Int64(optMaxResume, share.DefaultMaxPartialBytes, "bytes kept in REPO/store/partial so interrupted gets resume (oldest dropped first, and any untouched for 24 h); 0 keeps none")
	f.String(optLogLevel, "info", "log level: debug, info, warn or error")
	f.String(optLogFormat, "text", "log format on stderr: text (key=value) or json (one object a line, for journald and log collectors)")
	f.String(optAuthority, "", "the network authority's public key file: admit only peers with a ticket it signed (default REPO/authority.pub if present)")
	f.String(optTicket, "", "this node's admission ticket (default REPO/ticket.json if present)")
	f.StringArray(optAllow, nil, "peer ID admitted without a ticket; repeatable (also REPO/allowlist, one per line); alone, the only peers this node talks to")
	f.Int(optReplicas, 2, "R: how many nodes keep a copy of each file this node shares (1 turns replication off)")
	f.Float64(optScrubRate, 8, "MiB/s at which stored files are re-read and re-hashed to find bit rot (0 turns the scrub off)")
	f.String(optMaxUpRate, "0", "most bytes per second this node sends of the files it serves, all transfers together, e.g. 10MB/s, 512KiB/s or 8Mbit (0: no limit; gossip not counted)")
	f.String(optMaxDownRate, "0", "most bytes per second this node receives of the files it fetches (gets, replicas), all transfers together, e.g. 10MB/s (0: no limit)")
	f.Duration(optScrubEvery, 24*time.Hour, "how long a verified file waits before the scrub verifies it again")
	f.Bool(optNewIdentity, false, "make a new identity when REPO/identity.key is missing in a repo that has been used (tickets and allowlist entries for the old peer ID will no longer match)")
	f.Bool(optLocal, false, "loopback only: listen on 127.0.0.1 random ports, no mDNS (tests, demos)")
	f.Int(optMaxRecords, kv.DefaultConfig().MaxRecordsPerWriter, "most KV and catalog records this node keeps per writer (live ones, and as many deletes); a writer past it is refused")
	f.StringArray(optAnnounce, nil, "multiaddr to announce instead of the found ones (behind a port forward, in a container); repeatable")
	f.StringArray(optRelay, nil, "relay to reserve a slot on while behind a NAT, ending in /p2p/PEER_ID; repeatable (default the bootstrap peers)")
	f.Bool(optNoPortMap, false, "do not ask the router for a port mapping (UPnP, NAT-PMP)")
	rl := node.DefaultRelayLimits()
	f.Duration(optRelayMaxDur, rl.MaxDuration, "as a public node's relay: longest relayed connection")
	f.Int64(optRelayMaxMB, rl.MaxData>>20, "as a public node's relay: MiB one relayed connection carries each way")
	f.Duration(optDirectWait, share.DefaultConfig().DirectWait, "how long a transfer to a peer reached only through a relay waits for a direct connection (hole punch) before it uses the relay")
	return cmd
}

func runDaemon(cmd *cobra.Command, _ []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGOGC)
	}
	dir, err := repoDir(cmd)
	if err != nil {
		return err
	}
	f := cmd.Flags()
	if _, err := loadConfigFile(f, dir); err != nil {
		return fail("daemon", err)
	}
	level, _ := f.GetString(optLogLevel)
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return usageError{fmt.Sprintf("--%s %q: want debug, info, warn or error", optLogLevel, level)}
	}
	format, _ := f.GetString(optLogFormat)
	log, err := newLogger(cmd.ErrOrStderr(), format, lv)
	if err != nil {
		return err
	}

	cfg := node.DefaultConfig(dir)
	if local, _ := f.GetBool(optLocal); local {
		cfg = node.DefaultLocalConfig(dir)
	}
	cfg.Logger = log
	if ls, _ := f.GetStringArray(optListen); len(ls) > 0 {
		if cfg.ListenAddrs, err = node.ParseListen(ls); err != nil {
			return fail("daemon", err)
		}
	}
	bs, _ := f.GetStringArray(optBootstrap)
	if cfg.Bootstrap, err = node.ParseBootstrap(bs); err != nil {
		return fail("daemon", err)
	}
	if err := reachFlags(f, &cfg); err != nil {
		return err
	}
	if noMDNS, _ := f.GetBool(optNoMDNS); noMDNS {
		cfg.MDNS = false
	}
	cfg.NewIdentity, _ = f.GetBool(optNewIdentity)
	cfg.MaxPeers, _ = f.GetInt(optMaxPeers)
	cfg.Share.MaxFileSize, _ = f.GetInt64(optMaxFileSize)
	switch maxResume, _ := f.GetInt64(optMaxResume); {
	case maxResume < 0:
		return usageError{fmt.Sprintf("--%s %d: want 0 (keep none) or a number of bytes", optMaxResume, maxResume)}
	case maxResume == 0:
		cfg.Share.MaxPartialBytes = -1
	default:
		cfg.Share.MaxPartialBytes = maxResume
	}
	cfg.Share.Replicas, _ = f.GetInt(optReplicas)
	if cfg.Share.Replicas < 1 || cfg.Share.Replicas > 16 {
		return usageError{fmt.Sprintf("--%s %d: want 1 to 16", optReplicas, cfg.Share.Replicas)}
	}
	scrubRate, _ := f.GetFloat64(optScrubRate)
	if scrubRate < 0 || scrubRate > 1<<20 {
		return usageError{fmt.Sprintf("--%s %g: want 0 (off) or a rate in MiB/s", optScrubRate, scrubRate)}
	}
	cfg.Share.ScrubRate = int64(scrubRate * (1 << 20))
	if cfg.Share.ScrubRate <= 0 {
		cfg.Share.ScrubRate = -1
	}
	if cfg.Share.ScrubInterval, _ = f.GetDuration(optScrubEvery); cfg.Share.ScrubInterval <= 0 {
		return usageError{fmt.Sprintf("--%s must be positive", optScrubEvery)}
	}
	if cfg.Share.MaxFileSize <= 0 {
		return usageError{fmt.Sprintf("--%s must be positive", optMaxFileSize)}
	}
	for _, r := range []struct {
		opt string
		to  *int64
	}{{optMaxUpRate, &cfg.Share.MaxUploadRate}, {optMaxDownRate, &cfg.Share.MaxDownloadRate}} {
		v, _ := f.GetString(r.opt)
		if *r.to, err = parseRate(v); err != nil {
			return usageError{fmt.Sprintf("--%s %q: %v", r.opt, v, err)}
		}
	}
	cfg.KV.MaxRecordsPerWriter, _ = f.GetInt(optMaxRecords)
	if cfg.KV.MaxRecordsPerWriter < 1 {
		return usageError{fmt.Sprintf("--%s %d: want at least 1", optMaxRecords, cfg.KV.MaxRecordsPerWriter)}
	}
	if cfg.Now, err = daemonClock(log); err != nil {
		return fail("daemon", err)
	}
	keyPath, _ := f.GetString(optSwarmKey)
	if cfg.SwarmKey, err = loadSwarmKey(keyPath, dir); err != nil {
		return fail("daemon", err)
	}
	cfg.SecretFiles = secretFiles(keyPath, dir)
	if cfg.Admission, err = loadAdmission(cmd, dir); err != nil {
		return fail("daemon", err)
	}
	apiAddr, _ := f.GetString(optAPI)
	if err := checkLoopback(apiAddr); err != nil {
		return fail("daemon", err)
	}
	if err := checkPortsFree(cfg.ListenAddrs, cfg.SwarmKey != nil); err != nil {
		return fail("daemon", err)
	}

	// Bind the API first, so a busy port fails before the node starts.
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return fail("daemon", fmt.Errorf("api listen on %s: %w", apiAddr, err))
	}
	defer ln.Close()
	n, err := node.New(cfg)
	if err != nil {
		return fail("daemon", err)
	}
	defer n.Close()
	apiURL := "http://" + ln.Addr().String()

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, shutdown := context.WithCancel(ctx)
	defer shutdown()
	core := node.NewCoreAPI(n, node.CoreOptions{URL: apiURL, Shutdown: shutdown})

	token, err := n.Repo().WriteAPI(apiURL)
	if err != nil {
		return fail("daemon", err)
	}
	apiSrv := api.NewServer(core, token, log)
	apiSrv.HandleMetrics(n.MetricsHandler())
	apiSrv.HandleProfiling()
	srv := &http.Server{Handler: apiSrv, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	id, _ := core.ID(ctx)
	fmt.Fprintf(cmd.OutOrStdout(), "p2pshare daemon ready: peer %s api %s addrs %s\n", id.ID, apiURL, strings.Join(id.Addrs, ","))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fail("daemon: api", err)
	}
	log.Info("shutting down")
	stop()
	// A second signal, or a hung close, ends the process anyway.
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sig:
			log.Warn("second signal: exiting now")
		case <-time.After(30 * time.Second):
			log.Warn("shutdown took over 30 s: exiting now")
		}
		os.Exit(1)
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := n.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	return nil
}

// checkLoopback refuses an API address that is not on loopback.
func checkLoopback(hostport string) error {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("--api %q: want HOST:PORT: %w", hostport, err)
	}
	if h == "localhost" {
		return nil
	}
	if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--api %q: the API must listen on loopback (127.0.0.1 or ::1)", hostport)
	}
	return nil
}

// checkPortsFree fails if a listen address with a fixed port is taken.
// libp2p binds its TCP and QUIC listeners with SO_REUSEPORT, so a daemon
// started on another daemon's port would start anyway and silently take a
// share of that port's incoming connections; a probe bind without
// SO_REUSEPORT fails instead. UDP is not probed with a swarm key (QUIC is
// then not used).
func checkPortsFree(addrs []ma.Multiaddr, tcpOnly bool) error {
	for _, a := range addrs {
		ip, err := manet.ToIP(a)
		if err != nil {
			continue // not an IP address: libp2p says what is wrong
		}
		if port, err := a.ValueForProtocol(ma.P_TCP); err == nil && port != "0" {
			l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
			if err != nil {
				return fmt.Errorf("listen address %s: %w", a, bindError(err))
			}
			l.Close()
		} else if port, err := a.ValueForProtocol(ma.P_UDP); err == nil && port != "0" && !tcpOnly {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), port))
			if err != nil {
				return fmt.Errorf("listen address %s: %w", a, bindError(err))
			}
			c.Close()
		}
	}
	return nil
}

// bindError shortens a failed bind to its cause ("address already in use").
func bindError(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// secretFiles names the files the daemon must never share besides its repo:
// the swarm key it was given and the network authority's key, where ca
// commands run on this machine keep it.
func secretFiles(swarmKey, repo string) map[string]string {
	out := map[string]string{filepath.Join(repo, swarmKeyFile): "swarm key"}
	if swarmKey != "" {
		if abs, err := filepath.Abs(swarmKey); err == nil {
			out[abs] = "swarm key"
		}
	}
	ca := os.Getenv(envCA)
	if ca == "" {
		if home, err := os.UserHomeDir(); err == nil {
			ca = filepath.Join(home, ".p2pshare-ca")
		}
	}
	if ca != "" {
		if abs, err := filepath.Abs(ca); err == nil {
			out[filepath.Join(abs, admit.AuthorityKeyFile)] = "the network authority's key"
		}
	}
	return out
}

// loadSwarmKey reads the swarm key from path, or from the repo's swarm.key
// when path is empty and that file exists.
func loadSwarmKey(path, repo string) (pnet.PSK, error) {
	if path == "" {
		p := filepath.Join(repo, swarmKeyFile)
		if _, err := os.Stat(p); err != nil {
			return nil, nil
		}
		path = p
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("swarm key: %w", err)
	}
	defer fh.Close()
	psk, err := pnet.DecodeV1PSK(fh)
	if err != nil {
		return nil, fmt.Errorf("swarm key %s: %w (make one with 'p2pshare keygen')", path, err)
	}
	return psk, nil
}
