package share

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

var _ record.Validator = NameValidator{}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"notes.txt", true},
		{"a", true},
		{"résumé.txt", true},
		{"日本語のファイル.pdf", true},
		{"with spaces in it.txt", true},
		{" leading and trailing ", true},
		{".hidden", true},
		{"...", true},
		{"a..b", true},
		{strings.Repeat("x", MaxNameLen), true},
		{strings.Repeat("é", MaxNameLen/2) + "x", true}, // 255 bytes, multi-byte runes

		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/", false},
		{"/abs", false},
		{"dir/", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"\x00", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"\x1b[31mred", false},
		{"\x7f", false},
		{"a\u0085b", false}, // C1 control (NEL)
		{strings.Repeat("x", MaxNameLen+1), false},
		{strings.Repeat("é", MaxNameLen/2+1), false}, // 256 bytes, 128 runes
		{"\xff", false},
		{"abc\xc3", false},      // truncated UTF-8 sequence
		{"\xed\xa0\x80", false}, // surrogate half
		{"\xc0\xaf", false},     // overlong '/'
	} {
		t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
			err := ValidateName(tc.name)
			switch {
			case tc.ok && err != nil:
				t.Errorf("ValidateName(%q) = %v, want nil", tc.name, err)
			case !tc.ok && !errors.Is(err, ErrBadName):
				t.Errorf("ValidateName(%q) = %v, want ErrBadName", tc.name, err)
			}
		})
	}
}

// TestValidateNameInvisibleRunes: runes that hide in a name or make it
// display as another are refused, and the error names them.
func TestValidateNameInvisibleRunes(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  rune // 0: the name is fine
	}{
		{"invoice\u202Efdp.exe", 0x202E}, // right-to-left override
		{"a\u202Ab", 0x202A},             // left-to-right embedding
		{"a\u2066b\u2069", 0x2066},       // isolates
		{"a\u2067b", 0x2067},
		{"a\u2068b", 0x2068},
		{"a\u2069b", 0x2069},
		{"a\u200Eb", 0x200E},         // left-to-right mark
		{"pay\u200Bpal.txt", 0x200B}, // zero-width space
		{"a\u200Cb", 0x200C},         // zero-width non-joiner
		{"a\u200Db", 0x200D},         // zero-width joiner
		{"\uFEFFnotes.txt", 0xFEFF},  // byte order mark
		{"soft\u00ADhyphen", 0x00AD},
		{"a\u2060b", 0x2060},       // word joiner
		{"a\u061Cb", 0x061C},       // Arabic letter mark
		{"tag\U000E0041", 0xE0041}, // tag character
		{"a\u2028b", 0x2028},       // line separator
		{"a\u2029b", 0x2029},       // paragraph separator
		{"no\u00A0break", 0x00A0},  // no-break space
		{"a\u3000b", 0x3000},       // ideographic space
		{"a\u2007b", 0x2007},       // figure space
		{"a\uE000b", 0xE000},       // private use
		{"a\U000F0000b", 0xF0000},  // supplementary private use
		{"a\uFDD0b", 0xFDD0},       // noncharacters
		{"a\uFFFEb", 0xFFFE},
		{"a\U0001FFFFb", 0x1FFFF},
		{"a\u0378b", 0x0378},      // unassigned
		{"a\U000E0080b", 0xE0080}, // unassigned
		{"a\uFFFDb", 0xFFFD},      // replacement character
		{"a\u3164b", 0x3164},      // Hangul filler (invisible letter)
		{"a\u115Fb", 0x115F},      // Hangul choseong filler
		{"a\u034Fb", 0x034F},      // combining grapheme joiner
		{"a\uFE0Fb", 0xFE0F},      // variation selector after a letter
		{"x\U000E0100", 0xE0100},
		{"a\x01b", 0x01},
		{"a\u0085b", 0x85},

		{"\u2764\uFE0F.txt", 0},             // emoji presentation of a symbol
		{"\u845B\U000E0100.txt", 0},         // ideographic variation
		{"caf\u00E9 cr\u00E8me.txt", 0},     // Latin-1 letters, ordinary space
		{"e\u0301.txt", 0},                  // combining accent
		{"\u05E9\u05DC\u05D5\u05DD.txt", 0}, // Hebrew: right to left, no controls
		{"\U0001F600.txt", 0},               // emoji
	} {
		t.Run(fmt.Sprintf("%+q", tc.name), func(t *testing.T) {
			err := ValidateName(tc.name)
			if tc.bad == 0 {
				if err != nil {
					t.Fatalf("ValidateName(%+q) = %v, want nil", tc.name, err)
				}
				return
			}
			want := fmt.Sprintf("holds %U,", tc.bad)
			if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "remove it") {
				t.Fatalf("ValidateName(%+q) = %v, want ErrBadName naming %U and what to do", tc.name, err, tc.bad)
			}
			if strings.ContainsAny(err.Error(), "\n\r\u202E\u2028") {
				t.Fatalf("the error carries the rune itself: %q", err)
			}
		})
	}
}

