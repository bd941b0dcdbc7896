package admit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
)

// Protocol is the admission handshake: right after a connection is made,
// the dialer sends its ticket (one JSON line) and the listener answers with
// its own; each side admits the other once the ticket checks out.
const Protocol = "/p2pshare/admit/1.0.0"

// ErrNotAdmitted: a stream to or from a peer that has not (yet) shown a
// valid ticket.
var ErrNotAdmitted = errors.New("peer not admitted to this network")

// Config says who may join.
type Config struct {
	// Authority is the network authority's public key; when set, every peer
	// not on Allow must present a valid, unexpired, unrevoked ticket.
	Authority crypto.PubKey
	// Ticket is this node's own ticket (required with Authority).
	Ticket *Ticket
	// Allow lists peers admitted without a ticket. Without an Authority, it
	// is the whole list of peers this node talks to.
	Allow []peer.ID
	// Timeout bounds the handshake: a peer that has not shown a valid
	// ticket this long after connecting is disconnected. Default 5 s.
	Timeout time.Duration
	// DenyFor is how long a peer that failed the handshake is refused
	// before it may try again. Default 1 min.
	DenyFor time.Duration
	// Logger receives the gate's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the wall clock tickets are checked against. Default time.Now.
	Now func() time.Time
}

// Enabled reports whether the config restricts anything.
func (c Config) Enabled() bool { return c.Authority != nil || len(c.Allow) > 0 }

// Gate enforces a Config on a host: it is the host's connection gater and
// runs the handshake; Host returns a view of the host whose protocol
// handlers and outgoing streams wait for the remote peer's admission. It
// owns the sets of admitted, denied and revoked peers.
type Gate struct {
	cfg  Config
	log  *slog.Logger
	h    host.Host
	self peer.ID

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	notifee *network.NotifyBundle

	mu       sync.Mutex
	allow    map[peer.ID]bool
	admitted map[peer.ID]time.Time // ticket expiry
	denied   map[peer.ID]time.Time // refused until
	revoked  map[peer.ID]bool
	waiters  map[peer.ID]chan struct{}
}

var _ connmgr.ConnectionGater = (*Gate)(nil)

