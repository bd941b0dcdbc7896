package testnet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestReadSpreadLog(t *testing.T) {
	log := `time=2026-12-03T07:50:00.100Z level=INFO msg="node started" peer=12D3KooWA
time=2026-12-03T07:50:01.000Z level=DEBUG msg="record published" ns=kv key=spread-1-0
time=2026-12-03T07:50:01.020Z level=DEBUG msg="record received" ns=kv key=spread-1-1 from=12D3KooWB
time=2026-12-03T07:50:01.045Z level=DEBUG msg="record received" ns=kv key=spread-1-1 from=12D3KooWC
time=2026-12-03T07:50:01.050Z level=DEBUG msg="record received" ns=kv from=12D3KooWC
not a log line at all
time=2026-12-03T07:50:01.060Z level=WARN msg="record received" key=spread-1-9 err="a key=spread-1-2 in a quoted value"
`
	p := filepath.Join(t.TempDir(), "daemon.log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := readSpreadLog(p)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got, want := l.published["spread-1-0"], at("2026-12-03T07:50:01.000Z"); !got.Equal(want) || len(l.published) != 1 {
		t.Errorf("published = %v, want spread-1-0 at %v alone", l.published, want)
	}
	// The first receipt of a key counts, with the peer it came from.
	if r := l.received["spread-1-1"]; !r.at.Equal(at("2026-12-03T07:50:01.020Z")) || r.from != "12D3KooWB" {
		t.Errorf("receipt of spread-1-1 = %+v, want the first, from 12D3KooWB", r)
	}
	if _, ok := l.received["spread-1-2"]; ok {
		t.Error("a key inside a quoted value was read as a receipt")
	}
	if len(l.received) != 2 {
		t.Errorf("receipts %v, want spread-1-1 and spread-1-9", l.received)
	}
}

func TestSitePair(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"site1", "site1", "same site"},
		{"site1", "site3", "site1-site3"},
		{"site3", "site1", "site1-site3"},
	} {
		if got := sitePair(c.a, c.b); got != c.want {
			t.Errorf("sitePair(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
	r := SpreadResult{Delays: map[string][]float64{"site2-site3": nil, "same site": nil, "site1-site2": nil}}
	if got := r.SpreadGroups(); len(got) != 3 || got[0] != "same site" || got[1] != "site1-site2" || got[2] != "site2-site3" {
		t.Errorf("SpreadGroups() = %v", got)
	}
}

func TestSpreadWriter(t *testing.T) {
	for _, c := range []struct {
		perSite, writes int
		want            []int
	}{
		{1, 4, []int{0, 1, 2, 0}},
		{2, 8, []int{0, 2, 4, 1, 3, 5, 0, 2}},
		// Many nodes a site, few writes: every site still writes.
		{34, 6, []int{0, 34, 68, 1, 35, 69}},
	} {
		var got []int
		for i := range c.writes {
			got = append(got, spreadWriter(i, c.perSite))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%d a site: writers %v, want %v", c.perSite, got, c.want)
		}
	}
}
