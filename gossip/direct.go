package gossip

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// SwimProtocol carries the failure detector's direct messages (ping, ack,
// nack, ping-req, the table exchange, the notice to a member that it
// is suspected, a suspected member's refutation to its accuser, and a
// leaver's goodbye to the members it is connected to): one message per
// stream (see direct for its encoding).
// The side that opens the stream writes the message and closes its side;
// the other reads it to the end and closes. An answer (an Ack to a Ping)
// goes on a stream of its own.
//
// Nodes of earlier releases do not serve it: a ping to one goes as a
// libp2p ping (/ipfs/ping) instead, its answer taken as the ack, and the
// other messages are not sent to it.
const SwimProtocol = "/p2pshare/swim/1.0.0"

// MaxDirectSize caps a direct message: a larger one is refused and its
// stream reset. A table exchange of a network too large for one message
// goes in several (about 1,300 members each).
const MaxDirectSize = 64 << 10

const (
	// maxSending bounds the goroutines that send direct messages and
	// check members' ports: past it, what is to be sent is dropped (and
	// counted, see Stats), as a lost message would be, and the loop
	// never waits. maxBulk of them at most carry table exchanges or check
	// ports, so that a burst of those (a network starting, each joiner
	// exchanging tables) leaves room for the pings, acks and notices the
	// detector's verdicts rest on: each send lives a round trip at least
	// (the protocol's handshake), long on a busy machine.
	maxSending = 256
	maxBulk    = 64
	// directTimeout bounds the sending of a direct message, a dial
	// included, and its reading.
	directTimeout = 3 * time.Second
	// dialAllowance is what a ping's timeout allows more when the ping
	// dials first (swim.Config.DialTimeout): a TCP and TLS handshake and
	// libp2p's identify, which take a moment on a machine that is busy.
	// Less than directTimeout, which bounds the dial.
	dialAllowance = 2 * time.Second
)

// handleDirect reads one direct message and hands it to the loop.
func (m *Membership) handleDirect(s network.Stream) {
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(directTimeout))
	b, err := io.ReadAll(io.LimitReader(s, MaxDirectSize+1))
	if err != nil {
		s.Reset()
		return
	}
	d, err := decodeDirect(b, from)
	if err != nil {
		m.counters.rejected.Add(1)
		m.log.Debug("rejected direct message", "peer", from, "err", err)
		s.Reset()
		return
	}
	if f := m.onDirect.Load(); f != nil {
		(*f)(from, d.msg)
	}
	m.deliver(input{from: from, msg: d.msg, addrs: d.addrs})
	// The sender waits for this close: the message is in the loop's
	// queue by then, ahead of whatever the sender does next (a leaver
	// closes its connections).
	_ = s.Close()
}

// spawn runs f on the membership's goroutines, unless maxSending are
// running, or maxBulk bulk ones and f is bulk: then f is dropped (and
// counted) and spawn returns false.
func (m *Membership) spawn(bulk bool, f func(context.Context)) bool {
	if m.sending.Add(1) > maxSending {
		m.sending.Add(-1)
		m.counters.sendDropped.Add(1)
		return false
	}
	done := func() { m.sending.Add(-1) }
	if bulk {
		if m.bulkSending.Add(1) > maxBulk {
			m.bulkSending.Add(-1)
			done()
			m.counters.sendDropped.Add(1)
			return false
		}
		done = func() { m.bulkSending.Add(-1); m.sending.Add(-1) }
	}
	if !m.bg.Go(func(ctx context.Context) { defer done(); f(ctx) }) {
		done()
		return false
	}
	return true
}

// send sends d to p in the background, split if it is a large table
// exchange; addrs are the addresses p announced, parsed only for a dial.
func (m *Membership) send(p peer.ID, d direct, addrs []string) {
	for _, part := range d.split(MaxDirectSize) {
		bulk := part.msg.Kind == swim.KindSyncReq || part.msg.Kind == swim.KindSyncResp
		m.spawn(bulk, func(ctx context.Context) { m.sendNow(ctx, p, part, addrs) })
	}
}

