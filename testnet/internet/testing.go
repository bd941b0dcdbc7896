package internet

import (
	"context"
	"errors"
	"testing"
	"time"
)

// New builds topo for the test t and closes it at t's cleanup. It skips t,
// saying why, where this machine cannot make namespaces, and fails it on
// any other error (of Build or of Close).
func New(t testing.TB, topo Topology) *Internet {
	t.Helper()
	if err := Check(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, err := Build(ctx, topo)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return in
}
