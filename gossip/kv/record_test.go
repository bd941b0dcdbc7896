package kv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pshare/p2pshare/catalog"
)

// Validator must be usable as the DHT's validator of DHTNamespace.
var _ record.Validator = Validator{}

// testWall is a fixed, valid record time: 2025-01-01T00:00:00Z.
var testWall = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// testKey returns a deterministic Ed25519 key made from seed.
func testKey(tb testing.TB, seed byte) crypto.PrivKey {
	tb.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testSecpKey returns a deterministic secp256k1 key made from seed (1..0xfe).
func testSecpKey(tb testing.TB, seed byte) crypto.PrivKey {
	tb.Helper()
	k, err := crypto.UnmarshalSecp256k1PrivateKey(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func idOf(tb testing.TB, k crypto.PrivKey) peer.ID {
	tb.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func testCID(tb testing.TB, data string) cid.Cid {
	tb.Helper()
	h, err := mh.Sum([]byte(data), mh.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func nameValue(tb testing.TB, c string, size int64) []byte {
	tb.Helper()
	b, err := json.Marshal(NameValue{CID: c, Size: size})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// userRecord is an unsigned user record at testWall.
func userRecord(key, value string) *Record {
	return &Record{NS: NSUser, Key: key, Value: []byte(value), Time: Timestamp{Wall: testWall, Logical: 3}}
}

func signRecord(tb testing.TB, r *Record, k crypto.PrivKey) *Record {
	tb.Helper()
	if err := r.Sign(k); err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return r
}

func marshalRecord(tb testing.TB, r *Record) []byte {
	tb.Helper()
	b, err := r.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

// cloneRecord returns a deep copy of r.
func cloneRecord(r *Record) *Record {
	c := *r
	c.Value = bytes.Clone(r.Value)
	c.Sig = bytes.Clone(r.Sig)
	return &c
}

// recordsEqual compares every field; a nil and an empty byte slice are equal
// (the encoding does not tell them apart).
func recordsEqual(a, b *Record) bool {
	return a.NS == b.NS && a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.Deleted == b.Deleted &&
		a.Time == b.Time && a.Expires == b.Expires && a.Writer == b.Writer && bytes.Equal(a.Sig, b.Sig)
}

// sigVerifies reports whether r.Sig is a good signature of r by k, whatever
// r.Writer says: it proves a rejection was not for the signature.
func sigVerifies(tb testing.TB, r *Record, k crypto.PrivKey) bool {
	tb.Helper()
	ok, err := k.GetPublic().Verify(r.signedBytes(), r.Sig)
	return err == nil && ok
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"empty", "", false},
		{"one byte", "a", true},
		{"256 bytes", strings.Repeat("k", MaxKeyLen), true},
		{"257 bytes", strings.Repeat("k", MaxKeyLen+1), false},
		{"256 bytes of 2-byte runes", strings.Repeat("é", MaxKeyLen/2), true},
		{"257 bytes of runes", strings.Repeat("é", MaxKeyLen/2) + "x", false},
		{"invalid byte", "ab\xffcd", false},
		{"truncated rune", "ab\xc3", false},
		{"surrogate half", "\xed\xa0\x80", false},
		{"overlong encoding", "\xc0\xaf", false},
		{"newline", "a\nb", false},
		{"carriage return", "a\rb", false},
		{"tab", "a\tb", false},
		{"NUL", "a\x00b", false},
		{"DEL", "a\x7fb", false},
		{"NEL U+0085", "a\u0085b", false},
		{"C1 U+009F", "\u009f", false},
		{"escape", "\x1b[31m", false},
		{"unicode", "日本語-ключ-🙂", true},
		{"spaces and punctuation", "a b/c:d=e?f", true},
		{"U+FFFD", "\ufffd", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.ok && err != nil {
				t.Fatalf("ValidateKey(%q) = %v, want nil", tt.key, err)
			}
			if !tt.ok && !errors.Is(err, ErrBadKey) {
				t.Fatalf("ValidateKey(%q) = %v, want ErrBadKey", tt.key, err)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	self := idOf(t, k)
	secp := testSecpKey(t, 0x11)
	c := testCID(t, "file").String()
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	custody, _ := json.Marshal(HoldValue{CustodyFor: idOf(t, testKey(t, 2))})
	tests := []struct {
		name string
		key  crypto.PrivKey
		rec  *Record
	}{
		{"user value", k, userRecord("greeting", "hello")},
		{"user empty value", k, userRecord("empty", "")},
		{"user binary value", k, &Record{NS: NSUser, Key: "bin", Value: allBytes, Time: Timestamp{Wall: testWall}}},
		{"unicode key", k, userRecord("日本語 🙂 <&>", "v")},
		{"expiring", k, &Record{NS: NSUser, Key: "e", Value: []byte("v"), Time: Timestamp{Wall: testWall, Logical: 9},
			Expires: testWall + int64(time.Hour)}},
		{"tombstone", k, &Record{NS: NSUser, Key: "gone", Deleted: true, Time: Timestamp{Wall: testWall, Logical: 1}}},
		{"oldest time", k, &Record{NS: NSUser, Key: "t", Time: Timestamp{Wall: minWall}}},
		{"latest time", k, &Record{NS: NSUser, Key: "t", Time: Timestamp{Wall: maxWall, Logical: ^uint32(0)}}},
		{"catalog name", k, &Record{NS: NSName, Key: "movie.mkv", Value: nameValue(t, c, 1234), Time: Timestamp{Wall: testWall}}},
		{"catalog name tombstone", k, &Record{NS: NSName, Key: "movie.mkv", Deleted: true, Time: Timestamp{Wall: testWall}}},
		{"holding", k, &Record{NS: NSHold, Key: c + "/" + self.String(), Time: Timestamp{Wall: testWall}}},
		{"holding in custody", k, &Record{NS: NSHold, Key: c + "/" + self.String(), Value: custody, Time: Timestamp{Wall: testWall}}},
		{"holding tombstone", k, &Record{NS: NSHold, Key: c + "/" + self.String(), Deleted: true, Time: Timestamp{Wall: testWall}}},
		{"secp256k1 writer", secp, userRecord("secp", "value")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rec
			r.Writer = "stale"
			signRecord(t, r, tt.key)
			if want := idOf(t, tt.key); r.Writer != want {
				t.Fatalf("Sign set Writer %s, want %s", r.Writer, want)
			}
			if err := r.verify(); err != nil {
				t.Fatalf("verify of a freshly signed record: %v", err)
			}
			b := marshalRecord(t, r)
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !recordsEqual(got, r) {
				t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", got, r)
			}
			if b2 := marshalRecord(t, got); !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
			}
			if got.digest() != r.digest() {
				t.Fatal("digest changed by the round trip")
			}
			if got.ID() != r.NS+"\x00"+r.Key {
				t.Fatalf("ID() = %q", got.ID())
			}
		})
	}
}

func TestSignIsDeterministicAndCoversWriter(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	r1 := signRecord(t, userRecord("k", "v"), a)
	r2 := signRecord(t, userRecord("k", "v"), a)
	if !bytes.Equal(r1.Sig, r2.Sig) {
		t.Fatal("Ed25519 signatures of the same record differ")
	}
	r3 := signRecord(t, userRecord("k", "v"), b)
	if bytes.Equal(r1.signedBytes(), r3.signedBytes()) {
		t.Fatal("the signed bytes do not depend on the writer")
	}
}

// TestUnmarshalRejectsTampering changes a signed record in every field the
// signature covers: each change must be caught.
func TestUnmarshalRejectsTampering(t *testing.T) {
	k, other := testKey(t, 1), testKey(t, 2)
	otherID := idOf(t, other)
	secpID := idOf(t, testSecpKey(t, 0x22))
	c := testCID(t, "file").String()
	// Valid both in the user and in the name namespace.
	nv := nameValue(t, c, 10)

	value := func() *Record {
		r := userRecord("greeting", "hello")
		r.Expires = testWall + int64(time.Hour)
		return signRecord(t, r, k)
	}
	tomb := func() *Record {
		return signRecord(t, &Record{NS: NSUser, Key: "greeting", Deleted: true, Time: Timestamp{Wall: testWall, Logical: 3}}, k)
	}
	empty := func() *Record { return signRecord(t, userRecord("greeting", ""), k) }
	nameLike := func() *Record {
		return signRecord(t, &Record{NS: NSUser, Key: "a.txt", Value: nv, Time: Timestamp{Wall: testWall}}, k)
	}

	tests := []struct {
		name   string
		base   func() *Record
		mutate func(r *Record)
	}{
		{"value changed", value, func(r *Record) { r.Value = []byte("hellO") }},
		{"value extended", value, func(r *Record) { r.Value = append(r.Value, '!') }},
		{"value removed", value, func(r *Record) { r.Value = nil }},
		{"key changed", value, func(r *Record) { r.Key = "greetings" }},
		{"namespace changed", nameLike, func(r *Record) { r.NS = NSName }},
		{"wall time changed", value, func(r *Record) { r.Time.Wall++ }},
		{"logical time changed", value, func(r *Record) { r.Time.Logical++ }},
		{"expiry changed", value, func(r *Record) { r.Expires += int64(time.Second) }},
		{"expiry removed", value, func(r *Record) { r.Expires = 0 }},
		{"expiry added", empty, func(r *Record) { r.Expires = testWall + int64(time.Hour) }},
		{"tombstone undeleted", tomb, func(r *Record) { r.Deleted = false }},
		{"value deleted", empty, func(r *Record) { r.Deleted = true }},
		{"writer replaced by another peer", value, func(r *Record) { r.Writer = otherID }},
		{"writer replaced by a secp256k1 peer", value, func(r *Record) { r.Writer = secpID }},
		{"signature by another key", value, func(r *Record) {
			s := cloneRecord(r)
			signRecord(t, s, other)
			r.Sig = s.Sig
		}},
		{"signature truncated", value, func(r *Record) { r.Sig = r.Sig[:len(r.Sig)-1] }},
		{"signature extended", value, func(r *Record) { r.Sig = append(r.Sig, 0) }},
		{"signature bit flipped", value, func(r *Record) { r.Sig[10] ^= 1 }},
		{"signature empty", value, func(r *Record) { r.Sig = []byte{} }},
		{"signature missing", value, func(r *Record) { r.Sig = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.base()
			if _, err := Unmarshal(marshalRecord(t, r)); err != nil {
				t.Fatalf("the untouched record is rejected: %v", err)
			}
			tt.mutate(r)
			got, err := Unmarshal(marshalRecord(t, r))
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Unmarshal of a tampered record = %+v, %v; want ErrBadRecord", got, err)
			}
			if got != nil {
				t.Fatal("Unmarshal returned a record with its error")
			}
			if err := r.verify(); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("verify = %v, want ErrBadRecord", err)
			}
		})
	}
}

// TestUnmarshalRejectsFlippedBytes flips bits all over an encoded record:
// the result is either rejected or decodes to the very same record (JSON
// field names match case-insensitively, base64 padding bits are ignored).
func TestUnmarshalRejectsFlippedBytes(t *testing.T) {
	r := userRecord("greeting", "hello world")
	r.Expires = testWall + int64(time.Hour)
	signRecord(t, r, testKey(t, 1))
	b := marshalRecord(t, r)
	for i := range b {
		for _, mask := range []byte{0x01, 0x02, 0x20, 0x80} {
			m := bytes.Clone(b)
			m[i] ^= mask
			got, err := Unmarshal(m)
			if err == nil && !recordsEqual(got, r) {
				t.Fatalf("flipping byte %d (%q) with %#x gave another valid record: %+v", i, b[i], mask, got)
			}
			if err != nil && !errors.Is(err, ErrBadRecord) {
				t.Fatalf("flipping byte %d: error %v is not ErrBadRecord", i, err)
			}
		}
	}
}

// TestUnmarshalRejectsInvalidRecords signs records that break a shape rule:
// the signature is good, so only the rule can reject them.
func TestUnmarshalRejectsInvalidRecords(t *testing.T) {
	k := testKey(t, 1)
	self := idOf(t, k).String()
	otherID := idOf(t, testKey(t, 2)).String()
	c := testCID(t, "file").String()
	at := func(ns, key string, value []byte) *Record {
		return &Record{NS: ns, Key: key, Value: value, Time: Timestamp{Wall: testWall}}
	}
	with := func(r *Record, f func(*Record)) *Record { f(r); return r }
	tests := []struct {
		name string
		rec  *Record
	}{
		{"empty namespace", at("", "k", nil)},
		{"unknown namespace", at("users", "k", nil)},
		{"namespace in another case", at("KV", "k", nil)},
		{"empty key", at(NSUser, "", nil)},
		{"key with newline", at(NSUser, "a\nb", nil)},
		{"key with NUL", at(NSUser, "a\x00b", nil)},
		{"key of 257 bytes", at(NSUser, strings.Repeat("k", MaxKeyLen+1), nil)},
		{"tombstone with a value", with(at(NSUser, "k", []byte("v")), func(r *Record) { r.Deleted = true })},
		{"tombstone with an expiry", with(at(NSUser, "k", nil), func(r *Record) { r.Deleted = true; r.Expires = testWall + 1 })},
		{"expires at its time", with(at(NSUser, "k", nil), func(r *Record) { r.Expires = testWall })},
		{"expires before its time", with(at(NSUser, "k", nil), func(r *Record) { r.Expires = testWall - 1 })},
		{"negative expiry", with(at(NSUser, "k", nil), func(r *Record) { r.Expires = -1 })},
		{"zero time", with(at(NSUser, "k", nil), func(r *Record) { r.Time = Timestamp{} })},
		{"negative time", with(at(NSUser, "k", nil), func(r *Record) { r.Time.Wall = -testWall })},
		{"time before 2000", with(at(NSUser, "k", nil), func(r *Record) { r.Time.Wall = minWall - 1 })},
		{"time after 2200", with(at(NSUser, "k", nil), func(r *Record) { r.Time.Wall = maxWall + 1 })},
		{"name value not JSON", at(NSName, "a.txt", []byte("hello"))},
		{"name value empty", at(NSName, "a.txt", nil)},
		{"name value null", at(NSName, "a.txt", []byte("null"))},
		{"name value bad cid", at(NSName, "a.txt", nameValue(t, "not-a-cid", 1))},
		{"name value empty cid", at(NSName, "a.txt", nameValue(t, "", 1))},
		{"name value negative size", at(NSName, "a.txt", nameValue(t, c, -1))},
		{"name value size not a number", at(NSName, "a.txt", []byte(`{"cid":"`+c+`","size":"1"}`))},
		{"name with an empty component", at(NSName, "dir//a.txt", nameValue(t, c, 1))},
		{"name with a dot-dot component", at(NSName, "dir/../a.txt", nameValue(t, c, 1))},
		{"name with backslash", at(NSName, `dir\a.txt`, nameValue(t, c, 1))},
		{"name dot", at(NSName, ".", nameValue(t, c, 1))},
		{"name dot dot", at(NSName, "..", nameValue(t, c, 1))},
		{"name tombstone with a leading slash", with(at(NSName, "/a.txt", nil), func(r *Record) { r.Deleted = true })},
		{"name with a right-to-left override", at(NSName, "invoice\u202Efdp.exe", nameValue(t, c, 1))},
		{"name with a zero-width space", at(NSName, "pay\u200Bpal.txt", nameValue(t, c, 1))},
		{"name of 256 bytes", at(NSName, strings.Repeat("n", MaxKeyLen), nameValue(t, c, 1))},
		{"name tombstone with an invisible rune", with(at(NSName, "a\u2060b", nil), func(r *Record) { r.Deleted = true })},
		{"holding of another peer", at(NSHold, c+"/"+otherID, nil)},
		{"holding without peer", at(NSHold, c, nil)},
		{"holding with empty peer", at(NSHold, c+"/", nil)},
		{"holding with empty cid", at(NSHold, "/"+self, nil)},
		{"holding with a suffix after the peer", at(NSHold, c+"/"+self+"/x", nil)},
		{"holding tombstone of another peer", with(at(NSHold, c+"/"+otherID, nil), func(r *Record) { r.Deleted = true })},
		{"holding value not JSON", at(NSHold, c+"/"+self, []byte("x"))},
		{"holding custody_for not a peer", at(NSHold, c+"/"+self, []byte(`{"custody_for":"nobody"}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signRecord(t, tt.rec, k)
			if !sigVerifies(t, r, k) {
				t.Fatal("precondition: the signature must be good")
			}
			if err := r.verify(); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("verify = %v, want ErrBadRecord", err)
			}
			b := marshalRecord(t, r)
			if got, err := Unmarshal(b); !errors.Is(err, ErrBadRecord) || got != nil {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want ErrBadRecord", b, got, err)
			}
		})
	}
}

// TestCatalogRecordsAccepted is the positive control of the catalog rules.
func TestCatalogRecordsAccepted(t *testing.T) {
	k := testKey(t, 1)
	self := idOf(t, k).String()
	c := testCID(t, "file").String()
	v0 := testCID(t, "v0")
	v0 = cid.NewCidV0(v0.Hash())
	for _, r := range []*Record{
		{NS: NSName, Key: "a.txt", Value: nameValue(t, c, 0)},
		{NS: NSName, Key: "...", Value: nameValue(t, c, 1<<40)},
		{NS: NSName, Key: "CIDv0 file", Value: nameValue(t, v0.String(), 1)},
		{NS: NSName, Key: "extra fields.txt", Value: []byte(`{"cid":"` + c + `","size":5,"other":true}`)},
		{NS: NSHold, Key: c + "/" + self},
		{NS: NSHold, Key: "anything/" + self, Value: []byte("{}")},
		{NS: NSUser, Key: "dir/a.txt", Value: []byte("not a name value")},
	} {
		r.Time = Timestamp{Wall: testWall}
		signRecord(t, r, k)
		if _, err := Unmarshal(marshalRecord(t, r)); err != nil {
			t.Errorf("%s %q: %v", r.NS, r.Key, err)
		}
	}
	nv, err := decodeNameValue(nameValue(t, c, 42))
	if err != nil || nv.CID != c || nv.Size != 42 {
		t.Fatalf("decodeNameValue = %+v, %v", nv, err)
	}
	other := idOf(t, testKey(t, 2))
	hv, err := decodeHoldValue([]byte(`{"custody_for":"` + other.String() + `"}`))
	if err != nil || hv.CustodyFor != other {
		t.Fatalf("decodeHoldValue = %+v, %v", hv, err)
	}
	if hv, err := decodeHoldValue(nil); err != nil || hv.CustodyFor != "" {
		t.Fatalf("decodeHoldValue(nil) = %+v, %v", hv, err)
	}
}

func TestUnmarshalRejectsMalformedInput(t *testing.T) {
	valid := marshalRecord(t, signRecord(t, userRecord("k", "v"), testKey(t, 1)))
	replace := func(old, new string) []byte {
		if !bytes.Contains(valid, []byte(old)) {
			t.Fatalf("%q is not in %s", old, valid)
		}
		return bytes.Replace(valid, []byte(old), []byte(new), 1)
	}
	tests := map[string][]byte{
		"nil":                  nil,
		"empty":                {},
		"space":                []byte(" "),
		"null":                 []byte("null"),
		"empty object":         []byte("{}"),
		"array":                []byte("[]"),
		"string":               []byte(`"record"`),
		"garbage":              []byte("not json at all"),
		"binary":               {0xff, 0xfe, 0x00, 0x01},
		"truncated":            valid[:len(valid)-1],
		"half":                 valid[:len(valid)/2],
		"trailing garbage":     append(bytes.Clone(valid), 'x'),
		"two records":          append(bytes.Clone(valid), valid...),
		"ns not a string":      replace(`"ns":"kv"`, `"ns":1`),
		"wall not a number":    replace(`"wall":`, `"wall":"x","w":`),
		"logical negative":     replace(`"logical":3`, `"logical":-1`),
		"logical over uint32":  replace(`"logical":3`, `"logical":4294967296`),
		"logical fractional":   replace(`"logical":3`, `"logical":3.5`),
		"value not base64":     replace(`"value":"dg=="`, `"value":"!!"`),
		"sig not base64":       replace(`"sig":"`, `"sig":"*`),
		"writer not a peer ID": replace(`"writer":"`, `"writer":"x`),
		"writer empty":         replace(`"writer":"`, `"writer":"","w":"`),
		"writer a number":      replace(`"writer":"`, `"writer":7,"w":"`),
		"deleted a string":     replace(`"ns"`, `"deleted":"true","ns"`),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := Unmarshal(b); !errors.Is(err, ErrBadRecord) || got != nil {
				t.Fatalf("Unmarshal(%q) = %+v, %v; want ErrBadRecord", b, got, err)
			}
		})
	}
}

func TestUnmarshalSizeLimits(t *testing.T) {
	k := testKey(t, 1)
	t.Run("oversize input", func(t *testing.T) {
		valid := marshalRecord(t, signRecord(t, userRecord("k", "v"), k))
		pad := func(n int) []byte { return append(bytes.Clone(valid), bytes.Repeat([]byte(" "), n-len(valid))...) }
		if _, err := Unmarshal(pad(MaxRecordSize)); err != nil {
			t.Fatalf("a valid record padded to MaxRecordSize is rejected: %v", err)
		}
		if got, err := Unmarshal(pad(MaxRecordSize + 1)); !errors.Is(err, ErrBadRecord) || got != nil {
			t.Fatalf("Unmarshal of %d bytes = %v; want ErrBadRecord", MaxRecordSize+1, err)
		}
	})
	t.Run("largest record fits", func(t *testing.T) {
		// Every byte of the key is escaped to \u003c; secp256k1 has the
		// longest signature and peer ID.
		r := &Record{NS: NSUser, Key: strings.Repeat("<", MaxKeyLen), Value: bytes.Repeat([]byte{0xff}, MaxValueSizeLimit),
			Time: Timestamp{Wall: maxWall - 1, Logical: ^uint32(0)}, Expires: maxWall}
		for _, key := range []crypto.PrivKey{k, testSecpKey(t, 0x33)} {
			signRecord(t, r, key)
			b := marshalRecord(t, r)
			if len(b) > MaxRecordSize {
				t.Fatalf("the largest valid record encodes to %d bytes, over MaxRecordSize %d", len(b), MaxRecordSize)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("the largest valid record is rejected: %v", err)
			}
			if !recordsEqual(got, r) {
				t.Fatal("the largest record changed in the round trip")
			}
		}
	})
	t.Run("value over the limit", func(t *testing.T) {
		r := signRecord(t, &Record{NS: NSUser, Key: "k", Value: make([]byte, MaxValueSizeLimit+1), Time: Timestamp{Wall: testWall}}, k)
		b := marshalRecord(t, r)
		if len(b) > MaxRecordSize {
			t.Fatalf("precondition: %d bytes is over MaxRecordSize, the value check is not reached", len(b))
		}
		if got, err := Unmarshal(b); !errors.Is(err, ErrBadRecord) || got != nil {
			t.Fatalf("a value of %d bytes: %v; want ErrBadRecord", MaxValueSizeLimit+1, err)
		}
	})
}

func TestUnmarshalRejectsWriterWithoutPublicKey(t *testing.T) {
	check := func(t *testing.T, r *Record, k crypto.PrivKey) {
		t.Helper()
		if _, err := r.Writer.ExtractPublicKey(); err == nil {
			t.Fatalf("precondition: the public key can be extracted from %s", r.Writer)
		}
		if !sigVerifies(t, r, k) {
			t.Fatal("precondition: the signature must be good")
		}
		if got, err := Unmarshal(marshalRecord(t, r)); !errors.Is(err, ErrBadRecord) || got != nil {
			t.Fatalf("Unmarshal = %v; want ErrBadRecord", err)
		}
	}
	t.Run("RSA peer", func(t *testing.T) {
		k, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// Sign works (the RSA peer ID is a hash of the key) ...
		r := signRecord(t, userRecord("k", "v"), k)
		// ... but nobody can check the signature.
		check(t, r, k)
	})
	t.Run("hashed Ed25519 peer ID", func(t *testing.T) {
		k := testKey(t, 1)
		pub, err := crypto.MarshalPublicKey(k.GetPublic())
		if err != nil {
			t.Fatal(err)
		}
		h, err := mh.Sum(pub, mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		r := userRecord("k", "v")
		r.Writer = peer.ID(h)
		sig, err := k.Sign(r.signedBytes())
		if err != nil {
			t.Fatal(err)
		}
		r.Sig = sig
		check(t, r, k)
	})
}

func TestCheck(t *testing.T) {
	now := time.Unix(0, testWall)
	const skew = 30 * time.Second
	at := func(wall time.Time, expires int64) *Record {
		return &Record{NS: NSUser, Key: "k", Time: Timestamp{Wall: wall.UnixNano(), Logical: 5}, Expires: expires}
	}
	tests := []struct {
		name    string
		rec     *Record
		skew    time.Duration
		wantErr error
	}{
		{"now", at(now, 0), skew, nil},
		{"an hour ago", at(now.Add(-time.Hour), 0), skew, nil},
		{"within skew", at(now.Add(skew-time.Nanosecond), 0), skew, nil},
		{"at the skew", at(now.Add(skew), 0), skew, nil},
		{"beyond skew", at(now.Add(skew+time.Nanosecond), 0), skew, ErrBadRecord},
		{"far future", at(now.Add(time.Hour), 0), skew, ErrBadRecord},
		{"zero skew now", at(now, 0), 0, nil},
		{"zero skew ahead", at(now.Add(time.Nanosecond), 0), 0, ErrBadRecord},
		{"expires later", at(now.Add(-time.Hour), now.UnixNano()+1), skew, nil},
		{"expires now", at(now.Add(-time.Hour), now.UnixNano()), skew, ErrExpired},
		{"expired", at(now.Add(-time.Hour), now.UnixNano()-1), skew, ErrExpired},
		{"future and expired", at(now.Add(time.Hour), now.Add(time.Hour).UnixNano()+1), skew, ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rec.Check(now, tt.skew)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrExpired && errors.Is(err, ErrBadRecord) {
				t.Fatalf("an expired record is reported as invalid: %v", err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	r := &Record{}
	if !r.ExpiresAt().IsZero() || r.Expired(time.Unix(0, maxWall)) {
		t.Fatal("a record without expiry expires")
	}
	r.Expires = testWall
	if got := r.ExpiresAt(); !got.Equal(time.Unix(0, testWall)) || got.Location() != time.UTC {
		t.Fatalf("ExpiresAt = %v", got)
	}
	if r.Expired(time.Unix(0, testWall-1)) || !r.Expired(time.Unix(0, testWall)) || !r.Expired(time.Unix(0, testWall+1)) {
		t.Fatal("Expired is wrong around the expiry")
	}
}

// sortedPeers returns n distinct peer IDs in increasing order with their keys.
func sortedPeers(tb testing.TB, n int) ([]peer.ID, map[peer.ID]crypto.PrivKey) {
	tb.Helper()
	keys := map[peer.ID]crypto.PrivKey{}
	var ids []peer.ID
	for i := range n {
		k := testKey(tb, byte(i+1))
		id := idOf(tb, k)
		keys[id] = k
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, keys
}

func TestWins(t *testing.T) {
	ids, keys := sortedPeers(t, 2)
	low, high := ids[0], ids[1]
	mk := func(wall int64, logical uint32, w peer.ID, value string) *Record {
		r := &Record{NS: NSUser, Key: "k", Value: []byte(value), Time: Timestamp{Wall: wall, Logical: logical}}
		return signRecord(t, r, keys[w])
	}
	tests := []struct {
		name        string
		winner, los *Record
	}{
		{"later wall wins over a higher writer", mk(testWall+1, 0, low, "a"), mk(testWall, 7, high, "b")},
		{"later logical wins over a higher writer", mk(testWall, 8, low, "a"), mk(testWall, 7, high, "b")},
		{"later wins over a tombstone", mk(testWall+1, 0, low, "a"), signRecord(t, &Record{NS: NSUser, Key: "k", Deleted: true, Time: Timestamp{Wall: testWall}}, keys[high])},
		{"equal time: higher writer wins", mk(testWall, 3, high, "a"), mk(testWall, 3, low, "b")},
		{"equal time: higher writer wins whatever the values", mk(testWall, 3, high, "a"), mk(testWall, 3, low, "zzz")},
		{"equal time and writer: decided by the signed bytes", mk(testWall, 3, low, "b"), mk(testWall, 3, low, "a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.winner.Wins(tt.los) {
				t.Fatal("the winner does not win")
			}
			if tt.los.Wins(tt.winner) {
				t.Fatal("the loser wins too")
			}
		})
	}
	t.Run("a record does not win over itself or a copy", func(t *testing.T) {
		r := mk(testWall, 1, low, "v")
		c := cloneRecord(r)
		c.Sig = append(c.Sig, 1) // same content, other bytes
		if r.Wins(r) || r.Wins(c) || c.Wins(r) {
			t.Fatal("a record wins over the same write")
		}
	})
}

// randomRecord draws from small domains so that ties are frequent.
func randomRecord(rng *mrand.Rand, writers []peer.ID) *Record {
	r := &Record{
		NS:     []string{NSUser, NSName}[rng.IntN(2)],
		Key:    []string{"a", "b"}[rng.IntN(2)],
		Time:   Timestamp{Wall: testWall + rng.Int64N(3), Logical: uint32(rng.IntN(3))},
		Writer: writers[rng.IntN(len(writers))],
	}
	switch rng.IntN(4) {
	case 0:
		r.Deleted = true
	case 1:
		r.Expires = r.Time.Wall + 1 + rng.Int64N(2)
		fallthrough
	default:
		r.Value = []byte{byte('a' + rng.IntN(3))}
	}
	return r
}

// TestWinsIsATotalOrder checks on random records that Wins is a strict total
// order on distinct writes (writes that differ in their signed bytes): for
// any two exactly one wins, never both, and it is transitive, so every
// node picks the same winner whatever the order the records came in.
func TestWinsIsATotalOrder(t *testing.T) {
	writers, _ := sortedPeers(t, 3)
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	for round := range 200 {
		rs := make([]*Record, 12)
		for i := range rs {
			rs[i] = randomRecord(rng, writers)
		}
		for _, a := range rs {
			for _, b := range rs {
				same := bytes.Equal(a.signedBytes(), b.signedBytes())
				ab, ba := a.Wins(b), b.Wins(a)
				if same && (ab || ba) {
					t.Fatalf("round %d: a write wins over itself: %+v", round, a)
				}
				if !same && ab == ba {
					t.Fatalf("round %d: a.Wins(b)=%v b.Wins(a)=%v for\n a=%+v\n b=%+v", round, ab, ba, a, b)
				}
				if ab && a.Time.Compare(b.Time) < 0 {
					t.Fatalf("round %d: an earlier record wins", round)
				}
				for _, c := range rs {
					if ab && b.Wins(c) && !a.Wins(c) {
						t.Fatalf("round %d: Wins is not transitive", round)
					}
				}
			}
		}
		// Folding in any order gives the same winner.
		var want *Record
		for range 5 {
			rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			var best *Record
			for _, r := range rs {
				if best == nil || r.Wins(best) {
					best = r
				}
			}
			if want == nil {
				want = best
			} else if !bytes.Equal(want.signedBytes(), best.signedBytes()) {
				t.Fatalf("round %d: the winner depends on the order", round)
			}
		}
	}
}

func TestValidatorValidate(t *testing.T) {
	k := testKey(t, 1)
	now := time.Unix(0, testWall)
	v := Validator{Skew: 10 * time.Second, Now: func() time.Time { return now }}
	good := signRecord(t, userRecord("some/key", "v"), k)
	goodB := marshalRecord(t, good)
	key := DHTKey(NSUser, "some/key")
	if key != "/p2pshare-kv/kv/some/key" {
		t.Fatalf("DHTKey = %q", key)
	}
	if err := v.Validate(key, goodB); err != nil {
		t.Fatalf("Validate of a good record: %v", err)
	}

	expired := userRecord("some/key", "v")
	expired.Time.Wall = testWall - int64(time.Hour)
	expired.Expires = testWall
	signRecord(t, expired, k)

	future := userRecord("some/key", "v")
	future.Time.Wall = testWall + int64(11*time.Second)
	signRecord(t, future, k)

	forged := cloneRecord(good)
	forged.Value = []byte("w")

	tests := []struct {
		name    string
		key     string
		value   []byte
		wantErr error
	}{
		{"other key", DHTKey(NSUser, "some/other"), goodB, ErrBadRecord},
		{"other namespace", DHTKey(NSName, "some/key"), goodB, ErrBadRecord},
		{"key prefix only", DHTKey(NSUser, "some"), goodB, ErrBadRecord},
		{"key with a suffix", key + "/", goodB, ErrBadRecord},
		{"bare key", "some/key", goodB, ErrBadRecord},
		{"other DHT namespace", "/pk/kv/some/key", goodB, ErrBadRecord},
		{"empty key", "", goodB, ErrBadRecord},
		{"expired", key, marshalRecord(t, expired), ErrExpired},
		{"from the future", key, marshalRecord(t, future), ErrBadRecord},
		{"forged", key, marshalRecord(t, forged), ErrBadRecord},
		{"garbage", key, []byte("garbage"), ErrBadRecord},
		{"empty", key, nil, ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.Validate(tt.key, tt.value); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tt.wantErr)
			}
		})
	}

	// The DHT copy of a catalog name: the one record of a name.
	t.Run("names", func(t *testing.T) {
		c := testCID(t, "file").String()
		name := func(key string, wall int64) *Record {
			return signRecord(t, &Record{NS: NSName, Key: key, Value: nameValue(t, c, 8), Time: Timestamp{Wall: wall}}, k)
		}
		good := name("notes.txt", testWall)
		if err := v.Validate(DHTKey(NSName, "notes.txt"), marshalRecord(t, good)); err != nil {
			t.Fatalf("Validate of a good name record: %v", err)
		}
		forged := cloneRecord(good)
		forged.Value = nameValue(t, testCID(t, "evil").String(), 8)
		other := cloneRecord(good)
		other.Writer = idOf(t, testKey(t, 2))
		for _, tt := range []struct {
			what, key string
			r         *Record
		}{
			{"another name's key", DHTKey(NSName, "other.txt"), good},
			{"the user namespace's key", DHTKey(NSUser, "notes.txt"), good},
			{"forged file", DHTKey(NSName, "notes.txt"), forged},
			{"claims another publisher", DHTKey(NSName, "notes.txt"), other},
			{"invisible rune", DHTKey(NSName, "pay\u200Bpal.txt"), name("pay\u200Bpal.txt", testWall)},
			{"from the future", DHTKey(NSName, "notes.txt"), name("notes.txt", testWall+int64(11*time.Second))},
		} {
			if err := v.Validate(tt.key, marshalRecord(t, tt.r)); !errors.Is(err, ErrBadRecord) {
				t.Errorf("%s: Validate = %v, want ErrBadRecord", tt.what, err)
			}
		}
	})

	t.Run("default skew", func(t *testing.T) {
		v := Validator{Now: func() time.Time { return now }}
		skew := DefaultConfig().MaxClockSkew
		for _, c := range []struct {
			ahead time.Duration
			ok    bool
		}{{skew - time.Second, true}, {skew, true}, {skew + time.Second, false}} {
			r := userRecord("k", "v")
			r.Time.Wall = testWall + int64(c.ahead)
			b := marshalRecord(t, signRecord(t, r, k))
			err := v.Validate(DHTKey(NSUser, "k"), b)
			if c.ok != (err == nil) {
				t.Errorf("%s ahead: Validate = %v", c.ahead, err)
			}
		}
	})

	t.Run("wall clock", func(t *testing.T) {
		r := userRecord("k", "v")
		r.Time.Wall = time.Now().UnixNano()
		b := marshalRecord(t, signRecord(t, r, k))
		if err := (Validator{}).Validate(DHTKey(NSUser, "k"), b); err != nil {
			t.Fatalf("Validate with the real clock: %v", err)
		}
		r.Time.Wall = time.Now().Add(time.Hour).UnixNano()
		b = marshalRecord(t, signRecord(t, r, k))
		if err := (Validator{}).Validate(DHTKey(NSUser, "k"), b); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("Validate of a record an hour ahead of the real clock = %v", err)
		}
	})
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func TestValidatorSelect(t *testing.T) {
	ids, keys := sortedPeers(t, 2)
	low, high := ids[0], ids[1]
	mk := func(wall int64, logical uint32, w peer.ID, value string) []byte {
		r := &Record{NS: NSUser, Key: "k", Value: []byte(value), Time: Timestamp{Wall: wall, Logical: logical}}
		return marshalRecord(t, signRecord(t, r, keys[w]))
	}
	forged := func(b []byte) []byte {
		r, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r.Time.Wall += int64(time.Hour) // would win if it were believed
		return marshalRecord(t, r)
	}
	v := Validator{}
	t.Run("by time", func(t *testing.T) {
		winner := mk(testWall, 2, low, "new")
		vals := [][]byte{mk(testWall, 1, high, "old"), winner, mk(testWall-1, 9, high, "older"), []byte("garbage"), forged(winner), nil}
		for _, p := range permutations(len(vals)) {
			in := make([][]byte, len(vals))
			for i, j := range p {
				in[i] = vals[j]
			}
			i, err := v.Select("/p2pshare-kv/kv/k", in)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if !bytes.Equal(in[i], winner) {
				t.Fatalf("Select picked %s, want %s", in[i], winner)
			}
		}
	})
	t.Run("tie broken by writer", func(t *testing.T) {
		winner := mk(testWall, 2, high, "a")
		vals := [][]byte{mk(testWall, 2, low, "b"), winner, mk(testWall, 1, high, "c")}
		for _, p := range permutations(len(vals)) {
			in := make([][]byte, len(vals))
			for i, j := range p {
				in[i] = vals[j]
			}
			i, err := v.Select("/p2pshare-kv/kv/k", in)
			if err != nil || !bytes.Equal(in[i], winner) {
				t.Fatalf("Select = %d, %v; want the higher writer's record", i, err)
			}
		}
	})
	t.Run("only one valid", func(t *testing.T) {
		good := mk(testWall, 0, low, "a")
		i, err := v.Select("k", [][]byte{[]byte("x"), forged(good), good, {}})
		if err != nil || i != 2 {
			t.Fatalf("Select = %d, %v; want 2", i, err)
		}
	})
	t.Run("none valid", func(t *testing.T) {
		for _, vals := range [][][]byte{nil, {}, {nil}, {[]byte("x"), forged(mk(testWall, 0, low, "a"))}} {
			if _, err := v.Select("k", vals); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Select(%q) = %v, want ErrBadRecord", vals, err)
			}
		}
	})
}

func ExampleDHTKey() {
	fmt.Println(DHTKey(NSUser, "photos/cat"))
	// Output: /p2pshare-kv/kv/photos/cat
}

// A catalog name record is accepted exactly when its name passes
// catalog.ValidateName, the rule share applies to the names users give.
func TestCatalogNamesFollowTheNameRule(t *testing.T) {
	k := testKey(t, 1)
	c := testCID(t, "file").String()
	for _, name := range []string{
		"notes.txt", "caf\u00E9 cr\u00E8me.txt", "\u2764\uFE0F.txt", "...", strings.Repeat("n", catalog.MaxNameLen),
		"", ".", "..", "a/b", "a\\b", "a\x01b", "invoice\u202Efdp.exe", "\uFEFFnotes.txt", "no\u00A0break",
		"a\uE000b", "a\u0378b", "a\uFFFDb", strings.Repeat("n", catalog.MaxNameLen+1),
	} {
		ruleErr := catalog.ValidateName(name)
		r := signRecord(t, &Record{NS: NSName, Key: name, Value: nameValue(t, c, 1), Time: Timestamp{Wall: testWall}}, k)
		err := r.verify()
		if (err == nil) != (ruleErr == nil) || (err != nil && !errors.Is(err, ErrBadRecord)) {
			t.Errorf("name %+q: the catalog says %v, the name rule %v", name, err, ruleErr)
		}
	}
}
