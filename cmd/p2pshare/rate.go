package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rateUnits are the units parseRate takes, in bytes per second: bytes with
// decimal (kB, MB, GB) and binary (KiB, MiB, GiB) prefixes, and bits with
// decimal prefixes (kbit, Mbit, Gbit), as network links are sold.
var rateUnits = map[string]float64{
	"": 1, "B": 1,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
	"bit": 1.0 / 8, "kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8,
}

// errRateSyntax says what a rate looks like.
var errRateSyntax = errors.New("want a number and a unit, like 10MB/s, 512KiB/s or 8Mbit (0: no limit)")

// parseRate parses a byte rate: a number, an optional unit of rateUnits
// (B when none) and an optional "/s". It returns bytes per second, 0 for
// no limit.
func parseRate(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	v, err := strconv.ParseFloat(num, 64)
	mult, ok := rateUnits[unit]
	if err != nil || !ok {
		return 0, errRateSyntax
	}
	bps := v * mult
	switch {
	case bps == 0:
		return 0, nil
	case bps < 1024:
		return 0, fmt.Errorf("%.0f bytes/s is below the least limit, 1KiB/s (0: no limit)", bps)
	case bps > math.MaxInt64/2:
		return 0, errors.New("too large (0: no limit)")
	}
	return int64(bps), nil
}
