//go:build linux

package testnet

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Users of TestE2EGetFromADaemonOfAnotherUser: the daemon runs as
// daemonUID (its repo owned by it, group daemonGID, mode 2750), the
// command as userUID, a member of daemonGID: the group that gives a user
// the use of a daemon run as a service.
const (
	daemonUID, daemonGID = 65534, 65534
	userUID, userGID     = 65532, 65532
)

// TestE2EGetFromADaemonOfAnotherUser runs a daemon as another user and
// gets a file through it as a third: the command writes the file, owned by
// the calling user, in the calling user's private directory, where the
// daemon could not write.
func TestE2EGetFromADaemonOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the daemon and the command as two other users")
	}
	if err := os.Chmod(filepath.Dir(bin), 0o711); err != nil { // the binary's directory
		t.Fatal(err)
	}
	nw := startNetworkSetup(t, 2, func(d *Daemon) {
		if d.Index != 2 {
			return
		}
		// Let the other users through the test's directories (0700).
		for dir := filepath.Dir(d.Repo); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
			if err := os.Chmod(dir, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(d.Repo, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.Repo, daemonUID, daemonGID); err != nil {
			t.Fatal(err)
		}
		// chmod 2750: the repo's group may use the daemon's API.
		if err := os.Chmod(d.Repo, os.ModeSetgid|0o750); err != nil {
			t.Fatal(err)
		}
		d.Attr = func(a *syscall.SysProcAttr) {
			a.Credential = &syscall.Credential{Uid: daemonUID, Gid: daemonGID}
		}
	}, "--replicas", "1")
	base := nw.Dir
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server, daemon := nw.Node(1), nw.Node(2)
	if fi, err := os.Stat(filepath.Join(daemon.Repo, "api.token")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("api.token of a group-readable repo: %v, mode %v, want 0640", err, fi.Mode().Perm())
	}
	content := bytes.Repeat([]byte("a file for another user\n"), 40000)
	src := writeFile(t, t.TempDir(), "notes.txt", content)
	var sh shareOut
	if err := server.JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, userUID, userGID); err != nil {
		t.Fatal(err)
	}
	asUser := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--repo", daemon.Repo}, args...)...)
		cmd.Dir = home
		cmd.Env = append(os.Environ(), "P2PSHARE_REPO=", "HOME="+home)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: userUID, Gid: userGID, Groups: []uint32{daemonGID}}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	target := filepath.Join(home, "notes.txt")
	// Written by the daemon, the file could not land here: it cannot
	// enter the user's directory.
	if out, err := asUser("get", "notes.txt", "-o", target, "--via-daemon"); err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("a daemon of another user wrote into a private directory (%v): %s", err, out)
	}
	if out, err := asUser("get", "notes.txt", "-o", target); err != nil {
		t.Fatalf("get as the user: %v: %s", err, out)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != userUID || st.Gid != userGID {
		t.Fatalf("the file is owned by %d:%d, want the calling user %d:%d", st.Uid, st.Gid, userUID, userGID)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, content) {
		t.Fatal("the bytes differ")
	}
	if ents, _ := os.ReadDir(home); len(ents) != 1 {
		t.Fatalf("the user's directory holds %d entries, want the file alone", len(ents))
	}
}
