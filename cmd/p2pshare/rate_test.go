package main

import "testing"

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"0MB/s", 0, true},
		{"2048", 2048, true},
		{"10MB/s", 10_000_000, true},
		{"10MB", 10_000_000, true},
		{"1.5MiB/s", 1572864, true},
		{"512KiB/s", 512 << 10, true},
		{"64kB/s", 64_000, true},
		{"8Mbit", 1_000_000, true},
		{"8Mbit/s", 1_000_000, true},
		{"1Gbit", 125_000_000, true},
		{" 100 KB/s ", 100_000, true},
		{"", 0, false},
		{"fast", 0, false},
		{"10XB/s", 0, false},
		{"10mb", 0, false}, // megabits or megabytes? neither: say which
		{"-5MB", 0, false},
		{"1.2.3MB", 0, false},
		{"MB/s", 0, false},
		{"100", 0, false},    // below 1 KiB/s
		{"1e30GB", 0, false}, // not a plain number
		{"99999999999GB", 0, false},
	} {
		got, err := parseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
