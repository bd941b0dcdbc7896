package share

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/catalog"
)

// ReplicateProtocol asks a peer to hold a file: the request names the CID,
// its size, a peer to fetch it from and, for a relocation, the peer the copy
// is kept in custody for; the answer comes once the copy is verified and
// stored (or at once if it was already held). Requests and answers are one
// JSON line each.
const ReplicateProtocol = "/p2pshare/replicate/1.0.0"

// maxReplicateLine caps a request or answer line.
const maxReplicateLine = 4096

// Peer is a live member as replication sees it.
type Peer struct {
	ID  peer.ID
	RTT time.Duration // 0 when not measured
	// Free is the free space its disk last announced, in bytes; 0 when
	// unknown.
	Free int64
}

// freeMargin is the space a copy must leave free on its target: a node
// whose announced free space cannot hold the file and this margin is not
// asked to copy it.
const freeMargin = 16 << 20

// fits reports whether p announced room for a file of size bytes (or
// announced nothing).
func (p Peer) fits(size int64) bool { return p.Free <= 0 || p.Free >= size+freeMargin }

// Cluster is what replication needs to know of the network; node wires
// gossip's membership to it.
type Cluster interface {
	// Live returns the members other than this node that count as up:
	// alive or suspect (nothing is repaired on a mere suspicion).
	Live() []Peer
	// Down reports whether p is known to be dead or gone (a peer not yet
	// heard of is not down).
	Down(p peer.ID) bool
	// Measure makes sure each of ps can be ranked by RTT: it measures
	// those without enough recent RTT samples, within a bounded time and
	// ctx, unless it can estimate their RTT without them. The RTTs then
	// show in Live and RTT.
	Measure(ctx context.Context, ps []peer.ID)
	// RTT is the RTT a choice ranks p by: measured, or for a member the
	// node has not measured lately, estimated (from network
	// coordinates); 0 when unknown.
	RTT(p peer.ID) time.Duration
}

// ReplicateRequest is the request of ReplicateProtocol.
type ReplicateRequest struct {
	CID        string  `json:"cid"`
	Size       int64   `json:"size"`
	From       peer.ID `json:"from,omitempty"`
	CustodyFor peer.ID `json:"custody_for,omitempty"`
}

// ReplicateAnswer is the answer of ReplicateProtocol.
type ReplicateAnswer struct {
	OK    bool   `json:"ok"`
	Had   bool   `json:"had,omitempty"` // it already held the file
	Error string `json:"error,omitempty"`
}

// Moved is one file relocated by a leave.
type Moved struct {
	CID  cid.Cid
	Size int64
	To   peer.ID
	RTT  time.Duration
}

// KickReplication asks for a replication check now (membership changed).
func (s *Service) KickReplication() {
	select {
	case s.repKick <- struct{}{}:
	default:
	}
}

// replicationLoop keeps R copies of what the service holds: it checks
// ReplicationDelay after start (or once Deps.Ready closes), then on every
// KickReplication and every ReplicationInterval.
func (s *Service) replicationLoop() {
	// A node that just started has not yet heard every member nor caught
	// up with the catalog: a check now would see too few holders and copy
	// files that have enough. A kick meanwhile (a holder died) waits too.
	if !s.waitReady() {
		return
	}
	s.checkReplicas(s.ctx)
	t := time.NewTicker(s.cfg.ReplicationInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.repKick:
			if !s.settleKicks() {
				return
			}
		}
		s.checkReplicas(s.ctx)
	}
}

// A membership change rarely comes alone: several nodes killed at once
// are dead within milliseconds of each other's deaths, and a repairer
// may be one of them, dying after it asked a node to hold a copy. A
// check on each change would see part of the burst, and miss the copy
// made meanwhile, which reaches the catalog a moment later: two holders
// would each think they are the lowest live one and both repair, and the
// file would end with more than R copies. So a kick waits until kicks
// have stopped for repairSettle (at most repairSettleMax).
const (
	repairSettle    = 100 * time.Millisecond
	repairSettleMax = time.Second
)

// settleKicks waits for a burst of kicks to end; false if the service
// closed meanwhile.
func (s *Service) settleKicks() bool {
	limit := time.NewTimer(repairSettleMax)
	defer limit.Stop()
	quiet := time.NewTimer(repairSettle)
	defer quiet.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case <-s.repKick:
			quiet.Reset(repairSettle)
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
	}
}

