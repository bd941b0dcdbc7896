//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
)

const demoNotes = `p2pshare demo notes
- every node is a real daemon process with its own repo and peer ID
- node 2 shares this file; node 5 fetches it by name
- the bytes come straight from a peer that holds them, checked against the CID
`

// step prints a heading of the tour.
func step(s string) { fmt.Printf("\n== %s\n", s) }

// demo runs the tour and tears the network down, whether it passed or not.
func (t *tn) demo(ctx context.Context) (err error) {
	start := time.Now()
	defer func() {
		step("tear down")
		if derr := t.down(); derr != nil {
			fmt.Fprintln(os.Stderr, "testnet: "+derr.Error())
		}
		if err == nil {
			fmt.Println("\ndemo done.")
			return
		}
		fmt.Fprintln(os.Stderr, "testnet: "+err.Error())
		fmt.Fprintf(os.Stderr, "demo FAILED; node logs are in %s\n", t.show(t.run))
		err = errDemo
	}()
	step("clear any earlier testnet in " + t.show(t.run))
	if err := t.down(); err != nil {
		return err
	}
	step("start 5 daemons on 127.0.0.1 (node 1 first, the others bootstrap to it)")
	fmt.Printf("$ %s up 5\n", t.prog)
	if err := t.up(ctx, "5"); err != nil {
		return err
	}
	nw, err := t.load()
	if err != nil {
		return err
	}
	tour := &demoTour{t: t, nw: nw}
	if err := tour.run(ctx); err != nil {
		return err
	}
	step("the network")
	fmt.Printf("$ %s status\n", t.prog)
	if err := t.status(); err != nil {
		return err
	}
	p := t.prog
	fmt.Printf("\n(tour took %d s; to drive a network by hand:\n", int(time.Since(start).Seconds()))
	fmt.Printf("   %s up 4; %s exec 3 share FILE; %s exec 1 get NAME;\n", p, p, p)
	fmt.Printf("   %s kill 2; %s restart 2; %s status; %s down)\n", p, p, p, p)
	return nil
}

// errDemo is a failed demo, whose reason is already printed.
var errDemo = errors.New("demo failed")

// demoTour is the part of the demo that drives a network that is up.
type demoTour struct {
	t  *tn
	nw *testnet.Network
}

// cli runs the CLI on node i as a user would, showing the command line
// (with shown in place of args when set) and its output; a failure stops
// the tour.
func (dt *demoTour) cli(i int, shown []string, args ...string) (string, error) {
	d := dt.nw.Node(i)
	if shown == nil {
		shown = args
	}
	fmt.Printf("$ p2pshare --repo %s %s\n", dt.t.show(d.Repo), strings.Join(shown, " "))
	r := d.Run(args...)
	fmt.Print(r.Stdout)
	fmt.Fprint(os.Stderr, r.Stderr)
	if r.Code != 0 {
		return r.Stdout, fmt.Errorf("p2pshare %s on node %d: exit %d", strings.Join(args, " "), i, r.Code)
	}
	return r.Stdout, nil
}

// cliJSON is cli with its output decoded into v.
func (dt *demoTour) cliJSON(v any, i int, shown []string, args ...string) error {
	out, err := dt.cli(i, shown, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("p2pshare %s on node %d: %w", strings.Join(args, " "), i, err)
	}
	return nil
}

// index is the node of the peer ID, or "?".
func (dt *demoTour) index(id string) string {
	for _, d := range dt.nw.Nodes {
		if d.ID == id {
			return fmt.Sprint(d.Index)
		}
	}
	return "?"
}

func (dt *demoTour) run(ctx context.Context) error {
	show := dt.t.show
	dir := filepath.Join(dt.t.run, "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, "notes.txt")
	out := filepath.Join(dir, "notes-from-the-network.txt")
	_ = os.Remove(out)
	if err := os.WriteFile(file, []byte(demoNotes), 0o644); err != nil {
		return err
	}

	step("node 2 shares a file")
	fmt.Printf("(the file: %s, %d lines)\n", show(file), strings.Count(demoNotes, "\n"))
	var sh struct{ Name, CID string }
	if err := dt.cliJSON(&sh, 2, []string{"share", show(file), "--json"}, "share", file, "--json"); err != nil {
		return err
	}
	fmt.Printf("-> shared as name '%s', CID %s\n", sh.Name, sh.CID)

	step("node 5 gets it by name")
	var got struct{ CID, Provider string }
	if err := dt.cliJSON(&got, 5, []string{"get", sh.Name, "-o", show(out), "--json"}, "get", sh.Name, "-o", out, "--json"); err != nil {
		return err
	}
	fmt.Printf("-> got CID %s\n", got.CID)
	fmt.Printf("-> served by peer %s (node %s)\n", got.Provider, dt.index(got.Provider))
	if got.CID != sh.CID {
		return errors.New("the CID node 5 got differs from the one node 2 shared")
	}

	step("compare the bytes")
	fmt.Printf("$ cmp %s %s\n", show(file), show(out))
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, []byte(demoNotes)) {
		return fmt.Errorf("bytes differ: %s and %s (%v)", show(file), show(out), err)
	}
	fmt.Println("bytes match")

	step("every node lists the catalog; node 3 searches it")
	if _, err := dt.cli(4, nil, "ls"); err != nil {
		return err
	}
	var found []struct{ CID string }
	if err := dt.cliJSON(&found, 3, nil, "search", "NOTES", "--json"); err != nil {
		return err
	}
	if len(found) != 1 || found[0].CID != sh.CID {
		return fmt.Errorf("search on node 3 did not find '%s'", sh.Name)
	}

	step("node 1 writes the key-value store; node 5 reads it")
	motd := "welcome to the demo network"
	if _, err := dt.cli(1, []string{"kv", "put", "motd", `"` + motd + `"`, "--ttl", "1h"}, "kv", "put", "motd", motd, "--ttl", "1h"); err != nil {
		return err
	}
	var kv struct{ Writer string }
	for deadline := time.Now().Add(10 * time.Second); ; {
		if dt.nw.Node(5).JSON(&kv, "kv", "get", "motd", "--json") == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("node 5 never saw the key node 1 wrote")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := dt.cli(5, nil, "kv", "get", "motd"); err != nil {
		return err
	}
	if kv.Writer != dt.nw.Node(1).ID {
		return fmt.Errorf("node 5 names the wrong writer: %s, not node 1's %s", kv.Writer, dt.nw.Node(1).ID)
	}
	return nil
}
