package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pshare/p2pshare/gossip/swim"
	"github.com/p2pshare/p2pshare/internal/bg"
)

// Facts returns what a heartbeat tells others about this node.
type Facts func() (files int, freeBytes int64)

// Membership owns the members table of one node. One goroutine (the loop,
// loop.go) owns the failure detector, a swim.Core: it feeds it the
// membership topic's messages, the direct messages of SwimProtocol and
// SwimStreamProtocol (direct.go, stream.go), the network's evidence (evidence.go) and its timers, and
// publishes what readers see as an immutable snapshot. All methods are
// safe for concurrent use; Close stops every goroutine it started.
type Membership struct {
	h     host.Host
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	evh   *pubsub.TopicEventHandler
	cfg   Config
	log   *slog.Logger
	facts Facts

	bg        *bg.Group       // the membership's goroutines
	ctx       context.Context // bg's context
	closeOnce sync.Once
	notifee   *network.NotifyBundle
	offsets   *Offsets
	clockMu   sync.Mutex
	clockFig  clockFigure // see ClockOffset

	inbox chan input            // to the loop: messages and evidence; never blocked on
	cmds  chan func(*loop)      // to the loop: commands (Leave, tests)
	pubq  chan publication      // from the loop to the publisher, in order
	snap  atomic.Pointer[table] // the loop's table, for readers
	// settled closes once this node has caught up on the table (see
	// Settled).
	settled chan struct{}

	lastMu  sync.Mutex
	lastMsg map[peer.ID][2]uint64 // newest (inc, seq) accepted per signer

	subMu  sync.Mutex
	subs   map[chan Event]struct{}
	closed bool

	checkMu  sync.Mutex
	checking map[peer.ID]checkKind // members with a re-dial check in flight
	// refusedUnread: members a check found refused, until the loop has
	// taken that in (and noted it in its checked): a suspicion the loop
	// handles meanwhile needs no check of its own.
	refusedUnread map[peer.ID]struct{}

	streams streams // of SwimStreamProtocol (stream.go)

	counters    counters
	sending     atomic.Int32 // direct sends and checks in flight (see spawn)
	bulkSending atomic.Int32 // of which table exchanges and checks

	// Tests: muted publishes nothing (a node whose heartbeats stop);
	// inDelay delays everything that reaches the loop (a node too starved
	// of CPU to read its connections); onDirect sees every direct message
	// accepted, onEvidence every piece of the network's evidence handed
	// to the loop.
	muted      atomic.Bool
	inDelay    atomic.Int64
	onDirect   atomic.Pointer[func(peer.ID, *swim.Message)]
	onEvidence atomic.Pointer[func(peer.ID, swim.Evidence)]
}

// Stats counts what membership dropped or refused since it started.
type Stats struct {
	// InboxDropped: messages and evidence dropped because the loop was
	// inboxSize behind.
	InboxDropped int64
	// SendDropped: direct messages and checks dropped because maxSending
	// were in flight; PublishDropped: topic messages dropped because the
	// publisher was pubqSize behind.
	SendDropped, PublishDropped int64
	// NoProtocol: direct messages not sent because the peer does not
	// speak SwimProtocol (a node of an earlier release) and the message
	// is not a ping, which goes as a libp2p ping instead.
	NoProtocol int64
	// Rejected: direct messages refused: too large, malformed, or sent
	// in another peer's name.
	Rejected int64
	// Published: messages this node published on the topic; Received:
	// other members' topic messages it accepted.
	Published, Received int64
}

type counters struct {
	inboxDropped, sendDropped, publishDropped, noProtocol, rejected atomic.Int64
	published, received                                             atomic.Int64
}

// table is an immutable copy of the loop's members table.
type table struct {
	self    Member
	members map[peer.ID]*Member // shared with later tables: never modify one
	live    []peer.ID           // the members alive or suspect, other than this node; shared: never modify it
	lhm     int                 // the core's local health multiplier
	// near: the members this node watches and those that watch it
	// (its neighbours on the ring, see Neighbour).
	near []peer.ID
}

const (
	// inboxSize is how many inputs may wait for the loop.
	inboxSize = 1024
	// leaveWait bounds how long Leave waits for connected members to
	// read the goodbye.
	leaveWait = 2 * time.Second
)

