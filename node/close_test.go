package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2pshare/p2pshare/node/api"
)

// Closing nodes while they replicate, gossip and sync logs no failure and
// stops every goroutine they started: Close closes the parts in the reverse of
// the order New built them, so no loop runs on a part already closed.
func TestCloseBusyNodesLeavesNothingRunning(t *testing.T) {
	before := goleak.IgnoreCurrent()
	warns := &warnLog{}
	a, err := New(testConfig(t, func(c *Config) { c.Share.Replicas = 2 }))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testConfig(t, func(c *Config) {
		c.Share.Replicas = 2
		c.Logger = slog.New(warns)
	}, addrInfo(a)))
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	nodes := []*Node{a, b}
	waitFor(t, 15*time.Second, "the nodes to see each other alive", func() bool {
		return len(membershipCluster{m: a.memb, n: a}.Live()) > 0 && len(membershipCluster{m: b.memb, n: b}.Live()) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, n := range nodes {
		other := nodes[1-i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("busy-%d-%d.txt", i, j)
				_, _ = n.API().Share(ctx, api.ShareRequest{Name: name, Body: bytes.NewReader([]byte(name))})
				_, _ = n.API().KVPut(ctx, api.KVPutRequest{Key: "busy/" + name, Value: []byte(name)})
				if _, r, err := other.API().Cat(ctx, name); err == nil {
					r.Close()
				}
			}
		}()
	}
	// Let the work get going, then close both nodes under it.
	waitFor(t, 15*time.Second, "shares to reach the other node's catalog", func() bool {
		return len(b.kv.Catalog("busy-0-")) > 0 && len(a.kv.Catalog("busy-1-")) > 0
	})
	// The calls end; the loops they set going (replication, gossip,
	// catalog sync) are still at work when b closes. b closes first: what
	// it logs while closing, with its peer still up, comes from its own
	// parts only.
	close(stop)
	wg.Wait()
	warns.start()
	for _, n := range []*Node{b, a} {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	for _, w := range warns.since() {
		t.Errorf("logged while closing: %s", w)
	}
	goleak.VerifyNone(t,
		before,
		goleak.IgnoreTopFunction("github.com/libp2p/go-flow-metrics.(*sweeper).runActive"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"))
}

// warnLog keeps the warnings and errors logged after start.
type warnLog struct {
	mu   sync.Mutex
	on   bool
	msgs []string
}

func (w *warnLog) start() { w.mu.Lock(); w.on = true; w.mu.Unlock() }

func (w *warnLog) since() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msgs
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.msgs = append(w.msgs, b.String())
	}
	return nil
}

func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }
