package catalog

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest name in bytes (a file name on most systems),
// a name in a folder ("DIR/sub/file") included.
const MaxNameLen = 255

// ErrBadName: a name that cannot be used (empty, '.', '..', a path
// separator, an invisible or control character, over MaxNameLen bytes).
var ErrBadName = errors.New("invalid name")

// ValidateName checks that name can name a file everywhere and reads as
// what it is. A name is one file name, or the names of a file in a folder
// joined by '/' ("photos/2024/beach.jpg", at most MaxNameLen bytes), each
// component checked alike (see validateComponent); an empty component (a
// leading, trailing or double '/') is refused.
func ValidateName(name string) error {
	if !strings.Contains(name, "/") {
		return validateComponent(name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadName, len(name), MaxNameLen)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return fmt.Errorf("%w %q: an empty path component (a leading, trailing or double '/')", ErrBadName, name)
		}
		if err := validateComponent(part); err != nil {
			return fmt.Errorf("%w (in %q)", err, name)
		}
	}
	return nil
}

// validateComponent checks one file name: non-empty, at most MaxNameLen
// bytes of valid UTF-8, not "." or "..", free of path separators, and free
// of runes that are invisible or display as something else (see badRune).
// The error names the first offending rune as U+XXXX.
func validateComponent(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadName, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w %q: not a file name", ErrBadName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadName, name)
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("%w %q: holds a path separator", ErrBadName, name)
	}
	prev := rune(-1)
	for _, r := range name {
		if why := badRune(r, prev); why != "" {
			return fmt.Errorf("%w %q: holds %U, %s: remove it from the name", ErrBadName, name, r, why)
		}
		prev = r
	}
	return nil
}

// badRune says why r (after prev, -1 at the start) may not be in a name, or
// returns "". Refused are the runes a reader cannot see or tell apart from
// others: a name holding them can display as another name (the
// Trojan-Source trick: "invoice\u202Efdp.exe" shows as "invoiceexe.pdf").
func badRune(r, prev rune) string {
	switch {
	case r == 0 || unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character (a bidirectional override, a zero-width character...) that can make a name display as another"
	case r == '\u2028' || r == '\u2029':
		return "a line or paragraph separator"
	case r == utf8.RuneError:
		return "the replacement character, which stands for bytes that were not text"
	case unicode.Is(unicode.Zs, r) && r != ' ':
		return "a space other than the ordinary one (U+0020), which looks like it"
	case unicode.Is(unicode.Co, r):
		return "a private-use character, which shows differently on every system"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return "an invisible character"
	case unicode.Is(unicode.Variation_Selector, r) && !(unicode.Is(unicode.So, prev) || unicode.Is(unicode.Han, prev)):
		return "a variation selector that does not follow a symbol or an ideograph (it is invisible there)"
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return "a noncharacter"
	case !assigned(r):
		return "a code point not assigned in Unicode " + unicode.Version
	}
	return ""
}

// assigned reports whether r is a character of the Unicode version Go knows.
func assigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}
