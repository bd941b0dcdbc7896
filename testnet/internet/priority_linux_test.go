package internet

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The process that runs the links' delays runs above its hosts' priority
// while it holds them; what it starts in a node (Exec, Command, a daemon
// through Prefix) runs at the niceness the process had before; Close
// gives the process that niceness back.
func TestPriority(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	before := niceness()
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, linkNice); errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("skipped: this process may not raise its priority: %v", err)
	}
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, before)
	want := strconv.Itoa(before)

	in := build(t, TwoNATs(KindMasquerade, KindMasquerade, Link{Delay: time.Millisecond}))
	if got := niceness(); got > linkNice {
		t.Errorf("this thread's niceness is %d with delays running, want %d or less", got, linkNice)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := in.Host("nat1-a").Exec(ctx, "nice") // nice alone prints the niceness
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("a program run in a node has niceness %s, want %s", got, want)
	}
	p := in.Host("pub").Prefix()
	b, err := exec.CommandContext(ctx, p[0], append(p[1:], "nice")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("a program run through Prefix has niceness %s, want %s", got, want)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if got := niceness(); got != before {
		t.Errorf("after Close this thread's niceness is %d, want %d again", got, before)
	}
	if p := in.Host("pub").Prefix(); len(p) != 4 {
		t.Errorf("after Close the prefix is %v, want no nice", p)
	}
}