func TestNameKey(t *testing.T) {
	if got := NameKey("notes.txt"); got != "/p2pshare-name/notes.txt" {
		t.Errorf("NameKey = %q", got)
	}
}

var recTime = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)

func mustRecord(t *testing.T, name string, c cid.Cid, size int64, key crypto.PrivKey, now time.Time) *NameRecord {
	t.Helper()
	r, err := NewNameRecord(name, c, size, key, now)
	if err != nil {
		t.Fatalf("NewNameRecord: %v", err)
	}
	return r
}

func mustMarshal(t *testing.T, r *NameRecord) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return b
}

// validatorAt is a NameValidator whose clock reads now.
func validatorAt(now time.Time) NameValidator {
	return NameValidator{Now: func() time.Time { return now }}
}

func TestNameRecordRoundTrip(t *testing.T) {
	key := testKey(t)
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := ComputeCID([]byte("contents"))
	// A non-UTC time with a monotonic reading is stored as plain UTC.
	local := time.Now().In(time.FixedZone("X", 3600))
	for _, now := range []time.Time{recTime, local} {
		r := mustRecord(t, "résumé.txt", c, 8, key, now)
		if r.Name != "résumé.txt" || !r.CID.Equals(c) || r.Size != 8 || r.Publisher != id || !r.Time.Equal(now) {
			t.Fatalf("NewNameRecord = %+v", r)
		}
		if r.Time.Location() != time.UTC {
			t.Errorf("record time in %v, want UTC", r.Time.Location())
		}
		if len(r.Sig) == 0 {
			t.Fatal("record not signed")
		}
		b := mustMarshal(t, r)
		got, err := UnmarshalNameRecord(b)
		if err != nil {
			t.Fatalf("UnmarshalNameRecord: %v", err)
		}
		if !recordsEqual(got, r) {
			t.Errorf("round trip: %+v, want %+v", got, r)
		}
		if b2 := mustMarshal(t, got); !bytes.Equal(b, b2) {
			t.Errorf("re-marshal differs:\n%s\n%s", b, b2)
		}
	}
}

func TestNewNameRecordBadName(t *testing.T) {
	for _, name := range []string{"", "a/b", ".."} {
		if _, err := NewNameRecord(name, ComputeCID(nil), 0, testKey(t), recTime); !errors.Is(err, ErrBadName) {
			t.Errorf("NewNameRecord(%q): err = %v, want ErrBadName", name, err)
		}
	}
}

