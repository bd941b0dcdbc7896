//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
)

// column is one column of status: its header, width, and the field of a
// node. To add a column, add a line to columns.
type column struct {
	header string
	width  int
	field  func(r *statusRow) string
}

// statusRow is what status knows of one node.
type statusRow struct {
	nw  *testnet.Network
	d   *testnet.Daemon
	pid int    // 0 when stopped
	id  *idOut // nil when stopped or not answering
}

var columns = []column{
	{"NODE", 4, func(r *statusRow) string { return strconv.Itoa(r.d.Index) }},
	{"STATE", 8, func(r *statusRow) string {
		switch {
		case r.pid == 0:
			return "stopped"
		case r.id == nil:
			return "starting"
		}
		return "running"
	}},
	{"PID", 8, func(r *statusRow) string {
		if r.pid == 0 {
			return "-"
		}
		return strconv.Itoa(r.pid)
	}},
	{"PEER ID", 52, func(r *statusRow) string {
		if r.id != nil {
			return r.id.ID
		}
		return dash(r.d.ID) // the last known peer ID of a stopped node
	}},
	{"API", 22, func(r *statusRow) string {
		if r.id != nil {
			return dash(r.id.API)
		}
		return "-"
	}},
	{"PEERS", 5, func(r *statusRow) string { return r.peersField() }},
	{"VIEW", 0, func(r *statusRow) string { return r.viewField() }},
}

func (r *statusRow) peersField() string {
	var peers []json.RawMessage
	if r.id == nil || r.d.JSON(&peers, "peers", "--json") != nil {
		return "-"
	}
	return strconv.Itoa(len(peers))
}

func (r *statusRow) viewField() string {
	if r.id == nil {
		return "-"
	}
	return view(r.nw, r.d)
}

// view is d's members table as one letter per testnet node, in node order;
// '*' is d itself; "-" when d does not answer.
func view(nw *testnet.Network, d *testnet.Daemon) string {
	var members []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if d.JSON(&members, "members", "--json") != nil {
		return "-"
	}
	states := map[string]string{}
	for _, m := range members {
		states[m.ID] = m.State
	}
	letters := map[string]string{"alive": "A", "suspect": "S", "dead": "D", "left": "L"}
	var b strings.Builder
	for _, o := range nw.Nodes {
		l, ok := letters[states[o.ID]]
		switch {
		case o == d:
			l = "*"
		case o.ID == "" || !ok:
			l = "?"
		}
		b.WriteString(l)
	}
	return b.String()
}

// converge waits, up to limit, until every node sees every other alive.
func converge(ctx context.Context, nw *testnet.Network, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		all := true
		for _, d := range nw.Nodes {
			if strings.Trim(view(nw, d), "A*") != "" {
				all = false
				break
			}
		}
		if all {
			return
		}
	}
}

func statusLine(field func(c column) string) string {
	var line strings.Builder
	for _, c := range columns {
		fmt.Fprintf(&line, "%-*s  ", c.width, field(c))
	}
	return strings.TrimRight(line.String(), " ")
}

func (t *tn) status() error {
	nw, err := t.load()
	if err != nil {
		return err
	}
	if nw == nil || len(nw.Nodes) == 0 {
		fmt.Printf("no testnet in %s (start one with '%s up N')\n", t.run, t.prog)
		return nil
	}
	fmt.Println(statusLine(func(c column) string { return c.header }))
	for _, d := range nw.Nodes {
		r := &statusRow{nw: nw, d: d}
		if d.Running() {
			r.pid = d.PID()
			var id idOut
			if d.JSON(&id, "id", "--json") == nil {
				r.id = &id
			}
		}
		fmt.Println(statusLine(func(c column) string { return c.field(r) }))
	}
	fmt.Printf("VIEW: how each node sees nodes 1..%d (A alive, S suspect, D dead, L left, ? unknown, * itself)\n", len(nw.Nodes))
	return nil
}
