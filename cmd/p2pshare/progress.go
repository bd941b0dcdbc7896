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

	"github.com/p2pshare/p2pshare/node/api"
)

// showProgress reports whether a command should draw progress bars: only
// when stdout and stderr are terminals and --json is off, so pipes and
// scripts get clean output.
func showProgress(cmd *cobra.Command) bool {
	if jsonFlag(cmd) {
		return false
	}
	return isTerminal(cmd.OutOrStdout()) && isTerminal(cmd.ErrOrStderr())
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
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
					bar = progressbar.NewOptions64(tr.Total,
						progressbar.OptionSetWriter(stderr),
						progressbar.OptionSetDescription(label),
						progressbar.OptionShowBytes(true),
						progressbar.OptionShowCount(),
						progressbar.OptionSetPredictTime(true),
						progressbar.OptionThrottle(100*time.Millisecond),
						progressbar.OptionSetWidth(30),
						progressbar.OptionClearOnFinish(),
					)
				}
				if tr.Peer != "" {
					bar.Describe(label + " from " + shortID(tr.Peer))
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
