package internet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is wrapped by Build's error when this machine cannot make
// the internet at all (not root, a tool missing, a sandbox that forbids
// namespaces): the reason to skip a test rather than fail it.
var ErrUnsupported = errors.New("network namespaces unavailable")

// nsPrefix starts the name of every namespace an internet makes:
// inet-TAG-NODE, and inet-TAG-net for the segment.
const nsPrefix = "inet-"

// Node is a public host, a router or a LAN host of an internet.
type Node struct {
	Name string
	// NS is its network namespace (for ip netns exec).
	NS string
	// IP is its address: on the segment for public hosts and routers, on
	// the LAN for LAN hosts.
	IP netip.Addr
	// LAN is a router's LAN prefix (its LAN address is the first host of
	// it); invalid for hosts.
	LAN netip.Prefix
	// Router is a LAN host's router's name; empty on the segment.
	Router string
	// Kind is a router's kind; empty for hosts.
	Kind Kind

	inet   *Internet
	uplink string // its link's interface in NS
	farNS  string // the namespace of the link's other end
	far    string // the link's other end

	mu     sync.Mutex // guards the fields below
	link   Link
	paths  []srcDelay
	delay  *delayer
	cutOff bool
}

// Internet is a built Topology. Its methods are safe for concurrent use.
type Internet struct {
	// Tag is in every name it made.
	Tag string
	// Public is the segment's prefix.
	Public netip.Prefix

	segNS  string
	nodes  map[string]*Node
	order  []*Node
	state  string // its state file
	closed sync.Once
}

// Check reports, wrapping ErrUnsupported, why this machine cannot build an
// internet, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: need root (euid %d)", ErrUnsupported, os.Geteuid())
	}
	for _, tool := range []string{"ip", "nft", "iptables", "tc", "nice"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed (Debian: apt-get install iproute2 nftables iptables)", ErrUnsupported, tool)
		}
	}
	return nil
}

