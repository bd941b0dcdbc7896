package kv

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWall is a settable wall clock.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeWall) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeWall) set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

func TestTimestampCompare(t *testing.T) {
	ts := []Timestamp{{Wall: 1}, {Wall: 1, Logical: 1}, {Wall: 1, Logical: math.MaxUint32}, {Wall: 2}, {Wall: 2, Logical: 5}, {Wall: math.MaxInt64}}
	for i, a := range ts {
		for j, b := range ts {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%+v.Compare(%+v) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestTimestampTimeAndString(t *testing.T) {
	ts := Timestamp{Wall: testWall + 5, Logical: 7}
	if got := ts.Time(); !got.Equal(time.Unix(0, testWall+5)) || got.Location() != time.UTC {
		t.Fatalf("Time() = %v", got)
	}
	if s := ts.String(); s != "2025-01-01T00:00:00.000000005Z+7" {
		t.Fatalf("String() = %q", s)
	}
}

// next calls c.Now and checks it is after prev.
func next(t *testing.T, c *Clock, prev Timestamp) Timestamp {
	t.Helper()
	ts := c.Now()
	if ts.Compare(prev) <= 0 {
		t.Fatalf("Now() = %v, not after the previous reading %v", ts, prev)
	}
	return ts
}

func TestClockFollowsWallAndStaysMonotonic(t *testing.T) {
	t0 := time.Unix(0, testWall)
	w := &fakeWall{t: t0}
	c := NewClock(w.now)
	steps := []struct {
		wall time.Time
		want Timestamp
	}{
		{t0, Timestamp{Wall: testWall}},
		{t0.Add(10), Timestamp{Wall: testWall + 10}},
		{t0.Add(5), Timestamp{Wall: testWall + 10, Logical: 1}},          // wall went back
		{t0.Add(-time.Hour), Timestamp{Wall: testWall + 10, Logical: 2}}, // far back
		{t0.Add(10), Timestamp{Wall: testWall + 10, Logical: 3}},         // caught up, not past
		{t0.Add(11), Timestamp{Wall: testWall + 11}},                     // past: logical resets
		{t0.Add(11), Timestamp{Wall: testWall + 11, Logical: 1}},
	}
	var prev Timestamp
	for i, s := range steps {
		w.set(s.wall)
		got := next(t, c, prev)
		if got != s.want {
			t.Fatalf("step %d: Now() = %+v, want %+v", i, got, s.want)
		}
		prev = got
	}
}

func TestClockLogicalIncrementsWhenWallStalls(t *testing.T) {
	w := &fakeWall{t: time.Unix(0, testWall)}
	c := NewClock(w.now)
	for i := range 1000 {
		ts := c.Now()
		if ts.Wall != testWall || ts.Logical != uint32(i) {
			t.Fatalf("reading %d = %+v, want wall %d logical %d", i, ts, testWall, i)
		}
	}
}

func TestClockObserve(t *testing.T) {
	t0 := time.Unix(0, testWall)
	w := &fakeWall{t: t0}
	c := NewClock(w.now)
	first := c.Now()

	// A record from a node whose clock is an hour ahead.
	ahead := Timestamp{Wall: testWall + int64(time.Hour), Logical: 7}
	c.Observe(ahead)
	got := next(t, c, ahead)
	if got != (Timestamp{Wall: ahead.Wall, Logical: 8}) {
		t.Fatalf("Now() after observing %v = %v", ahead, got)
	}

	// Observing the past or the same time changes nothing.
	c.Observe(first)
	c.Observe(Timestamp{})
	c.Observe(got)
	got = next(t, c, got)
	if got != (Timestamp{Wall: ahead.Wall, Logical: 9}) {
		t.Fatalf("Now() after observing older times = %v", got)
	}

	// An observation with the same wall part but a later counter counts too.
	same := Timestamp{Wall: got.Wall, Logical: got.Logical + 100}
	c.Observe(same)
	got = next(t, c, same)
	if got != (Timestamp{Wall: same.Wall, Logical: same.Logical + 1}) {
		t.Fatalf("Now() after observing %v = %v", same, got)
	}

	// Once the wall clock passes the observed time it leads again.
	w.set(t0.Add(2 * time.Hour))
	got = next(t, c, got)
	if got != (Timestamp{Wall: testWall + int64(2*time.Hour)}) {
		t.Fatalf("Now() after the wall passed = %v", got)
	}
}

// TestClockLogicalOverflow: a record may carry any logical counter, so a
// node can observe one at its maximum. The next reading must still come
// after it, not wrap around to logical 0 (before it): a write made after
// seeing a record must win over it.
func TestClockLogicalOverflow(t *testing.T) {
	w := &fakeWall{t: time.Unix(0, testWall)}
	c := NewClock(w.now)
	seen := Timestamp{Wall: testWall + int64(time.Second), Logical: math.MaxUint32}
	c.Observe(seen)
	prev := seen
	for range 3 {
		prev = next(t, c, prev)
	}
	if prev.Wall > seen.Wall+1 {
		t.Fatalf("the wall part jumped further than needed: %v", prev)
	}
}

func TestClockDefaultsToTheWallClock(t *testing.T) {
	c := NewClock(nil)
	before := time.Now().UnixNano()
	ts := c.Now()
	after := time.Now().UnixNano()
	if ts.Wall < before || ts.Wall > after {
		t.Fatalf("Now().Wall = %d, not within [%d, %d]", ts.Wall, before, after)
	}
	if !strings.HasSuffix(ts.String(), "+0") {
		t.Fatalf("the first reading has a logical part: %v", ts)
	}
}

// TestClockConcurrent: readings taken at once from many goroutines, while
// the wall clock moves and other nodes' times are observed, are all
// distinct and increase within each goroutine.
func TestClockConcurrent(t *testing.T) {
	w := &fakeWall{t: time.Unix(0, testWall)}
	c := NewClock(w.now)
	const goroutines, reads = 8, 2000
	out := make([][]Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reads {
				switch {
				case g == 0 && i%100 == 0:
					w.set(time.Unix(0, testWall+int64(i)))
				case g == 1 && i%150 == 0:
					c.Observe(Timestamp{Wall: testWall + int64(i) + 50, Logical: uint32(i)})
				}
				out[g] = append(out[g], c.Now())
			}
		}()
	}
	wg.Wait()
	seen := map[Timestamp]bool{}
	for g, ts := range out {
		for i, x := range ts {
			if i > 0 && x.Compare(ts[i-1]) <= 0 {
				t.Fatalf("goroutine %d: reading %d %v is not after %v", g, i, x, ts[i-1])
			}
			if seen[x] {
				t.Fatalf("reading %v given twice", x)
			}
			seen[x] = true
		}
	}
}
