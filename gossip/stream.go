package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SwimStreamProtocol carries the failure detector's small direct messages
// (ping, ack, nack, ping-req, the notices of a suspicion and a
// refutation) on one long-lived stream per pair of members and
// direction: each message is its encoding (see direct) prefixed by its
// length as a uvarint. A node pings the members it watches and answers
// those that watch it every probe period: on SwimProtocol each message
// opened a stream of its own, and the stream's opening, the protocol's
// negotiation and both sides' closing cost about six writes on each side,
// more than anything else an idle node did. Table exchanges, which can
// be large, still go on SwimProtocol, so they never queue before a ping;
// so does a leaver's goodbye, whose sender waits until it was read.
//
// A node of an earlier release does not serve it; such a peer gets
// SwimProtocol's messages instead.
const SwimStreamProtocol = "/p2pshare/swim/stream/1.0.0"

// streamIdle is how long a member's stream may stay without a message
// before the side that reads it closes it: the next message opens another.
// A member this node neither watches nor is watched by sends it nothing
// for long, and its stream should not outlive the reason for it.
const streamIdle = 2 * time.Minute

// outStream is this node's stream of SwimStreamProtocol to one member;
// mu orders the writes on it (and its opening).
type outStream struct {
	mu sync.Mutex
	s  network.Stream // nil until opened, and after it broke
}

// streams holds this node's outStreams and every open stream of
// SwimStreamProtocol, both ways, so Close can reset them (Reset may be
// called beside a Write or a Read).
type streams struct {
	mu     sync.Mutex
	closed bool
	out    map[peer.ID]*outStream
	open   map[network.Stream]struct{}
	// opened and sent count the streams this node opened and the
	// messages it wrote on them.
	opened, sent atomic.Int64
}

// outTo returns p's outStream, nil once closed.
func (st *streams) outTo(p peer.ID) *outStream {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	if st.out == nil {
		st.out = map[peer.ID]*outStream{}
	}
	o := st.out[p]
	if o == nil {
		o = &outStream{}
		st.out[p] = o
	}
	return o
}

// add registers s as open; false (and s is reset) once closed.
func (st *streams) add(s network.Stream) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		s.Reset()
		return false
	}
	if st.open == nil {
		st.open = map[network.Stream]struct{}{}
	}
	st.open[s] = struct{}{}
	return true
}

// remove forgets s, which has ended.
func (st *streams) remove(s network.Stream) {
	st.mu.Lock()
	delete(st.open, s)
	st.mu.Unlock()
}

// forget drops p's outStream: p disconnected, and its stream went with
// the connection. It never waits for a writer: one that holds the
// outStream drops its stream itself (see sendOnStream).
func (st *streams) forget(p peer.ID) {
	st.mu.Lock()
	o := st.out[p]
	delete(st.out, p)
	st.mu.Unlock()
	if o != nil && o.mu.TryLock() {
		o.drop(st)
		o.mu.Unlock()
	}
}

// current reports whether o is still p's outStream.
func (st *streams) current(p peer.ID, o *outStream) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.out[p] == o
}

// drop resets o's stream, if any, and forgets it. Call with o.mu held.
func (o *outStream) drop(st *streams) {
	if o.s != nil {
		o.s.Reset()
		st.remove(o.s)
		o.s = nil
	}
}

// close resets every open stream; streams opened later are refused.
func (st *streams) close() {
	st.mu.Lock()
	st.closed = true
	open := st.open
	st.out, st.open = nil, nil
	st.mu.Unlock()
	for s := range open {
		s.Reset()
	}
}

// errStreamClosed: the membership closed while a message was to go.
var errStreamClosed = errors.New("membership closed")

// sendOnStream writes d to p on this node's stream to p, opening it if
// need be; a stream that broke (its connection closed) is replaced once.
// An error that wraps msmux.ErrNotSupported says p does not serve the
// protocol.
func (m *Membership) sendOnStream(ctx context.Context, p peer.ID, d direct) error {
	b, err := d.encode()
	if err != nil {
		return err
	}
	frame := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen32), uint64(len(b)))
	frame = append(frame, b...)
	st := &m.streams
	o := st.outTo(p)
	if o == nil {
		return errStreamClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for try := 0; ; try++ {
		fresh := o.s == nil
		if fresh {
			s, err := m.h.NewStream(ctx, p, SwimStreamProtocol)
			if err != nil {
				return err
			}
			if !st.add(s) {
				return errStreamClosed
			}
			st.opened.Add(1)
			o.s = s
		}
		dl, _ := ctx.Deadline()
		_ = o.s.SetWriteDeadline(dl)
		_, err := o.s.Write(frame)
		if err == nil {
			st.sent.Add(1)
			if !st.current(p, o) {
				o.drop(st) // forgotten meanwhile: no later writer will find it
			}
			return nil
		}
		o.drop(st)
		if fresh || try > 0 {
			return err
		}
	}
}

// handleStream reads the messages of one member's stream of
// SwimStreamProtocol and hands each to the loop, until the member closes
// it, it stays idle for streamIdle, a message is refused (the stream is
// then reset) or the membership closes.
func (m *Membership) handleStream(s network.Stream) {
	st := &m.streams
	if !st.add(s) {
		return
	}
	defer st.remove(s)
	from := s.Conn().RemotePeer()
	r := bufio.NewReader(s)
	for {
		_ = s.SetReadDeadline(time.Now().Add(streamIdle))
		b, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			_ = s.Close()
			return
		}
		var d direct
		if err == nil {
			d, err = decodeDirect(b, from)
		}
		if err != nil {
			if errors.Is(err, ErrBadMessage) {
				m.counters.rejected.Add(1)
			}
			m.log.Debug("membership stream ended", "peer", from, "err", err)
			s.Reset()
			return
		}
		if f := m.onDirect.Load(); f != nil {
			(*f)(from, d.msg)
		}
		m.deliver(input{from: from, msg: d.msg, addrs: d.addrs})
	}
}

// readFrame reads one length-prefixed message of at most MaxDirectSize
// bytes; io.EOF only at a message boundary.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	if n > MaxDirectSize {
		return nil, fmt.Errorf("%w: message of %d bytes", ErrBadMessage, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("truncated message: %w", err)
	}
	return b, nil
}