// sendNow sends d to p: on this node's stream of SwimStreamProtocol to p,
// or, for a table exchange or to a node that does not serve that, on a
// stream of SwimProtocol of its own, or as a libp2p ping to a node that
// serves neither.
func (m *Membership) sendNow(ctx context.Context, p peer.ID, d direct, addrs []string) {
	msg := d.msg
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	// Any connection will do, a relayed one included (as for libp2p's
	// pings): this node dials p only if it has none. A dial beside a
	// relayed connection would race the hole punch that is to replace it
	// (a SYN from the punching port to the peer's NAT, off the punch's
	// schedule), and Connect dials whenever no direct connection exists.
	ctx = network.WithAllowLimitedConn(ctx, "membership")
	if len(addrs) > 0 && m.h.Network().Connectedness(p) == network.NotConnected {
		// NewStream says if there is no way.
		if err := m.h.Connect(ctx, Member{ID: p, Addrs: addrs}.AddrInfo()); err == nil && msg.Kind == swim.KindPing {
			m.deliver(input{from: p, dialled: true}) // the ping's timeout runs from now
		}
	}
	bulk := msg.Kind == swim.KindSyncReq || msg.Kind == swim.KindSyncResp
	// A goodbye goes on a stream of its own too: its sender waits until
	// the member has read it (see Leave), which a write to the shared
	// stream does not tell.
	if !bulk && msg.Kind != swim.KindLeave && m.speaks(p, SwimStreamProtocol) {
		err := m.sendOnStream(ctx, p, d)
		if !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
			if err != nil {
				m.log.Debug("direct message not sent", "peer", p, "kind", msg.Kind, "err", err)
			}
			return
		}
	}
	if !m.speaks(p, SwimProtocol) {
		m.sendOld(ctx, p, msg)
		return
	}
	s, err := m.h.NewStream(ctx, p, SwimProtocol)
	if errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		m.sendOld(ctx, p, msg)
		return
	}
	if err != nil {
		m.log.Debug("direct message not sent", "peer", p, "kind", msg.Kind, "err", err)
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	b, err := d.encode()
	if err == nil {
		_, err = s.Write(b)
	}
	if err == nil {
		err = s.CloseWrite()
	}
	if err == nil {
		// The other side closes once it has read it all. (Close would
		// wait up to 10 s for the protocol's handshake of a peer that
		// does not answer.)
		_, err = io.Copy(io.Discard, io.LimitReader(s, 1))
	}
	if err != nil {
		s.Reset()
		m.log.Debug("direct message not sent", "peer", p, "kind", msg.Kind, "err", err)
		return
	}
	_ = s.Close()
}

// sendOld sends msg to a node of an earlier release: a Ping as a libp2p
// ping, whose answer is the Ack; anything else is dropped.
func (m *Membership) sendOld(ctx context.Context, p peer.ID, msg *swim.Message) {
	if msg.Kind != swim.KindPing {
		m.counters.noProtocol.Add(1)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends ping.Ping's goroutine
	select {
	case res, ok := <-ping.Ping(ctx, m.h, p):
		if ok && res.Error == nil {
			m.deliver(input{from: p, msg: &swim.Message{Kind: swim.KindAck, From: swimID(p), Target: swimID(p), Seq: msg.Seq}, pingAck: true})
		}
	case <-ctx.Done():
	}
}

// connected reports whether a message to p goes on a connection already
// open, a relayed one included (sendNow dials otherwise).
func (m *Membership) connected(p peer.ID) bool { return len(m.h.Network().ConnsToPeer(p)) > 0 }

// speaks reports whether p may serve proto: false once identify has
// listed p's protocols without it (a node of an earlier release), true
// before identify has (ask).
func (m *Membership) speaks(p peer.ID, proto protocol.ID) bool {
	ps := m.h.Peerstore()
	if ok, err := ps.SupportsProtocols(p, proto); err == nil && len(ok) > 0 {
		return true
	}
	protos, err := ps.GetProtocols(p)
	return err != nil || len(protos) == 0
}
