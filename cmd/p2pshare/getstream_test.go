package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pshare/p2pshare/node/api"
)

// catStub is a daemon that answers a cat of anything with data, served
// by last after first failed.
type catStub struct {
	api.API
	data []byte
	res  api.GetResult
}

func (s catStub) Cat(context.Context, string) (api.GetResult, api.CatBody, error) {
	head := api.GetResult{Name: s.res.Name, CID: s.res.CID, Size: int64(len(s.data)), Provider: "12D3KooFirstProvider"}
	return head, &stubBody{r: bytes.NewReader(s.data), res: s.res}, nil
}

type stubBody struct {
	r   io.Reader
	eof bool
	res api.GetResult
}

func (b *stubBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.eof = b.eof || err == io.EOF
	return n, err
}

func (b *stubBody) Close() error { return nil }

func (b *stubBody) Result() (api.GetResult, bool) { return b.res, b.eof }

// stubDaemon serves a catStub of size random bytes behind a repo's api
// files, and returns the repo and what the daemon answers.
func stubDaemon(t *testing.T, size int) (string, catStub) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	sum, _ := mh.Sum(data, mh.SHA2_256, -1)
	s := catStub{data: data, res: api.GetResult{
		Name: "notes.bin", CID: cid.NewCidV1(cid.Raw, sum).String(), Size: int64(size),
		Provider: "12D3KooLastProvider", RTTMillis: 0.5, Via: "direct", ResumedFrom: 4096,
		Attempts: []api.Attempt{{Peer: "12D3KooFirstProvider", Bytes: 4096, Error: "stalled"}, {Peer: "12D3KooLastProvider", Offset: 4096, Bytes: int64(size) - 4096}},
	}}
	hs := httptest.NewServer(api.NewServer(s, "secret", nil))
	t.Cleanup(hs.Close)
	repo := t.TempDir()
	for name, v := range map[string]string{"api": hs.URL, "api.token": "secret"} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return repo, s
}

// fakeTerminal makes every writer a terminal, or none, for the test.
func fakeTerminal(t *testing.T, is bool) {
	t.Helper()
	old := terminal
	terminal = func(io.Writer) bool { return is }
	t.Cleanup(func() { terminal = old })
}

// A streamed get on a terminal draws a bar of the bytes received, named
// after the ref and the provider, on stderr, and clears it at the end; not
// on a pipe, and not with --json.
func TestStreamGetProgress(t *testing.T) {
	repo, s := stubDaemon(t, 3<<20)
	for _, tc := range []struct {
		name     string
		terminal bool
		json     bool
		bar      bool
	}{
		{"terminal", true, false, true},
		{"terminal, --json", true, true, false},
		{"pipe", false, false, false},
		{"pipe, --json", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeTerminal(t, tc.terminal)
			out := filepath.Join(t.TempDir(), "got.bin")
			args := []string{"--repo", repo, "get", "notes.bin", "-o", out, "--stream"}
			if tc.json {
				args = append(args, "--json")
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("get: exit %d: %s", code, stderr.String())
			}
			if b, _ := os.ReadFile(out); !bytes.Equal(b, s.data) {
				t.Fatal("the file differs from the bytes served")
			}
			drawn := stderr.String()
			if !tc.bar {
				if drawn != "" {
					t.Fatalf("stderr holds %q, want nothing", drawn)
				}
				return
			}
			if !strings.Contains(drawn, "notes.bin from "+shortID("12D3KooFirstProvider")) || !strings.Contains(drawn, "%") || !strings.Contains(drawn, "MB") {
				t.Fatalf("no bar of the ref, its provider and the bytes on stderr: %q", drawn)
			}
			if !strings.HasSuffix(drawn, "\r") || strings.TrimSpace(drawn[strings.LastIndex(strings.TrimRight(drawn, "\r"), "\r")+1:]) != "" {
				t.Fatalf("the bar is not cleared at the end: %q", drawn)
			}
		})
	}
}

// A streamed get answers with the daemon's account of the transfer and
// its own of the file.
func TestStreamGetJSON(t *testing.T) {
	repo, s := stubDaemon(t, 1<<20+3)
	out := filepath.Join(t.TempDir(), "got.bin")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--repo", repo, "get", "notes.bin", "-o", out, "--stream", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("get: exit %d: %s", code, stderr.String())
	}
	var got api.GetResult
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := s.res
	want.Path, want.Millis = out, got.Millis
	if got.Millis <= 0 || !jsonEqual(got, want) {
		t.Fatalf("get --json = %+v, want %+v", got, want)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
