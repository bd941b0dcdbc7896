package admit

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzDecodeTicket: no input panics the ticket and revocation decoders,
// errors are ErrBadTicket, and nothing decoded verifies under a fresh
// authority that never signed it.
func FuzzDecodeTicket(f *testing.F) {
	a, err := NewAuthority()
	if err != nil {
		f.Fatal(err)
	}
	other, _ := NewAuthority()
	p, _ := peer.IDFromPublicKey(other.Public())
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	tk, _ := a.Admit(p, time.Hour, t0)
	rv, _ := a.Revoke(p, t0)
	f.Add(Encode(tk))
	f.Add(Encode(rv))
	f.Add([]byte(`{"peer":"x","sig":"AAAA"}`))
	f.Add([]byte(`{"peer":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		stranger, _ := NewAuthority()
		if tk, err := DecodeTicket(b); err != nil {
			if !errors.Is(err, ErrBadTicket) {
				t.Fatalf("ticket error %v is not ErrBadTicket", err)
			}
		} else if VerifyTicket(stranger.Public(), tk, "", t0) == nil {
			t.Fatal("a decoded ticket verified under an authority that never signed it")
		}
		if rv, err := DecodeRevocation(b); err != nil {
			if !errors.Is(err, ErrBadTicket) {
				t.Fatalf("revocation error %v is not ErrBadTicket", err)
			}
		} else if VerifyRevocation(stranger.Public(), rv) == nil {
			t.Fatal("a decoded revocation verified under an authority that never signed it")
		}
	})
}
