package gossip

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip/swim"
)

// watchEvents collects the events of every node in nodes.
func watchEvents(t *testing.T, nodes []*tnode) func() []Event {
	var mu sync.Mutex
	var all []Event
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the cancels below: cleanups run last first
	for _, n := range nodes {
		ch, cancel := n.m.Subscribe(1024)
		t.Cleanup(cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ch {
				mu.Lock()
				all = append(all, e)
				mu.Unlock()
			}
		}()
	}
	return func() []Event {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(all)
	}
}

// A member that stops answering (its loop stopped, its connections up,
// as under SIGSTOP) is dead on every other node within the same bound in
// a network of 4 and of 12: each member is pinged by its watchers every
// probe period however many members there are.
func TestSilentNodeDeadWithinABoundWhateverN(t *testing.T) {
	cfg := testConfig()
	// The first ping, its retry through others, a suspicion that nobody
	// confirms (the longest), and a second for -race on a busy machine:
	// nothing that grows with N.
	bound := cfg.ProbeInterval + cfg.ProbeTimeout + cfg.IndirectTimeout +
		time.Duration(float64(cfg.SuspicionMin)*DefaultConfig().SuspicionMaxMult) + time.Second
	for _, n := range []int{4, 12} {
		nodes := startCluster(t, n, cfg)
		silent := nodes[n/2]
		silent.pause()
		start := time.Now()
		for _, o := range nodes {
			if o != silent {
				waitState(t, o, silent, StateDead, bound)
			}
		}
		t.Logf("N = %d: dead on every other node %s after it went silent (bound %s)", n, time.Since(start).Round(time.Millisecond), bound)
		for _, o := range nodes {
			o.stop()
		}
	}
}

// A member suspected while it runs (paused long enough for its watchers to
// suspect it, not long enough for the suspicion to end) refutes it: it
// comes back alive everywhere at a higher incarnation, and nobody declares
// it dead.
func TestSuspicionRefutedWithAHigherIncarnation(t *testing.T) {
	cfg := testConfig()
	cfg.SuspicionMin = 4 * time.Second // a suspicion lasts long enough to be refuted
	nodes := startCluster(t, 5, cfg)
	events := watchEvents(t, nodes)
	target := nodes[3]
	before := target.m.Incarnation()
	resume := target.pause()
	waitFor(t, 10*time.Second, "a node suspects the paused member", func() bool {
		for _, n := range nodes {
			if s, _ := stateOf(n, target); s == StateSuspect {
				return true
			}
		}
		return false
	})
	resume()
	for _, n := range nodes {
		if n != target {
			waitFor(t, 5*time.Second, n.h.ID().ShortString()+" sees it alive at a higher incarnation", func() bool {
				mem, _ := n.m.Member(target.h.ID())
				return mem.State == StateAlive && mem.Inc > before
			})
		}
	}
	if after := target.m.Incarnation(); after <= before {
		t.Fatalf("incarnation %d after the refutation, was %d", after, before)
	}
	for _, e := range events() {
		if e.Peer == target.h.ID() && e.Kind == EventDead {
			t.Fatalf("a refuted suspicion ended in dead: %+v", e)
		}
	}
}

// A node whose loop is starved (everything it receives reaches its failure
// detector 700 ms late, past its probe timeouts) does not get others
// declared dead or even suspected: its unanswered probes find helpers that
// do not even say they could not reach the target, so it doubts itself
// (Lifeguard's local health) instead of accusing.
func TestOverloadedAccuserAccusesNobody(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 5, cfg)
	events := watchEvents(t, nodes)
	slow := nodes[1]
	slow.m.inDelay.Store(int64(700 * time.Millisecond))
	start, lhm := time.Now(), 0
	for time.Since(start) < 5*time.Second { // the condition under test: 12 probe rounds while starved
		lhm = max(lhm, slow.m.snap.Load().lhm)
		time.Sleep(50 * time.Millisecond)
	}
	slow.m.inDelay.Store(0)
	for _, e := range events() {
		if e.Peer != slow.h.ID() && (e.Kind == EventSuspect || e.Kind == EventDead) {
			t.Fatalf("%s of %s while %s was starved", e.Kind, e.Peer.ShortString(), slow.h.ID().ShortString())
		}
	}
	if lhm == 0 {
		t.Fatal("the starved node never doubted itself (local health multiplier 0)")
	}
	t.Logf("local health multiplier of the starved node up to %d", lhm)
}

