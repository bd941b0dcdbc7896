package internet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
)

// queueNum is the NFQUEUE every node's delay rule sends packets to; queues
// belong to a network namespace, so one number serves every node.
const queueNum = 0

// maxHeld bounds the packets a node holds at once: at 15 ms, enough for
// some 500 Mbit/s of full-size frames. Beyond it the kernel drops, as a
// router's full buffer would.
const maxHeld = 8192

// srcDelay is the delay of packets from one source prefix.
type srcDelay struct {
	from  netip.Prefix
	delay time.Duration
}

// delayer holds the packets that reach one node through its link for their
// delay, then lets them go, in order of arrival for each delay: one
// goroutine reads the queue, one per distinct delay releases.
type delayer struct {
	nf     *nfqueue.Nfqueue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	closed bool
	def    time.Duration
	paths  []srcDelay
	lanes  map[time.Duration]chan held
}

// held is one packet waiting for its release time.
type held struct {
	id uint32
	at time.Time
}

// newDelayer binds the NFQUEUE of namespace ns.
func newDelayer(ns string) (*delayer, error) {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer f.Close()
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        int(f.Fd()),
		NfQueue:      queueNum,
		MaxPacketLen: 20, // the IPv4 header: its source address is all we read
		MaxQueueLen:  maxHeld,
		Copymode:     nfqueue.NfQnlCopyPacket,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open NFQUEUE in %s: %w", ns, err)
	}
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		nf.Close()
		return nil, fmt.Errorf("NFQUEUE in %s: %w", ns, err)
	}
	d := &delayer{nf: nf, lanes: map[time.Duration]chan held{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	err = nf.RegisterWithErrorFunc(d.ctx, d.arrive, func(err error) int {
		if d.ctx.Err() != nil {
			return 1
		}
		var op *netlink.OpError
		if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
			return 0
		}
		// A lost read (ENOBUFS is off, so this is rare) costs the packets
		// in it their verdict, which the kernel then drops: loss, as on a
		// real link. Reading goes on.
		return 0
	})
	if err != nil {
		d.cancel()
		nf.Close()
		return nil, fmt.Errorf("bind NFQUEUE in %s: %w", ns, err)
	}
	return d, nil
}

// set replaces the default delay and the delays by source.
func (d *delayer) set(def time.Duration, paths []srcDelay) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.def, d.paths = def, paths
}

// delayOf is the delay of a packet from src.
func (d *delayer) delayOf(src netip.Addr) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.paths {
		if p.from.Contains(src) {
			return p.delay
		}
	}
	return d.def
}

// arrive is called by the queue's reader for each packet.
func (d *delayer) arrive(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	var src netip.Addr
	if a.Payload != nil && len(*a.Payload) >= 20 && (*a.Payload)[0]>>4 == 4 {
		src = netip.AddrFrom4([4]byte((*a.Payload)[12:16]))
	}
	delay := d.delayOf(src)
	if delay <= 0 {
		d.nf.SetVerdict(id, nfqueue.NfAccept)
		return 0
	}
	select {
	case d.lane(delay) <- held{id: id, at: time.Now().Add(delay)}:
	default:
		d.nf.SetVerdict(id, nfqueue.NfDrop)
	}
	return 0
}

// lane is the release queue of one delay, started on first use.
func (d *delayer) lane(delay time.Duration) chan held {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil // a send on nil never proceeds: the packet is dropped
	}
	ch, ok := d.lanes[delay]
	if !ok {
		ch = make(chan held, maxHeld)
		d.lanes[delay] = ch
		d.wg.Add(1)
		go d.release(ch)
	}
	return ch
}

// release lets the packets of one lane go at their times, in order.
func (d *delayer) release(ch chan held) {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var h held
		select {
		case <-d.ctx.Done():
			return
		case h = <-ch:
		}
		if wait := time.Until(h.at); wait > 0 {
			t.Reset(wait)
			select {
			case <-d.ctx.Done():
				return
			case <-t.C:
			}
		}
		d.nf.SetVerdict(h.id, nfqueue.NfAccept)
	}
}

// close stops the goroutines and unbinds the queue; the kernel drops what
// is still held.
func (d *delayer) close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	defer lowerPriority() // its raisePriority was before newDelayer
	return d.nf.Close()
}
