package internet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestNeighbours(t *testing.T) {
	hosts := func(n int) []Host {
		hs := make([]Host, n)
		for i := range hs {
			hs[i] = Host{Name: fmt.Sprintf("h%d", i)}
		}
		return hs
	}
	for _, c := range []struct {
		name string
		topo Topology
		want int
	}{
		{"empty", Topology{}, 0},
		{"one public host", Topology{Hosts: hosts(1)}, 0},
		{"three public hosts", Topology{Hosts: hosts(3)}, 6},
		// The segment holds the public host and both routers (3·2); each
		// LAN its router and hosts (3·2 and 2·1).
		{"two LANs", Topology{Hosts: hosts(1), Routers: []Router{{Name: "a", Hosts: hosts(2)}, {Name: "b", Hosts: hosts(1)}}}, 6 + 6 + 2},
		// Three sites of 26: 3·2 on the segment, 27·26 on each LAN.
		{"three sites of 26", Topology{Routers: []Router{{Name: "a", Hosts: hosts(26)}, {Name: "b", Hosts: hosts(26)}, {Name: "c", Hosts: hosts(26)}}}, 6 + 3*27*26},
	} {
		if got := neighbours(c.topo); got != c.want {
			t.Errorf("%s: %d neighbour entries, want %d", c.name, got, c.want)
		}
	}
}

func TestRaiseNeighbours(t *testing.T) {
	oldPath, oldWrite := neighPath, writeLimit
	t.Cleanup(func() { neighPath, writeLimit = oldPath, oldWrite })
	for _, c := range []struct {
		name           string
		need           int
		soft, hard     string // the files' contents before; "" for no file
		readOnly       bool   // writes fail
		lost           bool   // writes succeed and change nothing
		unsupported    bool   // the error wraps ErrUnsupported
		wantSoft, want string // after
		wantErr        bool
	}{
		{name: "the kernel's defaults, raised", need: 2000, soft: "512", hard: "1024", wantSoft: "4000", want: "8000"},
		{name: "higher already, kept", need: 2000, soft: "9000", hard: "20000", wantSoft: "9000", want: "20000"},
		{name: "only the soft limit low", need: 2000, soft: "100", hard: "20000", wantSoft: "4000", want: "20000"},
		{name: "small topology, untouched", need: neighFloor, soft: "1", hard: "2", wantSoft: "1", want: "2"},
		{name: "no limits to read (not the first namespace)", need: 2000, wantErr: true, unsupported: true},
		{name: "small topology, no limits to read", need: 10},
		{name: "cannot raise, too low", need: 2000, soft: "512", hard: "1024", readOnly: true, wantSoft: "512", want: "1024", wantErr: true, unsupported: true},
		{name: "raised, but it does not take", need: 2000, soft: "512", hard: "1024", lost: true, wantSoft: "512", want: "1024", wantErr: true},
		{name: "does not take, but room for the need", need: 2000, soft: "512", hard: "3000", lost: true, wantSoft: "512", want: "3000"},
		{name: "cannot raise, but room for the need", need: 2000, soft: "512", hard: "3000", readOnly: true, wantSoft: "512", want: "3000"},
		{name: "unreadable value", need: 2000, soft: "512", hard: "lots", wantSoft: "512", want: "lots", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			neighPath = dir + "/"
			writeLimit = os.WriteFile
			if c.readOnly {
				writeLimit = func(name string, _ []byte, _ os.FileMode) error {
					return &os.PathError{Op: "open", Path: name, Err: syscall.EACCES}
				}
			}
			if c.lost {
				writeLimit = func(string, []byte, os.FileMode) error { return nil }
			}
			for name, v := range map[string]string{"gc_thresh2": c.soft, "gc_thresh3": c.hard} {
				if v == "" {
					continue
				}
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := raiseNeighbours(c.need)
			if (err != nil) != c.wantErr {
				t.Fatalf("raiseNeighbours(%d) = %v, want an error: %v", c.need, err, c.wantErr)
			}
			if errors.Is(err, ErrUnsupported) != c.unsupported {
				t.Errorf("raiseNeighbours(%d) = %v, want it to wrap ErrUnsupported: %v", c.need, err, c.unsupported)
			}
			for name, want := range map[string]string{"gc_thresh2": c.wantSoft, "gc_thresh3": c.want} {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				if got := strings.TrimSpace(string(b)); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// Every host of a LAN bigger than the kernel's default neighbour table
// reaches every other one: without Build raising the table's limits, the
// kernel refused the entries of hundreds of these pairs, and their dials
// timed out with no packet sent.
func TestBigLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 49 namespaces")
	}
	const n = 48 // 49·48 = 2352 entries; the kernel's default allows 1024
	r := Router{Name: "site", Kind: KindSite}
	for i := range n {
		r.Hosts = append(r.Hosts, Host{Name: fmt.Sprintf("h%d", i)})
	}
	in := build(t, Topology{Routers: []Router{r}})
	// Where an earlier Build raised the limits, the dials below pass
	// anyway: this checks that Build leaves them where they should be.
	b, err := os.ReadFile(neighPath + "gc_thresh3")
	if err != nil {
		t.Fatal(err)
	}
	if _, hard := neighLimits(neighbours(Topology{Routers: []Router{r}})); atoi(t, string(b)) < hard {
		t.Errorf("gc_thresh3 is %s after Build, want at least %d", strings.TrimSpace(string(b)), hard)
	}
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	for i := range n {
		from := in.Host(fmt.Sprintf("h%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				to := in.Host(fmt.Sprintf("h%d", j))
				if to == from {
					continue
				}
				// Port 9 is closed: a host reached answers with a reset.
				c, err := tcpDial(from, net.JoinHostPort(to.IP.String(), "9"), 3*time.Second)
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s → %s: %v", from.Name, to.Name, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of %d dials were not refused, the first: %v", len(failed), n*(n-1), failed[:min(3, len(failed))])
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLANHost(t *testing.T) {
	for _, c := range []struct {
		i    int
		want string
	}{{0, "r-a"}, {1, "r-b"}, {25, "r-z"}, {26, "r-aa"}, {27, "r-ab"}, {51, "r-az"}, {52, "r-ba"}, {701, "r-zz"}, {702, "r-aaa"}} {
		if got := LANHost("r", c.i); got != c.want {
			t.Errorf("LANHost(r, %d) = %q, want %q", c.i, got, c.want)
		}
	}
	seen := map[string]bool{}
	for i := range 200 {
		n := LANHost("site1", i)
		if seen[n] || !nameRE.MatchString(n) {
			t.Fatalf("LANHost(site1, %d) = %q: used twice or not a valid name", i, n)
		}
		seen[n] = true
	}
}