// waitReady waits until every channel of Deps.Ready has closed, or
// ReplicationDelay has passed; false if the service closed meanwhile.
func (s *Service) waitReady() bool {
	delay := time.NewTimer(s.cfg.ReplicationDelay)
	defer delay.Stop()
	for _, ready := range s.repReady {
		select {
		case <-s.ctx.Done():
			return false
		case <-delay.C:
			return true
		case <-ready:
		}
	}
	if len(s.repReady) > 0 {
		return true
	}
	select {
	case <-s.ctx.Done():
		return false
	case <-delay.C:
		return true
	}
}

// liveSet returns the live members by ID.
func (s *Service) liveSet() map[peer.ID]Peer {
	out := map[peer.ID]Peer{}
	if c := s.cluster; c != nil {
		for _, p := range c.Live() {
			out[p.ID] = p
		}
	}
	return out
}

// measuredLiveSet is liveSet for a choice by RTT: the live members are
// measured first, so none is ranked on too few samples.
func (s *Service) measuredLiveSet(ctx context.Context) map[peer.ID]Peer {
	c := s.cluster
	if c == nil {
		return map[peer.ID]Peer{}
	}
	var ids []peer.ID
	for _, p := range c.Live() {
		ids = append(ids, p.ID)
	}
	c.Measure(ctx, ids)
	return s.liveSet()
}

// byRTT sorts peers by RTT (unmeasured last), then peer ID.
func byRTT(ps []Peer) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i].RTT, ps[j].RTT
		if (a == 0) != (b == 0) {
			return b == 0
		}
		if a != b {
			return a < b
		}
		return ps[i].ID < ps[j].ID
	})
}

// candidates returns the live members that hold no copy of c and have
// room for its size bytes, closest first.
func (s *Service) candidates(live map[peer.ID]Peer, holdings []catalog.Holder, size int64) []Peer {
	holds := map[peer.ID]bool{}
	for _, h := range holdings {
		holds[h.Peer] = true
	}
	var out []Peer
	for id, p := range live {
		if !holds[id] && p.fits(size) {
			out = append(out, p)
		}
	}
	byRTT(out)
	return out
}

// checkReplicas walks the held files: a custody copy whose owner is back
// is given back (and dropped once R copies stand without it); a file with
// fewer than R live holders is copied to the closest live non-holders by
// exactly one of its live holders, the one with the lowest peer ID, so
// every node agrees who repairs; a file with more than R has its surplus
// trimmed (see trimSurplus).
func (s *Service) checkReplicas(ctx context.Context) {
	d := s.dir
	if d == nil || s.cluster == nil {
		return
	}
	live := s.liveSet()
	measured := false // the live members are measured before the first repair
	self := s.h.ID()
	now := time.Now()
	surplusBefore := s.surplus
	s.surplus = surplusSeen{}
	for _, held := range s.store.List() {
		if ctx.Err() != nil {
			return
		}
		holdings := s.holdings(d, held.CID)
		var mine catalog.Holder
		liveHolders := []peer.ID{self}
		for _, h := range holdings {
			if h.Peer == self {
				mine = h
			} else if _, ok := live[h.Peer]; ok {
				liveHolders = append(liveHolders, h.Peer)
			}
		}
		if owner := mine.CustodyFor; owner != "" {
			if _, back := live[owner]; back {
				s.giveBack(ctx, held, owner)
				continue
			}
		}
		if len(liveHolders) > s.cfg.Replicas && mine.CustodyFor == "" {
			since, ok := surplusBefore[held.CID]
			if !ok {
				since = now
			}
			if now.Sub(since) < s.cfg.ReplicationInterval || !s.trimSurplus(ctx, held, holdings, live) {
				s.surplus[held.CID] = since
			}
			continue
		}
		if len(liveHolders) >= s.cfg.Replicas {
			continue
		}
		sort.Slice(liveHolders, func(i, j int) bool { return liveHolders[i] < liveHolders[j] })
		if liveHolders[0] != self {
			continue
		}
		if !measured {
			live, measured = s.measuredLiveSet(ctx), true
		}
		need := s.cfg.Replicas - len(liveHolders)
		for _, p := range s.candidates(live, holdings, held.Size) {
			if need == 0 {
				break
			}
			if !s.backoff.ready(held.CID, p.ID, time.Now()) {
				continue
			}
			had, err := s.pushTo(ctx, p.ID, held.CID, held.Size, "")
			if errors.Is(err, ErrHashMismatch) {
				break // this node's copy was bad: quarantined, and no longer a holder
			}
			if err != nil {
				wait := s.backoff.failed(held.CID, p.ID, time.Now())
				s.log.Warn("repair: copy failed", "cid", held.CID, "to", p.ID, "retry_in", wait, "err", err)
				continue
			}
			s.backoff.succeeded(held.CID, p.ID)
			need--
			if had {
				// The catalog had not yet heard of this copy.
				s.log.Info("repair: already held", "cid", held.CID, "by", p.ID)
				continue
			}
			s.stats.Repairs.Add(1)
			s.log.Info("repaired: copied to a new holder", "cid", held.CID, "to", p.ID, "rtt", p.RTT, "live_holders", s.cfg.Replicas-need)
		}
	}
}