// Build makes the internet topo describes, after removing what the dead
// owners of other internets left behind. ctx bounds the building only; the
// internet lasts until Close, which the caller must call (a test: in
// t.Cleanup). On error nothing it made is left; the error wraps
// ErrUnsupported when the machine cannot make namespaces.
func Build(ctx context.Context, topo Topology) (*Internet, error) {
	pub, err := topo.validate()
	if err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	if err := raiseNeighbours(neighbours(topo)); err != nil {
		return nil, err
	}
	removeStale()
	tag := topo.Name
	if tag == "" {
		b := make([]byte, 3)
		rand.Read(b)
		tag = "t" + hex.EncodeToString(b)
	}
	in := &Internet{Tag: tag, Public: pub, segNS: nsPrefix + tag + "-net", nodes: map[string]*Node{}}
	if in.state, err = claim(tag); err != nil {
		return nil, err
	}
	if err := in.build(ctx, topo); err != nil {
		if cerr := in.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	if err := writeState(in); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// run runs a command and returns its output, or an error with the command
// line and the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// unsupported reports whether a tool's output says the kernel or the
// sandbox refused rather than the request being wrong.
func unsupported(out string) bool {
	for _, s := range []string{"not supported", "Operation not permitted", "Permission denied", "Unknown device type", "No such file or directory"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// nft loads an nft script in namespace ns.
func nft(ctx context.Context, ns, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s\n%s", ns, err, strings.TrimSpace(string(out)), script)
	}
	return nil
}

// addNS makes a namespace with lo up.
func (in *Internet) addNS(ctx context.Context, ns string) error {
	if out, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		if unsupported(out) {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return err
	}
	_, err := run(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
	return err
}

// sysctl sets the sysctl key (net.ipv4.ip_forward, say) to value in
// namespace ns, through /proc/sys, which shows the sysctls of the namespace
// of the process reading it, and checks it took.
func sysctl(ctx context.Context, ns, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if _, err := run(ctx, "ip", "netns", "exec", ns, "sh", "-c", `echo "$1" > "$2"`, "sh", value, path); err != nil {
		return err
	}
	if got, err := run(ctx, "ip", "netns", "exec", ns, "cat", path); err != nil || strings.TrimSpace(got) != value {
		return fmt.Errorf("sysctl %s in %s reads %q (%v), want %s", key, ns, strings.TrimSpace(got), err, value)
	}
	return nil
}

// Sysctl sets a network sysctl (net.ipv4.tcp_retries2, say) in n's
// namespace.
func (n *Node) Sysctl(key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sysctl(ctx, n.NS, key, value); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	return nil
}

// plug makes a veth pair: far in farNS, plugged into bridge br there, and
// dev in ns with address addr (with the prefix's length).
func plug(ctx context.Context, farNS, far, br, ns, dev string, addr netip.Prefix) error {
	steps := [][]string{
		{"-n", farNS, "link", "add", "name", far, "type", "veth", "peer", "name", dev, "netns", ns},
		{"-n", farNS, "link", "set", far, "master", br, "up"},
		{"-n", ns, "addr", "add", addr.String(), "dev", dev},
		{"-n", ns, "link", "set", dev, "up"},
	}
	for _, s := range steps {
		if out, err := run(ctx, "ip", s...); err != nil {
			if unsupported(out) {
				return fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			return err
		}
	}
	return nil
}

func (in *Internet) build(ctx context.Context, topo Topology) error {
	if err := in.addNS(ctx, in.segNS); err != nil {
		return err
	}
	for _, s := range [][]string{
		{"-n", in.segNS, "link", "add", "name", "br0", "type", "bridge"},
		{"-n", in.segNS, "link", "set", "br0", "up"},
	} {
		if out, err := run(ctx, "ip", s...); err != nil {
			if unsupported(out) {
				return fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			return err
		}
	}
	bits := in.Public.Bits()
	pubAddr := func(i int) netip.Addr {
		a := in.Public.Masked().Addr().As4()
		a[3] += byte(10 + i)
		return netip.AddrFrom4(a)
	}
	// The segment: public hosts, then routers, numbered from .10.
	seg := 0
	attach := func(name string, kind Kind, l Link) (*Node, error) {
		n := &Node{Name: name, NS: nsPrefix + in.Tag + "-" + name, IP: pubAddr(seg), Kind: kind,
			inet: in, farNS: in.segNS, far: fmt.Sprintf("p%d", seg), uplink: "eth0", link: l}
		if kind != "" {
			n.uplink = "wan"
		}
		seg++
		in.add(n)
		if err := in.addNS(ctx, n.NS); err != nil {
			return nil, err
		}
		if err := plug(ctx, in.segNS, n.far, "br0", n.NS, n.uplink, netip.PrefixFrom(n.IP, bits)); err != nil {
			return nil, err
		}
		_, err := run(ctx, "ip", "-n", n.NS, "route", "add", "default", "dev", n.uplink)
		return n, err
	}
	for _, h := range topo.Hosts {
		if _, err := attach(h.Name, "", h.Link); err != nil {
			return err
		}
	}
	var sites []*Node
	for i, r := range topo.Routers {
		n, err := attach(r.Name, r.Kind, r.Link)
		if err != nil {
			return err
		}
		if n.Kind == KindSite {
			n.LAN = netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", i+1))
			sites = append(sites, n)
		} else {
			n.LAN = netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", i+1))
		}
		if err := in.router(ctx, n, r.Hosts); err != nil {
			return err
		}
	}
	// Every node of the segment reaches the sites' LANs through their routers.
	for _, s := range sites {
		for _, n := range in.order {
			if n.Router != "" || n == s {
				continue
			}
			if _, err := run(ctx, "ip", "-n", n.NS, "route", "add", s.LAN.String(), "via", s.IP.String()); err != nil {
				return err
			}
		}
	}
	for _, p := range topo.Paths {
		a, b := in.nodes[p.A], in.nodes[p.B]
		a.paths = append(a.paths, b.sources(p.Delay)...)
		b.paths = append(b.paths, a.sources(p.Delay)...)
	}
	for _, n := range in.order {
		if err := n.apply(ctx); err != nil {
			return err
		}
	}
	return nil
}

// sources are the source prefixes of the packets from n (its address, and
// a site's LAN), each with delay d.
func (n *Node) sources(d time.Duration) []srcDelay {
	s := []srcDelay{{from: netip.PrefixFrom(n.IP, 32), delay: d}}
	if n.Kind == KindSite {
		s = append(s, srcDelay{from: n.LAN, delay: d})
	}
	return s
}

func (in *Internet) add(n *Node) {
	in.nodes[n.Name] = n
	in.order = append(in.order, n)
}

// router gives router r its LAN (a bridge "lan" with the LAN's first
// address), its rules, and its hosts.
func (in *Internet) router(ctx context.Context, r *Node, hosts []Host) error {
	gw := r.LAN.Masked().Addr().Next()
	if _, err := run(ctx, "ip", "-n", r.NS, "link", "add", "name", "lan", "type", "bridge"); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "-n", r.NS, "addr", "add", netip.PrefixFrom(gw, r.LAN.Bits()).String(), "dev", "lan"); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "-n", r.NS, "link", "set", "lan", "up"); err != nil {
		return err
	}
	if err := sysctl(ctx, r.NS, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	if err := nft(ctx, r.NS, routerRules(r.Kind)); err != nil {
		return err
	}
	for j, h := range hosts {
		a := r.LAN.Masked().Addr().As4()
		a[3] = byte(10 + j)
		n := &Node{Name: h.Name, NS: nsPrefix + in.Tag + "-" + h.Name, IP: netip.AddrFrom4(a), Router: r.Name,
			inet: in, farNS: r.NS, far: fmt.Sprintf("h%d", j), uplink: "eth0", link: h.Link}
		in.add(n)
		if err := in.addNS(ctx, n.NS); err != nil {
			return err
		}
		if err := plug(ctx, r.NS, n.far, "lan", n.NS, "eth0", netip.PrefixFrom(n.IP, r.LAN.Bits())); err != nil {
			return err
		}
		if _, err := run(ctx, "ip", "-n", n.NS, "route", "add", "default", "via", gw.String()); err != nil {
			return err
		}
	}
	return nil
}

// routerRules is the nftables ruleset of a router of kind k: NAT routers
// translate what leaves by the WAN and let in only replies, as a home
// router does; a site router forwards everything. The unsolicited packets
// a NAT router drops leave no connection behind (a dropped packet's entry
// is never confirmed), so they cannot take the mapping a LAN host's later
// packet to their source needs: hole punching works as through a home
// router.
func routerRules(k Kind) string {
	if k == KindSite {
		return ""
	}
	masq := "masquerade"
	if k == KindHard {
		masq = "masquerade fully-random"
	}
	return `table ip inetnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ` + masq + `
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" accept
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname { "lo", "lan" } accept
	}
}
`
}

// Host is the node called name (a public host, a router or a LAN host), or
// nil.
func (in *Internet) Host(name string) *Node { return in.nodes[name] }

// Nodes are every node, in the topology's order (public hosts, then each
// router followed by its hosts).
func (in *Internet) Nodes() []*Node { return append([]*Node(nil), in.order...) }

// Prefix is the command prefix that runs a program in n's namespace, as
// testnet.Daemon.Prefix wants it, at the niceness this process had before
// it held delays: while it holds them it runs at a higher priority than
// its hosts (see linkNice), which a program it starts would inherit. Take
// it after Build: the priority of the moment is what it corrects for.
func (n *Node) Prefix() []string {
	p := []string{"ip", "netns", "exec", n.NS}
	if k := childNice(); k > 0 {
		p = append(p, "nice", "-n", strconv.Itoa(k))
	}
	return p
}

// Command is name with args, to run in n's namespace (through Prefix).
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	p := n.Prefix()
	return exec.CommandContext(ctx, p[0], append(append(p[1:], name), args...)...)
}

// Exec runs name with args in n's namespace (through Prefix) and returns
// its combined output.
func (n *Node) Exec(ctx context.Context, name string, args ...string) (string, error) {
	p := n.Prefix()
	return run(ctx, p[0], append(append(p[1:], name), args...)...)
}

// Cut drops every packet on n's link, both ways, at the link's far end (the
// segment's port, or the router's LAN port): as a cut cable beyond the
// first switch, n's interface stays up and nobody gets a reset or an ICMP
// error. Restore undoes it.
func (in *Internet) Cut(name string) error { return in.cut(name, true) }

// Restore reconnects a Cut node.
func (in *Internet) Restore(name string) error { return in.cut(name, false) }

func (in *Internet) cut(name string, off bool) error {
	n, err := in.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cutOff == off {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cutLink(ctx, n.farNS, n.far, off); err != nil {
		return fmt.Errorf("internet: cut %s: %w", name, err)
	}
	n.cutOff = off
	return nil
}

// cutLink drops (off) or lets through again every packet of port far in
// namespace farNS, both ways, with a netdev table of its own.
func cutLink(ctx context.Context, farNS, far string, off bool) error {
	table := "cut_" + far
	script := fmt.Sprintf("delete table netdev %s\n", table)
	if off {
		script = fmt.Sprintf(`table netdev %[1]s {
	chain in {
		type filter hook ingress device "%[2]s" priority filter; policy drop;
	}
	chain out {
		type filter hook egress device "%[2]s" priority filter; policy drop;
	}
}
`, table, far)
	}
	return nft(ctx, farNS, script)
}

// SetDelay sets the delay of n's link (packets from the ends of a Path keep
// the path's delay).
func (in *Internet) SetDelay(name string, d time.Duration) error {
	return in.update(name, func(l *Link) { l.Delay = d })
}

// SetLoss sets the loss probability (0 to 1) of n's link.
func (in *Internet) SetLoss(name string, p float64) error {
	if p < 0 || p > 1 {
		return fmt.Errorf("internet: loss %g: want 0 <= loss <= 1", p)
	}
	return in.update(name, func(l *Link) { l.Loss = p })
}

// SetRate sets the rate limit of n's link ("10mbit"; empty for none).
func (in *Internet) SetRate(name, rate string) error {
	return in.update(name, func(l *Link) { l.Rate = rate })
}

func (in *Internet) update(name string, f func(*Link)) error {
	n, err := in.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	f(&n.link)
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.apply(ctx)
}

func (in *Internet) node(name string) (*Node, error) {
	if n := in.nodes[name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("internet: no node %q", name)
}

// Link is n's link as now set.
func (n *Node) Link() Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.link
}

// apply puts n's link settings into its namespaces: loss and the delay's
// NFQUEUE rule in the raw table's PREROUTING (which is n's alone), the
// queue's reader, and rate on both ends.
func (n *Node) apply(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.link
	if _, err := run(ctx, "ip", "netns", "exec", n.NS, "iptables", "-w", "-t", "raw", "-F", "PREROUTING"); err != nil {
		return fmt.Errorf("internet: loss on %s: %w", n.Name, err)
	}
	if l.Loss > 0 {
		if _, err := run(ctx, "ip", "netns", "exec", n.NS, "iptables", "-w", "-t", "raw", "-A", "PREROUTING", "-i", n.uplink,
			"-m", "statistic", "--mode", "random", "--probability", fmt.Sprintf("%.6f", l.Loss), "-j", "DROP"); err != nil {
			return fmt.Errorf("internet: loss on %s: %w", n.Name, err)
		}
	}
	delayed := l.Delay > 0
	for _, p := range n.paths {
		delayed = delayed || p.delay > 0
	}
	if delayed && n.delay == nil {
		raisePriority()
		d, err := newDelayer(n.NS)
		if err != nil {
			lowerPriority()
			return fmt.Errorf("internet: delay on %s: %w", n.Name, err)
		}
		n.delay = d
	}
	if n.delay != nil {
		n.delay.set(l.Delay, n.paths)
	}
	if delayed {
		// In the raw table too, after the loss and before conntrack, so
		// that no connection is tracked while its first packet is held.
		if _, err := run(ctx, "ip", "netns", "exec", n.NS, "iptables", "-w", "-t", "raw", "-A", "PREROUTING", "-i", n.uplink,
			"-j", "NFQUEUE", "--queue-num", fmt.Sprint(queueNum), "--queue-bypass"); err != nil {
			return fmt.Errorf("internet: delay on %s: %w", n.Name, err)
		}
	}
	for _, end := range [][2]string{{n.NS, n.uplink}, {n.farNS, n.far}} {
		if l.Rate == "" {
			run(ctx, "tc", "-n", end[0], "qdisc", "del", "dev", end[1], "root") // none may be there
			continue
		}
		if _, err := run(ctx, "tc", "-n", end[0], "qdisc", "replace", "dev", end[1], "root", "tbf", "rate", l.Rate, "burst", "64kb", "latency", "100ms"); err != nil {
			return fmt.Errorf("internet: rate on %s: %w", n.Name, err)
		}
	}
	return nil
}

// Close removes every namespace (and with them every link, bridge, rule
// and qdisc) and stops the delay goroutines. It is safe to call again.
func (in *Internet) Close() error {
	var errs []error
	in.closed.Do(func() {
		for _, n := range in.order {
			n.mu.Lock()
			if n.delay != nil {
				if err := n.delay.close(); err != nil {
					errs = append(errs, fmt.Errorf("internet: stop delay on %s: %w", n.Name, err))
				}
				n.delay = nil
			}
			n.mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, ns := range in.namespaces() {
			if _, err := run(ctx, "ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
				errs = append(errs, fmt.Errorf("internet: %w", err))
			}
		}
		if err := os.Remove(in.state); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// namespaces are the names of every namespace of in that exists now.
func (in *Internet) namespaces() []string {
	out, _ := run(context.Background(), "ip", "netns", "list")
	var mine []string
	for _, ns := range parseNetns(out) {
		if strings.HasPrefix(ns, nsPrefix+in.Tag+"-") {
			mine = append(mine, ns)
		}
	}
	sort.Strings(mine)
	return mine
}

// parseNetns reads the names of `ip netns list`'s lines ("NAME (id: N)").
func parseNetns(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}
