package catalog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

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
		{"a/b", true},
		{"photos/2024/beach.jpg", true},
		{strings.Repeat("x", 127) + "/" + strings.Repeat("y", 127), true},
		{strings.Repeat("x", 128) + "/" + strings.Repeat("y", 127), false},
		{"a//b", false},
		{"a/./b", false},
		{"a/../b", false},
		{"../etc/passwd", false},
		{"a/\u202Eb", false},
		{"a/" + strings.Repeat("x", MaxNameLen+1), false},
		{strings.Repeat("d/", MaxNameLen/2+1) + "f", false},
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
		case strings.ContainsAny(name, "\\\x00"):
			t.Fatalf("accepted %q, which holds a backslash or NUL", name)
		}
		for _, part := range strings.Split(name, "/") {
			if part == "" || part == "." || part == ".." || len(part) > MaxNameLen {
				t.Fatalf("accepted %q, which holds the component %q", name, part)
			}
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
