package gossip

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

const testPeer = "12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC"

// TestDecodeHeartbeatCoordinate: a heartbeat's coordinate is kept when
// valid, dropped (the heartbeat kept) when out of bounds, and a heartbeat
// without one, as nodes that know no coordinates send, decodes as before.
func TestDecodeHeartbeatCoordinate(t *testing.T) {
	const head = `{"kind":"heartbeat","peer":"` + testPeer + `","inc":1,"seq":2,"period_ms":500`
	for _, tc := range []struct {
		name      string
		msg       string
		accepted  bool
		wantCoord bool
	}{
		{"none", head + `}`, true, false},
		{"valid", head + `,"coord":{"vec":[1.5,-2,0],"err":0.2,"adj":0.1,"height":0.3}}`, true, true},
		{"1e308 component", head + `,"coord":{"vec":[1e308,0,0],"err":0.2,"adj":0,"height":0.3}}`, true, false},
		{"huge height", head + `,"coord":{"vec":[1,0,0],"err":0.2,"adj":0,"height":1e300}}`, true, false},
		{"no vector", head + `,"coord":{"err":0.2}}`, true, false},
		{"too many dimensions", head + `,"coord":{"vec":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"err":0.2}}`, true, false},
		{"NaN is not JSON", head + `,"coord":{"vec":[NaN],"err":0.2}}`, false, false},
		{"past float64 is not a number", head + `,"coord":{"vec":[1e400],"err":0.2}}`, false, false},
		{"not an object", head + `,"coord":[1,2]}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMessage([]byte(tc.msg))
			if (err == nil) != tc.accepted {
				t.Fatalf("decode: %v, want accepted=%v", err, tc.accepted)
			}
			if err != nil {
				return
			}
			if (m.Coord != nil) != tc.wantCoord {
				t.Fatalf("coordinate %+v, want one: %v", m.Coord, tc.wantCoord)
			}
		})
	}
	// A suspicion carries no coordinate, whatever it says.
	m, err := decodeMessage([]byte(`{"kind":"leave","peer":"` + testPeer + `","inc":1,"seq":3,"coord":{"vec":[1],"err":0.1,"adj":0,"height":1}}`))
	if err != nil || m.Coord != nil {
		t.Fatalf("leave with a coordinate: %+v, %v", m, err)
	}
}

// TestHeartbeatWithoutCoordinateIsUnchanged: a node without a coordinate
// sends no "coord" key, so its heartbeats are what nodes that know no
// coordinates always read.
func TestHeartbeatWithoutCoordinateIsUnchanged(t *testing.T) {
	id, err := peer.Decode(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	m := Message{Kind: KindHeartbeat, Peer: id, Inc: 1, Seq: 2, PeriodMillis: 500}
	if b := m.encode(); bytes.Contains(b, []byte("coord")) {
		t.Fatalf("encoded %s", b)
	}
	m.Coord = &coord.Coordinate{Vec: []float64{1, 2}, Error: 0.5, Height: 0.01}
	back, err := decodeMessage(m.encode())
	if err != nil || back.Coord == nil || back.Coord.Vec[1] != 2 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

// fixedCoordinates always gives c.
type fixedCoordinates struct{ c coord.Coordinate }

func (f fixedCoordinates) Coordinate() *coord.Coordinate { c := f.c.Clone(); return &c }

// TestHeartbeatCarriesCoordinate: the coordinate Config.Coordinates gives
// reaches the other members' tables.
func TestHeartbeatCarriesCoordinate(t *testing.T) {
	want := coord.Coordinate{Vec: []float64{3, 4}, Error: 0.25, Adjustment: -0.5, Height: 1}
	cfg := testConfig()
	cfg.Coordinates = fixedCoordinates{want}
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", testConfig())
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if mem, ok := b.m.Member(a.h.ID()); ok && mem.Coord != nil {
			if !reflect.DeepEqual(*mem.Coord, want) {
				t.Fatalf("b holds %+v for a, which sent %+v", *mem.Coord, want)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("a's coordinate never reached b")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if mem, ok := a.m.Member(b.h.ID()); ok && mem.Coord != nil {
		t.Fatalf("b sends no coordinate, yet a holds %+v", *mem.Coord)
	}
}
