// Package admit owns who may join a p2pshare network: the network
// authority's key, the admission tickets it signs for peer IDs, the
// revocations it signs, a plain allowlist, and the Gate that enforces them
// on a libp2p host (a connection gater plus an admission handshake that
// every peer must pass before any stream of the DHT, GossipSub or the
// transfer protocols reaches it or leaves for it).
package admit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Files of an authority directory and of a repo.
const (
	AuthorityKeyFile = "authority.key" // the authority's private key (0600), in the CA directory
	AuthorityPubFile = "authority.pub" // its public key: in the CA directory and in each repo
	TicketFile       = "ticket.json"   // a node's own ticket, in its repo
	AllowlistFile    = "allowlist"     // peer IDs, one per line, in a repo
)

// MaxTicketSize caps an encoded ticket or revocation.
const MaxTicketSize = 4096

// ErrBadTicket: a ticket or revocation that is malformed, forged, expired
// or for another peer.
var ErrBadTicket = errors.New("invalid admission ticket")

// Ticket admits one peer ID to the network until Expires, signed by the
// network authority.
type Ticket struct {
	Peer    peer.ID   `json:"peer"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Sig     []byte    `json:"sig"`
}

func (t *Ticket) signedBytes() []byte {
	var b bytes.Buffer
	b.WriteString("p2pshare-ticket/1\n")
	b.WriteString(string(t.Peer))
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(t.Issued.UnixNano(), 10))
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(t.Expires.UnixNano(), 10))
	return b.Bytes()
}

// Revocation withdraws a peer's admission for good, signed by the
// authority.
type Revocation struct {
	Peer peer.ID   `json:"peer"`
	Time time.Time `json:"time"`
	Sig  []byte    `json:"sig"`
}

func (r *Revocation) signedBytes() []byte {
	return []byte("p2pshare-revocation/1\n" + string(r.Peer) + "\n" + strconv.FormatInt(r.Time.UnixNano(), 10))
}

// Authority is a network authority's key pair.
type Authority struct {
	Key crypto.PrivKey
}

// NewAuthority makes a new Ed25519 authority key.
func NewAuthority() (*Authority, error) {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("authority key: %w", err)
	}
	return &Authority{Key: k}, nil
}

// Admit signs a ticket for p valid for d from now.
func (a *Authority) Admit(p peer.ID, d time.Duration, now time.Time) (*Ticket, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("admit: peer ID: %w", err)
	}
	if d <= 0 {
		return nil, fmt.Errorf("admit: validity %s must be positive", d)
	}
	t := &Ticket{Peer: p, Issued: now.UTC().Round(0), Expires: now.Add(d).UTC().Round(0)}
	sig, err := a.Key.Sign(t.signedBytes())
	if err != nil {
		return nil, fmt.Errorf("admit: sign: %w", err)
	}
	t.Sig = sig
	return t, nil
}

// Revoke signs a revocation of p.
func (a *Authority) Revoke(p peer.ID, now time.Time) (*Revocation, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("revoke: peer ID: %w", err)
	}
	r := &Revocation{Peer: p, Time: now.UTC().Round(0)}
	sig, err := a.Key.Sign(r.signedBytes())
	if err != nil {
		return nil, fmt.Errorf("revoke: sign: %w", err)
	}
	r.Sig = sig
	return r, nil
}

// Public returns the authority's public key.
func (a *Authority) Public() crypto.PubKey { return a.Key.GetPublic() }

// VerifyTicket checks that t is signed by pub, names want (when set) and
// is valid at now.
func VerifyTicket(pub crypto.PubKey, t *Ticket, want peer.ID, now time.Time) error {
	if err := t.Peer.Validate(); err != nil {
		return fmt.Errorf("%w: peer: %v", ErrBadTicket, err)
	}
	if want != "" && t.Peer != want {
		return fmt.Errorf("%w: issued to %s, presented by %s", ErrBadTicket, t.Peer, want)
	}
	ok, err := pub.Verify(t.signedBytes(), t.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: not signed by this network's authority", ErrBadTicket)
	}
	if now.After(t.Expires) {
		return fmt.Errorf("%w: expired at %s", ErrBadTicket, t.Expires.Format(time.RFC3339))
	}
	if t.Issued.After(now.Add(5 * time.Minute)) {
		return fmt.Errorf("%w: issued in the future (%s)", ErrBadTicket, t.Issued.Format(time.RFC3339))
	}
	return nil
}

// VerifyRevocation checks that r is signed by pub.
func VerifyRevocation(pub crypto.PubKey, r *Revocation) error {
	if err := r.Peer.Validate(); err != nil {
		return fmt.Errorf("%w: revocation peer: %v", ErrBadTicket, err)
	}
	ok, err := pub.Verify(r.signedBytes(), r.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: revocation not signed by this network's authority", ErrBadTicket)
	}
	return nil
}

// DecodeTicket parses an encoded ticket (shape only: see VerifyTicket).
func DecodeTicket(b []byte) (*Ticket, error) {
	var t Ticket
	if err := decodeJSON(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DecodeRevocation parses an encoded revocation (shape only).
func DecodeRevocation(b []byte) (*Revocation, error) {
	var r Revocation
	if err := decodeJSON(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeJSON(b []byte, v any) error {
	if len(b) > MaxTicketSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadTicket, len(b), MaxTicketSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTicket, err)
	}
	return nil
}

// Encode renders a ticket or revocation as one line of JSON.
func Encode(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

// pubFile is the format of authority.pub.
type pubFile struct {
	Authority string `json:"authority"` // base64 of the marshalled public key
}

// SaveAuthority writes a new authority into dir: the private key (0600)
// and the public key. It refuses to overwrite an existing key.
func SaveAuthority(dir string, a *Authority) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca dir %s: %w", dir, err)
	}
	kp := filepath.Join(dir, AuthorityKeyFile)
	if _, err := os.Stat(kp); err == nil {
		return fmt.Errorf("%s already exists (an authority is created once; remove it to start a new network)", kp)
	}
	kb, err := crypto.MarshalPrivateKey(a.Key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kp, []byte(base64.StdEncoding.EncodeToString(kb)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", kp, err)
	}
	return WritePublic(filepath.Join(dir, AuthorityPubFile), a.Public())
}

// WritePublic writes an authority public key file.
func WritePublic(path string, pub crypto.PubKey) error {
	pb, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(pubFile{Authority: base64.StdEncoding.EncodeToString(pb)})
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadAuthority reads the authority of a CA directory.
func LoadAuthority(dir string) (*Authority, error) {
	kp := filepath.Join(dir, AuthorityKeyFile)
	b, err := os.ReadFile(kp)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no authority in %s (create one with 'p2pshare ca init')", dir)
		}
		return nil, fmt.Errorf("read %s: %w", kp, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %w", kp, err)
	}
	k, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kp, err)
	}
	return &Authority{Key: k}, nil
}

// LoadPublic reads an authority public key file.
func LoadPublic(path string) (crypto.PubKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read authority key: %w", err)
	}
	var pf pubFile
	if err := json.Unmarshal(b, &pf); err != nil || pf.Authority == "" {
		return nil, fmt.Errorf("%s: not an authority public key file (want {\"authority\": ...} as written by 'p2pshare ca init')", path)
	}
	raw, err := base64.StdEncoding.DecodeString(pf.Authority)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, err := crypto.UnmarshalPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// LoadTicket reads a ticket file.
func LoadTicket(path string) (*Ticket, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ticket: %w", err)
	}
	t, err := DecodeTicket(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// LoadAllowlist reads peer IDs, one per line ('#' starts a comment).
func LoadAllowlist(path string) ([]peer.ID, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read allowlist: %w", err)
	}
	var out []peer.ID
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := peer.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not a peer ID: %v", path, i+1, line, err)
		}
		out = append(out, p)
	}
	return out, nil
}
