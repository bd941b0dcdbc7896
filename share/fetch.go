package share

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/p2pshare/p2pshare/catalog"
)

// GetResult describes a completed get.
type GetResult struct {
	Name     string  // empty for a get by CID
	CID      cid.Cid //
	Size     int64
	Provider peer.ID       // the peer that served the bytes (this node if it held them)
	RTT      time.Duration // measured RTT to Provider
	Via      string        // ViaDirect or ViaRelayed: the connection that served the bytes; empty if held here
	Path     string        // file name inside the target directory
	Attempts []Attempt     // every provider tried, in order
	Elapsed  time.Duration
	// ResumedFrom is the offset an interrupted earlier get of the file
	// had reached and this one continued from (0: from the start).
	ResumedFrom int64
}

// Attempt records one provider tried during a get.
type Attempt struct {
	Peer   peer.ID
	RTT    time.Duration
	Offset int64  // where this provider was asked to start
	Bytes  int64  // bytes it delivered
	Err    string // why it was left, empty for the one that finished
}

// Progress, when set on a get, is called as bytes arrive (from one
// goroutine), with the peer they come from.
type Progress func(done, total int64, from peer.ID)

// Get resolves ref (a name or a CID) and writes the file as filename inside
// dir; an empty filename means the resolved name (or the CID string). It
// never writes outside dir, whatever the name says. The bytes come from this
// node's store if it holds them, else from the provider with the lowest RTT,
// moving on to the next provider on failure, stall or corruption.
func (s *Service) Get(ctx context.Context, ref string, dir *os.Root, filename string, progress Progress) (GetResult, error) {
	start := time.Now()
	res, err := s.Resolve(ctx, ref)
	if err != nil {
		return GetResult{}, err
	}
	s.log.Debug("get: resolved", "ref", ref, "cid", res.CID, "took", time.Since(start))
	if filename == "" {
		filename = path.Base(res.Name) // a name in a folder: its file name
		if res.Name == "" {
			filename = res.CID.String()
		}
	}
	if err := catalog.ValidateName(filename); err != nil {
		return GetResult{}, fmt.Errorf("output file: %w", err)
	}
	if res.Size > s.cfg.MaxFileSize {
		return GetResult{}, fmt.Errorf("get %s: %w: %d bytes, the limit is %d", ref, ErrTooLarge, res.Size, s.cfg.MaxFileSize)
	}
	tmpName := ".p2pshare-" + randHex(8) + ".part"
	f, err := dir.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return GetResult{}, fmt.Errorf("get %s: create temp file: %w", ref, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			_ = dir.Remove(tmpName)
		}
	}()
	out := GetResult{Name: res.Name, CID: res.CID, Path: filename}
	observeFile(ctx, filepath.Join(dir.Name(), tmpName))
	local := false
	if size, ok := s.store.Has(res.CID); ok {
		err := s.copyLocal(ctx, res.CID, f)
		switch {
		case err == nil:
			local = true
			out.Size, out.Provider = size, s.h.ID()
		case errors.Is(err, ErrHashMismatch):
			// This node's copy rotted: take it out of service and get
			// the file from the network like any getter.
			s.quarantine(res.CID, "a local get")
			if err := rewind(f); err != nil {
				return GetResult{}, fmt.Errorf("get %s: %w", ref, err)
			}
		default:
			return GetResult{}, fmt.Errorf("get %s: %w", ref, noSpace(dir.Name(), err))
		}
	}
	if !local {
		if err := s.fetchResumable(ctx, res.CID, res.Size, f, dir, tmpName, &out, progress); err != nil {
			return out, fmt.Errorf("get %s: %w", ref, err)
		}
	}
	if err := f.Close(); err != nil {
		return GetResult{}, fmt.Errorf("get %s: close: %w", ref, noSpace(dir.Name(), err))
	}
	if err := dir.Rename(tmpName, filename); err != nil {
		return GetResult{}, fmt.Errorf("get %s: rename into place: %w", ref, err)
	}
	committed = true
	out.Elapsed = time.Since(start)
	return out, nil
}

// rewind empties f for a transfer that starts again from zero.
func rewind(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("reset temp file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reset temp file: %w", err)
	}
	return nil
}