// New joins the membership topic on ps, serves SwimProtocol and the clock
// readings (see Offsets), announces this node and starts the failure
// detector. facts may be nil. The incarnation comes from cfg.Incarnations
// (see Config).
func New(h host.Host, ps *pubsub.PubSub, cfg Config, facts Facts, log *slog.Logger) (*Membership, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if facts == nil {
		facts = func() (int, int64) { return 0, 0 }
	}
	inc := uint64(cfg.now().UnixNano())
	if cfg.Incarnations != nil {
		if inc, err = cfg.Incarnations.Next(); err != nil {
			return nil, fmt.Errorf("membership: incarnation: %w", err)
		}
	}
	g := bg.New()
	m := &Membership{
		h: h, cfg: cfg, log: log.With("component", "members"), facts: facts,
		bg: g, ctx: g.Context(), offsets: NewOffsets(),
		inbox: make(chan input, inboxSize), cmds: make(chan func(*loop)), pubq: make(chan publication, pubqSize),
		settled: make(chan struct{}), lastMsg: map[peer.ID][2]uint64{}, subs: map[chan Event]struct{}{},
		checking: map[peer.ID]checkKind{}, refusedUnread: map[peer.ID]struct{}{},
	}
	fail := func(err error) (*Membership, error) {
		if m.evh != nil {
			m.evh.Cancel()
		}
		if m.sub != nil {
			m.sub.Cancel()
		}
		if m.topic != nil {
			_ = m.topic.Close()
		}
		_ = ps.UnregisterTopicValidator(MembersTopic)
		g.Close()
		return nil, err
	}
	if err := ps.RegisterTopicValidator(MembersTopic, m.validate); err != nil {
		g.Close()
		return nil, fmt.Errorf("membership: register validator: %w", err)
	}
	if m.topic, err = ps.Join(MembersTopic); err != nil {
		return fail(fmt.Errorf("membership: join topic: %w", err))
	}
	if m.evh, err = m.topic.EventHandler(); err != nil {
		return fail(fmt.Errorf("membership: topic events: %w", err))
	}
	if m.sub, err = m.topic.Subscribe(); err != nil {
		return fail(fmt.Errorf("membership: subscribe: %w", err))
	}
	l := newLoop(m, inc)
	m.notifee = &network.NotifyBundle{DisconnectedF: m.disconnected}
	h.Network().Notify(m.notifee)
	h.SetStreamHandler(ClockProtocol, m.handleClock)
	h.SetStreamHandler(SwimProtocol, m.handleDirect)
	h.SetStreamHandler(SwimStreamProtocol, m.handleStream)
	for _, run := range []func(context.Context){l.run, m.readTopic, m.readTopicEvents, m.publishLoop, m.clockLoop} {
		g.Go(run)
	}
	return m, nil
}

// Close stops the failure detector and every goroutine, without a
// goodbye (see Leave). Safe to call more than once.
func (m *Membership) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.h.Network().StopNotify(m.notifee)
		m.h.RemoveStreamHandler(SwimProtocol)
		m.h.RemoveStreamHandler(SwimStreamProtocol)
		m.h.RemoveStreamHandler(ClockProtocol)
		m.streams.close() // ends the readers, and the writers blocked on a peer
		m.bg.Close()
		m.evh.Cancel()
		m.sub.Cancel()
		err = m.topic.Close()
		m.subMu.Lock()
		m.closed = true
		for ch := range m.subs {
			close(ch)
			delete(m.subs, ch)
		}
		m.subMu.Unlock()
	})
	return err
}

// errClosed: the membership is closed.
var errClosed = errors.New("membership closed")

// do runs f on the loop and waits until it has run.
func (m *Membership) do(ctx context.Context, f func(*loop)) error {
	done := make(chan struct{})
	select {
	case m.cmds <- func(l *loop) { f(l); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.ctx.Done():
		return errClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.ctx.Done():
		return errClosed
	}
}

// AddrsChanged tells membership that this node's addresses (Config.Addrs)
// changed: it announces them again within addrsSettle, so that members
// it is not connected to dial it where it can be reached now (a node that
// went behind a relay, say) rather than where it announced before.
func (m *Membership) AddrsChanged() {
	_ = m.do(context.Background(), func(l *loop) { l.announceSoon(time.Now().Add(addrsSettle)) })
}

// Leave says goodbye on the topic and stops the failure detector; peers
// mark this node left at once. It waits until the goodbye is published,
// and until every connected member has read it on a stream of its own
// (leaveWait at most): the mesh may carry the topic's copy after this
// node's connections are gone, and a member that sees a connection drop
// and the port refused before it hears the goodbye declares the node
// dead, and repairs what it held, instead of taking it as left.
func (m *Membership) Leave(ctx context.Context) error {
	published := make(chan error, 1)
	var bye *swim.Message
	if err := m.do(ctx, func(l *loop) {
		if !l.left {
			bye = &swim.Message{Kind: swim.KindLeave, From: swimID(l.self), Target: swimID(l.self), Inc: l.core.Inc()}
		}
		l.leave(published)
	}); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	select {
	case err := <-published:
		if err != nil {
			return fmt.Errorf("leave: publish goodbye: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("leave: publish goodbye: %w", ctx.Err())
	}
	if bye != nil {
		m.sayGoodbye(ctx, bye)
	}
	return nil
}

// sayGoodbye sends bye to every connected member that is alive or
// suspect, in parallel, and returns when each has read it or leaveWait
// has passed. Members of earlier releases get only the topic's copy.
func (m *Membership) sayGoodbye(ctx context.Context, bye *swim.Message) {
	ctx, cancel := context.WithTimeout(ctx, leaveWait)
	defer cancel()
	members := m.snap.Load().members
	var wg sync.WaitGroup
	for _, p := range m.h.Network().Peers() {
		if mem, ok := members[p]; !ok || (mem.State != StateAlive && mem.State != StateSuspect) || !m.speaks(p, SwimProtocol) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.sendNow(ctx, p, direct{msg: bye}, nil)
		}()
	}
	wg.Wait()
}

// Subscribe returns a channel of membership events and a function that
// ends the subscription. Events are never blocked on: a subscriber that
// falls more than buf events behind loses events (and a warning is logged).
// The channel is closed by the cancel function or by Close.
func (m *Membership) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	m.subMu.Lock()
	if m.closed {
		close(ch)
	} else {
		m.subs[ch] = struct{}{}
	}
	m.subMu.Unlock()
	return ch, func() {
		m.subMu.Lock()
		defer m.subMu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	}
}

func (m *Membership) emit(e Event) {
	m.log.Info("member "+e.Kind.String(), "peer", e.Peer, "inc", e.Inc)
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- e:
		default:
			m.log.Warn("membership event dropped: subscriber too slow", "peer", e.Peer, "event", e.Kind)
		}
	}
}

