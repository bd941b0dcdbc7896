package share

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/multiformats/go-multibase"
)

func FuzzUnmarshalNameRecord(f *testing.F) {
	key := testKey(f)
	for _, tc := range []struct {
		name string
		data string
		size int64
		at   time.Time
	}{
		{"notes.txt", "notes", 5, recTime},
		{"résumé.txt", "", 0, time.Unix(0, 0)},
		{strings.Repeat("n", MaxNameLen), "long", 1 << 40, recTime.Add(time.Hour)},
	} {
		r, err := NewNameRecord(tc.name, ComputeCID([]byte(tc.data)), tc.size, key, tc.at)
		if err != nil {
			f.Fatal(err)
		}
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// Equivalent encodings the signature does not cover: the CID in
		// another base, the time in another zone, other white space.
		f.Add(bytes.Replace(b, []byte(r.CID.String()), []byte(r.CID.Encode(multibase.MustNewEncoder(multibase.Base58BTC))), 1))
		f.Add(bytes.Replace(b, []byte(r.Time.Format(time.RFC3339Nano)), []byte(r.Time.In(time.FixedZone("", -5*3600)).Format(time.RFC3339Nano)), 1))
		f.Add(bytes.ReplaceAll(b, []byte(","), []byte(" ,\n\t")))
		// Invalid: tampered, truncated.
		f.Add(bytes.Replace(b, []byte(`"size":`), []byte(`"size":1`), 1))
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("null"))
	f.Add([]byte("{}"))
	f.Add([]byte(`{"name":"a","cid":{"/":"x"},"size":-1,"publisher":"","time":"","sig":""}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalNameRecord(data)
		if err != nil {
			return
		}
		if err := ValidateName(r.Name); err != nil {
			t.Fatalf("accepted a record with a bad name: %v", err)
		}
		if err := checkCID(r.CID); err != nil {
			t.Fatalf("accepted a record with a bad CID: %v", err)
		}
		if r.Size < 0 {
			t.Fatalf("accepted a record with size %d", r.Size)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted record does not marshal: %v", err)
		}
		r2, err := UnmarshalNameRecord(b)
		if err != nil {
			t.Fatalf("re-marshalled record %s does not decode: %v", b, err)
		}
		if !recordsEqual(r, r2) {
			t.Fatalf("round trip: %+v became %+v", r, r2)
		}
		// An accepted record is valid under its own name's key, at its own time.
		if err := validatorAt(r.Time).Validate(NameKey(r.Name), data); err != nil {
			t.Fatalf("accepted record fails Validate: %v", err)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"notes.txt", "a", "résumé.txt", "with spaces", strings.Repeat("x", MaxNameLen),
		"", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "\x7f", "\u0085", "\xff",
		strings.Repeat("x", MaxNameLen+1), strings.Repeat("é", 128),
		"a\u202Eb", "\u200B", "\uFEFFx", "a\u2028b", "\u00A0", "\uE000", "\uFDD0", "\u0378",
		"\u2764\uFE0F", "a\uFE0F", "\u3164", "\uFFFD",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ValidateName(%q) = %v, not ErrBadName", name, err)
			}
			return
		}
		switch {
		case name == "" || name == "." || name == "..":
			t.Fatalf("accepted %q", name)
		case len(name) > MaxNameLen:
			t.Fatalf("accepted a %d-byte name", len(name))
		case !utf8.ValidString(name):
			t.Fatalf("accepted invalid UTF-8 %q", name)
		case strings.ContainsAny(name, "/\\\x00"):
			t.Fatalf("accepted %q, which holds a separator or NUL", name)
		}
		for _, r := range name {
			switch {
			case unicode.IsControl(r):
				t.Fatalf("accepted %q, which holds control character %U", name, r)
			case unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point):
				t.Fatalf("accepted %q, which holds invisible or private rune %U", name, r)
			case unicode.Is(unicode.Zs, r) && r != ' ':
				t.Fatalf("accepted %q, which holds space %U", name, r)
			case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
				t.Fatalf("accepted %q, which holds unassigned %U", name, r)
			case r == utf8.RuneError:
				t.Fatalf("accepted %q, which holds U+FFFD", name)
			}
		}
	})
}
