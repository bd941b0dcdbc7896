package swim

import "time"

// rttEstimate is how long this node's pings take to be answered, kept as
// TCP keeps its retransmission timeout (RFC 6298): a smoothed round-trip
// time and its mean deviation. Why the timeouts follow it: the package
// comment, "Ping timeouts that follow the answers".
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
