package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/testnet/internet"
)

// natLink is every link of the NAT tests: 5 ms one way.
var natLink = internet.Link{Delay: 5 * time.Millisecond}

// natInternet is the public hosts named in public and a router with one
// host behind it for each kind given ("nat1", "nat1-a", "nat2", ...).
func natInternet(t *testing.T, public []string, kinds ...internet.Kind) *internet.Internet {
	topo := internet.Topology{}
	for _, h := range public {
		topo.Hosts = append(topo.Hosts, internet.Host{Name: h, Link: natLink})
	}
	for i, k := range kinds {
		r := fmt.Sprintf("nat%d", i+1)
		topo.Routers = append(topo.Routers, internet.Router{Name: r, Kind: k, Link: natLink, Hosts: []internet.Host{{Name: r + "-a", Link: natLink}}})
	}
	return internet.New(t, topo)
}

// natNetwork returns a network whose daemon i runs on the host hosts[i-1]
// of in, listening on port 4040 (TCP and QUIC), with args; setup, if not
// nil, is called on each daemon before it starts. Nothing is started.
func natNetwork(t *testing.T, in *internet.Internet, hosts []string, args []string, setup func(*Daemon)) *Network {
	t.Helper()
	nw := New(bin, t.TempDir())
	nw.Args = args
	nw.Setup = func(d *Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix()
		d.Listen = []string{
			fmt.Sprintf("/ip4/%s/tcp/4040", h.IP),
			fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP),
		}
		if v := os.Getenv("P2PSHARE_TEST_GOLOG"); v != "" {
			d.Env = []string{"GOLOG_LOG_LEVEL=" + v} // libp2p's debug logs, to see a failure
		}
		if setup != nil {
			setup(d)
		}
	}
	t.Cleanup(func() { // before in.Close: cleanups run last in, first out
		nw.Down()
		if t.Failed() {
			for _, d := range nw.Nodes {
				t.Logf("node %d (%s) log:\n%s", d.Index, hosts[d.Index-1], d.LogTail(60))
			}
		}
	})
	return nw
}

