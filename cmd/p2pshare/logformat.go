package main

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger returns the daemon's logger writing to w in format: "text"
// (slog's key=value lines) or "json" (one JSON object a line).
func newLogger(w io.Writer, format string, lv slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--%s %q: want text or json", optLogFormat, format)}
}