// Members returns the table, this node included, sorted by peer ID.
func (m *Membership) Members() []Member {
	t := m.snap.Load()
	out := make([]Member, 0, len(t.members)+1)
	out = append(out, m.selfNow(t))
	for _, mem := range t.members {
		out = append(out, m.withMeasures(*mem))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Each calls fn with this node's view of every other member, in no
// order. Unlike Members it fills in no RTT, clock offset or LastSeen (a
// lookup each) and copies no addresses (fn must not modify them), so it
// allocates nothing: it is for callers that scan the table every few
// seconds.
func (m *Membership) Each(fn func(Member)) {
	for _, mem := range m.snap.Load().members {
		mm := *mem
		mm.seen = nil
		fn(mm)
	}
}

// Neighbour reports whether p is one of this node's neighbours on the
// ring of members: one it watches or one that watches it (2k members at
// most, whatever N). A node that must reach out to a member about an
// event every node hears of (a member back from the dead) can leave it to
// the member's neighbours, which keeps that member's load O(k).
func (m *Membership) Neighbour(p peer.ID) bool {
	return slices.Contains(m.snap.Load().near, p)
}

// Member returns this node's view of p.
func (m *Membership) Member(p peer.ID) (Member, bool) {
	t := m.snap.Load()
	if p == m.h.ID() {
		return m.selfNow(t), true
	}
	mem, ok := t.members[p]
	if !ok {
		return Member{}, false
	}
	return m.withMeasures(*mem), true
}

// selfNow is this node's entry of t, seen now.
func (m *Membership) selfNow(t *table) Member {
	self := t.self
	self.LastSeen = time.Now()
	return self
}

// withMeasures is mem with its LastSeen, RTT and clock offset filled in,
// and its addresses its own copy.
func (m *Membership) withMeasures(mem Member) Member {
	if mem.seen != nil {
		if ns := mem.seen.Load(); ns != 0 {
			mem.LastSeen = time.Unix(0, ns)
		}
	}
	mem.seen = nil
	mem.Addrs = append([]string(nil), mem.Addrs...)
	mem.RTT = m.h.Peerstore().LatencyEWMA(mem.ID)
	mem.Offset, mem.OffsetKnown = m.offsets.Offset(mem.ID)
	return mem
}

// Incarnation returns this node's current incarnation.
func (m *Membership) Incarnation() uint64 { return m.snap.Load().self.Inc }

// Settled returns a channel closed once this node has caught up on the
// members table: it has merged a whole table from a member (anti-entropy),
// or, among members that do not exchange tables (earlier releases), one
// announced heartbeat period has passed since it first heard one. A node
// alone never settles.
func (m *Membership) Settled() <-chan struct{} { return m.settled }

// Stats returns what membership dropped or refused so far.
func (m *Membership) Stats() Stats {
	c := &m.counters
	return Stats{InboxDropped: c.inboxDropped.Load(), SendDropped: c.sendDropped.Load(), PublishDropped: c.publishDropped.Load(),
		NoProtocol: c.noProtocol.Load(), Rejected: c.rejected.Load(),
		Published: c.published.Load(), Received: c.received.Load()}
}

// isLive reports whether p is alive or suspect in t.
func (t *table) isLive(p peer.ID) bool {
	mem, ok := t.members[p]
	return ok && live(mem.State)
}

func live(s State) bool { return s == StateAlive || s == StateSuspect }

// swimID and peerID convert between a libp2p peer ID and the core's.
func swimID(p peer.ID) swim.ID  { return swim.ID(p) }
func peerID(id swim.ID) peer.ID { return peer.ID(id) }