// natUp starts the network's daemons on hosts.
func natUp(t *testing.T, nw *Network, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nw.Up(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// waitRelayed waits until each of ds is private and announces a relay
// address.
func waitRelayed(t *testing.T, limit time.Duration, ds ...*Daemon) {
	t.Helper()
	for _, d := range ds {
		waitFor(t, limit, "a NATed node private, with a relay address", func() (bool, string) {
			var id idOut
			if err := d.JSON(&id, "id", "--json"); err != nil {
				return false, err.Error()
			}
			relayed := strings.Contains(strings.Join(id.PublicAddrs, " "), "/p2p-circuit")
			return id.Reachability == "private" && relayed, fmt.Sprintf("node %d: %s, %v", d.Index, id.Reachability, id.PublicAddrs)
		})
	}
}

// viaOn returns how d's connections to id run: "direct" if any is, else
// "relayed", or "" if there is none.
func viaOn(d *Daemon, id string) (string, error) {
	var ps []peerOut
	if err := d.JSON(&ps, "peers", "--json"); err != nil {
		return "", err
	}
	via := ""
	for _, p := range ps {
		if p.ID == id && (via == "" || p.Via == "direct") {
			via = p.Via
		}
	}
	return via, nil
}

// apiGet fetches path of d's HTTP API, which listens on loopback in the
// namespace of host h, and decodes the JSON answer into v.
func apiGet(h *internet.Node, d *Daemon, path string, v any) error {
	base, err := os.ReadFile(filepath.Join(d.Repo, "api"))
	if err != nil {
		return err
	}
	tok, _ := os.ReadFile(filepath.Join(d.Repo, "api.token"))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = h.Do(func() error {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSpace(string(base))+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type holePunchesOut struct {
	Tried     int64 `json:"tried"`
	Succeeded int64 `json:"succeeded"`
}

// shareRandom shares n random bytes on d and returns the CID and the bytes.
func shareRandom(t *testing.T, d *Daemon, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	src := writeFile(t, t.TempDir(), "f.bin", b)
	var s shareRepOut
	if err := d.JSON(&s, "share", src, "--json"); err != nil || s.CID == "" {
		t.Fatalf("share on node %d: %+v, %v", d.Index, s, err)
	}
	return s.CID, b
}

type getViaOut struct {
	getOut
	Via string `json:"via"`
}

// getChecked fetches cid on d, checks the bytes and returns what get
// --json says.
func getChecked(t *testing.T, d *Daemon, cid string, want []byte) getViaOut {
	t.Helper()
	out := filepath.Join(t.TempDir(), "got")
	var g getViaOut
	if err := d.JSON(&g, "get", cid, "-o", out, "--json"); err != nil {
		t.Fatalf("node %d: %v", d.Index, err)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("node %d got %d bytes (%v), want the %d shared", d.Index, len(b), err, len(want))
	}
	return g
}

// waitDirect is waitFor that lets the test go on to log what it found.
func waitDirect(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if ok, _ := cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, st := cond()
	t.Errorf("%s: not after %s (last: %s)", what, limit, st)
}

// TestE2ENAT runs a public node and nodes behind two home NATs and a
// symmetric one, every node with defaults, --bootstrap to the public node
// and --replicas 1, in one internet for every subtest.
func TestE2ENAT(t *testing.T) {
	in := natInternet(t, []string{"pub"}, internet.KindMasquerade, internet.KindMasquerade, internet.KindHard)
	hosts := []string{"pub", "nat1-a", "nat2-a", "nat3-a"}
	nw := natNetwork(t, in, hosts, []string{"--replicas", "1"}, nil)
	start := time.Now()
	natUp(t, nw, len(hosts))
	pub, a, b, c := nw.Node(1), nw.Node(2), nw.Node(3), nw.Node(4)
	// AutoNAT gives a node's first verdict some 15 s after its start.
	waitRelayed(t, 45*time.Second, a, b, c)
	t.Logf("NATed nodes private, with relay addresses, %s after start", time.Since(start))

	t.Run("HolePunch", func(t *testing.T) {
		cid, body := shareRandom(t, a, 256<<10)
		g := getChecked(t, b, cid, body)
		t.Logf("get behind nat2: via %s in %.0f ms", g.Via, g.RTT)
		waitDirect(t, 60*time.Second-time.Since(start), "a direct connection between nat1-a and nat2-a", func() (bool, string) {
			va, err := viaOn(a, b.ID)
			if err != nil {
				return false, err.Error()
			}
			vb, err := viaOn(b, a.ID)
			if err != nil {
				return false, err.Error()
			}
			return va == "direct" && vb == "direct", fmt.Sprintf("nat1-a sees %q, nat2-a sees %q", va, vb)
		})
		if t.Failed() {
			for _, r := range []string{"nat1", "nat2"} {
				out, _ := in.Host(r).Exec(context.Background(), "cat", "/proc/net/nf_conntrack")
				t.Logf("%s conntrack:\n%s", r, out)
			}
		}
		var sa, sb struct {
			HolePunches holePunchesOut `json:"hole_punches"`
		}
		if err := apiGet(in.Host("nat1-a"), a, "/api/v1/stats", &sa); err != nil {
			t.Fatal(err)
		}
		if err := apiGet(in.Host("nat2-a"), b, "/api/v1/stats", &sb); err != nil {
			t.Fatal(err)
		}
		if sa.HolePunches.Succeeded+sb.HolePunches.Succeeded == 0 {
			t.Fatalf("direct, but no hole punch counted: %+v, %+v", sa, sb)
		}
		t.Logf("direct %s after start; hole punches %+v, %+v", time.Since(start), sa.HolePunches, sb.HolePunches)
	})

	t.Run("HardNATRelayed", func(t *testing.T) {
		cid, body := shareRandom(t, a, 256<<10)
		g := getChecked(t, c, cid, body)
		if g.Via != "relayed" {
			t.Fatalf("get behind the symmetric NAT says via %q, want relayed", g.Via)
		}
	})

	t.Run("Membership", func(t *testing.T) {
		waitAllAlive(t, nw, 20*time.Second)
		if err := in.Cut("nat2"); err != nil {
			t.Fatal(err)
		}
		// A member cut off is silent to its watchers: dead everywhere in a
		// few seconds (see gossip.Config), and the second it takes to poll
		// every node.
		d := waitAllSee(t, nw, b, b.ID, "dead", 5*time.Second)
		t.Logf("cut uplink seen dead on every node after %s", d)
		if err := in.Restore("nat2"); err != nil {
			t.Fatal(err)
		}
		d = waitAllSee(t, nw, nil, b.ID, "alive", 30*time.Second)
		t.Logf("restored uplink seen alive on every node after %s", d)
	})

	t.Run("RelayDrop", func(t *testing.T) {
		// 16 MiB at 8 Mbit/s into nat3 takes some 16 s: the relay dies
		// 3 s into the get.
		cid, body := shareRandom(t, a, 16<<20)
		if err := in.SetRate("nat3", "8mbit"); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		out := filepath.Join(dir, "got")
		done := make(chan Result, 1)
		go func() { done <- c.Run("get", cid, "-o", out) }()
		time.Sleep(3 * time.Second) // the transfer is under way
		if err := pub.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.Code == 0 {
			if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get succeeded with %d bytes (%v), want the %d shared", len(got), err, len(body))
			}
			t.Logf("get went on over another path")
		} else {
			msg := strings.TrimSpace(r.Stderr)
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "p2pshare: ") {
				t.Fatalf("get failed with %q, want one line p2pshare: WHAT: WHY", msg)
			}
			left, _ := os.ReadDir(dir)
			if len(left) != 0 {
				t.Fatalf("the failed get left %v in the output directory", left)
			}
			t.Logf("get failed: %s", msg)
		}
		// Nothing lost: the holder still has the whole file.
		local := filepath.Join(t.TempDir(), "local")
		if r := a.Run("get", cid, "-o", local); r.Code != 0 {
			t.Fatalf("the holder's own get: %s", r.Stderr)
		}
		if got, _ := os.ReadFile(local); !bytes.Equal(got, body) {
			t.Fatal("the holder's copy changed")
		}
	})
}

// TestE2ENATAdmission runs a network closed by a swarm key and tickets: a
// public node and two members behind home NATs; and two outsiders, one on
// the public segment with neither, one behind a third NAT with the swarm
// key but no ticket. The members reserve slots on the public node's relay
// and fetch each other's files; the outsiders get no slot and cannot
// fetch a member's file, over the relay or otherwise.
func TestE2ENATAdmission(t *testing.T) {
	in := natInternet(t, []string{"pub", "out"}, internet.KindMasquerade, internet.KindMasquerade, internet.KindMasquerade)
	hosts := []string{"pub", "nat1-a", "nat2-a", "out", "nat3-a"}
	nw := natNetwork(t, in, hosts, []string{"--replicas", "1"}, nil)
	kr := nw.RunCLI("keygen")
	if kr.Code != 0 {
		t.Fatalf("keygen: %s", kr.Stderr)
	}
	key := writeFile(t, t.TempDir(), "swarm.key", []byte(kr.Stdout))
	ca := filepath.Join(t.TempDir(), "ca")
	if r := nw.RunCLI("ca", "init", "--ca", ca); r.Code != 0 {
		t.Fatalf("ca init: %s", r.Stderr)
	}
	nw.Setup = func(d *Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix()
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/4040", h.IP), fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP)}
		switch hosts[d.Index-1] {
		case "out": // neither key nor ticket
		case "nat3-a": // the key, no ticket
			d.Args = []string{"--swarm-key", key}
		default:
			d.Args = []string{"--swarm-key", key}
			admTicket(t, nw, ca, d.Repo, admOfflineID(t, nw, d.Repo))
		}
	}
	natUp(t, nw, len(hosts))
	a, b, out, c := nw.Node(2), nw.Node(3), nw.Node(4), nw.Node(5)
	waitRelayed(t, 45*time.Second, a, b)
	cid, body := shareRandom(t, a, 64<<10)
	if g := getChecked(t, b, cid, body); g.Provider != a.ID {
		t.Fatalf("member's get served by %s, want nat1-a", g.Provider)
	}
	for _, d := range []*Daemon{out, c} {
		dst := filepath.Join(t.TempDir(), "got")
		if r := d.Run("get", cid, "-o", dst); r.Code == 0 {
			t.Fatalf("outsider %s fetched a member's file", hosts[d.Index-1])
		}
		if _, err := os.Stat(dst); err == nil {
			t.Fatalf("outsider %s's failed get left a file", hosts[d.Index-1])
		}
	}
	// The relay gave the keyed outsider no slot, and no member is
	// connected to either outsider.
	var id idOut
	if err := c.JSON(&id, "id", "--json"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(id.PublicAddrs, " "), "/p2p-circuit") {
		t.Fatalf("outsider behind nat3 has a relay address: %v", id.PublicAddrs)
	}
	for _, m := range nw.Nodes[:3] {
		for _, o := range []*Daemon{out, c} {
			if via, err := viaOn(m, o.ID); err != nil || via != "" {
				t.Fatalf("%s connected to outsider %s (%q, %v)", hosts[m.Index-1], hosts[o.Index-1], via, err)
			}
		}
	}
}
