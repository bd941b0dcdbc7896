// Package bg runs a part's background goroutines so that they stop
// together: a Group hands each goroutine a context that Close cancels,
// refuses new work once Close has begun, and Close returns only when every
// goroutine it started has returned. It is a leaf package: node, share and
// gossip all use it.
package bg

import (
	"context"
	"sync"
)

// Group is a set of goroutines that share one context and one Close. The
// zero value is not usable: call New.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // orders Go's wg.Add before Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// New returns an open Group.
func New() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Context returns the Group's context, canceled when Close begins.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs f on a new goroutine with the Group's context, unless Close has
// begun: then f does not run and Go returns false. Go is safe to call from
// any goroutine, including callbacks the Group does not own.
func (g *Group) Go(f func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
	return true
}

// Close refuses further work, cancels the context and waits until every
// goroutine started by Go has returned. Safe to call more than once; it
// must not be called from one of the Group's own goroutines.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.cancel()
	g.mu.Unlock()
	g.wg.Wait()
}
