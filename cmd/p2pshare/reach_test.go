package main

import (
	"strings"
	"testing"
)

func TestParseAnnounce(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"/ip4/203.0.113.7/tcp/4040", ""},
		{"/ip6/2001:db8::1/udp/4040/quic-v1", ""},
		{"/dns4/share.example.org/tcp/4040", ""},
		{"garbage", "not a multiaddr"},
		{"/ip4/203.0.113.7", "no TCP or UDP port"},
		{"/tcp/4040", "must start with"},
		{"/ip4/203.0.113.7/tcp/4040/p2p/12D3KooWBbXSuhty2HDZQJmG4897efxtWUcZJw8kfPfVb71FHJX5", "must not end in /p2p"},
	} {
		_, err := parseAnnounce(tc.in)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseAnnounce(%q) = %v, want error containing %q", tc.in, err, tc.err)
		}
	}
}