// A member whose answers come later and later (a machine growing too
// busy to run every process at once), up to 800 ms, more than a
// probe's 300 ms and than its helpers' relayed pings, is accused by
// nobody: its watchers time its answers, late ones included, and wait
// for them. With the probe timeout fixed, the helpers' nacks would end
// each round before the answer came, and each round would be an
// accusation.
func TestLaterAndLaterAnswersAccuseNobody(t *testing.T) {
	cfg := testConfig()
	nodes := startCluster(t, 5, cfg)
	events := watchEvents(t, nodes)
	slow := nodes[2]
	for d := 50 * time.Millisecond; d <= 800*time.Millisecond; d += 50 * time.Millisecond {
		slow.m.inDelay.Store(int64(d))
		time.Sleep(600 * time.Millisecond) // the condition under test: about 1.5 probe rounds a step
	}
	time.Sleep(3 * time.Second) // and 7 rounds at 800 ms
	slow.m.inDelay.Store(0)
	for _, e := range events() {
		if e.Peer == slow.h.ID() && (e.Kind == EventSuspect || e.Kind == EventDead) {
			t.Fatalf("%s of the slow member at %s", e.Kind, e.At.Format(time.StampMilli))
		}
	}
}

// startRawPeer starts a node and a bare libp2p host connected to it that
// serves SwimProtocol only (as a node of an earlier release of the
// detector would) and hands each message it gets to acks.
func startRawPeer(t *testing.T) (*tnode, host.Host, <-chan *swim.Message) {
	t.Helper()
	n := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", testConfig())
	r, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	acks := make(chan *swim.Message, 4)
	r.SetStreamHandler(SwimProtocol, func(s network.Stream) {
		b, _ := io.ReadAll(io.LimitReader(s, MaxDirectSize))
		s.Close()
		if d, err := decodeDirect(b, s.Conn().RemotePeer()); err == nil {
			acks <- d.msg
		}
	})
	if err := r.Connect(context.Background(), peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return n, r, acks
}

// expectRefused writes b on a new stream of proto from r to n: n must
// reset the stream and count one message refused.
func expectRefused(t *testing.T, n *tnode, r host.Host, proto protocol.ID, name string, b []byte) {
	t.Helper()
	before := n.m.Stats().Rejected
	s, err := r.NewStream(context.Background(), n.h.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	_, werr := s.Write(b)
	if werr == nil {
		werr = s.CloseWrite()
	}
	_, rerr := io.ReadAll(s)
	if werr == nil && rerr == nil {
		t.Errorf("%s: the stream ended cleanly, want it reset", name)
	}
	s.Reset()
	waitFor(t, 5*time.Second, name+" counted as refused", func() bool { return n.m.Stats().Rejected == before+1 })
}

// encoded is d's encoding.
func encoded(t *testing.T, d direct) []byte {
	t.Helper()
	b, err := d.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Direct messages that are too large, malformed, sent in another's name,
// or about peer IDs that do not parse are refused: the stream is reset
// and nothing reaches the failure detector. A well-formed ping is
// answered.
func TestDirectMessagesRefused(t *testing.T) {
	n, r, acks := startRawPeer(t)
	self, other := swimID(r.ID()), swimID(n.h.ID())
	enc := func(d direct) []byte { return encoded(t, d) }
	withTail := func(msg *swim.Message, tail ...byte) []byte {
		b, _ := msg.AppendBinary(nil)
		return append(append(binary.AppendUvarint(nil, uint64(len(b))), b...), tail...)
	}
	ping := &swim.Message{Kind: swim.KindPing, From: self, Target: other, Seq: 7}
	bad := map[string][]byte{
		"too large":            make([]byte, MaxDirectSize+1),
		"garbage":              []byte("hello, members"),
		"in another's name":    enc(direct{msg: &swim.Message{Kind: swim.KindPing, From: other, Target: other, Seq: 1}}),
		"a bad target":         enc(direct{msg: &swim.Message{Kind: swim.KindPingReq, From: self, Target: "not a peer", Seq: 1}}),
		"a bad table entry":    enc(direct{msg: &swim.Message{Kind: swim.KindSyncResp, From: self, News: []swim.Entry{{ID: "x", Inc: 1}}}}),
		"a published kind":     enc(direct{msg: &swim.Message{Kind: swim.KindHeartbeat, From: self, Target: self, Inc: 9}}),
		"another's refutation": enc(direct{msg: &swim.Message{Kind: swim.KindAlive, From: self, Target: other, Inc: 9}}),
		"a bad address":        withTail(ping, 1, byte(len(self)), []byte(self)[0], 0),
		"trailing bytes":       withTail(ping, 0, 0),
		"a length past input":  append(binary.AppendUvarint(nil, 1000), 1, 2, 3),
	}
	for name, b := range bad {
		expectRefused(t, n, r, SwimProtocol, name, b)
	}
	select {
	case m := <-acks:
		t.Fatalf("a refused message was answered: %+v", m)
	default:
	}
	// The well-formed ping of a member this node has not heard of yet.
	s, err := r.NewStream(context.Background(), n.h.ID(), SwimProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(enc(direct{msg: ping})); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if _, err := io.ReadAll(s); err != nil {
		t.Fatalf("a well-formed message: %v", err)
	}
	s.Close()
	select {
	case m := <-acks:
		if m.Kind != swim.KindAck || m.Seq != 7 || m.From != other {
			t.Fatalf("answer %+v, want the ack of seq 7", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a well-formed ping was not answered")
	}
}

// legacy is a node of an earlier release: it heartbeats on the topic, as
// often as that release did, answers libp2p pings and does not serve
// SwimProtocol. Every message it receives is checked by that release's
// rules.
type legacy struct {
	h        host.Host
	pings    atomic.Int64
	deaf     atomic.Bool // stop heartbeating and answering pings
	mu       sync.Mutex
	got      map[Kind]int
	rejected []string
}

func startLegacy(t *testing.T) *legacy {
	t.Helper()
	h, ps, cancelPubSub := startHost(t, mustKey(t), "/ip4/127.0.0.1/tcp/0")
	ctx, cancel := context.WithCancel(context.Background())
	topic, err := ps.Join(MembersTopic)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	l := &legacy{h: h, got: map[Kind]int{}}
	h.SetStreamHandler(ping.ID, func(s network.Stream) {
		buf := make([]byte, ping.PingSize)
		for {
			if _, err := io.ReadFull(s, buf); err != nil || l.deaf.Load() {
				s.Reset()
				return
			}
			l.pings.Add(1)
			if _, err := s.Write(buf); err != nil {
				s.Reset()
				return
			}
		}
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if msg.ReceivedFrom == h.ID() {
				continue
			}
			k, err := decodeAsEarlierRelease(msg.Data)
			l.mu.Lock()
			if err != nil {
				l.rejected = append(l.rejected, fmt.Sprintf("%s: %v", msg.Data, err))
			}
			l.got[k]++
			l.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		inc := uint64(time.Now().UnixNano())
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			if l.deaf.Load() {
				continue
			}
			hb := &Message{Kind: KindHeartbeat, Peer: h.ID(), Inc: inc, Seq: seq, PeriodMillis: 200}
			for _, a := range h.Addrs() {
				hb.Addrs = append(hb.Addrs, a.String())
			}
			_ = topic.Publish(ctx, hb.encode())
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sub.Cancel()
		topic.Close()
		cancelPubSub()
		h.Close()
	})
	return l
}

// decodeAsEarlierRelease checks b by the rules of the release before the
// failure detector (its Message had no News, Dead or Refused, and JSON
// ignores fields it does not know), and returns its kind.
func decodeAsEarlierRelease(b []byte) (Kind, error) {
	var m struct {
		Kind         Kind     `json:"kind"`
		Peer         peer.ID  `json:"peer"`
		Inc          uint64   `json:"inc"`
		Seq          uint64   `json:"seq"`
		PeriodMillis int64    `json:"period_ms,omitempty"`
		Addrs        []string `json:"addrs,omitempty"`
		About        peer.ID  `json:"about,omitempty"`
		AboutInc     uint64   `json:"about_inc,omitempty"`
		AboutSeq     uint64   `json:"about_seq,omitempty"`
	}
	if len(b) > 8<<10 {
		return "", errors.New("too large")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	if m.Peer.Validate() != nil {
		return "", errors.New("peer")
	}
	switch m.Kind {
	case KindHeartbeat:
		if m.PeriodMillis <= 0 || m.PeriodMillis > 3_600_000 || len(m.Addrs) > 32 {
			return m.Kind, fmt.Errorf("heartbeat period %d, %d addresses", m.PeriodMillis, len(m.Addrs))
		}
	case KindLeave:
	case KindSuspect:
		if m.About.Validate() != nil || m.About == m.Peer {
			return m.Kind, errors.New("about")
		}
	default:
		return m.Kind, fmt.Errorf("unknown kind %q", m.Kind)
	}
	return m.Kind, nil
}

// Nodes of this release and of the earlier one in one network: the old
// node, which does not serve SwimProtocol, is pinged with libp2p pings
// (and not asked to relay ping-reqs), stays alive while it answers them,
// and is found dead when it stops; and every message the new nodes
// publish passes the old release's checks.
func TestFallbackPingToAnEarlierRelease(t *testing.T) {
	cfg := testConfig()
	old := startLegacy(t)
	a := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	b := startTNode(t, nil, "/ip4/127.0.0.1/tcp/0", cfg)
	for _, n := range []*tnode{a, b} {
		if err := n.h.Connect(context.Background(), peer.AddrInfo{ID: old.h.ID(), Addrs: old.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, a, b)
	events := watchEvents(t, []*tnode{a, b})
	oldID := old.h.ID()
	for _, n := range []*tnode{a, b} {
		waitFor(t, 10*time.Second, "the old node alive", func() bool {
			mem, ok := n.m.Member(oldID)
			return ok && mem.State == StateAlive
		})
		waitState(t, n, map[*tnode]*tnode{a: b, b: a}[n], StateAlive, 10*time.Second)
		if n.m.speaks(oldID, SwimProtocol) {
			t.Fatal("the old node counts as serving SwimProtocol")
		}
	}
	time.Sleep(3 * time.Second) // the condition under test: 7 probe rounds
	for _, e := range events() {
		if e.Peer == oldID && (e.Kind == EventSuspect || e.Kind == EventDead) {
			t.Fatalf("the old node, answering its pings, was %s", e.Kind)
		}
	}
	if old.pings.Load() == 0 {
		t.Fatal("the old node got no libp2p ping")
	}
	old.deaf.Store(true)
	start := time.Now()
	for _, n := range []*tnode{a, b} {
		waitFor(t, 10*time.Second, "the old node dead once it stops answering", func() bool {
			mem, _ := n.m.Member(oldID)
			return mem.State == StateDead
		})
	}
	t.Logf("the old node dead on both new nodes %s after it stopped answering", time.Since(start).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "the old node heard a heartbeat and a suspicion", func() bool {
		old.mu.Lock()
		defer old.mu.Unlock()
		return old.got[KindHeartbeat] > 0 && old.got[KindSuspect] > 0
	})
	old.mu.Lock()
	defer old.mu.Unlock()
	if len(old.rejected) > 0 {
		t.Fatalf("the earlier release rejects %d messages, the first: %s", len(old.rejected), old.rejected[0])
	}
	if a.m.Stats().NoProtocol+b.m.Stats().NoProtocol == 0 {
		t.Log("no message other than pings was due to the old node")
	}
}

// A table exchange too large for one message is split into parts within
// MaxDirectSize, each of which decodes; together they hold the whole
// table and its addresses, the first part is the request, and each
// part's Seq counts the parts after it.
func TestTableExchangeSplit(t *testing.T) {
	from := mustPeer(t)
	msg := &swim.Message{Kind: swim.KindSyncReq, From: swimID(from)}
	addrs := map[peer.ID][]ma.Multiaddr{}
	for i := range 3000 {
		p := mustPeer(t)
		msg.News = append(msg.News, swim.Entry{ID: swimID(p), State: swim.State(i % 4), Inc: uint64(i)})
		if i%3 == 0 {
			addrs[p] = []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i/256, i%256)), ma.StringCast("/ip6/::1/udp/4001/quic-v1")}
		}
	}
	parts := direct{msg: msg, addrs: addrs}.split(MaxDirectSize)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var entries []swim.Entry
	gotAddrs := map[peer.ID][]ma.Multiaddr{}
	for i, p := range parts {
		b, err := p.encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxDirectSize {
			t.Fatalf("part %d: %d bytes", i, len(b))
		}
		d, err := decodeDirect(b, from)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		wantKind := swim.KindSyncResp
		if i == 0 {
			wantKind = swim.KindSyncReq
		}
		if d.msg.Kind != wantKind || d.msg.Seq != uint64(len(parts)-1-i) {
			t.Fatalf("part %d: %s seq %d", i, d.msg.Kind, d.msg.Seq)
		}
		entries = append(entries, d.msg.News...)
		for p, as := range d.addrs {
			gotAddrs[p] = as
		}
	}
	if fmt.Sprint(entries) != fmt.Sprint(msg.News) {
		t.Fatal("the parts do not hold the table")
	}
	if len(gotAddrs) != len(addrs) {
		t.Fatalf("addresses of %d members, want %d", len(gotAddrs), len(addrs))
	}
	for p, as := range addrs {
		if fmt.Sprint(gotAddrs[p]) != fmt.Sprint(as) {
			t.Fatalf("addresses of %s: %v, want %v", p, gotAddrs[p], as)
		}
	}
}

func mustKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPeer(t *testing.T) peer.ID {
	t.Helper()
	p, err := peer.IDFromPrivateKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The core's published kinds map onto the topic's and back: a
// heartbeat's news, a join's or refutation's incarnation, a goodbye, a
// suspicion (with its refusal) and a death.
func TestTopicMapping(t *testing.T) {
	a, b := mustPeer(t), mustPeer(t)
	news := []swim.Entry{{ID: swimID(b), State: swim.StateDead, Inc: 4}}
	for _, tc := range []struct {
		topic *Message
		want  *swim.Message
	}{
		{&Message{Kind: KindHeartbeat, Peer: a, Inc: 3, PeriodMillis: 10_000, News: []NewsEntry{{Peer: b, State: "dead", Inc: 4}}},
			&swim.Message{Kind: swim.KindHeartbeat, From: swimID(a), Target: swimID(a), Inc: 3, News: news}},
		{&Message{Kind: KindLeave, Peer: a, Inc: 3}, &swim.Message{Kind: swim.KindLeave, From: swimID(a), Target: swimID(a), Inc: 3}},
		{&Message{Kind: KindSuspect, Peer: a, Inc: 3, About: b, AboutInc: 4, Refused: true},
			&swim.Message{Kind: swim.KindSuspect, From: swimID(a), Target: swimID(b), Inc: 4, Refused: true}},
		{&Message{Kind: KindSuspect, Peer: a, Inc: 3, About: b, AboutInc: 4, Dead: true},
			&swim.Message{Kind: swim.KindDead, From: swimID(a), Target: swimID(b), Inc: 4}},
	} {
		enc := tc.topic.encode()
		if _, err := decodeAsEarlierRelease(enc); err != nil {
			t.Errorf("%s: an earlier release rejects it: %v", enc, err)
		}
		got, err := decodeMessage(enc)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if m := fromTopic(got); fmt.Sprint(m) != fmt.Sprint(tc.want) {
			t.Errorf("%s: core message %+v, want %+v", enc, m, tc.want)
		}
	}
	for st := StateAlive; st <= StateLeft; st++ {
		if swim.State(st).String() != st.String() {
			t.Errorf("state %d is %s here and %s in the core", st, st, swim.State(st))
		}
	}
}
