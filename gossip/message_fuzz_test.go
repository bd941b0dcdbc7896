package gossip

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// FuzzDecodeMessage: no input panics the membership decoder; an accepted
// message is one of the known kinds, carries a coordinate only if valid,
// re-encodes and decodes to itself.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"kind":"heartbeat","peer":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC","inc":1,"seq":2,"period_ms":500,"addrs":["/ip4/127.0.0.1/tcp/1"]}`))
	f.Add([]byte(`{"kind":"heartbeat","peer":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC","inc":1,"seq":2,"period_ms":500,"coord":{"vec":[1.5,-2,0.25],"err":0.2,"adj":-0.1,"height":0.3}}`))
	f.Add([]byte(`{"kind":"heartbeat","peer":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC","inc":1,"seq":2,"period_ms":500,"coord":{"vec":[1e308],"err":1e308,"adj":0,"height":-1}}`))
	f.Add([]byte(`{"kind":"leave","peer":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC","inc":1,"seq":3}`))
	f.Add([]byte(`{"kind":"suspect","peer":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC","about":"12D3KooWJJrF4KysDh63j7QTVU6Gm874ArKs1ZjXr5hLdRQP56cb","about_inc":5}`))
	f.Add([]byte(`{"kind":"heartbeat","peer":"x","period_ms":-1}`))
	f.Add([]byte(`{"kind":"gossip"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		switch m.Kind {
		case KindHeartbeat, KindLeave, KindSuspect:
		default:
			t.Fatalf("accepted unknown kind %q", m.Kind)
		}
		m2, err := decodeMessage(m.encode())
		if err != nil {
			t.Fatalf("re-decode of an accepted message: %v", err)
		}
		if m2.Kind != m.Kind || m2.Peer != m.Peer || m2.Inc != m.Inc || m2.Seq != m.Seq || m2.About != m.About || (m2.Coord == nil) != (m.Coord == nil) {
			t.Fatalf("round trip changed the message: %+v -> %+v", m, m2)
		}
		if m.Coord != nil {
			if err := m.Coord.Validate(); err != nil {
				t.Fatalf("accepted an invalid coordinate: %v", err)
			}
		}
	})
}

// FuzzDecodeDirect: no input panics the direct protocol's decoder; an
// accepted message re-encodes and decodes to itself.
func FuzzDecodeDirect(f *testing.F) {
	from, _ := peer.Decode("12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC")
	ping, _ := direct{msg: &swim.Message{Kind: swim.KindPing, From: swimID(from), Target: swimID(from), Seq: 3}}.encode()
	f.Add(ping)
	sync, _ := direct{msg: &swim.Message{Kind: swim.KindSyncResp, From: swimID(from), News: []swim.Entry{{ID: swimID(from), Inc: 2}}},
		addrs: map[peer.ID][]ma.Multiaddr{from: {ma.StringCast("/ip4/127.0.0.1/tcp/4001")}}}.encode()
	f.Add(sync)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDirect(b, from)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		b2, err := d.encode()
		if err != nil {
			t.Fatalf("re-encode of an accepted message: %v", err)
		}
		d2, err := decodeDirect(b2, from)
		if err != nil || fmt.Sprint(d2.msg) != fmt.Sprint(d.msg) || fmt.Sprint(d2.addrs) != fmt.Sprint(d.addrs) {
			t.Fatalf("round trip changed the message: %+v -> %+v, %v", d, d2, err)
		}
	})
}
