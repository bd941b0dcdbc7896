package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2pshare/p2pshare/gossip/swim"
	"github.com/p2pshare/p2pshare/internal/oserr"
)

// The network's evidence, which can only hasten a suspicion (see
// swim.Evidence): when the last TCP connection to a member drops, this
// node dials the member's TCP addresses; a refusal (no process listens
// there any more: the kernel of a crashed process closed its listener)
// is swim.EvidenceRefused, and no answer at all swim.EvidenceReset, which
// probes the member at once. A node that hears a member suspected and has
// no TCP connection to it checks the member's TCP port itself (the loop's
// checkSuspect): a refusal confirms the suspicion.

// disconnected checks a member whose last connection just dropped.
func (m *Membership) disconnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if m.h.Network().Connectedness(p) != network.Connected {
		m.streams.forget(p)
	}
	// Another connection to p says p runs, unless the one that dropped was
	// TCP and only QUIC ones remain: QUIC keeps no kernel state that a
	// crash resets, so a QUIC connection to a killed process lives on,
	// silent, until its idle timeout, and would hide the crash that the
	// TCP reset just told of.
	if hasTCP(m.h.Network().ConnsToPeer(p)) || (!isTCP(c.RemoteMultiaddr()) && m.h.Network().Connectedness(p) == network.Connected) {
		return
	}
	if mem, ok := m.snap.Load().members[p]; ok && live(mem.State) {
		m.startCheck(p, checkOnDisconnect, nil)
	}
}

// checkKind says what sent this node to re-dial a member.
type checkKind int

const (
	checkOnDisconnect checkKind = iota + 1 // its last TCP connection dropped
	checkOnSuspicion                       // another node suspects it
)

// startCheck starts a re-dial check of p (addrs: the addresses p
// announced, for a check on suspicion). If one is in flight, a check
// after a disconnect runs again when it ends, unless that one found the
// port refused: the member may have crashed after the first check found
// it up (two connections to a crashed member drop together, and each
// asks for a check).
func (m *Membership) startCheck(p peer.ID, kind checkKind, addrs []ma.Multiaddr) {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	if _, found := m.refusedUnread[p]; found && kind == checkOnSuspicion {
		return
	}
	if _, busy := m.checking[p]; busy {
		if kind == checkOnDisconnect {
			m.checking[p] = checkOnDisconnect // run again
		}
		return
	}
	m.checking[p] = 0
	ok := m.spawn(true, func(ctx context.Context) {
		for {
			refused := m.redialCheck(ctx, p, kind, addrs) == swim.EvidenceRefused
			m.checkMu.Lock()
			again := m.checking[p]
			if again == 0 || refused || ctx.Err() != nil {
				delete(m.checking, p)
				m.checkMu.Unlock()
				return
			}
			m.checking[p] = 0
			kind = again
			m.checkMu.Unlock()
		}
	})
	if !ok {
		delete(m.checking, p)
	}
}

// redialCheck re-dials p, hands the loop what it found and returns it (0:
// nothing to hand).
//
// After a disconnect it dials p's TCP addresses in the peerstore (fresh:
// p was connected a moment ago); with none, p is probed at once, which
// dials it. On a suspicion it dials only the TCP addresses p announced
// (the peerstore may hold those of an earlier run on other ports), and
// counts only a refusal: this node may never have been connected to p,
// and a dial that finds nobody in time says nothing about p.
func (m *Membership) redialCheck(ctx context.Context, p peer.ID, kind checkKind, addrs []ma.Multiaddr) swim.Evidence {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RedialTimeout)
	defer cancel()
	if kind == checkOnDisconnect {
		addrs = m.h.Peerstore().Addrs(p)
	}
	tcp, err := checkTCP(ctx, addrs, m.cfg.RedialTimeout)
	var ev swim.Evidence
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return 0 // closing
	case errors.Is(err, errRefused):
		ev = swim.EvidenceRefused
	case kind == checkOnSuspicion:
		return 0
	case !tcp || err != nil:
		ev = swim.EvidenceReset
	default:
		return 0 // accepted: the process runs
	}
	if kind == checkOnSuspicion {
		m.log.Info("suspected member refused a connection", "peer", p, "err", err)
	} else {
		m.log.Info("member unreachable after its connection dropped", "peer", p, "tcp", tcp, "err", err)
	}
	if f := m.onEvidence.Load(); f != nil {
		(*f)(p, ev)
	}
	if ev == swim.EvidenceRefused {
		m.checkMu.Lock()
		m.refusedUnread[p] = struct{}{}
		m.checkMu.Unlock()
	}
	m.deliver(input{from: p, ev: ev})
	return ev
}

// isTCP reports whether a runs over TCP.
func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}

// hasTCP reports whether any of conns runs over TCP.
func hasTCP(conns []network.Conn) bool {
	for _, c := range conns {
		if isTCP(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

// tcpSettle is how long checkTCP holds a connection the member's kernel
// accepted, to see whether it is reset. A process killed a moment ago may
// still be closing its file descriptors: its connections are reset (which
// sent this node to check) while its listener still accepts, for a few
// milliseconds, into a queue that nobody will read; when the listener
// closes, the kernel resets what is queued.
var tcpSettle = 250 * time.Millisecond // a variable for tests only

// dialTCP connects to addr and, if the connection is accepted, waits up to
// tcpSettle (or until ctx ends) for it to be reset. It returns the dial's
// error, ECONNRESET if the accepted connection was reset, or nil: the
// connection was accepted and stood, or the process wrote to it or closed
// it (a process that runs).
func dialTCP(ctx context.Context, d *net.Dialer, addr string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(tcpSettle)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) }) // Close does not wait
	defer stop()
	var b [1]byte
	if _, err := c.Read(b[:]); oserr.ConnReset(err) {
		return err
	}
	return nil
}

// errRefused: every TCP address of a member refused a connection, or
// reset it as soon as it was accepted.
var errRefused = errors.New("connection refused")

// checkTCP dials the TCP addresses among addrs once, in parallel, without
// libp2p, and says whether there were any. Its error is evidence against
// the member: every address refused (no process listens there any more:
// the kernel of a crashed process closed its listener), or none answered
// within timeout (unreachable). An accepted connection is no evidence
// either way: the member's process runs (the last connection closed
// normally, or a connection manager trimmed it), it hangs (its kernel still
// accepts; probes and timers find that), or it is dying this very moment
// and its listener is not closed yet (the other peers' checks and the
// probes find that). A running member is not re-dialled by libp2p here,
// which would undo the trims, and not dialled again and again, which
// would fill its accept queue in a big network.
func checkTCP(ctx context.Context, addrs []ma.Multiaddr, timeout time.Duration) (bool, error) {
	var nas []string
	for _, a := range addrs {
		if !isTCP(a) {
			continue
		}
		if na, err := manet.ToNetAddr(a); err == nil {
			nas = append(nas, na.String())
		}
	}
	if len(nas) == 0 {
		return false, nil
	}
	var d net.Dialer
	errs := make(chan error, len(nas))
	for _, a := range nas {
		go func() { errs <- dialTCP(ctx, &d, a) }()
	}
	refused, accepted := 0, 0
	for range nas {
		switch err := <-errs; {
		case err == nil:
			accepted++
		case oserr.ConnRefused(err), oserr.ConnReset(err):
			refused++
		}
	}
	switch {
	case refused == len(nas):
		return true, fmt.Errorf("%w on all %d TCP addresses", errRefused, len(nas))
	case accepted == 0 && ctx.Err() != nil:
		return true, fmt.Errorf("no answer on its TCP addresses within %s", timeout)
	}
	return true, nil
}
