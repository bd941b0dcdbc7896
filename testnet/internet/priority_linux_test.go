package internet

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The process that runs the links' delays runs above its hosts' priority,
// and what it starts in a node (Exec, Command, a daemon through Prefix)
// runs at niceness 0.
func TestPriority(t *testing.T) {
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
	if got := strings.TrimSpace(out); got != "0" {
		t.Errorf("a program run in a node has niceness %s, want 0", got)
	}
	p := in.Host("pub").Prefix()
	b, err := exec.CommandContext(ctx, p[0], append(p[1:], "nice")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "0" {
		t.Errorf("a program run through Prefix has niceness %s, want 0", got)
	}
}
