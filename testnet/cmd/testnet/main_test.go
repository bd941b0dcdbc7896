//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
)

// cmdRun is the outcome of one run of the testnet command.
type cmdRun struct {
	stdout, stderr string
	code           int
}

// command builds the testnet command and returns a function that runs it
// on the run directory dir, as a user would through testnet.sh.
func command(t *testing.T, dir string) func(args ...string) cmdRun {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testnet.sh")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the testnet command: %v\n%s", err, out)
	}
	return func(args ...string) cmdRun {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TESTNET_DIR="+dir, "P2PSHARE_BIN=", "TESTNET_OPEN=", "TESTNET_DAEMON_ARGS=", "TESTNET_TIMEOUT=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("testnet %s: %v", strings.Join(args, " "), err)
		}
		return cmdRun{out.String(), errb.String(), code}
	}
}

// statusRows are the rows of status, one set of fields per node.
func statusRows(t *testing.T, r cmdRun) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) < 2 || !strings.HasPrefix(lines[0], "NODE  STATE     PID       PEER ID") ||
		!strings.HasPrefix(lines[len(lines)-1], "VIEW: how each node sees nodes 1..") {
		t.Fatalf("status: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rows [][]string
	for i, l := range lines[1 : len(lines)-1] {
		f := strings.Fields(l)
		if len(f) != 7 || f[0] != fmt.Sprint(i+1) {
			t.Fatalf("status row %q: want 7 fields, node %d first", l, i+1)
		}
		rows = append(rows, f)
	}
	return rows
}

// waitStatus runs status until ok says its rows are as wanted.
func waitStatus(t *testing.T, run func(args ...string) cmdRun, what string, ok func(rows [][]string) bool) [][]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := run("status")
		rows := statusRows(t, r)
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s:\n%s", what, r.stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gone reports whether no process has pid (or only its zombie).
func gone(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// TestCommand drives the testnet command as a user would: up 3, exec on
// the nodes, status, kill, restart, down, and its answers to bad input.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	run := command(t, dir)
	t.Cleanup(func() {
		// Whatever happened, stop what the command started.
		if nw, err := testnet.Load(dir); err == nil {
			nw.Down()
		}
	})

	if r := run("status"); r.code != 0 || !strings.Contains(r.stdout, "no testnet in "+dir) {
		t.Fatalf("status before up: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	up := run("up", "3")
	if up.code != 0 || !strings.Contains(up.stdout, "private network: swarm key") ||
		!strings.Contains(up.stdout, "starting nodes 2..3 (bootstrap /ip4/127.0.0.1/tcp/") ||
		!strings.Contains(up.stdout, "testnet of 3 nodes up in "+dir) {
		t.Fatalf("up 3: exit %d, stdout:\n%s\nstderr: %s", up.code, up.stdout, up.stderr)
	}
	if r := run("up", "2"); r.code != 1 || !strings.Contains(r.stderr, "node 1 of a testnet is still running") {
		t.Fatalf("up over a running testnet: exit %d, %q", r.code, r.stderr)
	}

	// The daemons outlived the command; exec drives them, in the user's
	// directory, and passes the CLI's exit code on.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("notes of the test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run("exec", "2", "share", "notes.txt"); r.code != 0 {
		t.Fatalf("exec 2 share: exit %d, %q", r.code, r.stderr)
	}
	if r := run("exec", "3", "get", "notes.txt", "-o", "got.txt"); r.code != 0 {
		t.Fatalf("exec 3 get: exit %d, %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "got.txt")); string(b) != "notes of the test\n" {
		t.Fatalf("node 3 got %q", b)
	}
	if r := run("exec", "1", "get", "never-shared.txt"); r.code != 1 || !strings.HasPrefix(r.stderr, "p2pshare: ") {
		t.Fatalf("exec 1 get never-shared.txt: exit %d, %q", r.code, r.stderr)
	}

	// Every node runs and sees the two others alive.
	rows := waitStatus(t, run, "three nodes that see each other alive", func(rows [][]string) bool {
		for i, f := range rows {
			want := []byte("AAA")
			want[i] = '*'
			if f[1] != "running" || f[5] != "2" || f[6] != string(want) {
				return false
			}
		}
		return len(rows) == 3
	})
	pid3, id3 := rows[2][2], rows[2][3]

	kill := run("kill", "3")
	if kill.code != 0 || kill.stdout != fmt.Sprintf("killed node 3 (pid %s, SIGKILL)\n", pid3) || !gone(pid3) {
		t.Fatalf("kill 3: exit %d, %q %q; process gone: %v", kill.code, kill.stdout, kill.stderr, gone(pid3))
	}
	rows = statusRows(t, run("status"))
	if f := rows[2]; f[1] != "stopped" || f[2] != "-" || f[3] != id3 || f[6] != "-" {
		t.Fatalf("status after kill 3: node 3 is %v", f)
	}
	if r := run("kill", "3"); r.code != 0 || r.stdout != "node 3 is not running\n" {
		t.Fatalf("kill 3 again: exit %d, %q", r.code, r.stdout)
	}

	nw, err := testnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := listenAddrs(nw.Node(3))
	restart := run("restart", "3")
	if restart.code != 0 || !strings.Contains(restart.stdout, "node 3 is back: pid ") ||
		!strings.Contains(restart.stdout, ", peer "+id3+"\n") ||
		!strings.Contains(restart.stdout, "  listening on "+strings.Join(before, " ")+"\n") {
		t.Fatalf("restart 3 (listening on %v before): exit %d, stdout:\n%s\nstderr: %s", before, restart.code, restart.stdout, restart.stderr)
	}
	waitStatus(t, run, "node 3 back and seen alive", func(rows [][]string) bool {
		return rows[2][1] == "running" && rows[2][3] == id3 && rows[0][6] == "*AA" && rows[2][6] == "AA*"
	})

	// down stops every daemon, and only those.
	nw, err = testnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, d := range nw.Nodes {
		pids = append(pids, fmt.Sprint(d.PID()))
	}
	down := run("down")
	if down.code != 0 || !regexp.MustCompile(`^stopping 3 node\(s\): node 1 \(pid \d+\), node 2 \(pid \d+\), node 3 \(pid \d+\)\n$`).MatchString(down.stdout) {
		t.Fatalf("down: exit %d, %q %q", down.code, down.stdout, down.stderr)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Fatalf("down left pid %s running", pid)
		}
	}
	for _, f := range statusRows(t, run("status")) {
		if f[1] != "stopped" {
			t.Fatalf("status after down: %v", f)
		}
	}
	if r := run("down"); r.code != 0 || !strings.HasPrefix(r.stdout, "no testnet node running in ") {
		t.Fatalf("down again: exit %d, %q", r.code, r.stdout)
	}

	// A repo held by a daemon the command did not start (here: this
	// test holds its lock) is not wiped by the next up.
	lock, err := os.OpenFile(filepath.Join(dir, "node1", "repo.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if r := run("up", "2"); r.code != 1 || !strings.Contains(r.stderr, "node1 is held by another daemon") {
		t.Fatalf("up over a held repo: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "node1", "identity.key")); err != nil {
		t.Fatalf("up over a held repo touched it: %v", err)
	}

	// Bad input: one line that says what to do, exit 1; a command line
	// that does not parse: the usage, exit 2.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kill", "9"}, 1, "testnet: no node 9: the testnet in " + dir + " has nodes 1..3\n"},
		{[]string{"restart", "x"}, 1, "testnet: node index must be a positive integer, got 'x'\n"},
		{[]string{"up", "0"}, 1, "testnet: up N: N must be a positive integer, got '0'\n"},
		{[]string{"exec"}, 2, "usage: testnet.sh COMMAND"},
		{[]string{"frobnicate"}, 2, "testnet: unknown command 'frobnicate'\nusage: testnet.sh COMMAND"},
	} {
		if r := run(c.args...); r.code != c.code || !strings.HasPrefix(r.stderr, c.want) {
			t.Errorf("testnet.sh %s: exit %d, stderr %q; want exit %d, %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
}
