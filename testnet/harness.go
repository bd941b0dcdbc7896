// Package testnet starts, drives and stops networks of real p2pshare daemon
// processes on this machine: the Go harness that end-to-end tests and
// benchmarks use, and the one behind the testnet command for people
// (cmd/testnet, run by testnet.sh), which records a network in a state
// file (Save, Load) so that later commands find its daemons. Each daemon
// has its own repo under the network's directory and, unless told other
// listen addresses or a command prefix (ip netns exec NS, for the emulated
// internet of package internet), listens on 127.0.0.1 only, with mDNS off
// so parallel networks never meet. It imports no other p2pshare package:
// it drives the daemons through the p2pshare binary.
package testnet

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the p2pshare binary into dir and returns its path.
func Build(dir string) (string, error) { return BuildTagged(dir, "p2pshare") }

// ClockSkewTag is the build tag of a test binary whose daemon shifts its
// wall clock by $P2PSHARE_TEST_CLOCK_OFFSET (see Daemon.Env): Go reads the
// time through the vDSO, which libfaketime does not intercept.
const ClockSkewTag = "clockskew"

// BuildTagged compiles the p2pshare binary with build tags into dir under
// name and returns its path.
func BuildTagged(dir, name string, tags ...string) (string, error) {
	bin := filepath.Join(dir, name)
	var flags []string
	if len(tags) > 0 {
		flags = []string{"-tags", strings.Join(tags, ",")}
	}
	return bin, goBuild(SourceRoot(), bin, flags...)
}

// goBuild compiles ./cmd/p2pshare of the source tree at root into bin,
// with more go build flags.
func goBuild(root, bin string, flags ...string) error {
	args := append([]string{"build", "-o", bin}, flags...)
	cmd := exec.Command("go", append(args, "./cmd/p2pshare")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build p2pshare in %s: %v\n%s", root, err, out)
	}
	return nil
}

// ErrNoRevision: the revision BuildRevision was asked for is not in the
// source tree's git history (a shallow clone, or no git at all).
var ErrNoRevision = errors.New("revision not available")

// BuildRevision compiles the p2pshare binary of git revision rev of the
// source tree (an earlier release, say) into dir and returns its path. The
// revision's files are exported with git archive into dir, so neither the
// work tree nor the repository's list of worktrees changes.
func BuildRevision(dir, rev string) (string, error) {
	root := SourceRoot()
	git, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("%w: no git to export %s with: %v", ErrNoRevision, rev, err)
	}
	if out, err := exec.Command(git, "-C", root, "cat-file", "-e", rev+"^{commit}").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: %s is not in the history of %s (a shallow clone?): %s", ErrNoRevision, rev, root, strings.TrimSpace(string(out)))
	}
	src := filepath.Join(dir, "src-"+rev)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command(git, "-C", root, "archive", "--format=tar", rev)
	var stderr bytes.Buffer
	archive.Stderr = &stderr
	out, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := archive.Start(); err != nil {
		return "", fmt.Errorf("git archive %s: %w", rev, err)
	}
	xerr := untar(out, src)
	if xerr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	if err := archive.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", rev, err, strings.TrimSpace(stderr.String()))
	}
	if xerr != nil {
		return "", fmt.Errorf("export %s: %w", rev, xerr)
	}
	// The export is no checkout: Go must not stamp the revision of a
	// repository it may lie in (dir under a work tree).
	bin := filepath.Join(dir, "p2pshare-"+rev)
	return bin, goBuild(src, bin, "-buildvcs=false")
}

// untar writes the directories, files and symlinks of the tar stream r
// under dst.
func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dst+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q lies outside %s", h.Name, dst)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			err = writeFrom(p, tr, h.FileInfo().Mode().Perm())
		}
		if err != nil {
			return err
		}
	}
}

