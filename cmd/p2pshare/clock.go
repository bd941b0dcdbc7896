//go:build !clockskew

package main

import (
	"log/slog"
	"time"
)

// daemonClock is the daemon's wall clock: the system's. (A test build,
// with the clockskew tag, can shift it.)
func daemonClock(*slog.Logger) (func() time.Time, error) { return time.Now, nil }