// New returns a gate for cfg. Pass it to libp2p.ConnectionGater, then call
// Attach with the host.
func New(cfg Config) (*Gate, error) {
	if cfg.Authority != nil && cfg.Ticket == nil {
		return nil, errors.New("admission: an authority is set but this node has no ticket (get one with 'p2pshare ca admit PEER_ID' and pass --ticket)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.DenyFor <= 0 {
		cfg.DenyFor = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gate{
		cfg: cfg, log: cfg.Logger.With("component", "admit"), ctx: ctx, cancel: cancel,
		allow: map[peer.ID]bool{}, admitted: map[peer.ID]time.Time{}, denied: map[peer.ID]time.Time{},
		revoked: map[peer.ID]bool{}, waiters: map[peer.ID]chan struct{}{},
	}
	for _, p := range cfg.Allow {
		g.allow[p] = true
	}
	return g, nil
}

// Attach starts enforcing on h: the handshake handler, the check of every
// new connection, the expiry of tickets. It fails if this node's own
// ticket is not valid for h's peer ID.
func (g *Gate) Attach(h host.Host) error {
	g.h, g.self = h, h.ID()
	if g.cfg.Authority != nil {
		if err := VerifyTicket(g.cfg.Authority, g.cfg.Ticket, g.self, g.cfg.Now()); err != nil {
			return fmt.Errorf("admission: this node's own ticket: %w", err)
		}
	}
	h.SetStreamHandler(Protocol, g.handle)
	g.notifee = &network.NotifyBundle{ConnectedF: g.connected}
	h.Network().Notify(g.notifee)
	g.wg.Add(1)
	go g.expiryLoop()
	return nil
}

// Close stops the gate's goroutines.
func (g *Gate) Close() error {
	if g.h != nil {
		g.h.Network().StopNotify(g.notifee)
		g.h.RemoveStreamHandler(Protocol)
	}
	g.cancel()
	g.wg.Wait()
	return nil
}

// Host returns h as seen through the gate: stream handlers registered on
// it, and streams it opens, wait for the remote peer's admission.
func (g *Gate) Host() host.Host { return gatedHost{Host: g.h, g: g} }

// Admitted reports whether p may talk to this node now.
func (g *Gate) Admitted(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.okLocked(p, g.cfg.Now())
}

func (g *Gate) okLocked(p peer.ID, now time.Time) bool {
	if p == g.self {
		return true
	}
	if g.revoked[p] {
		return false
	}
	if g.allow[p] {
		return true
	}
	exp, ok := g.admitted[p]
	return ok && now.Before(exp)
}

func (g *Gate) blockedLocked(p peer.ID, now time.Time) bool {
	if g.revoked[p] {
		return true
	}
	if until, ok := g.denied[p]; ok {
		if now.Before(until) {
			return true
		}
		delete(g.denied, p)
	}
	// Allowlist only: nobody else.
	return g.cfg.Authority == nil && len(g.allow) > 0 && !g.allow[p]
}

func (g *Gate) blocked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blockedLocked(p, g.cfg.Now())
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gate) InterceptPeerDial(p peer.ID) bool { return !g.blocked(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.blocked(p) }

// InterceptAccept implements connmgr.ConnectionGater.
func (g *Gate) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater: revoked, recently
// refused and (allowlist only) unlisted peers are dropped as soon as their
// identity is known.
func (g *Gate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if g.blocked(p) {
		g.log.Debug("refused a connection", "peer", p)
		return false
	}
	return true
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// connected starts the handshake (the dialer's side) and gives the peer
// Timeout to pass it.
func (g *Gate) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if g.Admitted(p) || g.ctx.Err() != nil {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		// Both sides start a handshake, so a peer that cannot speak it
		// (no admission configured) is refused at once, not after Timeout.
		if err := g.handshake(p); err != nil && !g.Admitted(p) {
			g.log.Debug("admission handshake", "peer", p, "err", err)
			if errors.Is(err, ErrNotAdmitted) || errors.Is(err, ErrBadTicket) || isUnsupported(err) {
				g.refuse(p, err.Error())
				return
			}
		}
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.Timeout)
		defer cancel()
		// A peer whose connection is gone by then (it crashed or the link
		// dropped mid-handshake) failed nothing: it is not refused, and its
		// next connection gets a handshake of its own.
		if err := g.wait(ctx, p); err != nil && g.ctx.Err() == nil && g.h.Network().Connectedness(p) == network.Connected {
			g.refuse(p, "no valid ticket within "+g.cfg.Timeout.String())
		}
	}()
}

// isUnsupported reports whether a stream failed because the peer does not
// speak the admission protocol.
func isUnsupported(err error) bool {
	var e msmux.ErrNotSupported[protocol.ID]
	return errors.As(err, &e)
}

// handshake sends this node's ticket to p and checks p's.
func (g *Gate) handshake(p peer.ID) error {
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.Timeout)
	defer cancel()
	// A relayed connection is admitted like a direct one: its handshake
	// runs over the relay.
	st, err := g.h.NewStream(network.WithAllowLimitedConn(ctx, "admission"), p, Protocol)
	if err != nil {
		return fmt.Errorf("open admission stream: %w", err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(g.cfg.Timeout))
	if _, err := st.Write(g.ownTicket()); err != nil {
		return fmt.Errorf("send ticket: %w", err)
	}
	return g.check(p, st)
}

func (g *Gate) handle(st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(g.cfg.Timeout))
	if err := g.check(p, st); err != nil {
		_ = st.Reset()
		return
	}
	_, _ = st.Write(g.ownTicket())
}

func (g *Gate) ownTicket() []byte {
	if g.cfg.Ticket == nil {
		return []byte("{}\n")
	}
	return Encode(g.cfg.Ticket)
}

// check reads p's ticket from r and admits p if it is valid.
func (g *Gate) check(p peer.ID, r io.Reader) error {
	line, err := bufio.NewReaderSize(io.LimitReader(r, MaxTicketSize+1), MaxTicketSize+1).ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("read ticket: %w", err)
	}
	if g.Admitted(p) {
		return nil
	}
	if g.cfg.Authority == nil {
		return fmt.Errorf("%w: not on the allowlist", ErrNotAdmitted)
	}
	t, err := DecodeTicket(line)
	if err == nil {
		err = VerifyTicket(g.cfg.Authority, t, p, g.cfg.Now())
	}
	if err != nil {
		g.refuse(p, err.Error())
		return err
	}
	g.mu.Lock()
	if g.revoked[p] {
		g.mu.Unlock()
		g.refuse(p, "revoked")
		return fmt.Errorf("%w: revoked", ErrNotAdmitted)
	}
	g.admitted[p] = t.Expires
	if ch, ok := g.waiters[p]; ok {
		close(ch)
		delete(g.waiters, p)
	}
	g.mu.Unlock()
	g.log.Debug("admitted", "peer", p, "expires", t.Expires)
	return nil
}

