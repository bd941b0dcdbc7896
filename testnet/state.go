package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// StateFile is the file in a network's directory where Save records the
// network, for Load in another process (the testnet command keeps a network
// between its invocations this way).
const StateFile = "testnet.json"

// state is what the state file holds.
type state struct {
	Bin   string        `json:"bin"`
	Args  []string      `json:"args,omitempty"`
	Nodes []daemonState `json:"nodes"`
}

type daemonState struct {
	Index  int      `json:"index"`
	PID    int      `json:"pid,omitempty"` // 0: not running
	ID     string   `json:"id,omitempty"`
	Addrs  []string `json:"addrs,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Args   []string `json:"args,omitempty"`
	Listen []string `json:"listen,omitempty"`
	Bin    string   `json:"bin,omitempty"`
	CLI    string   `json:"cli,omitempty"`
	Env    []string `json:"env,omitempty"`
}

// Save writes the network to StateFile in its directory: its binary and
// flags, and each daemon's peer ID, addresses and, while it runs, pid.
func (nw *Network) Save() error {
	nw.mu.Lock()
	s := state{Bin: nw.Bin, Args: nw.Args, Nodes: []daemonState{}}
	for _, d := range nw.Nodes {
		ds := daemonState{Index: d.Index, ID: d.ID, Addrs: d.Addrs, Prefix: d.Prefix,
			Args: d.Args, Listen: d.Listen, Bin: d.Bin, CLI: d.CLI, Env: d.Env}
		if d.Running() {
			ds.PID = d.pid
		}
		s.Nodes = append(s.Nodes, ds)
	}
	nw.mu.Unlock()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(nw.Dir, StateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save the network: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save the network: %w", err)
	}
	return nil
}

// Load reads the network Save wrote in dir. Its daemons that still run are
// the processes of the recorded pids, so long as each is a p2pshare daemon
// on that node's repo: Running, Signal, Kill, Stop and Start work on them
// as on daemons this process started.
func Load(dir string) (*Network, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s: %w", filepath.Join(dir, StateFile), err)
	}
	nw := New(s.Bin, dir)
	nw.Args = s.Args
	for i, ds := range s.Nodes {
		if ds.Index != i+1 {
			return nil, fmt.Errorf("state file %s: node %d listed as node %d", filepath.Join(dir, StateFile), i+1, ds.Index)
		}
		d := &Daemon{net: nw, Index: ds.Index, ID: ds.ID, Addrs: ds.Addrs, Prefix: ds.Prefix,
			Args: ds.Args, Listen: ds.Listen, Bin: ds.Bin, CLI: ds.CLI, Env: ds.Env, pid: ds.PID}
		d.Repo = filepath.Join(dir, fmt.Sprintf("node%d", d.Index))
		d.Log = filepath.Join(dir, fmt.Sprintf("node%d.log", d.Index))
		nw.Nodes = append(nw.Nodes, d)
	}
	return nw, nil
}

// adopted reports whether d's recorded pid, of a process this one did not
// start, is alive (not a zombie) and a p2pshare daemon on d's repo: a pid
// reused by another process is never taken for the daemon.
func (d *Daemon) adopted() bool {
	if d.pid <= 0 || !alive(d.pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.pid))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	daemon, onRepo := false, false
	for i, a := range args {
		switch {
		case string(a) == "daemon":
			daemon = true
		case string(a) == "--repo" && i+1 < len(args):
			onRepo = onRepo || string(args[i+1]) == d.Repo
		case string(a) == "--repo="+d.Repo:
			onRepo = true
		}
	}
	return daemon && onRepo
}

// alive reports whether pid is a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// hold any byte.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// waitGone waits up to timeout for the daemon's process to exit and
// reports whether it did.
func (d *Daemon) waitGone(timeout time.Duration) bool {
	if d.done != nil {
		select {
		case <-d.done:
			return true
		case <-time.After(timeout):
			return false
		}
	}
	// alive, not adopted: a dying process loses its command line before it
	// exits, and its repo lock is free only once it has.
	for deadline := time.Now().Add(timeout); alive(d.pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
