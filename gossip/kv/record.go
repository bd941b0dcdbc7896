package kv

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// Namespaces of the store.
const (
	// NSUser holds the user's keys (p2pshare kv ...).
	NSUser = "kv"
	// NSName holds the catalog's names: key = the name, value = NameValue.
	NSName = "name"
	// NSHold holds who holds what: key = "CID/PEER", written by PEER.
	NSHold = "hold"
	// NSRevoke holds the network authority's revocations: key = the
	// revoked peer ID, value = the revocation signed by the authority
	// (checked by Config.Check).
	NSRevoke = "revoke"
)

// Limits of records.
const (
	// MaxKeyLen is the longest key in bytes.
	MaxKeyLen = 256
	// MaxValueSizeLimit is the largest MaxValueSize a node may configure;
	// records larger than it are rejected before they are parsed.
	MaxValueSizeLimit = 1 << 20
	// MaxRecordSize caps an encoded record (base64 of the largest value
	// plus the envelope).
	MaxRecordSize = MaxValueSizeLimit*4/3 + 4096
	// DHTNamespace is the DHT namespace of the records that have a copy
	// there (see inDHT): keys are "/p2pshare-kv/NS/KEY".
	DHTNamespace = "p2pshare-kv"
	minWall      = 946684800 * int64(time.Second)  // 2000-01-01
	maxWall      = 7258118400 * int64(time.Second) // 2200-01-01
)

// Errors of the store; the messages wrapping them say what was wrong.
var (
	ErrBadKey    = errors.New("bad key")
	ErrBadValue  = errors.New("bad value")
	ErrBadTTL    = errors.New("bad TTL")
	ErrBadRecord = errors.New("invalid record")
	ErrNotFound  = errors.New("not found")
	ErrExpired   = errors.New("record expired")
	// ErrFuture: a record written further in the future than the allowed
	// clock skew (it also wraps ErrBadRecord).
	ErrFuture = errors.New("from the future")
)

// ValidateKey checks a key: 1..MaxKeyLen bytes of valid UTF-8 without
// control characters.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrBadKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadKey, key)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w %q: holds a control character", ErrBadKey, key)
		}
	}
	return nil
}

func validNS(ns string) bool { return ns == NSUser || ns == NSName || ns == NSHold || ns == NSRevoke }

// inDHT reports whether the records of namespace ns are put in the DHT as
// well: the user's keys, and the catalog's names, so that a node that has
// not heard of a key or a name by gossip still finds it.
func inDHT(ns string) bool { return ns == NSUser || ns == NSName }

// Record is one signed write: a value, or a tombstone (Deleted), for Key in
// namespace NS, at hybrid-logical time Time, by Writer. Of two records for
// the same key the later one wins (see Wins).
type Record struct {
	NS      string    `json:"ns"`
	Key     string    `json:"key"`
	Value   []byte    `json:"value,omitempty"`
	Deleted bool      `json:"deleted,omitempty"`
	Time    Timestamp `json:"time"`
	// Expires is when the record is gone everywhere, in Unix nanoseconds;
	// 0 means never.
	Expires int64   `json:"expires,omitempty"`
	Writer  peer.ID `json:"writer"`
	Sig     []byte  `json:"sig"`
}

// ID is the record's local identity: namespace and key.
func (r *Record) ID() string { return r.NS + "\x00" + r.Key }

// ExpiresAt returns the expiry time, zero if none.
func (r *Record) ExpiresAt() time.Time {
	if r.Expires == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.Expires).UTC()
}

// Expired reports whether the record has expired at now.
func (r *Record) Expired(now time.Time) bool { return r.Expires != 0 && now.UnixNano() >= r.Expires }

// Wins reports whether r wins over o: a later timestamp wins; equal
// timestamps are broken by the writer's peer ID, then by the signed bytes,
// so every node picks the same winner.
func (r *Record) Wins(o *Record) bool {
	if c := r.Time.Compare(o.Time); c != 0 {
		return c > 0
	}
	if r.Writer != o.Writer {
		return r.Writer > o.Writer
	}
	return bytes.Compare(r.signedBytes(), o.signedBytes()) > 0
}

// signedBytes is the canonical form the signature covers.
func (r *Record) signedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("p2pshare-kv-record/1\x00")
	writeBytes := func(p []byte) {
		var n [binary.MaxVarintLen64]byte
		b.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		b.Write(p)
	}
	writeBytes([]byte(r.NS))
	writeBytes([]byte(r.Key))
	writeBytes(r.Value)
	del := byte(0)
	if r.Deleted {
		del = 1
	}
	b.WriteByte(del)
	_ = binary.Write(&b, binary.BigEndian, r.Time.Wall)
	_ = binary.Write(&b, binary.BigEndian, r.Time.Logical)
	_ = binary.Write(&b, binary.BigEndian, r.Expires)
	writeBytes([]byte(r.Writer))
	return b.Bytes()
}

// digest is a short fingerprint of the record's version, for anti-entropy.
func (r *Record) digest() [32]byte { return sha256.Sum256(r.signedBytes()) }