func TestNameValidatorAccepts(t *testing.T) {
	key := testKey(t)
	v := validatorAt(recTime)
	for _, tc := range []struct {
		name string
		size int64
		at   time.Time
	}{
		{"notes.txt", 3, recTime},
		{"empty file", 0, recTime},
		{"old.txt", 1, recTime.Add(-365 * 24 * time.Hour)},
		{"skewed.txt", 1, recTime.Add(MaxClockSkew)}, // exactly the allowed skew
		{"slightly-ahead.txt", 1, recTime.Add(MaxClockSkew - time.Nanosecond)},
	} {
		r := mustRecord(t, tc.name, ComputeCID([]byte(tc.name)), tc.size, key, tc.at)
		if err := v.Validate(NameKey(tc.name), mustMarshal(t, r)); err != nil {
			t.Errorf("Validate(%s): %v", tc.name, err)
		}
	}
	// The default clock is time.Now.
	r := mustRecord(t, "now.txt", ComputeCID(nil), 0, key, time.Now())
	if err := (NameValidator{}).Validate(NameKey("now.txt"), mustMarshal(t, r)); err != nil {
		t.Errorf("Validate with the default clock: %v", err)
	}
}

// resign re-signs r's current fields with key (for records that are
// correctly signed but otherwise invalid).
func resign(t *testing.T, r *NameRecord, key crypto.PrivKey) *NameRecord {
	t.Helper()
	sig, err := key.Sign(r.signedBytes())
	if err != nil {
		t.Fatal(err)
	}
	r.Sig = sig
	return r
}

func TestNameValidatorRejects(t *testing.T) {
	key, other := testKey(t), testKey(t)
	otherID, err := peer.IDFromPrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := ComputeCID([]byte("contents"))
	good := func() *NameRecord { return mustRecord(t, "notes.txt", c, 8, key, recTime) }
	goodBytes := mustMarshal(t, good())

	// Sanity: the unmodified record passes.
	if err := validatorAt(recTime).Validate(NameKey("notes.txt"), goodBytes); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}

	type tc struct {
		name    string
		key     string
		value   []byte
		errText string // a substring the error must contain, if set
	}
	tamper := func(name string, f func(r *NameRecord)) tc {
		r := good()
		f(r)
		return tc{name, NameKey(r.Name), mustMarshal(t, r), "bad signature"}
	}
	signed := func(name string, f func(r *NameRecord), errText string) tc {
		r := good()
		f(r)
		return tc{name, NameKey(r.Name), mustMarshal(t, resign(t, r, key)), errText}
	}
	padded := append(bytes.Clone(goodBytes), bytes.Repeat([]byte(" "), MaxNameRecordSize+1-len(goodBytes))...)

	cases := []tc{
		{"wrong key", NameKey("other.txt"), goodBytes, "stored under key"},
		{"key without namespace", "notes.txt", goodBytes, "stored under key"},
		{"key in another namespace", "/pk/notes.txt", goodBytes, "stored under key"},
		tamper("tampered name", func(r *NameRecord) { r.Name = "other.txt" }),
		tamper("tampered cid", func(r *NameRecord) { r.CID = ComputeCID([]byte("evil")) }),
		tamper("tampered size", func(r *NameRecord) { r.Size++ }),
		tamper("tampered time", func(r *NameRecord) { r.Time = r.Time.Add(-time.Nanosecond) }),
		tamper("tampered publisher", func(r *NameRecord) { r.Publisher = otherID }),
		tamper("tampered sig", func(r *NameRecord) { r.Sig[0] ^= 1 }),
		tamper("short sig", func(r *NameRecord) { r.Sig = r.Sig[:len(r.Sig)-1] }),
		tamper("no sig", func(r *NameRecord) { r.Sig = nil }),
		{"signed by another key, claims the first", NameKey("notes.txt"), func() []byte {
			r := mustRecord(t, "notes.txt", c, 8, other, recTime)
			r.Publisher = keyID
			return mustMarshal(t, r)
		}(), "bad signature"},
		signed("negative size", func(r *NameRecord) { r.Size = -1 }, "negative size"),
		signed("CIDv0", func(r *NameRecord) { r.CID = cid.NewCidV0(c.Hash()) }, ""),
		signed("dag-pb CID", func(r *NameRecord) { r.CID = cid.NewCidV1(cid.DagProtobuf, c.Hash()) }, ""),
		signed("bad name", func(r *NameRecord) { r.Name = "../etc/passwd" }, "invalid name"),
		signed("future", func(r *NameRecord) { r.Time = recTime.Add(MaxClockSkew + time.Nanosecond) }, "future"),
		signed("far future", func(r *NameRecord) { r.Time = recTime.Add(1000 * time.Hour) }, "future"),
		{"too large", NameKey("notes.txt"), padded, "limit"},
		{"garbage", NameKey("notes.txt"), []byte("garbage"), ""},
		{"empty", NameKey("notes.txt"), nil, ""},
		{"null", NameKey("notes.txt"), []byte("null"), ""},
		{"empty object", NameKey("notes.txt"), []byte("{}"), ""},
		{"truncated", NameKey("notes.txt"), goodBytes[:len(goodBytes)-1], ""},
		{"publisher not a peer ID", NameKey("notes.txt"), bytes.Replace(goodBytes, []byte(keyID.String()), []byte("nobody"), 1), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validatorAt(recTime).Validate(tc.key, tc.value)
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Validate: err = %v, want ErrBadRecord", err)
			}
			if tc.errText != "" && !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Validate: err = %v, want it to mention %q", err, tc.errText)
			}
		})
	}
}

