package node

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/api"
)

// KVPut implements api.API.
func (c *CoreAPI) KVPut(ctx context.Context, req api.KVPutRequest) (api.KVEntry, error) {
	n := c.n
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return api.KVEntry{}, api.Errorf(api.ErrBadInput, "kv put %q: bad TTL %q: want a duration such as 90s, 15m or 2h", req.Key, req.TTL)
		}
		if d <= 0 {
			return api.KVEntry{}, api.Errorf(api.ErrBadInput, "kv put %q: bad TTL %q: must be positive", req.Key, req.TTL)
		}
		ttl = d
	}
	n.measureClock()
	r, err := n.kv.Put(ctx, kv.NSUser, req.Key, req.Value, ttl)
	if err != nil {
		return api.KVEntry{}, kvError("kv put", req.Key, err)
	}
	return kvEntry(r), nil
}

// KVGet implements api.API.
func (c *CoreAPI) KVGet(ctx context.Context, key string) (api.KVEntry, error) {
	n := c.n
	r, err := n.kv.Get(ctx, kv.NSUser, key)
	if err != nil {
		return api.KVEntry{}, kvError("kv get", key, err)
	}
	return kvEntry(r), nil
}

// KVDelete implements api.API.
func (c *CoreAPI) KVDelete(ctx context.Context, key string) (api.KVEntry, error) {
	n := c.n
	n.measureClock()
	r, err := n.kv.Delete(ctx, kv.NSUser, key)
	if err != nil {
		return api.KVEntry{}, kvError("kv del", key, err)
	}
	return kvEntry(r), nil
}

// KVList implements api.API.
func (c *CoreAPI) KVList(context.Context) ([]api.KVEntry, error) {
	n := c.n
	rs := n.kv.List(kv.NSUser, "")
	out := make([]api.KVEntry, len(rs))
	for i, r := range rs {
		out[i] = kvEntry(r)
	}
	return out, nil
}

// Catalog implements api.API.
func (c *CoreAPI) Catalog(_ context.Context, term string) ([]api.CatalogEntry, error) {
	n := c.n
	es := n.kv.Catalog(term)
	out := make([]api.CatalogEntry, len(es))
	for i, e := range es {
		ce := api.CatalogEntry{Name: e.Name, CID: e.CID, Size: e.Size, Publisher: e.Publisher.String(),
			Time: e.Time.Format(time.RFC3339Nano), Holders: []api.HolderInfo{}}
		for _, h := range e.Holders {
			hi := api.HolderInfo{Peer: h.Peer.String(), State: n.stateOf(h.Peer)}
			if h.CustodyFor != "" {
				hi.CustodyFor = h.CustodyFor.String()
			}
			ce.Holders = append(ce.Holders, hi)
		}
		out[i] = ce
	}
	return out, nil
}

func kvEntry(r *kv.Record) api.KVEntry {
	e := api.KVEntry{Key: r.Key, Size: len(r.Value), Writer: r.Writer.String(),
		Time: r.Time.Time().Format(time.RFC3339Nano), Logical: r.Time.Logical, Deleted: r.Deleted}
	if utf8.Valid(r.Value) {
		e.Value = string(r.Value)
	} else {
		e.ValueBase64 = base64.StdEncoding.EncodeToString(r.Value)
	}
	if r.Expires != 0 {
		e.Expires = r.ExpiresAt().Format(time.RFC3339Nano)
	}
	return e
}

// kvError gives the store's errors their API kinds: "WHAT KEY: WHY".
func kvError(what, key string, err error) error {
	var kind error
	switch {
	case errors.Is(err, kv.ErrBadKey), errors.Is(err, kv.ErrBadTTL):
		kind = api.ErrBadInput
	case errors.Is(err, kv.ErrBadValue):
		kind = api.ErrTooLarge
	case errors.Is(err, kv.ErrNotFound):
		return api.Errorf(api.ErrNotFound, "%s %s: no such key", what, quoteKey(key))
	case errors.Is(err, kv.ErrClockOff):
		// About this node, not the key.
		return api.Errorf(api.ErrClockOff, "%s: %v", what, err)
	case errors.Is(err, kv.ErrWriterLimit):
		return writerLimitError(what, err)
	case errors.Is(err, context.Canceled):
		kind = context.Canceled
	}
	return api.Errorf(kind, "%s %s: %v", what, quoteKey(key), err)
}

// writerLimitError is the API error of a write past the per-writer cap,
// naming the daemon flag that raises it.
func writerLimitError(what string, err error) error {
	var we *kv.WriterLimitError
	if errors.As(err, &we) && !we.Tombstone {
		return api.Errorf(api.ErrWriterLimit,
			"%s: this node holds the per-writer limit of %d records: delete some or raise --max-records-per-writer", what, we.Limit)
	}
	return api.Errorf(api.ErrWriterLimit, "%s: %v", what, err)
}

// quoteKey quotes a key for a one-line message, shortening a long one.
func quoteKey(k string) string {
	if len(k) > 64 {
		k = strings.ToValidUTF8(k[:60], "") + "..."
	}
	return strconv.Quote(k)
}

// stateOf is p's membership state as this node sees it ("unknown" if never
// heard of).
func (n *Node) stateOf(p peer.ID) string {
	if p == n.host.ID() {
		return "alive"
	}
	if m, ok := n.memb.Member(p); ok {
		return m.State.String()
	}
	return "unknown"
}
