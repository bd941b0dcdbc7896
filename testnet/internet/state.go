package internet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StateDir holds one file per internet that is up, TAG.json, written by
// Build and removed by Close: the pid of the process that owns it (whose
// death makes its namespaces stale) and its nodes, for the testnet
// command's internet subcommand (cmd/testnet).
const StateDir = "/run/p2ps-internet"

// State is what a state file says.
type State struct {
	PID    int         `json:"pid"`
	Tag    string      `json:"tag"`
	Public string      `json:"public,omitempty"`
	Nodes  []StateNode `json:"nodes,omitempty"`
}

// StateNode is one node of a State.
type StateNode struct {
	Name   string `json:"name"`
	NS     string `json:"ns"`
	IP     string `json:"ip"`
	LAN    string `json:"lan,omitempty"`
	Router string `json:"router,omitempty"`
	Kind   Kind   `json:"kind,omitempty"`
	// FarNS and Far are the namespace and the interface of the other
	// end of its link, where Cut drops its packets.
	FarNS string `json:"far_ns"`
	Far   string `json:"far"`
}

// Cut drops (off) or lets through again every packet of the node's link,
// as Internet.Cut and Restore do, from any process.
func (n *StateNode) Cut(ctx context.Context, off bool) error {
	if err := cutLink(ctx, n.FarNS, n.Far, off); err != nil {
		return fmt.Errorf("internet: cut %s: %w", n.Name, err)
	}
	return nil
}

// Node is the node called name, or nil.
func (s *State) Node(name string) *StateNode {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Alive reports whether the state's owner process still runs.
func (s *State) Alive() bool { return alive(s.PID) }

func statePath(tag string) string { return filepath.Join(StateDir, tag+".json") }

// LoadState reads the state file of the internet tagged tag.
func LoadState(tag string) (*State, error) {
	b, err := os.ReadFile(statePath(tag))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("internet: state file %s: %w", statePath(tag), err)
	}
	return &s, nil
}

// claim takes tag for this process before any namespace is made, so that
// removeStale elsewhere never takes a half-built internet for a stale one.
func claim(tag string) (string, error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return "", fmt.Errorf("internet: %w", err)
	}
	path := statePath(tag)
	b, _ := json.Marshal(State{PID: os.Getpid(), Tag: tag})
	for try := 0; try < 2; try++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return path, err
		}
		if !os.IsExist(err) {
			return "", fmt.Errorf("internet: %w", err)
		}
		if s, lerr := LoadState(tag); lerr == nil && s.Alive() {
			return "", fmt.Errorf("internet: an internet named %s is up (pid %d): stop it first (internet down --name %s)", tag, s.PID, tag)
		}
		removeTag(tag)
	}
	return "", fmt.Errorf("internet: cannot claim the name %s in %s", tag, StateDir)
}

// writeState records in's nodes in its state file.
func writeState(in *Internet) error {
	s := State{PID: os.Getpid(), Tag: in.Tag, Public: in.Public.String()}
	for _, n := range in.order {
		sn := StateNode{Name: n.Name, NS: n.NS, IP: n.IP.String(), Router: n.Router, Kind: n.Kind, FarNS: n.farNS, Far: n.far}
		if n.LAN.IsValid() {
			sn.LAN = n.LAN.String()
		}
		s.Nodes = append(s.Nodes, sn)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := in.state + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	return os.Rename(tmp, in.state)
}

// Remove deletes the namespaces and the state file of the internet tagged
// tag if its owner process is gone, and reports whether it was.
func Remove(tag string) bool {
	if s, err := LoadState(tag); err == nil && s.Alive() {
		return false
	}
	removeTag(tag)
	return true
}

// removeStale deletes the namespaces of every internet whose owner died
// (or that has no state file), and their state files.
func removeStale() {
	out, _ := run(context.Background(), "ip", "netns", "list")
	tags := map[string]bool{}
	for _, ns := range parseNetns(out) {
		if rest, ok := strings.CutPrefix(ns, nsPrefix); ok {
			if tag, _, ok := strings.Cut(rest, "-"); ok {
				tags[tag] = true
			}
		}
	}
	for tag := range tags {
		if s, err := LoadState(tag); err == nil && s.Alive() {
			continue
		}
		removeTag(tag)
	}
}

// removeTag deletes the namespaces and the state file of tag.
func removeTag(tag string) {
	out, _ := run(context.Background(), "ip", "netns", "list")
	for _, ns := range parseNetns(out) {
		if strings.HasPrefix(ns, nsPrefix+tag+"-") {
			run(context.Background(), "ip", "netns", "del", ns)
		}
	}
	os.Remove(statePath(tag))
}
