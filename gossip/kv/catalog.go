package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// NameValue is the value of a catalog name (namespace NSName): the CID and
// size of the file the name stands for. The publisher is the record's
// writer, the time its timestamp.
type NameValue struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

func decodeNameValue(b []byte) (NameValue, error) {
	var v NameValue
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: catalog name value: %v", ErrBadRecord, err)
	}
	if _, err := cid.Decode(v.CID); err != nil {
		return v, fmt.Errorf("%w: catalog name value: cid %q: %v", ErrBadRecord, v.CID, err)
	}
	if v.Size < 0 {
		return v, fmt.Errorf("%w: catalog name value: negative size", ErrBadRecord)
	}
	return v, nil
}

// HoldValue is the value of a holding (namespace NSHold): the holder keeps
// a copy of the CID, possibly in custody for another peer that left.
type HoldValue struct {
	CustodyFor peer.ID `json:"custody_for,omitempty"`
}

func decodeHoldValue(b []byte) (HoldValue, error) {
	var v HoldValue
	if len(b) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: holding value: %v", ErrBadRecord, err)
	}
	if v.CustodyFor != "" {
		if err := v.CustodyFor.Validate(); err != nil {
			return v, fmt.Errorf("%w: holding value: custody_for: %v", ErrBadRecord, err)
		}
	}
	return v, nil
}

// Entry is one name of the catalog.
type Entry struct {
	Name      string
	CID       string
	Size      int64
	Publisher peer.ID
	Time      time.Time
	Holders   []catalog.Holder // sorted by peer ID
}

// PublishName records in the catalog that name stands for the file c of
// size bytes, published by this node, and puts the record in the DHT too,
// where a node that has not heard of the name by gossip finds it (see
// FindName). It returns the record's time: the clock's next reading when at
// is zero, else at. Publishing the same name, file and time again writes
// nothing, so a node can announce a name it published at every start
// without overriding a later publish of the same name by someone else.
func (s *Store) PublishName(ctx context.Context, name string, c cid.Cid, size int64, at time.Time) (time.Time, error) {
	v, _ := json.Marshal(NameValue{CID: c.String(), Size: size})
	if r, ok := s.Local(NSName, name); ok && !at.IsZero() && r.Writer == s.self && r.Time.Wall == at.UnixNano() && string(r.Value) == string(v) {
		return at, nil
	}
	var ts Timestamp
	if !at.IsZero() {
		ts = Timestamp{Wall: at.UnixNano()}
	}
	r, err := s.put(ctx, NSName, name, v, 0, ts)
	if err != nil {
		return time.Time{}, err
	}
	return r.Time.Time(), nil
}

// FindName returns the catalog's entry for name: from the local copy, or,
// for a name the local copy has never seen, from the record's copy in the
// DHT (which is then kept). ErrNotFound when neither has it.
func (s *Store) FindName(ctx context.Context, name string) (Entry, error) {
	r, err := s.Get(ctx, NSName, name)
	if err != nil {
		return Entry{}, err
	}
	e, ok := s.entry(r)
	if !ok {
		return Entry{}, fmt.Errorf("name %q: %w", name, ErrNotFound)
	}
	return e, nil
}

// RepublishNames puts again in the DHT every live name record this node
// wrote, unchanged, so that its copy there outlives the DHT's record
// expiry. It returns how many it put and how many of those failed.
func (s *Store) RepublishNames(ctx context.Context) (n, failed int) {
	for _, r := range s.List(NSName, "") {
		if r.Writer != s.self {
			continue
		}
		n++
		if err := s.putInDHT(ctx, r); err != nil {
			failed++
			s.log.Debug("republish name in the DHT", "name", r.Key, "err", err)
		}
	}
	return n, failed
}

// PublishHolding records in the catalog that this node holds c (in custody
// for another peer when custodyFor is set). It writes only if that changes
// what the catalog says.
func (s *Store) PublishHolding(ctx context.Context, c cid.Cid, custodyFor peer.ID) error {
	key := c.String() + "/" + s.self.String()
	if r, ok := s.Local(NSHold, key); ok {
		if hv, err := decodeHoldValue(r.Value); err == nil && hv.CustodyFor == custodyFor {
			return nil
		}
	}
	var v []byte
	if custodyFor != "" {
		v, _ = json.Marshal(HoldValue{CustodyFor: custodyFor})
	}
	_, err := s.Put(ctx, NSHold, key, v, 0)
	return err
}

// DropHolding records that this node no longer holds c.
func (s *Store) DropHolding(ctx context.Context, c cid.Cid) error {
	_, err := s.Delete(ctx, NSHold, c.String()+"/"+s.self.String())
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// Holders returns the peers the catalog says hold c, sorted by peer ID.
func (s *Store) Holders(c string) []catalog.Holder {
	var out []catalog.Holder
	for _, r := range s.local.holders(c, s.cfg.networkNow()) {
		hv, _ := decodeHoldValue(r.Value)
		out = append(out, catalog.Holder{Peer: r.Writer, CustodyFor: hv.CustodyFor})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// Publishers returns the peers whose name records in the catalog stand for
// c, sorted, each once. It reads every name: for rare questions.
func (s *Store) Publishers(c string) []peer.ID {
	var out []peer.ID
	for _, r := range s.List(NSName, "") {
		if v, err := decodeNameValue(r.Value); err == nil && v.CID == c && !slices.Contains(out, r.Writer) {
			out = append(out, r.Writer)
		}
	}
	slices.Sort(out)
	return out
}

// Lookup returns the catalog's entry for name.
func (s *Store) Lookup(name string) (Entry, bool) {
	r, ok := s.Local(NSName, name)
	if !ok {
		return Entry{}, false
	}
	return s.entry(r)
}

func (s *Store) entry(r *Record) (Entry, bool) {
	v, err := decodeNameValue(r.Value)
	if err != nil {
		return Entry{}, false
	}
	return Entry{Name: r.Key, CID: v.CID, Size: v.Size, Publisher: r.Writer, Time: r.Time.Time(), Holders: s.Holders(v.CID)}, true
}

// Catalog returns every name, sorted, whose name holds term in any case
// (every name when term is empty).
func (s *Store) Catalog(term string) []Entry {
	term = strings.ToLower(term)
	var out []Entry
	for _, r := range s.List(NSName, "") {
		if term != "" && !strings.Contains(strings.ToLower(r.Key), term) {
			continue
		}
		if e, ok := s.entry(r); ok {
			out = append(out, e)
		}
	}
	return out
}
