package share

import (
	"context"

	"golang.org/x/time/rate"
)

// newBandwidth returns the token bucket of a byte rate shared by all the
// transfers of one direction, or nil (no limit) for bps <= 0. Its burst is
// a tenth of a second of the rate, at least 4 KiB and at most 1 MiB: small
// enough that a limited node never sends a long burst over a thin link,
// large enough that a fast limit does not wake the copy loops too often.
func newBandwidth(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}
	burst := min(max(bps/10, 4<<10), 1<<20)
	return rate.NewLimiter(rate.Limit(bps), int(burst))
}

// piece returns how many of n bytes a copy loop moves before it asks lim
// again: all of them without a limit, else at most the bucket's burst.
func piece(lim *rate.Limiter, n int) int {
	if lim == nil {
		return n
	}
	return min(n, lim.Burst())
}

// spend waits until lim lets n bytes (n <= piece(lim, n)) pass, or ctx is
// done. A nil lim lets everything through at once.
func spend(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil || n <= 0 {
		return nil
	}
	return lim.WaitN(ctx, n)
}