// giveBack returns a custody copy to its owner, then drops it if R copies
// stand without it (else keeps it as an ordinary copy).
func (s *Service) giveBack(ctx context.Context, held Held, owner peer.ID) {
	if _, err := s.pushTo(ctx, owner, held.CID, held.Size, ""); err != nil {
		s.log.Warn("rejoin: give back failed", "cid", held.CID, "owner", owner, "err", err)
		return
	}
	d := s.dir
	live := s.liveSet()
	without := map[peer.ID]bool{owner: true} // it holds the file now
	for _, h := range s.holdings(d, held.CID) {
		if _, ok := live[h.Peer]; ok && h.Peer != s.h.ID() {
			without[h.Peer] = true
		}
	}
	if len(without) >= s.cfg.Replicas {
		if err := d.Unhold(ctx, held.CID); err != nil {
			s.log.Warn("rejoin: drop holding", "cid", held.CID, "err", err)
			return
		}
		if err := s.store.Remove(held.CID); err != nil {
			s.log.Warn("rejoin: drop custody copy", "cid", held.CID, "err", err)
			return
		}
		s.stats.GiveBacks.Add(1)
		s.log.Info("rejoin: gave the file back and dropped the custody copy", "cid", held.CID, "owner", owner)
		return
	}
	if err := d.Hold(ctx, held.CID, ""); err != nil {
		s.log.Warn("rejoin: keep as a copy", "cid", held.CID, "err", err)
	}
	s.log.Info("rejoin: gave the file back and keep a copy (fewer than R without it)", "cid", held.CID, "owner", owner)
}

// Replicate copies c to the closest live members that do not hold it
// until R peers (this one included) hold it. It returns the other live
// holders: those it copied to, and those that held a copy already.
func (s *Service) Replicate(ctx context.Context, c cid.Cid, size int64) ([]Peer, error) {
	d := s.dir
	if d == nil || s.cluster == nil || s.cfg.Replicas <= 1 {
		return nil, nil
	}
	live := s.measuredLiveSet(ctx)
	holdings := s.holdings(d, c)
	have := 1
	// Copies already made count, and are reported with the new ones: the
	// repair loop may have copied the file between the store and this
	// call (a membership event kicks it), and the caller wants to know
	// where the copies are, not which call made them.
	var out []Peer
	for _, h := range holdings {
		if p, ok := live[h.Peer]; ok && h.Peer != s.h.ID() {
			have++
			out = append(out, p)
		}
	}
	var errs []error
	for _, p := range s.candidates(live, holdings, size) {
		if have >= s.cfg.Replicas {
			break
		}
		if _, err := s.pushTo(ctx, p.ID, c, size, ""); err != nil {
			errs = append(errs, fmt.Errorf("to %s: %w", p.ID, err))
			continue
		}
		have++
		out = append(out, p)
	}
	switch {
	case have >= s.cfg.Replicas:
		return out, nil
	case len(errs) > 0:
		return out, fmt.Errorf("replicate %s: %d of %d copies: %w", c, have, s.cfg.Replicas, errors.Join(errs...))
	default:
		return out, fmt.Errorf("replicate %s: %d of %d copies: no other live member to copy to yet (repair will add copies when members join)", c, have, s.cfg.Replicas)
	}
}

