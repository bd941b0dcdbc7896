package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
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

// Holder is one peer holding a file.
type Holder struct {
	Peer       peer.ID
	CustodyFor peer.ID // set when the copy is kept for a peer that left
}

// Entry is one name of the catalog.
type Entry struct {
	Name      string
	CID       string
	Size      int64
	Publisher peer.ID
	Time      time.Time
	Holders   []Holder // sorted by peer ID
}

// PublishName records in the catalog that name stands for the file c of
// size bytes, published by this node at time at (the time of its name
// record). Publishing the same name, file and time again writes the same
// record, so a node can re-announce its names at every start without
// overriding a later publish of the same name by someone else.
func (s *Store) PublishName(ctx context.Context, name string, c cid.Cid, size int64, at time.Time) error {
	v, _ := json.Marshal(NameValue{CID: c.String(), Size: size})
	if r, ok := s.Local(NSName, name); ok && r.Writer == s.self && r.Time.Wall == at.UnixNano() && string(r.Value) == string(v) {
		return nil
	}
	_, err := s.put(ctx, NSName, name, v, 0, Timestamp{Wall: at.UnixNano()})
	return err
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
func (s *Store) Holders(c string) []Holder {
	now := s.networkNow()
	var out []Holder
	s.mu.RLock()
	for _, r := range s.holds[c] {
		if r.Deleted || r.Expired(now) {
			continue
		}
		hv, _ := decodeHoldValue(r.Value)
		out = append(out, Holder{Peer: r.Writer, CustodyFor: hv.CustodyFor})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
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
