package share

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// partialDir is the partial store's directory inside the content store.
const partialDir = "partial"

// lazyPartials opens the service's partial store on first use.
type lazyPartials struct {
	once sync.Once
	ps   *PartialStore
}

// partialStore returns the service's partial store, nil when resume is off
// or the store cannot be opened (gets then start from zero).
func (s *Service) partialStore() *PartialStore {
	s.partials.once.Do(func() {
		max := s.cfg.MaxPartialBytes
		if max < 0 {
			return
		}
		if max == 0 {
			max = DefaultMaxPartialBytes
		}
		ps, err := OpenPartialStore(filepath.Join(s.store.Dir(), partialDir), max, DefaultPartialTTL, nil, s.log)
		if err != nil {
			s.log.Warn("gets will not resume", "err", err)
			return
		}
		s.partials.ps = ps
	})
	return s.partials.ps
}

// fetchResumable fetches c into tmpName in dir, through the partial store
// when it can: from the verified offset an interrupted earlier get
// reached, checkpointing as it goes, and keeping what arrived if this get
// fails or is cancelled. Without a partial it fetches into f from zero.
func (s *Service) fetchResumable(ctx context.Context, c cid.Cid, size int64, f *os.File, dir *os.Root, tmpName string, out *GetResult, progress Progress) error {
	ps := s.partialStore()
	if ps == nil {
		return s.fetch(ctx, c, size, f, dir.Name(), out, progress)
	}
	p, err := ps.Begin(c, size)
	if err != nil {
		if !errors.Is(err, errPartialBusy) && !errors.Is(err, errPartialFull) {
			s.log.Warn("get: no resume data", "cid", c, "err", err)
		}
		return s.fetch(ctx, c, size, f, dir.Name(), out, progress)
	}
	if p.Start > 0 {
		s.log.Info("resuming get", "cid", c, "offset", p.Start)
	}
	out.ResumedFrom = p.Start
	observeFile(ctx, ps.dataPath(p.key))
	track := func(done, total int64, from peer.ID) {
		p.Progress(done)
		if progress != nil {
			progress(done, total, from)
		}
	}
	err = s.fetchAt(ctx, c, size, p.File(), p.Hash(), p.Start, dir.Name(), out, track)
	if err != nil {
		p.Suspend()
		return err
	}
	if err := p.Finish(filepath.Join(dir.Name(), tmpName)); err != nil {
		// Another filesystem: copy the verified bytes instead.
		defer p.Discard()
		src, oerr := os.Open(p.ps.dataPath(p.key))
		if oerr != nil {
			return fmt.Errorf("move the fetched file into place: %w", err)
		}
		defer src.Close()
		if _, err := io.Copy(f, src); err != nil {
			return fmt.Errorf("copy the fetched file into place: %w", noSpace(dir.Name(), err))
		}
	}
	return nil
}
