package swim

import "time"

// rttEstimate is a node's estimate of how long its pings take to be
// answered, kept as TCP keeps its retransmission timeout (RFC 6298): a
// smoothed round-trip time and its mean deviation, fed by the answered
// pings of probes and relays. A ping's timeout is never shorter than the
// configured one (the floor) and never longer than the cap; in between it
// is srtt + 4·rttvar. On an idle machine and a LAN the answers come in
// milliseconds and the floor rules; on a machine so loaded that every
// process waits its turn for hundreds of milliseconds, or across a WAN,
// the answers of every member come late, and the timeouts stretch with
// them, instead of each late answer turning into an accusation (which
// adds the load of a suspicion, a refutation and, too often, a rejoin to
// the load that made the answer late).
type rttEstimate struct {
	srtt, rttvar time.Duration
	n            int // samples taken
}

// sample adds the round-trip time of one answered ping.
func (e *rttEstimate) sample(r time.Duration) {
	r = max(r, 0)
	if e.n == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		dev := e.srtt - r
		if dev < 0 {
			dev = -dev
		}
		e.rttvar = (3*e.rttvar + dev) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	e.n++
}

// timeout is srtt + 4·rttvar, at least floor and at most limit.
func (e *rttEstimate) timeout(floor, limit time.Duration) time.Duration {
	if e.n == 0 {
		return floor
	}
	return min(max(floor, e.srtt+4*e.rttvar), max(floor, limit))
}

// sentPing is a ping whose answer is still worth timing after its probe
// or relay ended: a late answer says how late answers are.
type sentPing struct {
	seq    uint64
	target ID
	at     time.Time
}

// lateWindow bounds how many ended pings are remembered for their late
// answers.
const lateWindow = 32
