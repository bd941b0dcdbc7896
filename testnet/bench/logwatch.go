package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
)

// logWatch finds, in the daemons' own logs, when each of them logged an
// event about one member. Polling every daemon's API every few
// milliseconds costs a 100-node network on two cores more than the
// detector it measures; the logs cost nothing to the daemons, and their
// timestamps (milliseconds, one machine's clock) say when each node knew.
type logWatch struct {
	nw     *testnet.Network
	offset map[*testnet.Daemon]int64
}

// watchLogs starts watching at the current end of every running
// daemon's log.
func watchLogs(nw *testnet.Network) *logWatch {
	w := &logWatch{nw: nw, offset: map[*testnet.Daemon]int64{}}
	for _, d := range nw.Nodes {
		if fi, err := os.Stat(d.Log); err == nil {
			w.offset[d] = fi.Size()
		}
	}
	return w
}

// wait returns how long after since the last running daemon other than
// skip logged one of msgs about id, waiting at most limit for all of them.
func (w *logWatch) wait(skip *testnet.Daemon, id string, msgs []string, since time.Time, limit time.Duration) (time.Duration, error) {
	seen := map[*testnet.Daemon]time.Time{}
	var tail = map[*testnet.Daemon][]byte{}
	deadline := time.Now().Add(limit)
	for {
		missing := 0
		for _, d := range w.nw.Nodes {
			if d == skip || !d.Running() {
				continue
			}
			if _, ok := seen[d]; ok {
				continue
			}
			at, rest, err := w.scan(d, tail[d], id, msgs)
			if err != nil {
				return 0, err
			}
			tail[d] = rest
			if at.IsZero() {
				missing++
				continue
			}
			seen[d] = at
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d nodes did not log %v about %s within %s", missing, msgs, id, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var last time.Time
	for _, at := range seen {
		if at.After(last) {
			last = at
		}
	}
	return max(last.Sub(since), 0), nil
}

// scan reads what d logged since the last scan (partial carries an
// unfinished last line) and returns the time of the first line holding
// one of msgs and peer=id.
func (w *logWatch) scan(d *testnet.Daemon, partial []byte, id string, msgs []string) (time.Time, []byte, error) {
	f, err := os.Open(d.Log)
	if err != nil {
		return time.Time{}, nil, err
	}
	defer f.Close()
	if _, err := f.Seek(w.offset[d], io.SeekStart); err != nil {
		return time.Time{}, nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return time.Time{}, nil, err
	}
	w.offset[d] += int64(len(b))
	b = append(partial, b...)
	end := bytes.LastIndexByte(b, '\n') + 1
	lines, rest := b[:end], append([]byte(nil), b[end:]...)
	for _, l := range strings.Split(string(lines), "\n") {
		if !strings.Contains(l, "peer="+id) {
			continue
		}
		for _, m := range msgs {
			if strings.Contains(l, `msg="`+m+`"`) {
				return logTime(l), rest, nil
			}
		}
	}
	return time.Time{}, rest, nil
}

// logTime parses a log line's time= field; a line without one counts as
// now.
func logTime(line string) time.Time {
	if i := strings.Index(line, "time="); i >= 0 {
		f := strings.Fields(line[i+len("time="):])
		if len(f) > 0 {
			if t, err := time.Parse(time.RFC3339Nano, f[0]); err == nil {
				return t
			}
		}
	}
	return time.Now()
}
