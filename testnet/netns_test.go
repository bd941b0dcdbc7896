package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netLab is a small lab of Linux network namespaces for partition tests:
// one namespace holds two bridges, "A" and "B", joined by a veth pair (the
// trunk); every node has its own namespace with lo and eth0, an address
// 10.77.SUBNET.(10+i)/24, and eth0's peer plugged into its side's bridge.
// Nothing is created in the root namespace, so the host is untouched.
// Cut pulls the trunk (both ends down): no packet crosses, nobody is told,
// as with a pulled cable between two switches; Heal plugs it back.
type netLab struct {
	t      *testing.T
	tag    string // random, in every name
	bridge string // the namespace of the bridges
	subnet int
	nodes  []string // namespace of node i+1
	sideOf []string // "A" or "B" for node i+1
}

// ipCmd runs ip with args and returns its combined output.
func ipCmd(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newNetLab builds the lab for len(sides) nodes, sides[i] ("A" or "B")
// being node i+1's side, and removes it at cleanup. It skips the test if
// network namespaces cannot be made here (not root, no iproute2, a
// sandbox without CAP_SYS_ADMIN).
func newNetLab(t *testing.T, sides []string) *netLab {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("partition test skipped: iproute2's ip is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skipf("partition test skipped: network namespaces need root (euid %d)", os.Geteuid())
	}
	tag := make([]byte, 3)
	rand.Read(tag)
	sub, _ := rand.Int(rand.Reader, big.NewInt(250))
	lab := &netLab{t: t, tag: hex.EncodeToString(tag), subnet: 2 + int(sub.Int64()), sideOf: sides}
	lab.bridge = "p2ps-br-" + lab.tag
	if out, err := ipCmd("netns", "add", lab.bridge); err != nil {
		t.Skipf("partition test skipped: cannot create a network namespace (ip netns add: %s)", strings.TrimSpace(out))
	}
	t.Cleanup(lab.remove)
	run := func(args ...string) {
		t.Helper()
		if out, err := ipCmd(args...); err != nil {
			if unsupported(out) {
				t.Skipf("partition test skipped: this kernel or sandbox cannot build the lab: %v", err)
			}
			t.Fatal(err)
		}
	}
	br := []string{"-n", lab.bridge}
	run(append(br, "link", "set", "lo", "up")...)
	for _, s := range []string{"A", "B"} {
		run(append(br, "link", "add", "br"+s, "type", "bridge")...)
		run(append(br, "link", "set", "br"+s, "up")...)
	}
	run(append(br, "link", "add", "trunkA", "type", "veth", "peer", "name", "trunkB")...)
	for _, s := range []string{"A", "B"} {
		run(append(br, "link", "set", "trunk"+s, "master", "br"+s, "up")...)
	}
	for i, side := range sides {
		ns := fmt.Sprintf("p2ps-%s-n%d", lab.tag, i+1)
		run("netns", "add", ns)
		lab.nodes = append(lab.nodes, ns)
		port := fmt.Sprintf("n%d", i+1)
		run("-n", lab.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(append(br, "link", "set", port, "master", "br"+side, "up")...)
		run("-n", ns, "link", "set", "lo", "up")
		run("-n", ns, "addr", "add", lab.IP(i+1)+"/24", "dev", "eth0")
		run("-n", ns, "link", "set", "eth0", "up")
	}
	return lab
}

// unsupported reports whether ip's output says the kernel or the sandbox
// refused (no veth or bridge support, no CAP_NET_ADMIN) rather than the lab
// asking for something wrong.
func unsupported(out string) bool {
	for _, s := range []string{"not supported", "Operation not permitted", "Permission denied", "Unknown device type"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// IP is node i's address (1-based).
func (l *netLab) IP(i int) string { return fmt.Sprintf("10.77.%d.%d", l.subnet, 10+i) }

// Exec is the command prefix that runs a program in node i's namespace.
func (l *netLab) Exec(i int) []string { return []string{"ip", "netns", "exec", l.nodes[i-1]} }

// Side is node i's side, "A" or "B".
func (l *netLab) Side(i int) string { return l.sideOf[i-1] }

// Sysctl sets the network sysctl key (net.ipv4.tcp_retries2, say) to value
// in every node's namespace, through /proc/sys, which shows the sysctls of
// the namespace of the process reading it.
func (l *netLab) Sysctl(key, value string) {
	l.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	for _, ns := range l.nodes {
		if out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", `echo "$1" > "$2"`, "sh", value, path).CombinedOutput(); err != nil {
			l.t.Fatalf("sysctl %s=%s in %s: %v: %s", key, value, ns, err, out)
		}
		if b, err := exec.Command("ip", "netns", "exec", ns, "cat", path).Output(); err != nil || strings.TrimSpace(string(b)) != value {
			l.t.Fatalf("sysctl %s in %s reads %q (%v), want %s", key, ns, b, err, value)
		}
	}
}

// Cut pulls the trunk between the two bridges.
func (l *netLab) Cut() { l.trunk("down") }

// Heal plugs the trunk back.
func (l *netLab) Heal() { l.trunk("up") }

func (l *netLab) trunk(state string) {
	l.t.Helper()
	for _, s := range []string{"A", "B"} {
		if _, err := ipCmd("-n", l.bridge, "link", "set", "trunk"+s, state); err != nil {
			l.t.Fatal(err)
		}
	}
}

// remove deletes every namespace the lab made; the veths and bridges go
// with them. Daemons must be stopped first (cleanups run last-in first-out,
// so register the network's cleanup after newNetLab).
func (l *netLab) remove() {
	for _, ns := range append(l.nodes, l.bridge) {
		if _, err := ipCmd("netns", "del", ns); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
	if out, err := ipCmd("netns", "list"); err == nil && strings.Contains(out, l.tag) {
		l.t.Errorf("cleanup: namespaces with tag %s remain:\n%s", l.tag, out)
	}
}