// Sign sets Writer to key's peer ID and signs the record.
func (r *Record) Sign(key crypto.PrivKey) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("sign record: %w", err)
	}
	r.Writer = id
	sig, err := key.Sign(r.signedBytes())
	if err != nil {
		return fmt.Errorf("sign record: %w", err)
	}
	r.Sig = sig
	return nil
}

// Marshal encodes the record.
func (r *Record) Marshal() ([]byte, error) { return json.Marshal(r) }

// Unmarshal decodes a record and checks its shape and signature (not its
// time: see Check).
func Unmarshal(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadRecord, len(b), MaxRecordSize)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := r.verify(); err != nil {
		return nil, err
	}
	return &r, nil
}

// checkShape checks everything but the signature that does not depend on
// the clock: namespace, key, value shape and writer.
func (r *Record) checkShape() error {
	if !validNS(r.NS) {
		return fmt.Errorf("%w: unknown namespace %q", ErrBadRecord, r.NS)
	}
	if err := ValidateKey(r.Key); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if len(r.Value) > MaxValueSizeLimit {
		return fmt.Errorf("%w: value of %d bytes", ErrBadRecord, len(r.Value))
	}
	if r.Deleted && (len(r.Value) > 0 || r.Expires != 0) {
		return fmt.Errorf("%w: a tombstone with a value or an expiry", ErrBadRecord)
	}
	if r.Time.Wall < minWall || r.Time.Wall > maxWall {
		return fmt.Errorf("%w: time %d outside 2000..2200", ErrBadRecord, r.Time.Wall)
	}
	if r.Expires != 0 && r.Expires <= r.Time.Wall {
		return fmt.Errorf("%w: expires before it was written", ErrBadRecord)
	}
	if err := r.Writer.Validate(); err != nil {
		return fmt.Errorf("%w: writer: %v", ErrBadRecord, err)
	}
	return checkNamespace(r)
}

// verify checks the record's shape (see checkShape) and its signature.
func (r *Record) verify() error {
	if err := r.checkShape(); err != nil {
		return err
	}
	pub, err := r.Writer.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: writer %s: no public key in the peer ID: %v", ErrBadRecord, r.Writer, err)
	}
	ok, err := pub.Verify(r.signedBytes(), r.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: bad signature by %s", ErrBadRecord, r.Writer)
	}
	return nil
}

// Check checks the record's time against now: not from further in the
// future than skew, not expired.
func (r *Record) Check(now time.Time, skew time.Duration) error {
	if r.Time.Wall > now.Add(skew).UnixNano() {
		return fmt.Errorf("%w: %w: written %s ahead (allowed clock skew %s)", ErrBadRecord, ErrFuture,
			time.Duration(r.Time.Wall-now.UnixNano()).Round(time.Millisecond), skew)
	}
	if r.Expired(now) {
		return ErrExpired
	}
	return nil
}

// checkNamespace applies the rules of the catalog's namespaces.
func checkNamespace(r *Record) error {
	switch r.NS {
	case NSName:
		if err := catalog.ValidateName(r.Key); err != nil {
			return fmt.Errorf("%w: catalog name: %w", ErrBadRecord, err)
		}
		if !r.Deleted {
			if _, err := decodeNameValue(r.Value); err != nil {
				return err
			}
		}
	case NSHold:
		c, p, ok := strings.Cut(r.Key, "/")
		if !ok || c == "" || p != r.Writer.String() {
			return fmt.Errorf("%w: holding %q not written by the holder %s", ErrBadRecord, r.Key, r.Writer)
		}
		if !r.Deleted {
			if _, err := decodeHoldValue(r.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// DHTKey is the DHT key of a record.
func DHTKey(ns, key string) string { return "/" + DHTNamespace + "/" + ns + "/" + key }

// Validator is the DHT's record validator of DHTNamespace: the record must
// be well formed, correctly signed, stored under its own key, not expired
// and not from the future; of several, the winner by Wins is selected.
type Validator struct {
	// Skew is the allowed clock skew; DefaultConfig's when zero.
	Skew time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (v Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate implements record.Validator.
func (v Validator) Validate(key string, value []byte) error {
	r, err := Unmarshal(value)
	if err != nil {
		return err
	}
	if DHTKey(r.NS, r.Key) != key {
		return fmt.Errorf("%w: stored under %q, not its key", ErrBadRecord, key)
	}
	skew := v.Skew
	if skew == 0 {
		skew = DefaultConfig().MaxClockSkew
	}
	return r.Check(v.now(), skew)
}

// Select implements record.Validator: the index of the winning record.
func (v Validator) Select(_ string, values [][]byte) (int, error) {
	best, bestIdx := (*Record)(nil), -1
	for i, b := range values {
		r, err := Unmarshal(b)
		if err != nil {
			continue
		}
		if best == nil || r.Wins(best) {
			best, bestIdx = r, i
		}
	}
	if bestIdx < 0 {
		return 0, fmt.Errorf("%w: no valid record to select", ErrBadRecord)
	}
	return bestIdx, nil
}
