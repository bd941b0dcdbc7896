package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

// version and --version print the same line; --json the same facts.
func TestVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb.String())
	}
	line := out.String()
	if !strings.HasPrefix(line, "p2pshare ") || !strings.Contains(line, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("version printed %q", line)
	}
	for _, flag := range []string{"--version", "-v"} {
		out.Reset()
		if code := run([]string{flag}, &out, &errb); code != 0 || out.String() != line {
			t.Fatalf("%s: exit %d, %q; want %q", flag, code, out.String(), line)
		}
	}
	out.Reset()
	if code := run([]string{"version", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, errb.String())
	}
	var b buildInfo
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatalf("version --json printed %q: %v", out.String(), err)
	}
	if b.Version == "" || b.Commit == "" || b.Go != runtime.Version() || b.OS != runtime.GOOS || b.Arch != runtime.GOARCH {
		t.Fatalf("version --json: %+v", b)
	}
}

// --log-format json writes one JSON object a line; text key=value.
func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		format, want string
	}{
		{"json", `{"time":`},
		{"text", `time=`},
	} {
		var w bytes.Buffer
		log, err := newLogger(&w, tc.format, slog.LevelInfo)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("ready", "peer", "12D3")
		if !strings.HasPrefix(w.String(), tc.want) || !strings.Contains(w.String(), "ready") {
			t.Errorf("--log-format %s wrote %q", tc.format, w.String())
		}
		if tc.format == "json" && !json.Valid(w.Bytes()) {
			t.Errorf("--log-format json wrote %q, not JSON", w.String())
		}
	}
	if _, err := newLogger(&bytes.Buffer{}, "xml", slog.LevelInfo); err == nil {
		t.Error("--log-format xml accepted")
	}
}

// The root command alone prints its help; an argument that names no
// command is a usage error, with --version too.
func TestRootCommand(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{nil, 0, "Usage:", ""},
		{[]string{"shrae", "notes.txt"}, 2, "", `p2pshare: usage: unknown command "shrae" for "p2pshare"`},
		{[]string{"shrae", "--version"}, 2, "", `p2pshare: usage: unknown command "shrae" for "p2pshare"`},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.HasPrefix(errb.String(), tc.err) {
			t.Errorf("p2pshare %q: exit %d, out %q, err %q; want exit %d, out with %q, err starting %q",
				tc.args, code, out.String(), errb.String(), tc.code, tc.out, tc.err)
		}
	}
}
