package node

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/node/api"
)

// transfers is the registry of shares and gets in progress, for progress
// displays and the dashboard. The node owns it.
type transfers struct {
	mu sync.Mutex
	m  map[string]*transfer
}

type transfer struct {
	id, kind, ref string
	started       time.Time
	done, total   atomic.Int64
	peer          atomic.Value // peer.ID
}

// start registers a transfer under id (a random one when empty) and
// returns it with the function that removes it.
func (t *transfers) start(id, kind, ref string, total int64) (*transfer, func()) {
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	tr := &transfer{id: id, kind: kind, ref: ref, started: time.Now()}
	tr.total.Store(total)
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*transfer{}
	}
	t.m[id] = tr
	t.mu.Unlock()
	return tr, func() {
		t.mu.Lock()
		delete(t.m, id)
		t.mu.Unlock()
	}
}

// progress is a share.Progress that updates tr.
func (tr *transfer) progress(done, total int64, from peer.ID) {
	tr.done.Store(done)
	tr.total.Store(total)
	tr.peer.Store(from)
}

func (t *transfers) list() []api.Transfer {
	t.mu.Lock()
	out := make([]api.Transfer, 0, len(t.m))
	for _, tr := range t.m {
		a := api.Transfer{ID: tr.id, Kind: tr.kind, Ref: tr.ref, Done: tr.done.Load(), Total: tr.total.Load(),
			Seconds: time.Since(tr.started).Seconds()}
		if p, ok := tr.peer.Load().(peer.ID); ok && p != "" {
			a.Peer = p.String()
		}
		out = append(out, a)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// countingReader counts what is read through it into a transfer.
type countingReader struct {
	r  io.Reader
	tr *transfer
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.tr.done.Add(int64(n))
	return n, err
}