// Relocate hands off, before this node leaves, every held file that would
// fall below R live holders without it: each goes to the closest live
// members that do not hold it, kept there in custody for this node. It
// returns what moved where; on an error, what moved so far.
func (s *Service) Relocate(ctx context.Context) ([]Moved, error) {
	d := s.dir
	if d == nil || s.cluster == nil {
		return nil, nil
	}
	live := s.measuredLiveSet(ctx)
	var moved []Moved
	for _, held := range s.store.List() {
		holdings := s.holdings(d, held.CID)
		others := 0
		for _, h := range holdings {
			if _, ok := live[h.Peer]; ok && h.Peer != s.h.ID() {
				others++
			}
		}
		need := max(s.cfg.Replicas-others, 0) // at least 1 when others == 0 (Replicas >= 1)
		for _, p := range s.candidates(live, holdings, held.Size) {
			if need == 0 {
				break
			}
			had, err := s.pushTo(ctx, p.ID, held.CID, held.Size, s.h.ID())
			if err != nil {
				s.log.Warn("leave: relocation failed, trying the next member", "cid", held.CID, "to", p.ID, "err", err)
				continue
			}
			need--
			if had {
				// A copy this node's catalog had not yet heard of (a
				// replica made a moment ago): it counts, but nothing moved
				// there, and it stays the holder's own copy.
				s.log.Info("leave: already held", "cid", held.CID, "by", p.ID)
				continue
			}
			s.stats.Relocations.Add(1)
			moved = append(moved, Moved{CID: held.CID, Size: held.Size, To: p.ID, RTT: p.RTT})
			s.log.Info("leave: relocated", "cid", held.CID, "to", p.ID, "rtt", p.RTT)
		}
		if need > 0 && len(live) > 0 {
			return moved, fmt.Errorf("relocate %s: no live member took it", held.CID)
		}
	}
	return moved, nil
}

// pushTo asks p to hold c, fetching it from this node, and waits until p
// says the copy is verified and stored. This node's copy is verified first
// unless it was within ScrubInterval (a bad one is quarantined, and pushTo
// returns ErrHashMismatch).
func (s *Service) pushTo(ctx context.Context, p peer.ID, c cid.Cid, size int64, custodyFor peer.ID) (had bool, err error) {
	if err := s.verifyHeld(c, s.cfg.ScrubInterval, "a copy to another node"); err != nil {
		return false, fmt.Errorf("verify this node's copy: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReplicateTimeout)
	defer cancel()
	st, err := s.openStream(ctx, p, ReplicateProtocol, "replicate")
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	defer st.Close()
	req, _ := json.Marshal(ReplicateRequest{CID: c.String(), Size: size, From: s.h.ID(), CustodyFor: custodyFor})
	if _, err := st.Write(append(req, '\n')); err != nil {
		return false, fmt.Errorf("send request: %w", err)
	}
	_ = st.CloseWrite()
	var ans ReplicateAnswer
	if err := readJSONLine(st, &ans); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("no answer within %s", s.cfg.ReplicateTimeout)
		}
		return false, fmt.Errorf("read answer: %w", err)
	}
	if !ans.OK {
		return false, fmt.Errorf("refused: %s", ans.Error)
	}
	// A copy it had keeps the holding it had; the catalog says which.
	custody := custodyFor
	if ans.Had {
		custody = ""
	}
	s.copies.add(c, p, custody, time.Now())
	return ans.Had, nil
}

// holdings returns who holds c: what the catalog d lists, and the copies
// this node saw made that it does not list yet.
func (s *Service) holdings(d Directory, c cid.Cid) []catalog.Holder {
	return s.copies.merge(c, d.Holdings(c), time.Now())
}

