//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/p2pshare/p2pshare/testnet"
)

// defaultListen are the listen addresses of a node with none recorded.
var defaultListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// idOut is what the CLI's id --json says of a node.
type idOut struct {
	ID    string   `json:"id"`
	API   string   `json:"api"`
	Addrs []string `json:"addrs"`
}

func (t *tn) restart(ctx context.Context, i string) error {
	nw, d, err := t.node(i)
	if err != nil {
		return err
	}
	if d.Running() {
		fmt.Printf("stopping node %d (pid %d, SIGTERM)\n", d.Index, d.PID())
		d.Stop(stopGrace)
	}
	if err := repoFree(d.Repo); err != nil {
		return err
	}
	// Bootstrap to every other running node; else to node 1's last address.
	var boot []string
	for _, o := range nw.Nodes {
		var id idOut
		if o != d && o.Running() && o.JSON(&id, "id", "--json") == nil {
			boot = append(boot, tcpAddrs(id.Addrs)...)
		}
	}
	if len(boot) == 0 && d.Index != 1 && len(tcpAddrs(nw.Node(1).Addrs)) > 0 {
		fmt.Println("no other node is running: bootstrapping to node 1's last known address")
		boot = tcpAddrs(nw.Node(1).Addrs)
	}
	// The same listen addresses as before, where still free, and both
	// transports whatever was recorded.
	var listen []string
	for _, a := range listenAddrs(d) {
		if z := zeroPort(a); z != a && !portFree(a) {
			fmt.Fprintf(os.Stderr, "testnet: %s is taken, listening on port 0 instead\n", a)
			a = z
		}
		listen = append(listen, a)
	}
	if !slices.ContainsFunc(listen, func(a string) bool { return strings.Contains(a, "/tcp/") }) {
		listen = append(listen, defaultListen[0])
	}
	if !slices.ContainsFunc(listen, func(a string) bool { return strings.Contains(a, "/quic-v1") }) {
		listen = append(listen, defaultListen[1])
	}
	oldID, oldAddrs := d.ID, d.Addrs
	msg := ""
	if len(boot) > 0 {
		msg = " (bootstrap " + strings.Join(boot, " ") + ")"
	}
	fmt.Printf("starting node %d on %s%s\n", d.Index, strings.Join(listen, " "), msg)
	err = startOn(ctx, d, listen, boot)
	if err != nil {
		d.Addrs = oldAddrs
	}
	if serr := nw.Save(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if oldID != "" && oldID != d.ID {
		fmt.Fprintf(os.Stderr, "testnet: warning: node %d came back as %s, was %s\n", d.Index, d.ID, oldID)
	}
	fmt.Printf("node %d is back: pid %d, peer %s\n", d.Index, d.PID(), d.ID)
	fmt.Printf("  listening on %s\n", strings.Join(listenAddrs(d), " "))
	return nil
}

// startOn starts d listening on listen. A port that was free a moment ago
// can be taken after all: the daemon then exits, or comes up without that
// address, so it starts once more with port 0 for what it did not get.
func startOn(ctx context.Context, d *testnet.Daemon, listen, boot []string) error {
	logSize := int64(0)
	if st, err := os.Stat(d.Log); err == nil {
		logSize = st.Size()
	}
	d.Listen, d.Addrs = listen, nil
	err := d.Start(ctx, boot...)
	var missing []string
	switch {
	case err == nil:
		got := listenAddrs(d)
		for _, a := range listen {
			if zeroPort(a) != a && !slices.Contains(got, a) {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		fmt.Fprintf(os.Stderr, "testnet: node %d: came up without %s (taken?): restarting it with port 0 there\n", d.Index, strings.Join(missing, " "))
		d.Stop(stopGrace)
	case logSince(d.Log, logSize, "address already in use"):
		fmt.Fprintf(os.Stderr, "testnet: node %d: a listen port was taken, retrying on port 0\n", d.Index)
		missing = listen
	default:
		return err
	}
	var retry []string
	for _, a := range listen {
		if slices.Contains(missing, a) {
			a = zeroPort(a)
		}
		retry = append(retry, a)
	}
	d.Listen, d.Addrs = retry, nil
	return d.Start(ctx, boot...)
}

// logSince reports whether the log, from offset on, says what (in any case).
func logSince(log string, offset int64, what string) bool {
	b, err := os.ReadFile(log)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	return strings.Contains(strings.ToLower(string(b[offset:])), what)
}

// listenAddrs are d's last known addresses without /p2p/ID.
func listenAddrs(d *testnet.Daemon) []string {
	var out []string
	for _, a := range d.Addrs {
		out = append(out, strings.TrimSuffix(a, "/p2p/"+d.ID))
	}
	return out
}

// tcpAddrs are the /tcp/ multiaddrs among addrs.
func tcpAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if strings.Contains(a, "/tcp/") {
			out = append(out, a)
		}
	}
	return out
}

// splitAddr splits /ip4|ip6/HOST/tcp|udp/PORT[/REST] into its parts; ok
// is false for any other multiaddr.
func splitAddr(ma string) (parts []string, ok bool) {
	parts = strings.SplitN(ma, "/", 6)
	ok = len(parts) >= 5 && parts[0] == "" && (parts[1] == "ip4" || parts[1] == "ip6") &&
		(parts[3] == "tcp" || parts[3] == "udp") && positive.MatchString(parts[4])
	return parts, ok
}

// zeroPort is the multiaddr with its TCP or UDP port set to 0.
func zeroPort(ma string) string {
	parts, ok := splitAddr(ma)
	if !ok {
		return ma
	}
	parts[4] = "0"
	return strings.Join(parts, "/")
}

// portFree reports whether nothing else is bound to the multiaddr's port.
func portFree(ma string) bool {
	parts, ok := splitAddr(ma)
	if !ok {
		return true
	}
	hostPort := net.JoinHostPort(parts[2], parts[4])
	if parts[3] == "tcp" {
		l, err := net.Listen("tcp", hostPort)
		if err != nil {
			return false
		}
		return l.Close() == nil
	}
	c, err := net.ListenPacket("udp", hostPort)
	if err != nil {
		return false
	}
	return c.Close() == nil
}
