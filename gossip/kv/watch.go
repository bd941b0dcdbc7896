package kv

import (
	"strings"
	"sync"
)

// watchers signals the records kept to those watching their namespace and
// key prefix (see Store.Watch). Signals coalesce: each watcher's channel
// holds at most one, so a slow watcher costs the store nothing.
type watchers struct {
	mu     sync.Mutex // guards set and closed
	set    map[*watcher]struct{}
	closed bool
}

type watcher struct {
	ns, prefix string
	ch         chan struct{}
}

// add returns a new watcher's channel and the function that removes it;
// the channel is closed by that function or by close, whichever is first.
func (w *watchers) add(ns, prefix string) (<-chan struct{}, func()) {
	x := &watcher{ns: ns, prefix: prefix, ch: make(chan struct{}, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		close(x.ch)
		return x.ch, func() {}
	}
	if w.set == nil {
		w.set = map[*watcher]struct{}{}
	}
	w.set[x] = struct{}{}
	return x.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.set[x]; ok {
			delete(w.set, x)
			close(x.ch)
		}
	}
}

// notify signals every watcher of one of rs, without blocking.
func (w *watchers) notify(rs []*Record) {
	if len(rs) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := range w.set {
		for _, r := range rs {
			if r.NS == x.ns && strings.HasPrefix(r.Key, x.prefix) {
				select {
				case x.ch <- struct{}{}:
				default:
				}
				break
			}
		}
	}
}

// close closes every watcher's channel; later watchers get a closed one.
func (w *watchers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for x := range w.set {
		close(x.ch)
	}
	w.set = nil
}