// refuse disconnects p and refuses it for DenyFor.
func (g *Gate) refuse(p peer.ID, why string) {
	g.mu.Lock()
	if g.okLocked(p, g.cfg.Now()) {
		g.mu.Unlock()
		return
	}
	g.denied[p] = g.cfg.Now().Add(g.cfg.DenyFor)
	g.mu.Unlock()
	g.log.Warn("refused a peer", "peer", p, "why", why)
	_ = g.h.Network().ClosePeer(p)
}

// Wait returns once p is admitted, or ErrNotAdmitted when p is refused or
// has not passed the handshake within the gate's Timeout (or ctx ends).
func (g *Gate) Wait(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	return g.wait(ctx, p)
}

// wait returns once p is admitted, or an error when ctx ends first.
func (g *Gate) wait(ctx context.Context, p peer.ID) error {
	g.mu.Lock()
	if g.okLocked(p, g.cfg.Now()) {
		g.mu.Unlock()
		return nil
	}
	if g.blockedLocked(p, g.cfg.Now()) {
		g.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotAdmitted, p)
	}
	ch, ok := g.waiters[p]
	if !ok {
		ch = make(chan struct{})
		g.waiters[p] = ch
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s", ErrNotAdmitted, p)
	}
}

// Revoke withdraws p's admission for good (r must be signed by the
// authority) and disconnects it.
func (g *Gate) Revoke(r *Revocation) error {
	if g.cfg.Authority == nil {
		return errors.New("revoke: this node has no network authority")
	}
	if err := VerifyRevocation(g.cfg.Authority, r); err != nil {
		return err
	}
	g.mu.Lock()
	already := g.revoked[r.Peer]
	g.revoked[r.Peer] = true
	delete(g.admitted, r.Peer)
	g.mu.Unlock()
	if !already {
		g.log.Warn("peer revoked by the authority", "peer", r.Peer)
	}
	if g.h != nil && r.Peer != g.self {
		_ = g.h.Network().ClosePeer(r.Peer)
	}
	return nil
}

// Revoked reports whether p is revoked.
func (g *Gate) Revoked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revoked[p]
}

// expiryLoop disconnects peers whose tickets expired.
func (g *Gate) expiryLoop() {
	defer g.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		now := g.cfg.Now()
		var gone []peer.ID
		g.mu.Lock()
		for p, exp := range g.admitted {
			if !now.Before(exp) {
				delete(g.admitted, p)
				gone = append(gone, p)
			}
		}
		g.mu.Unlock()
		for _, p := range gone {
			g.log.Warn("ticket expired, disconnecting", "peer", p)
			_ = g.h.Network().ClosePeer(p)
		}
	}
}

// gatedHost is a host whose handlers and outgoing streams wait for the
// remote peer's admission.
type gatedHost struct {
	host.Host
	g *Gate
}

func (w gatedHost) guard(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		ctx, cancel := context.WithTimeout(w.g.ctx, w.g.cfg.Timeout)
		defer cancel()
		if err := w.g.wait(ctx, s.Conn().RemotePeer()); err != nil {
			_ = s.Reset()
			return
		}
		h(s)
	}
}

func (w gatedHost) SetStreamHandler(pid protocol.ID, h network.StreamHandler) {
	w.Host.SetStreamHandler(pid, w.guard(h))
}

func (w gatedHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, h network.StreamHandler) {
	w.Host.SetStreamHandlerMatch(pid, m, w.guard(h))
}

func (w gatedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if w.Host.Network().Connectedness(p) != network.Connected {
		// Connect first: admission is decided on a connection.
		if err := w.Host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, w.g.cfg.Timeout)
	defer cancel()
	if err := w.g.wait(wctx, p); err != nil {
		return nil, err
	}
	return w.Host.NewStream(ctx, p, pids...)
}
