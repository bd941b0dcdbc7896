package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/api"
)

// repoIncarnationFile keeps the node's last membership incarnation.
const repoIncarnationFile = "incarnation"

// wallClock is the node's wall clock as gossip takes it.
type wallClock struct{ now func() time.Time }

func (c *wallClock) Now() time.Time { return c.now() }

// incarnations is the node's incarnation counter, kept in its repo: every
// start and every refutation takes the next value, written and synced to
// disk before it is used, so a restart is newer than anything this node
// announced before, whatever its clock says. A repo without the file
// (new, or written by a release whose incarnation was the start time in
// nanoseconds) starts the counter at the current time in nanoseconds,
// above any incarnation such a release used, unless the clock was set back
// since.
type incarnations struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
}

// Next implements gossip.Incarnations.
func (c *incarnations) Next() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next uint64
	b, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		next = uint64(max(c.now().UnixNano(), 1))
	case err != nil:
		return 0, fmt.Errorf("read %s: %w", c.path, err)
	default:
		last, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("%s holds %q, not a number: delete the file to start the counter again from the clock", c.path, strings.TrimSpace(string(b)))
		}
		next = last + 1
	}
	if err := writeSynced(c.path, []byte(strconv.FormatUint(next, 10)+"\n")); err != nil {
		return 0, err
	}
	return next, nil
}

// writeSynced replaces path with b through a synced temporary file and
// syncs the directory, so a crash leaves either the old or the new
// content.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// now is the node's wall clock.
func (n *Node) now() time.Time { return n.clock() }

// clockOffset is how far this node's clock is ahead of the network's and
// whether it is measured (false before any peer's clock was read).
func (n *Node) clockOffset() (time.Duration, bool) {
	m := n.memb
	if m == nil {
		return 0, false
	}
	d, peers := m.ClockOffset()
	return d, peers > 0
}

// networkNow is the network's time as this node knows it.
func (n *Node) networkNow() time.Time {
	d, _ := n.clockOffset()
	return n.now().Add(-d)
}

// clockLimit is how far this node's clock may be off the network's: the
// allowed skew of the KV records, names among them.
func (n *Node) clockLimit() time.Duration {
	if n.kv != nil {
		return n.kv.Config().MaxClockSkew
	}
	return kv.DefaultConfig().MaxClockSkew
}

// measureClock reads now the clocks of the live peers not measured yet, so
// a write right after meeting them is judged by all of them: judged by one
// peer of two, a node 60 s ahead would be 30 s off the median, within the
// limit. Peers already measured are not asked again.
func (n *Node) measureClock() {
	if m := n.memb; m != nil {
		m.MeasureClocks()
	}
}

// clockError is the API error of a write refused because this node's
// clock is off, nil if it is not (or not measured yet: a node alone).
func (n *Node) clockError(what string) error {
	if n.kv == nil {
		return nil
	}
	n.measureClock()
	if err := n.kv.CheckClock(); err != nil {
		return api.Errorf(api.ErrClockOff, "%s: %v", what, err)
	}
	return nil
}

// clockWarning is the one-line warning about this node's clock, empty
// when it is within the limit or not measured.
func (n *Node) clockWarning() string {
	if n.kv == nil {
		return ""
	}
	if err := n.kv.CheckClock(); err != nil {
		return err.Error() + "; writes are refused until then"
	}
	return ""
}

// watchClock logs this node's offset to the network once first measured,
// and warns whenever the clock goes past the limit (and says when it is
// back within it). While past it, the warning is repeated when the offset
// has moved by more than the limit since it was last given: the first
// figure may rest on the one member measured so far (the median of this
// node's zero and that member's offset is half the truth), and the log
// should end up saying the offset the network agrees on.
func (n *Node) watchClock() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	measured, off := false, false
	var warned time.Duration // the offset of the last warning
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		d, ok := n.clockOffset()
		if !ok {
			continue
		}
		warn, limit := n.clockWarning(), n.clockLimit()
		switch clockLogLine(measured, off, warn != "", d, warned, limit) {
		case clockWarn:
			n.log.Warn("CLOCK: "+warn, "offset", d, "limit", limit)
			warned = d
		case clockBack:
			n.log.Info("clock back within the limit of the network's", "offset", d, "limit", limit)
		case clockMeasured:
			n.log.Info("clock offset to the network measured", "offset", d, "limit", limit)
		}
		measured, off = true, warn != ""
	}
}

// clockLine is a line watchClock logs.
type clockLine int

const (
	clockNone     clockLine = iota
	clockWarn               // the clock is off (again, or by another figure)
	clockBack               // back within the limit
	clockMeasured           // first measured, within the limit
)

// clockLogLine is what watchClock logs for a check that finds offset d,
// isOff past the limit, after earlier checks (measured: any; off: the
// last one was off, with a warning given at offset warned).
func clockLogLine(measured, off, isOff bool, d, warned, limit time.Duration) clockLine {
	switch {
	case isOff && (!off || (d-warned).Abs() > limit):
		return clockWarn
	case !isOff && off:
		return clockBack
	case !measured && !isOff:
		return clockMeasured
	}
	return clockNone
}