// writeFrom creates path with mode and copies r into it.
func writeFrom(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SourceRoot is the root of the p2pshare source tree this package was
// built from.
func SourceRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Network is a set of daemons sharing one directory.
type Network struct {
	Bin  string
	Dir  string
	Args []string // extra daemon flags for every node
	// Setup, if set, is called on each daemon Add creates, before its
	// first start: the place to set its Prefix and Listen.
	Setup func(d *Daemon)
	mu    sync.Mutex
	Nodes []*Daemon

	// Detach starts each daemon in a session of its own, so that it
	// outlives the process that started it and its terminal.
	Detach bool
	// Ready is how long Start waits for a daemon's API (default 20 s).
	Ready time.Duration
	// Starting, if set, is called by Up before it starts nodes first..last
	// (bootstrapped to bootstrap, "" for node 1).
	Starting func(first, last int, bootstrap string)
	// CLITimeout is the deadline of each CLI run (default a minute).
	CLITimeout time.Duration
	// BatchGap is how long Up waits after a batch is ready before it
	// starts the next (default none): on a small machine, time for the
	// batch's joins to settle before more daemons start.
	BatchGap time.Duration
}

// Daemon is one daemon process of a Network.
type Daemon struct {
	net   *Network
	Index int // 1-based
	Repo  string
	Log   string
	ID    string
	Addrs []string // with /p2p/ID
	// Prefix, if set, is prepended to the daemon's command line and to
	// every CLI run against it (say ip netns exec NS, to run both in a
	// network namespace).
	Prefix []string
	// Args are extra daemon flags of this node, after the network's.
	Args []string
	// Listen, if set, replaces the default listen addresses (127.0.0.1,
	// TCP and QUIC, port 0) of the first start.
	Listen []string
	// Bin, if set, is the binary the daemon process runs (a test build,
	// see BuildTagged); the CLI run against it stays the network's unless
	// CLI is set.
	Bin string
	// CLI, if set, is the binary every CLI run against this daemon uses
	// (another release's, say, whose daemon Bin runs).
	CLI string
	// Env is added to the daemon process's environment.
	Env []string
	// Attr, if set, adjusts the daemon process's attributes (say, the user
	// it runs as) before it starts.
	Attr func(*syscall.SysProcAttr)
	pid  int // of the process, also when started by another (see Load)
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Result is the outcome of one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// New returns an empty network in dir using the binary bin.
func New(bin, dir string) *Network { return &Network{Bin: bin, Dir: dir} }

// StartBatch is how many daemons Up starts at once. Starting is the
// costliest second of a daemon's life (keys, stores, handshakes with every
// peer it meets): a hundred at once on two cores starve each other for
// tens of seconds, and machines joining a real network do not all start
// in the same second either.
const StartBatch = 10

// Up starts n daemons: the first, then the rest bootstrapped to it in
// batches of StartBatch, each batch ready before the next starts.
func (nw *Network) Up(ctx context.Context, n int) error {
	if nw.Starting != nil {
		nw.Starting(1, 1, "")
	}
	first, err := nw.Add(ctx)
	if err != nil {
		return err
	}
	for started := 1; started < n; {
		if nw.BatchGap > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(nw.BatchGap):
			}
		}
		k := min(StartBatch, n-started)
		if nw.Starting != nil {
			nw.Starting(started+1, started+k, first.TCPAddr())
		}
		errs := make(chan error, k)
		for range k {
			go func() {
				_, err := nw.Add(ctx, first.TCPAddr())
				errs <- err
			}()
		}
		for range k {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return err
		}
		started += k
	}
	return nil
}

// Add starts one more daemon bootstrapped to the given addresses and waits
// for it to be ready.
func (nw *Network) Add(ctx context.Context, bootstrap ...string) (*Daemon, error) {
	nw.mu.Lock()
	d := &Daemon{net: nw, Index: len(nw.Nodes) + 1}
	d.Repo = filepath.Join(nw.Dir, fmt.Sprintf("node%d", d.Index))
	d.Log = filepath.Join(nw.Dir, fmt.Sprintf("node%d.log", d.Index))
	nw.Nodes = append(nw.Nodes, d)
	nw.mu.Unlock()
	if nw.Setup != nil {
		nw.Setup(d)
	}
	return d, d.Start(ctx, bootstrap...)
}

// Node returns daemon i (1-based).
func (nw *Network) Node(i int) *Daemon { return nw.Nodes[i-1] }

// Down stops every daemon (SIGTERM, then SIGKILL after a deadline).
func (nw *Network) Down() {
	var wg sync.WaitGroup
	for _, d := range nw.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); d.Stop(10 * time.Second) }()
	}
	wg.Wait()
}

