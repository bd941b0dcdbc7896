package admit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives the gates
// and hosts they closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
