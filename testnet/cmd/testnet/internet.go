//go:build unix

// The internet subcommand runs an emulated internet (package
// testnet/internet) by hand, as root on Linux:
//
//	internet up [flags]                  build it and stay in the foreground;
//	                                     Ctrl-C (or 'internet down') removes it
//	internet status [--name N]           its nodes: name, namespace, address
//	internet exec [--name N] HOST CMD... run CMD in HOST's namespace
//	internet cut [--name N] HOST         drop all of HOST's link, both ways
//	internet restore [--name N] HOST     undo cut
//	internet down [--name N]             stop the 'up' of that name (or remove
//	                                     what a dead one left)
//
// The delay of its links is done by the 'up' process itself, which is why
// it stays in the foreground: run it in a terminal of its own (or in the
// background with &).

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

const usage = `usage: internet COMMAND [FLAGS] [ARGS...]

  up       build an internet and keep it until Ctrl-C or 'internet down'
           --topology nats|hard|sites  nats: public host "pub", routers "nat1" and
                                       "nat2" (masquerade) with hosts "nat1-a".. and
                                       "nat2-a".. behind them; hard: the same with
                                       nat2 a symmetric NAT (masquerade fully-random);
                                       sites: "pub" and routers "site1".."site3"
                                       (no NAT) with hosts "site1-a".., one-way
                                       15/22/30 ms between sites 1-2/1-3/2-3
           --hosts N        hosts behind each router (default 1, at most 200)
           --delay D        delay of every link, one way (nats, hard; e.g. 15ms)
           --loss P         loss probability of every uplink (e.g. 0.01)
           --rate R         rate limit of every link (tc notation, e.g. 20mbit)
  status   list the nodes: name, namespace, address, router
  exec     HOST CMD [ARGS...]: run CMD in HOST's network namespace
  cut      HOST: drop every packet of HOST's link (no reset: a cut cable)
  restore  HOST: undo cut
  down     stop the internet (its 'up' removes every namespace and rule)

Every command takes --name N (default "demo"): several internets can be up at
once under different names. Needs root, ip, nft, iptables and tc.
`

// internetMain runs 'internet ARGS...' and exits.
func internetMain(args []string) {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("internet "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "demo", "")
	topo := fs.String("topology", "nats", "")
	hosts := fs.Int("hosts", 1, "")
	delay := fs.Duration("delay", 0, "")
	loss := fs.Float64("loss", 0, "")
	rate := fs.String("rate", "", "")
	if err := fs.Parse(args); err != nil {
		die(fmt.Errorf("%s: %v (see internet help)", cmd, err))
	}
	var err error
	switch cmd {
	case "up":
		err = up(*name, *topo, *hosts, internet.Link{Delay: *delay, Loss: *loss, Rate: *rate})
	case "status":
		err = status(*name)
	case "exec":
		err = execIn(*name, fs.Args())
	case "cut", "restore":
		err = cut(*name, fs.Args(), cmd == "cut")
	case "down":
		err = down(*name)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		die(err)
	}
}

func die(err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "internet: ") {
		msg = "internet: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

// topology is the preset called name, hosts per router, every link l.
func topology(name string, hosts int, l internet.Link) (internet.Topology, error) {
	if hosts < 1 || hosts > 200 {
		return internet.Topology{}, fmt.Errorf("up: --hosts %d: want 1 to 200", hosts)
	}
	var t internet.Topology
	switch name {
	case "nats", "hard":
		k2 := internet.KindMasquerade
		if name == "hard" {
			k2 = internet.KindHard
		}
		t = internet.TwoNATs(internet.KindMasquerade, k2, l)
		for i := range t.Routers {
			for j := 1; j < hosts; j++ {
				t.Routers[i].Hosts = append(t.Routers[i].Hosts, internet.Host{Name: internet.LANHost(t.Routers[i].Name, j), Link: l})
			}
		}
	case "sites":
		if l.Delay != 0 {
			return t, errors.New("up: --delay: the sites topology has its own delays")
		}
		t = internet.Sites(hosts, l.Loss)
		for i := range t.Routers {
			t.Routers[i].Link.Rate = l.Rate
		}
		t.Hosts[0].Link.Rate = l.Rate
	default:
		return t, fmt.Errorf("up: --topology %q: want nats, hard or sites", name)
	}
	return t, nil
}

func up(name, topo string, hosts int, l internet.Link) error {
	t, err := topology(topo, hosts, l)
	if err != nil {
		return err
	}
	t.Name = name
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	in, err := internet.Build(bctx, t)
	cancel()
	if err != nil {
		return err
	}
	s, err := internet.LoadState(name)
	if err == nil {
		printNodes(s)
	}
	fmt.Printf("internet %s is up (pid %d). Run programs in it with 'internet exec --name %s HOST CMD...'; Ctrl-C or 'internet down --name %s' removes it.\n", name, os.Getpid(), name, name)
	<-ctx.Done()
	stop()
	if err := in.Close(); err != nil {
		return err
	}
	fmt.Printf("internet %s removed\n", name)
	return nil
}

func load(name string) (*internet.State, error) {
	s, err := internet.LoadState(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no internet named %s is up (start one with 'internet up --name %s')", name, name)
	}
	if err != nil {
		return nil, err
	}
	if !s.Alive() {
		return nil, fmt.Errorf("the internet %s lost its owner (pid %d): remove it with 'internet down --name %s'", name, s.PID, name)
	}
	return s, nil
}

func printNodes(s *internet.State) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tNAMESPACE\tADDRESS\tBEHIND\tKIND\tLAN")
	for _, n := range s.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.NS, n.IP, dash(n.Router), dash(string(n.Kind)), dash(n.LAN))
	}
	w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(name string) error {
	s, err := load(name)
	if err != nil {
		return err
	}
	fmt.Printf("internet %s: up, pid %d, public segment %s\n", name, s.PID, s.Public)
	printNodes(s)
	return nil
}

func node(name string, args []string, want string) (*internet.StateNode, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("missing HOST: want %s", want)
	}
	s, err := load(name)
	if err != nil {
		return nil, err
	}
	n := s.Node(args[0])
	if n == nil {
		return nil, fmt.Errorf("no node %q in internet %s (see 'internet status --name %s')", args[0], name, name)
	}
	return n, nil
}

// execIn replaces this process with ip netns exec, so that the command's
// exit code and signals are its own.
func execIn(name string, args []string) error {
	n, err := node(name, args, "HOST CMD [ARGS...]")
	if err != nil {
		return err
	}
	if len(args) < 2 {
		return errors.New("exec: missing CMD: want HOST CMD [ARGS...]")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	return syscall.Exec(ip, append([]string{"ip", "netns", "exec", n.NS}, args[1:]...), os.Environ())
}

func cut(name string, args []string, off bool) error {
	n, err := node(name, args, "HOST")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Cut(ctx, off)
}

func down(name string) error {
	s, err := internet.LoadState(name)
	if errors.Is(err, os.ErrNotExist) {
		if internet.Remove(name) {
			fmt.Printf("internet %s is not up\n", name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !s.Alive() {
		internet.Remove(name)
		fmt.Printf("internet %s: removed what its dead owner (pid %d) left\n", name, s.PID)
		return nil
	}
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("down: signal pid %d: %w", s.PID, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := internet.LoadState(name); errors.Is(err, os.ErrNotExist) {
			fmt.Printf("internet %s removed\n", name)
			return nil
		}
	}
	return fmt.Errorf("down: internet %s (pid %d) still up after 30 s", name, s.PID)
}