// copyLocal copies a held file into w, verifying it on the way.
func (s *Service) copyLocal(ctx context.Context, c cid.Cid, w io.Writer) error {
	src, _, err := s.store.Open(c)
	if err != nil {
		return err
	}
	defer src.Close()
	h := newHasher()
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	if _, err := io.CopyBuffer(io.MultiWriter(w, h), ctxReader{ctx, src}, *buf); err != nil {
		return fmt.Errorf("copy from store: %w", err)
	}
	if got := cidFromDigest(h.Sum(nil)); !got.Equals(c) {
		return fmt.Errorf("held copy of %s: %w", c, ErrHashMismatch)
	}
	return nil
}

// candidate is a provider with its measured RTT.
type candidate struct {
	id  peer.ID
	rtt time.Duration
}

// providers finds up to MaxProviders providers of c (other than this node,
// and none in skip): the preferred peers first, in their order, then the
// others by measured RTT, lowest first, ties by peer ID; a provider that
// sent corrupt bytes in the last penaltyTTL comes after all of them. A preferred peer
// is one known to be up and to hold c (the node asking this one to copy
// it), while a holder that died a moment ago keeps its low RTT in the
// peerstore until membership says it is down, and a dial to it can take
// seconds. Known holders come first and alone: the preferred peers and the
// holders the Directory knows that membership does not say are down. Only when there
// are none does it search the DHT (fromDHT is then true), because a DHT
// search waits out its dials to dead peers (seconds) while a known live
// holder answers in milliseconds; fetch goes to the DHT if every known
// holder fails.
func (s *Service) providers(ctx context.Context, c cid.Cid, skip map[peer.ID]bool, useDHT bool, prefer ...peer.ID) (cands []candidate, fromDHT bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	var ids []peer.ID
	seen := map[peer.ID]bool{s.h.ID(): true, "": true}
	for p := range skip {
		seen[p] = true
	}
	add := func(p peer.ID) {
		if !seen[p] && len(ids) < s.cfg.MaxProviders {
			seen[p] = true
			ids = append(ids, p)
		}
	}
	if !useDHT {
		for _, p := range prefer {
			add(p)
		}
		if d := s.dir; d != nil {
			cl := s.cluster
			for _, h := range s.holdings(d, c) {
				if cl == nil || !cl.Down(h.Peer) {
					add(h.Peer)
				}
			}
		}
	}
	if len(ids) == 0 {
		fromDHT = true
		lookupStart := time.Now()
		for ai := range s.rt.FindProvidersAsync(ctx, c, s.cfg.MaxProviders) {
			if seen[ai.ID] {
				continue
			}
			if len(ai.Addrs) > 0 {
				s.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			add(ai.ID)
		}
		s.observe("providers", lookupStart)
	}
	cands = make([]candidate, len(ids))
	if cl := s.cluster; cl != nil {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PingTimeout)
		cl.Measure(pctx, ids)
		cancel()
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		cands[i] = candidate{id: id, rtt: unknownRTT}
		s.measureRTT(ctx, &wg, &cands[i])
	}
	wg.Wait()
	rank := make(map[peer.ID]int, len(prefer))
	for i, p := range prefer {
		if _, ok := rank[p]; !ok {
			rank[p] = i
		}
	}
	now := time.Now()
	bad := map[peer.ID]bool{}
	for _, c := range cands {
		if s.penalties.has(c.id, now) {
			bad[c.id] = true
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		ri, pi := rank[cands[i].id]
		rj, pj := rank[cands[j].id]
		switch {
		case bad[cands[i].id] != bad[cands[j].id]:
			return !bad[cands[i].id]
		case pi && pj:
			return ri < rj
		case pi != pj:
			return pi
		case cands[i].rtt != cands[j].rtt:
			return cands[i].rtt < cands[j].rtt
		}
		return cands[i].id < cands[j].id
	})
	return cands, fromDHT
}

// unknownRTT sorts a provider whose RTT could not be measured last.
const unknownRTT = time.Hour

