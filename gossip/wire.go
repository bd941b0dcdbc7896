package gossip

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// The membership topic carries the core's published messages in the JSON
// Message that nodes of earlier releases understand (they reject unknown
// kinds and ignore unknown fields):
//
//	core             topic
//	Heartbeat        heartbeat, with News, and the facts and period old nodes judge silence by
//	Alive            heartbeat (at the higher incarnation of a join or a refutation)
//	Leave            leave
//	Suspect          suspect (About, AboutInc)
//	Dead             suspect with Dead: to an earlier release, one more suspicion
//
// Their heartbeats reach the core as heartbeats, their suspicions as
// suspicions.

// pubqSize is how many messages may wait for the publisher.
const pubqSize = 64

// publication is a numbered message for the publisher; done, when set,
// is told the result of publishing it.
type publication struct {
	msg  *Message
	done chan<- error
}

// validate is the topic validator: it rejects malformed messages and
// messages whose signer is not the peer they speak for, and ignores any
// message not newer than the last one accepted from its signer (replays).
func (m *Membership) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	mm, err := decodeMessage(msg.Data)
	if err != nil {
		m.log.Debug("rejected membership message", "from", msg.ReceivedFrom, "err", err)
		return pubsub.ValidationReject
	}
	if signer := msg.GetFrom(); signer != mm.Peer {
		m.log.Debug("rejected membership message", "signer", signer, "claims", mm.Peer)
		return pubsub.ValidationReject
	}
	m.lastMu.Lock()
	defer m.lastMu.Unlock()
	last := m.lastMsg[mm.Peer]
	if !newer(mm.Inc, mm.Seq, last[0], last[1]) {
		return pubsub.ValidationIgnore
	}
	m.lastMsg[mm.Peer] = [2]uint64{mm.Inc, mm.Seq}
	msg.ValidatorData = mm
	return pubsub.ValidationAccept
}

// lastSeq is the number of the newest message accepted from p at
// incarnation inc, 0 if none.
func (m *Membership) lastSeq(p peer.ID, inc uint64) uint64 {
	m.lastMu.Lock()
	defer m.lastMu.Unlock()
	if last := m.lastMsg[p]; last[0] == inc {
		return last[1]
	}
	return 0
}

// readTopic hands the loop every validated message of another member.
func (m *Membership) readTopic(ctx context.Context) {
	for {
		msg, err := m.sub.Next(ctx)
		if err != nil {
			return
		}
		mm, ok := msg.ValidatorData.(*Message)
		if !ok || mm.Peer == m.h.ID() {
			continue
		}
		m.counters.received.Add(1)
		m.deliver(input{from: mm.Peer, msg: fromTopic(mm), topic: mm})
	}
}

// readTopicEvents hands the loop the peers that join and leave the topic.
func (m *Membership) readTopicEvents(ctx context.Context) {
	for {
		ev, err := m.evh.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		m.deliver(input{from: ev.Peer, topicEvent: ev.Type})
	}
}

// fromTopic is the core's message for a validated topic message.
func fromTopic(mm *Message) *swim.Message {
	from := swimID(mm.Peer)
	switch mm.Kind {
	case KindLeave:
		return &swim.Message{Kind: swim.KindLeave, From: from, Target: from, Inc: mm.Inc}
	case KindSuspect:
		k := swim.KindSuspect
		if mm.Dead {
			k = swim.KindDead
		}
		return &swim.Message{Kind: k, From: from, Target: swimID(mm.About), Inc: mm.AboutInc, Refused: mm.Refused}
	}
	msg := &swim.Message{Kind: swim.KindHeartbeat, From: from, Target: from, Inc: mm.Inc}
	for _, n := range mm.News {
		st, _ := parseState(n.State) // checked by decodeMessage
		msg.News = append(msg.News, swim.Entry{ID: swimID(n.Peer), State: swim.State(st), Inc: n.Inc})
	}
	return msg
}

// toTopic is the topic message for a message the core publishes, without
// its number (publish) and heartbeat facts (the publisher); nil for a
// kind that is not published.
func (l *loop) toTopic(msg *swim.Message) *Message {
	switch msg.Kind {
	case swim.KindHeartbeat, swim.KindAlive:
		// Nodes of earlier releases suspect a member silent for three
		// of its announced periods: the core's next heartbeat comes
		// within one.
		mm := &Message{Kind: KindHeartbeat, PeriodMillis: min(max(l.core.HeartbeatPeriod().Milliseconds(), 1), maxPeriodMillis)}
		for _, e := range msg.News {
			mm.News = append(mm.News, NewsEntry{Peer: peerID(e.ID), State: State(e.State).String(), Inc: e.Inc})
		}
		return mm
	case swim.KindLeave:
		return &Message{Kind: KindLeave}
	case swim.KindSuspect, swim.KindDead:
		about := peerID(msg.Target)
		return &Message{Kind: KindSuspect, About: about, AboutInc: msg.Inc, AboutSeq: l.m.lastSeq(about, msg.Inc),
			Dead: msg.Kind == swim.KindDead, Refused: msg.Refused}
	}
	l.m.log.Warn("not published: not a topic message", "kind", msg.Kind)
	return nil
}

// publishLoop publishes the loop's messages in order, adding the facts
// of this node to its heartbeats.
func (m *Membership) publishLoop(ctx context.Context) {
	for {
		var p publication
		select {
		case <-ctx.Done():
			return
		case p = <-m.pubq:
		}
		var err error
		if !m.muted.Load() {
			if p.msg.Kind == KindHeartbeat {
				m.addFacts(p.msg)
			}
			err = m.topic.Publish(ctx, p.msg.fit())
			if err == nil {
				m.counters.published.Add(1)
			}
		}
		if p.done != nil {
			p.done <- err
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			m.log.Debug("publish", "kind", p.msg.Kind, "err", err)
		}
	}
}

func (m *Membership) addFacts(mm *Message) {
	mm.Files, mm.FreeBytes = m.facts()
	mm.Coord = m.cfg.coordinate()
	for i, a := range m.cfg.addrs(m.h) {
		if i == maxAddrs {
			break
		}
		mm.Addrs = append(mm.Addrs, a.String())
	}
}

// fit encodes m within MaxMessageSize, leaving out news and then
// addresses if it must.
func (m *Message) fit() []byte {
	for {
		b := m.encode()
		switch {
		case len(b) <= MaxMessageSize:
			return b
		case len(m.News) > 0:
			m.News = m.News[:len(m.News)/2]
		case len(m.Addrs) > 0:
			m.Addrs = m.Addrs[:len(m.Addrs)/2]
		default:
			return b // no message without news or addresses is that large
		}
	}
}

// maxPeriodMillis is the longest heartbeat period the topic's messages
// may announce (earlier releases reject a longer one).
const maxPeriodMillis = int64(time.Hour / time.Millisecond)
