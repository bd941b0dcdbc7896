package share

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Limits on names and name records.
const (
	// MaxNameLen is the longest name in bytes (a file name on most systems).
	MaxNameLen = 255
	// MaxNameRecordSize caps an encoded name record; anything larger is
	// rejected before it is parsed.
	MaxNameRecordSize = 4096
	// NameNamespace is the DHT namespace of name records: keys are
	// "/p2pshare-name/<name>".
	NameNamespace = "p2pshare-name"
	minRecordYear = 2000
	maxRecordYear = 2200
	// MaxClockSkew is how far in the future a record's time may be: the
	// KV store's default, the one limit of the network's clocks (a node
	// whose clock is further off the network's refuses its writes).
	MaxClockSkew = 30 * time.Second
)

// ValidateName checks that name can name a file everywhere and reads as
// what it is: non-empty, at most MaxNameLen bytes of valid UTF-8, not "."
// or "..", free of path separators, and free of runes that are invisible
// or display as something else (see badRune). The error names the first
// offending rune as U+XXXX.
func ValidateName(name string) error {
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

// NameKey is the DHT key of name's record.
func NameKey(name string) string { return "/" + NameNamespace + "/" + name }

// NameRecord maps a name to the CID of a file, signed by its publisher. The
// latest record (by Time, then by CID) wins.
type NameRecord struct {
	Name      string    `json:"name"`
	CID       cid.Cid   `json:"cid"`
	Size      int64     `json:"size"`
	Publisher peer.ID   `json:"publisher"`
	Time      time.Time `json:"time"`
	Sig       []byte    `json:"sig"`
}

// NewNameRecord makes and signs a record with key, whose peer ID becomes the
// publisher.
func NewNameRecord(name string, c cid.Cid, size int64, key crypto.PrivKey, now time.Time) (*NameRecord, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("name record: %w", err)
	}
	r := &NameRecord{Name: name, CID: c, Size: size, Publisher: id, Time: now.UTC().Round(0)}
	sig, err := key.Sign(r.signedBytes())
	if err != nil {
		return nil, fmt.Errorf("name record: sign: %w", err)
	}
	r.Sig = sig
	return r, nil
}

// signedBytes is the canonical form the signature covers.
func (r *NameRecord) signedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("p2pshare-name-record/1\n")
	b.WriteString(strconv.Quote(r.Name))
	b.WriteByte('\n')
	b.Write(r.CID.Bytes())
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(r.Size, 10))
	b.WriteByte('\n')
	b.WriteString(string(r.Publisher))
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(r.Time.UnixNano(), 10))
	return b.Bytes()
}

// Marshal encodes the record for the DHT.
func (r *NameRecord) Marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("name record: encode: %w", err)
	}
	return b, nil
}

// UnmarshalNameRecord decodes and fully checks a record: its fields, and that
// Sig is the publisher's signature. It does not check the time (see Validate).
func UnmarshalNameRecord(b []byte) (*NameRecord, error) {
	if len(b) > MaxNameRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadRecord, len(b), MaxNameRecordSize)
	}
	var r NameRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *NameRecord) check() error {
	if err := ValidateName(r.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := checkCID(r.CID); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if r.Size < 0 {
		return fmt.Errorf("%w: negative size", ErrBadRecord)
	}
	// The signature covers UnixNano, which is unique only between 1678
	// and 2262: refuse times outside a sane window.
	if y := r.Time.Year(); y < minRecordYear || y > maxRecordYear {
		return fmt.Errorf("%w: time %s out of range", ErrBadRecord, r.Time.Format(time.RFC3339))
	}
	pub, err := r.Publisher.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: publisher %q: %v", ErrBadRecord, r.Publisher, err)
	}
	ok, err := pub.Verify(r.signedBytes(), r.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: bad signature", ErrBadRecord)
	}
	return nil
}

// newer reports whether a should win over b.
func (r *NameRecord) newer(o *NameRecord) bool {
	if !r.Time.Equal(o.Time) {
		return r.Time.After(o.Time)
	}
	if c := bytes.Compare(r.CID.Bytes(), o.CID.Bytes()); c != 0 {
		return c > 0
	}
	// Same time and CID: any total order will do, as long as every node
	// picks the same record whatever order the values arrive in.
	if r.Publisher != o.Publisher {
		return r.Publisher > o.Publisher
	}
	return bytes.Compare(r.signedBytes(), o.signedBytes()) > 0 ||
		(bytes.Equal(r.signedBytes(), o.signedBytes()) && bytes.Compare(r.Sig, o.Sig) > 0)
}

// NameValidator is the DHT validator of the name namespace
// (record.Validator): it accepts only well-formed records signed by their
// publisher, under the key of their own name, not from the future, and
// selects the newest.
type NameValidator struct {
	// Now returns the current time (node gives the network's time as it
	// measures it); nil means time.Now.
	Now func() time.Time
}

// Validate implements record.Validator.
func (v NameValidator) Validate(key string, value []byte) error {
	r, err := UnmarshalNameRecord(value)
	if err != nil {
		return err
	}
	if key != NameKey(r.Name) {
		return fmt.Errorf("%w: record for %q stored under key %q", ErrBadRecord, r.Name, key)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if r.Time.After(now().Add(MaxClockSkew)) {
		return fmt.Errorf("%w: time %s is in the future", ErrBadRecord, r.Time.Format(time.RFC3339))
	}
	return nil
}

// Select implements record.Validator: the index of the newest valid record.
func (v NameValidator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := (*NameRecord)(nil), -1
	for i, b := range values {
		if v.Validate(key, b) != nil {
			continue
		}
		r, _ := UnmarshalNameRecord(b)
		if best == nil || r.newer(best) {
			best, bestIdx = r, i
		}
	}
	if bestIdx < 0 {
		return 0, fmt.Errorf("%w: no valid record among %d", ErrBadRecord, len(values))
	}
	return bestIdx, nil
}