// measureRTT sets dst.rtt from the Cluster's RTT (measured enough, or
// estimated, by the Cluster), or without one from the peerstore's
// latency, or starts a ping (tracked by wg) that sets it when it answers.
func (s *Service) measureRTT(ctx context.Context, wg *sync.WaitGroup, dst *candidate) {
	p := dst.id
	l := time.Duration(0)
	if c := s.cluster; c != nil {
		l = c.RTT(p)
	}
	if l <= 0 {
		l = s.h.Peerstore().LatencyEWMA(p)
	}
	if l > 0 {
		dst.rtt = l
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PingTimeout)
		defer cancel()
		s.lookUpAddrs(pctx, p)
		select {
		case r := <-ping.Ping(pctx, s.h, p):
			if r.Error == nil {
				dst.rtt = r.RTT
			}
		case <-pctx.Done():
		}
	}()
}

// fetch streams c into f from the providers in RTT order. Bytes are hashed
// as they are written; a provider that fails or stalls is left and the next
// one asked to continue from the offset reached; a complete transfer that
// does not hash to c is discarded and started again from zero with the next
// provider. A provider left for a transient failure gets one more turn at the
// end of the queue. A transfer that one provider sent whole and that does
// not hash to c is that provider's fault: it is told, and tried last for a
// while. When several providers contributed, the last one gets one more
// turn, alone, from zero. A local write that finds the disk full (under
// where) ends the fetch with ErrNoSpace.
func (s *Service) fetch(ctx context.Context, c cid.Cid, size int64, f *os.File, where string, out *GetResult, progress Progress, prefer ...peer.ID) error {
	return s.fetchAt(ctx, c, size, f, newHasher(), 0, where, out, progress, prefer...)
}

// fetchAt is fetch continuing a transfer: f holds off bytes already,
// hashed into h.
func (s *Service) fetchAt(ctx context.Context, c cid.Cid, size int64, f *os.File, h hash.Hash, off int64, where string, out *GetResult, progress Progress, prefer ...peer.ID) error {
	dst, err := newSink(ctx, f, h, off, size, progress)
	if err != nil {
		return err
	}
	err = s.fetchInto(ctx, c, size, dst, h, off, where, out, prefer...)
	if cerr := dst.close(); cerr != nil && err == nil {
		err = noSpace(where, fmt.Errorf("write: %w", cerr))
	}
	return err
}

// fetchInto is fetchAt into the sink dst.
func (s *Service) fetchInto(ctx context.Context, c cid.Cid, size int64, dst sink, h hash.Hash, off int64, where string, out *GetResult, prefer ...peer.ID) error {
	rankStart := time.Now()
	queue, searched := s.providers(ctx, c, nil, false, prefer...)
	s.log.Debug("get: providers ranked", "cid", c, "candidates", len(queue), "dht", searched, "took", time.Since(rankStart))
	var via string
	ctx = withViaRecord(ctx, &via)
	tried := map[peer.ID]bool{}
	retried := map[peer.ID]bool{}
	var lastErr error
	var contributors []peer.ID // whose bytes are in f since the last reset
	for {
		if len(queue) == 0 && !searched {
			// Every known holder failed: ask the DHT for others.
			queue, searched = s.providers(ctx, c, tried, true)
		}
		if len(queue) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cand := queue[0]
		queue = queue[1:]
		tried[cand.id] = true
		a := Attempt{Peer: cand.id, RTT: cand.rtt, Offset: off}
		n, total, err := s.fetchFrom(ctx, cand.id, c, off, size, dst)
		if err == nil {
			// Every byte is in: wait until it is hashed and written.
			if werr := dst.wait(); werr != nil {
				err = fmt.Errorf("%w: write: %w", errFinal, werr)
			}
		}
		if e := noSpace(where, err); errors.Is(e, ErrNoSpace) {
			return e
		}
		a.Bytes = n
		off += n
		if n > 0 || err == nil {
			contributors = append(contributors, cand.id)
		}
		if err == nil {
			if got := cidFromDigest(h.Sum(nil)); got.Equals(c) {
				out.Attempts = append(out.Attempts, a)
				out.Provider, out.RTT, out.Size, out.Via = cand.id, cand.rtt, total, via
				return nil
			}
			err = ErrHashMismatch
			if len(contributors) == 1 {
				s.blame(cand.id, c)
			} else if !retried[cand.id] {
				retried[cand.id] = true
				queue = append([]candidate{cand}, queue...)
			}
			// Nothing received can be trusted: start over from zero.
			h.Reset()
			off = 0
			contributors = nil
			if rerr := dst.rewind(); rerr != nil {
				return rerr
			}
		} else if !retried[cand.id] && !errors.Is(err, errFinal) && ctx.Err() == nil {
			retried[cand.id] = true
			queue = append(queue, cand)
		}
		a.Err = err.Error()
		out.Attempts = append(out.Attempts, a)
		lastErr = fmt.Errorf("from %s: %w", cand.id, err)
		s.log.Info("provider failed, trying the next", "peer", cand.id, "cid", c, "offset", a.Offset, "bytes", n, "err", err)
	}
	if len(out.Attempts) == 0 {
		return fmt.Errorf("%w for %s (searched the DHT through %d connected peers)", ErrNoProviders, c, len(s.h.Network().Peers()))
	}
	return fmt.Errorf("%w could deliver %s: %d tried, last: %w", ErrNoProviders, c, len(out.Attempts), lastErr)
}

