package node

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives the nodes
// they closed. The one exception is go-flow-metrics' sweeper: a single
// process-wide goroutine that libp2p's bandwidth meters share, which the
// library starts on first use and lets idle until its meters expire; it
// belongs to no node and is not started again per node.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/libp2p/go-flow-metrics.(*sweeper).runActive"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
	)
}
