package admit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func testAuthority(t *testing.T) *Authority {
	t.Helper()
	a, err := NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func testPeer(t *testing.T) peer.ID {
	t.Helper()
	_, id := testKey(t)
	return id
}

func mustAdmit(t *testing.T, a *Authority, p peer.ID, d time.Duration, now time.Time) *Ticket {
	t.Helper()
	tk, err := a.Admit(p, d, now)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// wantBad fails unless err is an ErrBadTicket whose text holds want.
func wantBad(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want an error saying %q", want)
	}
	if !errors.Is(err, ErrBadTicket) {
		t.Fatalf("error %q is not ErrBadTicket", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestTicketRoundTrip(t *testing.T) {
	a := testAuthority(t)
	p := testPeer(t)
	now := time.Now()
	tk := mustAdmit(t, a, p, time.Hour, now)
	enc := Encode(tk)
	if !bytes.HasSuffix(enc, []byte("\n")) || bytes.Count(enc, []byte("\n")) != 1 {
		t.Fatalf("encoded ticket is not one line: %q", enc)
	}
	if len(enc) > MaxTicketSize {
		t.Fatalf("a ticket takes %d bytes, over MaxTicketSize", len(enc))
	}
	got, err := DecodeTicket(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != p || !got.Issued.Equal(tk.Issued) || !got.Expires.Equal(tk.Expires) || !bytes.Equal(got.Sig, tk.Sig) {
		t.Fatalf("round trip changed the ticket: %+v -> %+v", tk, got)
	}
	if err := VerifyTicket(a.Public(), got, p, now); err != nil {
		t.Fatal(err)
	}
	// No presenter given: only signature and times are checked.
	if err := VerifyTicket(a.Public(), got, "", now.Add(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The expiry is d after the issue time, to the nanosecond, in UTC.
	if d := got.Expires.Sub(got.Issued); d != time.Hour {
		t.Fatalf("validity %s, want 1h", d)
	}
	if got.Issued.Location() != time.UTC {
		t.Fatalf("issued in %s, want UTC", got.Issued.Location())
	}
}

func TestAdmitRejectsBadInput(t *testing.T) {
	a := testAuthority(t)
	if _, err := a.Admit("", time.Hour, time.Now()); err == nil {
		t.Fatal("admitted an empty peer ID")
	}
	if _, err := a.Admit(testPeer(t), 0, time.Now()); err == nil {
		t.Fatal("admitted with a zero validity")
	}
	if _, err := a.Admit(testPeer(t), -time.Hour, time.Now()); err == nil {
		t.Fatal("admitted with a negative validity")
	}
	if _, err := a.Revoke("", time.Now()); err == nil {
		t.Fatal("revoked an empty peer ID")
	}
}

func TestTicketForged(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	p, q := testPeer(t), testPeer(t)
	now := time.Now()
	good := func() *Ticket { return mustAdmit(t, a, p, time.Hour, now) }

	t.Run("other authority", func(t *testing.T) {
		tk := mustAdmit(t, other, p, time.Hour, now)
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed by this network's authority")
	})
	t.Run("changed peer", func(t *testing.T) {
		tk := good()
		tk.Peer = q
		// Presented by q itself: only the signature can tell.
		wantBad(t, VerifyTicket(a.Public(), tk, q, now), "not signed")
	})
	t.Run("changed expiry", func(t *testing.T) {
		tk := good()
		tk.Expires = tk.Expires.Add(24 * time.Hour)
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("changed expiry by a nanosecond", func(t *testing.T) {
		tk := good()
		tk.Expires = tk.Expires.Add(1)
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("changed issue time", func(t *testing.T) {
		tk := good()
		tk.Issued = tk.Issued.Add(-time.Hour)
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("truncated sig", func(t *testing.T) {
		tk := good()
		tk.Sig = tk.Sig[:len(tk.Sig)-1]
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("flipped sig bit", func(t *testing.T) {
		tk := good()
		tk.Sig[0] ^= 1
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("no sig", func(t *testing.T) {
		tk := good()
		tk.Sig = nil
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("revocation signature as ticket", func(t *testing.T) {
		// The two kinds are domain-separated: a revocation's signature does
		// not sign a ticket with the same fields.
		r, err := a.Revoke(p, now)
		if err != nil {
			t.Fatal(err)
		}
		tk := &Ticket{Peer: p, Issued: r.Time, Expires: r.Time.Add(time.Hour), Sig: r.Sig}
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("edited JSON", func(t *testing.T) {
		enc := string(Encode(good()))
		y := now.Year()
		edited := strings.Replace(enc, `"expires":"`+strconv.Itoa(y), `"expires":"`+strconv.Itoa(y+10), 1)
		if edited == enc {
			t.Fatalf("test bug: no expiry year in %s", enc)
		}
		tk, err := DecodeTicket([]byte(edited))
		if err != nil {
			t.Fatal(err)
		}
		wantBad(t, VerifyTicket(a.Public(), tk, p, now), "not signed")
	})
	t.Run("empty peer", func(t *testing.T) {
		tk, err := DecodeTicket([]byte("{}\n"))
		if err != nil {
			t.Fatal(err)
		}
		wantBad(t, VerifyTicket(a.Public(), tk, "", now), "peer")
	})
}

func TestTicketTimes(t *testing.T) {
	a := testAuthority(t)
	p := testPeer(t)
	now := time.Now()

	tk := mustAdmit(t, a, p, time.Hour, now.Add(-2*time.Hour))
	wantBad(t, VerifyTicket(a.Public(), tk, p, now), "expired at")

	// Valid up to and including its expiry instant, not a nanosecond after.
	tk = mustAdmit(t, a, p, time.Minute, now)
	if err := VerifyTicket(a.Public(), tk, p, tk.Expires); err != nil {
		t.Fatalf("at its expiry instant: %v", err)
	}
	wantBad(t, VerifyTicket(a.Public(), tk, p, tk.Expires.Add(time.Nanosecond)), "expired")

	// Issued far in the future (an authority with a skewed clock, or a
	// ticket minted ahead of time): refused.
	tk = mustAdmit(t, a, p, 24*time.Hour, now.Add(time.Hour))
	wantBad(t, VerifyTicket(a.Public(), tk, p, now), "issued in the future")
	// A little clock skew (under 5 min) is tolerated.
	tk = mustAdmit(t, a, p, time.Hour, now.Add(time.Minute))
	if err := VerifyTicket(a.Public(), tk, p, now); err != nil {
		t.Fatalf("a minute of skew: %v", err)
	}
}

func TestTicketPresentedByAnotherPeer(t *testing.T) {
	a := testAuthority(t)
	p, thief := testPeer(t), testPeer(t)
	tk := mustAdmit(t, a, p, time.Hour, time.Now())
	err := VerifyTicket(a.Public(), tk, thief, time.Now())
	wantBad(t, err, "issued to "+p.String())
	if !strings.Contains(err.Error(), "presented by "+thief.String()) {
		t.Fatalf("error %q does not name the presenter", err)
	}
}

func TestDecodeTicketBadInput(t *testing.T) {
	a := testAuthority(t)
	good := Encode(mustAdmit(t, a, testPeer(t), time.Hour, time.Now()))
	withField := append(bytes.Clone(bytes.TrimSuffix(bytes.TrimSuffix(good, []byte("\n")), []byte("}"))), `,"admin":true}`...)
	huge := append([]byte(`{"peer":"`), bytes.Repeat([]byte("x"), MaxTicketSize)...)
	huge = append(huge, `"}`...)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"garbage", []byte("not json at all"), "invalid character"},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}, "invalid character"},
		{"array", []byte(`[1,2,3]`), "cannot unmarshal"},
		{"truncated", good[:len(good)/2], "unexpected EOF"},
		{"unknown field", withField, `unknown field "admin"`},
		{"wrong type", []byte(`{"peer":42}`), "cannot unmarshal"},
		{"bad time", []byte(`{"expires":"tomorrow"}`), "cannot parse"},
		{"bad sig base64", []byte(`{"sig":"***"}`), "illegal base64"},
		{"bad peer", []byte(`{"peer":"not-a-peer-id"}`), "peer"},
		{"oversize", huge, "limit is 4096"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTicket(tc.in)
			wantBad(t, err, tc.want)
		})
	}
	// Exactly at the limit is not refused for its size.
	atLimit := append(bytes.Repeat([]byte(" "), MaxTicketSize-len(good)), good...)
	if _, err := DecodeTicket(atLimit); err != nil {
		t.Fatalf("a ticket of exactly %d bytes: %v", MaxTicketSize, err)
	}
	if _, err := DecodeTicket(append(atLimit, ' ')); err == nil {
		t.Fatalf("a ticket of %d bytes was accepted", MaxTicketSize+1)
	}
}

func TestRevocation(t *testing.T) {
	a, other := testAuthority(t), testAuthority(t)
	p, q := testPeer(t), testPeer(t)
	now := time.Now()
	r, err := a.Revoke(p, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRevocation(Encode(r))
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != p || !got.Time.Equal(r.Time) || !bytes.Equal(got.Sig, r.Sig) {
		t.Fatalf("round trip changed the revocation: %+v -> %+v", r, got)
	}
	if err := VerifyRevocation(a.Public(), got); err != nil {
		t.Fatal(err)
	}

	forged := func(edit func(r *Revocation)) *Revocation {
		c := *r
		c.Sig = append([]byte(nil), r.Sig...)
		edit(&c)
		return &c
	}
	ro, err := other.Revoke(p, now)
	if err != nil {
		t.Fatal(err)
	}
	wantBad(t, VerifyRevocation(a.Public(), ro), "revocation not signed")
	wantBad(t, VerifyRevocation(a.Public(), forged(func(r *Revocation) { r.Peer = q })), "not signed")
	wantBad(t, VerifyRevocation(a.Public(), forged(func(r *Revocation) { r.Time = r.Time.Add(time.Second) })), "not signed")
	wantBad(t, VerifyRevocation(a.Public(), forged(func(r *Revocation) { r.Sig = r.Sig[:len(r.Sig)-1] })), "not signed")
	wantBad(t, VerifyRevocation(a.Public(), forged(func(r *Revocation) { r.Sig = nil })), "not signed")
	wantBad(t, VerifyRevocation(a.Public(), forged(func(r *Revocation) { r.Peer = "" })), "revocation peer")
	// A ticket's signature is no revocation's.
	tk := mustAdmit(t, a, p, time.Hour, now)
	wantBad(t, VerifyRevocation(a.Public(), &Revocation{Peer: p, Time: tk.Issued, Sig: tk.Sig}), "not signed")

	huge := append([]byte(`{"peer":"`), bytes.Repeat([]byte("x"), MaxTicketSize)...)
	huge = append(huge, `"}`...)
	withField := append(bytes.TrimSuffix(bytes.TrimSpace(Encode(r)), []byte("}")), []byte(`,"expires":"2099-01-01T00:00:00Z"}`)...)
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"garbage":       {[]byte("revoke everyone"), "invalid character"},
		"empty":         {nil, "EOF"},
		"truncated":     {Encode(r)[:20], "unexpected EOF"},
		"unknown field": {withField, `unknown field "expires"`},
		"oversize":      {huge, "limit is 4096"},
		"bad time":      {[]byte(`{"time":"now"}`), "cannot parse"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeRevocation(tc.in)
			wantBad(t, err, tc.want)
		})
	}
}

func TestAuthorityFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a := testAuthority(t)
	if err := SaveAuthority(dir, a); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, AuthorityKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", AuthorityKeyFile, fi.Mode().Perm())
	}
	if err := SaveAuthority(dir, testAuthority(t)); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a second SaveAuthority: %v, want a refusal to overwrite", err)
	}
	b, err := LoadAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Key.Equals(a.Key) {
		t.Fatal("loaded a different authority key")
	}
	pub, err := LoadPublic(filepath.Join(dir, AuthorityPubFile))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equals(a.Public()) {
		t.Fatal("loaded a different public key")
	}
	// What the loaded key signs, the loaded public key verifies.
	p := testPeer(t)
	if err := VerifyTicket(pub, mustAdmit(t, b, p, time.Hour, time.Now()), p, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The public file copied into a repo works alone.
	repo := t.TempDir()
	if err := WritePublic(filepath.Join(repo, AuthorityPubFile), pub); err != nil {
		t.Fatal(err)
	}
	if pub2, err := LoadPublic(filepath.Join(repo, AuthorityPubFile)); err != nil || !pub2.Equals(pub) {
		t.Fatalf("WritePublic/LoadPublic: %v", err)
	}
}

func TestLoadAuthorityBadFiles(t *testing.T) {
	if _, err := LoadAuthority(t.TempDir()); err == nil || !strings.Contains(err.Error(), "ca init") {
		t.Fatalf("no key: %v, want a hint at 'ca init'", err)
	}
	cases := []struct {
		name    string
		content string
		want    string
	}{
		{"not base64", "!!! not base64 !!!\n", "not base64"},
		{"not a key", base64.StdEncoding.EncodeToString([]byte("hello")) + "\n", AuthorityKeyFile},
		{"empty", "", AuthorityKeyFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, AuthorityKeyFile), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadAuthority(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadPublicBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPublic(filepath.Join(dir, "missing.pub")); err == nil || !strings.Contains(err.Error(), "read authority key") {
		t.Fatalf("missing file: %v", err)
	}
	// The secret key where the public one belongs: a common mix-up.
	a := testAuthority(t)
	if err := SaveAuthority(filepath.Join(dir, "ca"), a); err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "ca", AuthorityKeyFile))
	pb, _ := crypto.MarshalPrivateKey(a.Key)
	cases := []struct {
		name, content, want string
	}{
		{"empty", "", "not an authority public key file"},
		{"garbage", "hello\n", "not an authority public key file"},
		{"secret key file", string(secret), "not an authority public key file"},
		{"empty field", `{"authority":""}`, "not an authority public key file"},
		{"other JSON", `{"peer":"x"}`, "not an authority public key file"},
		{"bad base64", `{"authority":"***"}`, "illegal base64"},
		{"not a key", `{"authority":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}`, "p.pub"},
		{"private key inside", `{"authority":"` + base64.StdEncoding.EncodeToString(pb) + `"}`, "p.pub"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "p.pub")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPublic(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadTicket(t *testing.T) {
	a := testAuthority(t)
	p := testPeer(t)
	tk := mustAdmit(t, a, p, time.Hour, time.Now())
	dir := t.TempDir()
	good := filepath.Join(dir, TicketFile)
	// As 'ca admit > ticket.json' writes it, plus stray blank lines.
	if err := os.WriteFile(good, append(append([]byte("\n  "), Encode(tk)...), "\n\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTicket(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTicket(a.Public(), got, p, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTicket(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "read ticket") {
		t.Fatalf("missing: %v", err)
	}
	for name, content := range map[string]string{
		"empty":         "",
		"garbage":       "this is not a ticket",
		"authority pub": `{"authority":"abc"}`,
		"oversize":      strings.Repeat("{", MaxTicketSize+1),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.json")
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadTicket(p)
			if err == nil || !errors.Is(err, ErrBadTicket) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want ErrBadTicket naming %s", err, p)
			}
		})
	}
}

func TestLoadAllowlist(t *testing.T) {
	p1, p2, p3 := testPeer(t), testPeer(t), testPeer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, AllowlistFile)
	content := "# lab machines\n" +
		p1.String() + "\n" +
		"\n" +
		"   " + p2.String() + "   # alice's laptop\n" +
		"\t# " + testPeer(t).String() + " (commented out)\n" +
		p3.String() + "\r\n" + // CRLF from an editor
		"#\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadAllowlist(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != p1 || got[1] != p2 || got[2] != p3 {
		t.Fatalf("allowlist %v, want [%s %s %s]", got, p1, p2, p3)
	}

	// An empty list, or one of comments only, is empty, not an error.
	if err := os.WriteFile(path, []byte("# nobody yet\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadAllowlist(path); err != nil || len(got) != 0 {
		t.Fatalf("comments only: %v %v", got, err)
	}

	// A bad line: the error names file:line and the offending text.
	bad := p1.String() + "\n# ok\n" + p2.String() + " extra-word\n" + p3.String() + "\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadAllowlist(path)
	if err == nil || !strings.Contains(err.Error(), path+":3:") || !strings.Contains(err.Error(), "extra-word") || !strings.Contains(err.Error(), "not a peer ID") {
		t.Fatalf("bad line 3: %v", err)
	}
	if err := os.WriteFile(path, []byte("\n\nQmNotAPeer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAllowlist(path); err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("bad line 3: %v", err)
	}
	if _, err := LoadAllowlist(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "read allowlist") {
		t.Fatalf("missing file: %v", err)
	}
}
