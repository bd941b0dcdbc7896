package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/p2pshare/p2pshare/node/api"
)

// showProgress reports whether a command should draw progress bars: only
// when stdout and stderr are terminals and --json is off, so pipes and
// scripts get clean output.
func showProgress(cmd *cobra.Command) bool {
	if jsonFlag(cmd) {
		return false
	}
	return terminal(cmd.OutOrStdout()) && terminal(cmd.ErrOrStderr())
}

// terminal is isTerminal; tests replace it to draw bars into buffers.
var terminal = isTerminal

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// A character device is not enough: /dev/null is one, and a bar
	// drawn into it (get ... 2>/dev/null) only costs.
	return term.IsTerminal(int(f.Fd()))
}

func transferID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

// watchTransfer draws a progress bar (bytes, rate, time left, the serving
// peer) on stderr for the daemon's transfer id until ctx ends; the returned
// function stops it and clears the bar.
func watchTransfer(ctx context.Context, c *api.Client, id, label string, stderr io.Writer) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var bar *progressbar.ProgressBar
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if bar != nil {
					_ = bar.Clear()
				}
				return
			case <-t.C:
			}
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			ts, err := c.Transfers(qctx)
			qcancel()
			if err != nil {
				continue
			}
			for _, tr := range ts {
				if tr.ID != id || tr.Total <= 0 {
					continue
				}
				if bar == nil {
					bar = newBar(stderr, tr.Total, label)
				}
				if tr.Peer != "" {
					bar.Describe(fromLabel(label, tr.Peer))
				}
				_ = bar.Set64(tr.Done)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// newBar returns a bar of total bytes (more than 0) drawn on w: bytes,
// rate and time left, described by label; it clears itself when full.
func newBar(w io.Writer, total int64, label string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
}

// fromLabel is a bar's label with the serving peer.
func fromLabel(label, peer string) string { return label + " from " + shortID(peer) }

// barReader adds what is read through it to a bar.
type barReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (b barReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		_ = b.bar.Add64(int64(n))
	}
	return n, err
}