func readJSONLine(r io.Reader, v any) error {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxReplicateLine), maxReplicateLine).ReadSlice('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// handleReplicate serves ReplicateProtocol: fetch the file (from the asker
// first, then any provider), verify and store it, provide it in the DHT,
// record the holding, answer.
func (s *Service) handleReplicate(st network.Stream) {
	defer st.Close()
	remote := st.Conn().RemotePeer()
	answer := func(a ReplicateAnswer) {
		b, _ := json.Marshal(a)
		_ = st.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
		_, _ = st.Write(append(b, '\n'))
	}
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	var req ReplicateRequest
	if err := readJSONLine(st, &req); err != nil {
		answer(ReplicateAnswer{Error: "bad request: " + err.Error()})
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	c, err := cid.Decode(req.CID)
	if err == nil {
		err = checkCID(c)
	}
	switch {
	case err != nil:
		answer(ReplicateAnswer{Error: "bad CID: " + err.Error()})
		return
	case req.Size < 0 || req.Size > s.cfg.MaxFileSize:
		answer(ReplicateAnswer{Error: fmt.Sprintf("size %d outside 0..%d", req.Size, s.cfg.MaxFileSize)})
		return
	case req.CustodyFor != "" && req.CustodyFor.Validate() != nil:
		answer(ReplicateAnswer{Error: "bad custody_for peer ID"})
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReplicateTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	_, had := s.store.Has(c)
	if !had {
		if err := s.fetchIntoStore(ctx, c, req.Size, remote, req.From); err != nil {
			if errors.Is(err, ErrNoSpace) {
				s.log.Warn("asked to hold a copy, but the disk is full", "cid", c, "size", req.Size, "asked_by", remote, "err", err)
				err = fmt.Errorf("no space left on the disk of %s for %d bytes", s.h.ID(), req.Size)
			}
			answer(ReplicateAnswer{Error: err.Error()})
			return
		}
		// Provide in the background: the catalog already tells getters who
		// holds the copy, and a DHT provide can wait out dials to dead peers.
		s.bg.Go(func(context.Context) { s.provideLater(c) })
	}
	if d := s.dir; d != nil {
		custody := req.CustodyFor
		if had {
			// A file held already keeps the holding it had: a leaver whose
			// catalog had not yet heard of this copy asks for custody of
			// it, and turning a replica into a custody copy would have it
			// given back and dropped when the leaver returns.
			custody = ""
			for _, h := range d.Holdings(c) {
				if h.Peer == s.h.ID() {
					custody = h.CustodyFor
				}
			}
		}
		if err := d.Hold(ctx, c, custody); err != nil {
			answer(ReplicateAnswer{Error: "record holding: " + err.Error()})
			return
		}
		s.noteAskerHolds(d, c, remote, req)
	}
	if !had {
		s.log.Info("holding a copy", "cid", c, "size", req.Size, "asked_by", remote, "custody_for", req.CustodyFor)
	}
	answer(ReplicateAnswer{OK: true, Had: had})
}

// noteAskerHolds counts the asker of a replica as a holder of c until the
// catalog lists it: it pushed the file from its own copy. A sharer records
// its holding only once its share is published, and a repair by the sharer
// meanwhile would otherwise leave this node seeing itself as c's only
// holder, and copying c to a third node. A relocation's asker is leaving
// and does not count; an asker the catalog lists already (a custodian
// giving a file back, about to drop it) is left to the catalog.
func (s *Service) noteAskerHolds(d Directory, c cid.Cid, asker peer.ID, req ReplicateRequest) {
	if req.CustodyFor != "" || req.From != asker {
		return
	}
	for _, h := range d.Holdings(c) {
		if h.Peer == asker {
			return
		}
	}
	s.copies.add(c, asker, "", time.Now())
}

// provideLater provides c in the DHT, in the background.
func (s *Service) provideLater(c cid.Cid) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := s.rt.Provide(ctx, c, true); err != nil {
		s.log.Debug("provide replica", "cid", c, "err", err)
	}
}

// fetchIntoStore fetches c (verified, resumable across providers, the
// preferred ones first) into the content store.
func (s *Service) fetchIntoStore(ctx context.Context, c cid.Cid, size int64, prefer ...peer.ID) error {
	f, err := s.store.TempFile("replica-*")
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var out GetResult
	if err := s.fetch(ctx, c, size, f, s.store.Dir(), &out, nil, prefer...); err != nil {
		return fmt.Errorf("fetch %s: %w", c, err)
	}
	if err := s.store.commit(f, c, out.Size); err != nil {
		return err
	}
	committed = true
	return nil
}