// Start runs the daemon and waits until its API answers.
func (d *Daemon) Start(ctx context.Context, bootstrap ...string) error {
	// A restarted daemon listens where it did before, as a daemon on a fixed
	// port would: peers that remember its address can dial it again.
	listen := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	if len(d.Listen) > 0 {
		listen = d.Listen
	}
	if len(d.Addrs) > 0 {
		listen = nil
		for _, a := range d.Addrs {
			listen = append(listen, strings.TrimSuffix(a, "/p2p/"+d.ID))
		}
	}
	args := []string{"daemon", "--repo", d.Repo, "--api", "127.0.0.1:0", "--no-mdns"}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	args = append(args, d.net.Args...)
	args = append(args, d.Args...)
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(d.Repo, "api"))
	bin := d.net.Bin
	if d.Bin != "" {
		bin = d.Bin
	}
	cmd := command(context.Background(), d.Prefix, bin, args)
	if len(d.Env) > 0 {
		cmd.Env = append(os.Environ(), d.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr(d.net.Detach)
	if d.Attr != nil {
		d.Attr(cmd.SysProcAttr)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node %d: %w", d.Index, err)
	}
	d.cmd, d.done, d.pid = cmd, make(chan struct{}), cmd.Process.Pid
	go func() {
		d.err = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	ready := d.net.Ready
	if ready == 0 {
		ready = 20 * time.Second
	}
	deadline := time.Now().Add(ready)
	for {
		if time.Now().After(deadline) {
			d.Kill()
			return fmt.Errorf("node %d not ready after %s:\n%s", d.Index, ready, d.LogTail(20))
		}
		select {
		case <-d.done:
			return fmt.Errorf("node %d exited (%v):\n%s", d.Index, d.err, d.LogTail(20))
		case <-ctx.Done():
			d.Kill()
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if _, err := os.Stat(filepath.Join(d.Repo, "api")); err != nil {
			continue
		}
		var id struct {
			ID    string   `json:"id"`
			Addrs []string `json:"addrs"`
		}
		if err := d.JSON(&id, "id", "--json"); err == nil && id.ID != "" {
			d.ID, d.Addrs = id.ID, id.Addrs
			return nil
		}
	}
}

// Running reports whether the process is alive.
func (d *Daemon) Running() bool {
	if d.done == nil {
		return d.adopted()
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// PID returns the daemon's process ID.
func (d *Daemon) PID() int { return d.pid }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error {
	if !d.Running() {
		return errors.New("not running")
	}
	if d.cmd != nil {
		return d.cmd.Process.Signal(sig)
	}
	return signalPID(d.pid, sig)
}

// Kill sends SIGKILL and waits for the process to go.
func (d *Daemon) Kill() {
	if !d.Running() {
		return
	}
	_ = d.Signal(syscall.SIGKILL)
	if d.done != nil {
		<-d.done
		return
	}
	d.waitGone(5 * time.Second)
}

// Stop sends SIGTERM, waits up to grace, then kills.
func (d *Daemon) Stop(grace time.Duration) {
	if !d.Running() {
		return
	}
	_ = d.Signal(syscall.SIGTERM)
	if !d.waitGone(grace) {
		d.Kill()
	}
}

// Wait waits for the process to exit and returns its error.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		return fmt.Errorf("node %d still running after %s", d.Index, timeout)
	}
}

// TCPAddr is the daemon's TCP multiaddr with /p2p/ID.
func (d *Daemon) TCPAddr() string {
	for _, a := range d.Addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	return ""
}

// Run runs the CLI against this daemon's repo.
func (d *Daemon) Run(args ...string) Result {
	bin := d.net.Bin
	if d.CLI != "" {
		bin = d.CLI
	}
	return d.net.runCLI(d.Prefix, bin, append([]string{"--repo", d.Repo}, args...)...)
}

// command is bin with args, behind prefix if there is one.
func command(ctx context.Context, prefix []string, bin string, args []string) *exec.Cmd {
	if len(prefix) == 0 {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, prefix[0], append(append(append([]string{}, prefix[1:]...), bin), args...)...)
}

// RunCLI runs the binary with args, in the network's directory, with a
// deadline of a minute (or CLITimeout).
func (nw *Network) RunCLI(args ...string) Result { return nw.runCLI(nil, nw.Bin, args...) }

func (nw *Network) runCLI(prefix []string, bin string, args ...string) Result {
	timeout := nw.CLITimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, prefix, bin, args)
	cmd.Dir = nw.Dir
	cmd.Env = append(os.Environ(), "P2PSHARE_REPO=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			errb.WriteString(err.Error())
		}
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// JSON runs the CLI and decodes its stdout into v.
func (d *Daemon) JSON(v any, args ...string) error {
	r := d.Run(args...)
	if r.Code != 0 {
		return fmt.Errorf("p2pshare %s: exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
	}
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		return fmt.Errorf("p2pshare %s: decode %q: %w", strings.Join(args, " "), r.Stdout, err)
	}
	return nil
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