func TestUnmarshalNameRecordSizeLimit(t *testing.T) {
	b := mustMarshal(t, mustRecord(t, "notes.txt", ComputeCID(nil), 0, testKey(t), recTime))
	// JSON allows trailing white space: pad the record to exactly the limit.
	atLimit := append(bytes.Clone(b), bytes.Repeat([]byte(" "), MaxNameRecordSize-len(b))...)
	if _, err := UnmarshalNameRecord(atLimit); err != nil {
		t.Errorf("record of exactly MaxNameRecordSize bytes: %v", err)
	}
	if _, err := UnmarshalNameRecord(append(atLimit, ' ')); !errors.Is(err, ErrBadRecord) {
		t.Errorf("record of MaxNameRecordSize+1 bytes: err = %v, want ErrBadRecord", err)
	}
}

func TestNameValidatorSelect(t *testing.T) {
	key, other := testKey(t), testKey(t)
	const name = "notes.txt"
	k := NameKey(name)
	v := validatorAt(recTime)
	rec := func(content string, at time.Time, signer crypto.PrivKey) []byte {
		return mustMarshal(t, mustRecord(t, name, ComputeCID([]byte(content)), int64(len(content)), signer, at))
	}
	oldest := rec("v1", recTime.Add(-3*time.Hour), key)
	middle := rec("v2", recTime.Add(-2*time.Hour), other)
	newest := rec("v3", recTime.Add(-time.Hour), key)
	future := rec("v4", recTime.Add(time.Hour), key) // newest but invalid
	wrongName := mustMarshal(t, mustRecord(t, "other.txt", ComputeCID([]byte("v5")), 2, key, recTime))
	forged := func() []byte {
		r := mustRecord(t, name, ComputeCID([]byte("v6")), 2, key, recTime)
		r.Size = 3
		return mustMarshal(t, r)
	}()

	for _, tc := range []struct {
		name   string
		values [][]byte
		want   int
	}{
		{"one", [][]byte{oldest}, 0},
		{"ascending", [][]byte{oldest, middle, newest}, 2},
		{"descending", [][]byte{newest, middle, oldest}, 0},
		{"mixed", [][]byte{middle, newest, oldest}, 1},
		{"invalid ones ignored", [][]byte{[]byte("junk"), future, oldest, wrongName, forged, nil}, 2},
		{"invalid newer ones ignored", [][]byte{future, middle, forged, wrongName}, 1},
		{"duplicates", [][]byte{newest, newest}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Select(k, tc.values)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got != tc.want {
				t.Errorf("Select = %d, want %d", got, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		values [][]byte
	}{
		{"nil", nil},
		{"empty", [][]byte{}},
		{"all invalid", [][]byte{[]byte("junk"), future, wrongName, forged}},
	} {
		t.Run("error/"+tc.name, func(t *testing.T) {
			if i, err := v.Select(k, tc.values); !errors.Is(err, ErrBadRecord) {
				t.Errorf("Select = %d, %v; want ErrBadRecord", i, err)
			}
		})
	}
}

func TestNameValidatorSelectTie(t *testing.T) {
	key, other := testKey(t), testKey(t)
	const name = "tie.txt"
	v := validatorAt(recTime)
	// Same time, different CIDs (and publishers): the winner must not
	// depend on the order the DHT hands the records over.
	var values [][]byte
	for i, signer := range []crypto.PrivKey{key, other, key, other, key} {
		r := mustRecord(t, name, ComputeCID([]byte(fmt.Sprint("content ", i))), int64(i), signer, recTime)
		values = append(values, mustMarshal(t, r))
	}
	var winner []byte
	for perm := range permutations(len(values)) {
		in := make([][]byte, len(values))
		for i, j := range perm {
			in[i] = values[j]
		}
		i, err := v.Select(NameKey(name), in)
		if err != nil {
			t.Fatalf("Select: %v", err)
		}
		if winner == nil {
			winner = in[i]
		} else if !bytes.Equal(in[i], winner) {
			t.Fatalf("Select picked a different record for input order %v", perm)
		}
	}
	// The documented tie break: the greatest CID wins.
	w, err := UnmarshalNameRecord(winner)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range values {
		r, _ := UnmarshalNameRecord(b)
		if bytes.Compare(r.CID.Bytes(), w.CID.Bytes()) > 0 {
			t.Errorf("winner %s, but %s has a greater CID", w.CID, r.CID)
		}
	}
}

// permutations yields every permutation of 0..n-1.
func permutations(n int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		var gen func(k int) bool
		gen = func(k int) bool {
			if k == n {
				return yield(p)
			}
			for i := k; i < n; i++ {
				p[k], p[i] = p[i], p[k]
				if !gen(k + 1) {
					return false
				}
				p[k], p[i] = p[i], p[k]
			}
			return true
		}
		gen(0)
	}
}

func TestNameRecordTimeOutOfRange(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	for _, at := range []time.Time{time.Date(1440, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		r, err := NewNameRecord("a.txt", ComputeCID([]byte("a")), 1, key, at)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Marshal()
		if _, err := UnmarshalNameRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("record dated %s: want ErrBadRecord, got %v", at, err)
		}
	}
}

func TestSelectTieSamePublisherTimeCID(t *testing.T) {
	k1, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	k2, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	now := time.Now()
	c := ComputeCID([]byte("same"))
	a, _ := NewNameRecord("t.txt", c, 4, k1, now)
	b, _ := NewNameRecord("t.txt", c, 4, k2, now)
	ab, _ := a.Marshal()
	bb, _ := b.Marshal()
	v := NameValidator{}
	i, err1 := v.Select(NameKey("t.txt"), [][]byte{ab, bb})
	j, err2 := v.Select(NameKey("t.txt"), [][]byte{bb, ab})
	if err1 != nil || err2 != nil || i != 1-j {
		t.Fatalf("Select depends on input order: %d vs %d (%v %v)", i, j, err1, err2)
	}
}

// A share stamps its name record with the node's clock, the one the node
// checks against its peers', not with the process's own time.
func TestShareStampsRecordWithNodeClock(t *testing.T) {
	at := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)
	nodes := startRepNodesCfg(t, 1, Config{Replicas: 1, Now: func() time.Time { return at }}, nil)
	if _, err := nodes[0].s.Share(context.Background(), strings.NewReader("stamped"), "stamped.txt"); err != nil {
		t.Fatal(err)
	}
	names := nodes[0].s.Store().Names()
	if len(names) != 1 || !names[0].Time.Equal(at) {
		t.Fatalf("records %v, want one stamped %s", names, at)
	}
}
