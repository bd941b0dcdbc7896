//go:build clockskew

package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// clockOffsetEnv shifts the daemon's wall clock in test builds (built with
// -tags clockskew), to play a machine whose clock is wrong: Go programs
// read the time through the vDSO, which libfaketime does not intercept.
const clockOffsetEnv = "P2PSHARE_TEST_CLOCK_OFFSET"

// daemonClock is the system's clock shifted by $P2PSHARE_TEST_CLOCK_OFFSET
// (a Go duration such as 10m or -90s).
func daemonClock(log *slog.Logger) (func() time.Time, error) {
	v := os.Getenv(clockOffsetEnv)
	if v == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want a duration such as 10m or -90s", clockOffsetEnv, v)
	}
	log.Warn("test build: this daemon's clock is shifted", "offset", d)
	return func() time.Time { return time.Now().Add(d) }, nil
}