// errFinal marks a provider answer not worth retrying (not found, bad
// request, too large).
var errFinal = errors.New("provider refused")

// fetchFrom asks p for c from off and appends what arrives to dst. It
// returns the bytes received and the file's total size; err is nil only if
// the provider sent everything up to the end. want is the expected size,
// or -1 if unknown.
func (s *Service) fetchFrom(ctx context.Context, p peer.ID, c cid.Cid, off, want int64, dst sink) (int64, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	openStart := time.Now()
	st, err := s.openStream(ctx, p, ProtocolID, "get")
	if err != nil {
		return 0, 0, fmt.Errorf("open stream: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = st.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	_ = st.SetDeadline(time.Now().Add(s.cfg.RequestTimeout))
	if _, err := st.Write(AppendRequest(nil, Request{CID: c, Offset: off})); err != nil {
		return 0, 0, fmt.Errorf("send request: %w", err)
	}
	_ = st.CloseWrite()
	opened := time.Now()
	br := bufio.NewReaderSize(st, 4096)
	hdr, err := ReadResponseHeader(br)
	if err != nil {
		return 0, 0, err
	}
	answered := time.Now()
	if hdr.Status != StatusOK {
		err := fmt.Errorf("%w: %s: %s", errFinal, hdr.Status, hdr.Message)
		if hdr.Status == StatusBusy {
			err = fmt.Errorf("busy: %s", hdr.Message)
		}
		return 0, hdr.Size, err
	}
	total := hdr.Size
	switch {
	case total > s.cfg.MaxFileSize:
		return 0, total, fmt.Errorf("%w: %w: %d bytes", errFinal, ErrTooLarge, total)
	case want >= 0 && total != want:
		return 0, total, fmt.Errorf("%w: size %d, the record says %d", errFinal, total, want)
	case off > total:
		return 0, total, fmt.Errorf("%w: size %d is below offset %d", errFinal, total, off)
	}
	var got int64
	remaining := total - off
	for remaining > 0 {
		_ = st.SetReadDeadline(time.Now().Add(s.cfg.StallTimeout))
		chunk := dst.buffer(remaining)
		chunk = chunk[:piece(s.down, len(chunk))]
		n, rerr := br.Read(chunk)
		if err := spend(ctx, s.down, n); err != nil {
			return got, total, err
		}
		if n > 0 {
			if werr := dst.wrote(n, total, p); werr != nil {
				return got, total, fmt.Errorf("%w: write: %w", errFinal, werr)
			}
			got += int64(n)
			remaining -= int64(n)
		}
		if rerr != nil && remaining > 0 {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return got, total, fmt.Errorf("stalled: nothing for %s", s.cfg.StallTimeout)
			}
			if rerr == io.EOF {
				return got, total, fmt.Errorf("stream ended at %d of %d bytes", off+got, total)
			}
			return got, total, fmt.Errorf("read: %w", rerr)
		}
	}
	ok = true
	_ = st.Close()
	s.log.Debug("get: transferred", "peer", p, "cid", c, "bytes", got, "open", opened.Sub(openStart), "first_byte", answered.Sub(opened), "transfer", time.Since(answered))
	return got, total, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
