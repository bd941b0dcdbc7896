package internet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The kernel keeps one IPv4 neighbour (ARP) table for every network
// namespace together, and its size limits (gc_thresh1 to 3) live in the
// first namespace only. With the defaults (512 kept without collection,
// 1024 at most) a LAN of a few dozen hosts that talk to each other fills
// it: each host keeps an entry for each other host it reaches on its
// LAN, the kernel refuses new ones ("neighbor table overflow!"), and the
// first packet to a host whose entry it refused is dropped unsent, as is
// every later one until an entry frees. A TCP dial then times out without
// a packet leaving the host. So Build raises the limits to what its
// topology can need, and never lowers them: other internets, and the
// machine itself, may be using them.

// neighPath is the sysctl directory of the IPv4 neighbour table's limits
// (only the namespace the machine booted in has them); a variable for
// tests only, as is writeLimit.
var (
	neighPath  = "/proc/sys/net/ipv4/neigh/default/"
	writeLimit = os.WriteFile
)

// neighbours is how many IPv4 neighbour entries topo's namespaces may hold
// at once: on each broadcast domain (the segment, and each router's LAN
// with the router), every node may resolve every other one.
func neighbours(topo Topology) int {
	lan := func(k int) int { return k * (k - 1) }
	n := lan(len(topo.Hosts) + len(topo.Routers))
	for _, r := range topo.Routers {
		n += lan(len(r.Hosts) + 1)
	}
	return n
}

// neighFloor: a topology that needs no more entries than this is not
// checked; a quarter of the kernel's default hard limit.
const neighFloor = 256

// neighLimits are the values gc_thresh2 and gc_thresh3 should have at
// least for need entries: the soft limit, above which the kernel collects
// entries unused for 5 s, and the hard one, twice that, so that the
// internet and the rest of the machine both fit.
func neighLimits(need int) (soft, hard int) { return 2 * need, 4 * need }

// raiseNeighbours raises the neighbour table's limits to hold need
// entries, where they are lower. It fails only when the hard limit is
// below need and could not be raised (or read).
func raiseNeighbours(need int) error {
	if need <= neighFloor {
		return nil
	}
	soft, hard := neighLimits(need)
	was, err := raiseLimit("gc_thresh3", hard)
	if err != nil && was < need {
		err = fmt.Errorf("internet: the topology may need %d IPv4 neighbour entries, more than the kernel's limit (%sgc_thresh3, one for every namespace), and raising it failed: %w; raise it as root in the first namespace, or put fewer hosts on a LAN",
			need, neighPath, err)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			// Not the first namespace, or a sandbox: this machine
			// cannot build it, as Check says of a missing tool.
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return err
	}
	raiseLimit("gc_thresh2", soft) // best effort: a low soft limit costs collections, not packets
	return nil
}

// raiseLimit sets the neighbour table limit name to want if it is lower,
// and returns its value: before, if it could not be raised; -1 if
// unknown.
func raiseLimit(name string, want int) (int, error) {
	path := neighPath + name
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, err
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	// Another process may raise it at the same moment, to less: read it
	// back, and write again while it is lower than wanted.
	for try := 0; cur < want; try++ {
		if try == 3 {
			return cur, fmt.Errorf("%s: set to %d, reads %d", path, want, cur)
		}
		if err := writeLimit(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
			return cur, err
		}
		if b, err = os.ReadFile(path); err != nil {
			return -1, err
		}
		if cur, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return -1, fmt.Errorf("%s: %w", path, err)
		}
	}
	return cur, nil
}
