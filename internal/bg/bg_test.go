package bg

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGoRunsWithTheGroupsContext(t *testing.T) {
	g := New()
	defer g.Close()
	got := make(chan context.Context, 1)
	if !g.Go(func(ctx context.Context) { got <- ctx }) {
		t.Fatal("Go on an open group refused the work")
	}
	if ctx := <-got; ctx != g.Context() {
		t.Fatal("the goroutine did not get the group's context")
	}
}

func TestGoAfterCloseRefuses(t *testing.T) {
	g := New()
	g.Close()
	ran := false
	if g.Go(func(context.Context) { ran = true }) {
		t.Fatal("Go after Close accepted the work")
	}
	if ran {
		t.Fatal("Go after Close ran the work")
	}
	if g.Context().Err() == nil {
		t.Fatal("Close did not cancel the context")
	}
	g.Close() // a second Close returns at once
}

func TestCloseCancelsAndWaits(t *testing.T) {
	g := New()
	var done atomic.Int32
	for range 8 {
		g.Go(func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // work after cancel that Close must wait for
			done.Add(1)
		})
	}
	g.Close()
	if n := done.Load(); n != 8 {
		t.Fatalf("Close returned with %d of 8 goroutines finished", n)
	}
}

// Go racing Close from many goroutines: every accepted goroutine finishes
// before Close returns, and none is accepted after (run with -race).
func TestGoRacingClose(t *testing.T) {
	for range 50 {
		g := New()
		var accepted, finished atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					if g.Go(func(context.Context) { finished.Add(1) }) {
						accepted.Add(1)
					}
				}
			}()
		}
		g.Close()
		// A caller counts its acceptance after Go returns, so the count
		// is complete only once the callers are done; none is accepted
		// after Close, so every one counted then was started before it.
		atClose := finished.Load()
		wg.Wait()
		if a := accepted.Load(); atClose != a {
			t.Fatalf("Close returned with %d of %d accepted goroutines finished", atClose, a)
		}
		if a, f := accepted.Load(), finished.Load(); f != a {
			t.Fatalf("after Close, %d goroutines accepted but %d finished: work accepted after Close", a, f)
		}
	}
}
