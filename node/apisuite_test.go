package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pshare/p2pshare/node/api"
)

// The API suite: one table of behaviours of api.API, run against the
// in-process CoreAPI of two real nodes (TestAPISuiteInProcess) and against
// api.Client talking to the HTTP server over the same CoreAPIs
// (TestAPISuiteOverHTTP). Over HTTP every error's kind must come back
// through its status: errors.Is works the same on both sides.

// apiEnv is what a case runs against: the API of two nodes of one network.
type apiEnv struct {
	a, b   api.API
	na, nb *Node
	// status is the HTTP status of the last answer of either node's
	// server; nil in process.
	status func() int
}

// suiteMaxFile is the test nodes' largest shareable file.
const suiteMaxFile = 1 << 20

// wantStatus is the HTTP status each kind must be answered with.
var wantStatus = map[error]int{
	api.ErrBadInput:    http.StatusBadRequest,
	api.ErrSecret:      http.StatusForbidden,
	api.ErrNotFound:    http.StatusNotFound,
	api.ErrExists:      http.StatusConflict,
	api.ErrTooLarge:    http.StatusRequestEntityTooLarge,
	api.ErrNotDaemon:   http.StatusNotImplemented,
	api.ErrClockOff:    http.StatusServiceUnavailable,
	api.ErrNoSpace:     http.StatusInsufficientStorage,
	api.ErrWriterLimit: http.StatusInsufficientStorage,
}

// wantKind fails unless err is of kind (and, over HTTP, was answered with
// its status), with a message that says what was done.
func (e *apiEnv) wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: %v, want an error of kind %q", what, err, kind)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), ":") {
		t.Fatalf("%s: %q is not a one-line \"WHAT: WHY\"", what, err)
	}
	if e.status != nil {
		if got := e.status(); got != wantStatus[kind] {
			t.Fatalf("%s: HTTP status %d, want %d for %q", what, got, wantStatus[kind], kind)
		}
	}
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

var apiSuite = []struct {
	name string
	run  func(t *testing.T, e *apiEnv)
}{
	{"id names the node", func(t *testing.T, e *apiEnv) {
		id, err := e.a.ID(context.Background())
		mustOK(t, "id", err)
		if id.ID != e.na.Host().ID().String() || len(id.Addrs) == 0 || !strings.HasSuffix(id.Addrs[0], "/p2p/"+id.ID) {
			t.Fatalf("id = %+v, want peer %s with its addresses", id, e.na.Host().ID())
		}
	}},
	{"share a body, cat and get it from the other node", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		body := []byte("shared by body\n")
		res, err := e.a.Share(ctx, api.ShareRequest{Name: "suite-body.txt", Body: bytes.NewReader(body)})
		mustOK(t, "share", err)
		if res.Name != "suite-body.txt" || res.Size != int64(len(body)) || res.CID == "" {
			t.Fatalf("share = %+v", res)
		}
		got, rc, err := e.b.Cat(ctx, "suite-body.txt")
		mustOK(t, "cat", err)
		b, _ := io.ReadAll(rc)
		fin, ok := rc.Result()
		rc.Close()
		if !bytes.Equal(b, body) || got.CID != res.CID {
			t.Fatalf("cat = %+v %q, want %s %q", got, b, res.CID, body)
		}
		if a := e.na.Host().ID().String(); !ok || fin.CID != res.CID || fin.Size != res.Size || fin.Provider != a || fin.Via != "direct" {
			t.Fatalf("cat result = %+v, %v; want %s's %d bytes from %s, direct", fin, ok, res.CID, res.Size, a)
		}
		out := filepath.Join(t.TempDir(), "out.txt")
		g, err := e.b.Get(ctx, api.GetRequest{Ref: res.CID, Path: out})
		mustOK(t, "get by CID", err)
		if b, _ := os.ReadFile(out); !bytes.Equal(b, body) || g.Size != int64(len(body)) {
			t.Fatalf("get wrote %q (%+v)", b, g)
		}
	}},
	{"share a path the node reads, get it into a directory", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		src := filepath.Join(t.TempDir(), "suite-path.txt")
		mustOK(t, "write", os.WriteFile(src, []byte("shared by path\n"), 0o600))
		res, err := e.a.Share(ctx, api.ShareRequest{Path: src})
		mustOK(t, "share", err)
		if res.Name != "suite-path.txt" {
			t.Fatalf("share named it %q, want the file's name", res.Name)
		}
		dir := t.TempDir()
		_, err = e.b.Get(ctx, api.GetRequest{Ref: "suite-path.txt", Path: dir, Dir: true})
		mustOK(t, "get", err)
		if b, _ := os.ReadFile(filepath.Join(dir, "suite-path.txt")); string(b) != "shared by path\n" {
			t.Fatalf("get wrote %q", b)
		}
	}},
	{"share refusals", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		dir := t.TempDir()
		big := filepath.Join(dir, "big.bin")
		mustOK(t, "write", os.WriteFile(big, make([]byte, suiteMaxFile+1), 0o600))
		for _, tc := range []struct {
			what string
			req  api.ShareRequest
			kind error
		}{
			{"a relative path", api.ShareRequest{Path: "notes.txt"}, api.ErrBadInput},
			{"a missing file", api.ShareRequest{Path: filepath.Join(dir, "missing.txt")}, api.ErrBadInput},
			{"a directory", api.ShareRequest{Path: dir}, api.ErrBadInput},
			{"the node's identity key", api.ShareRequest{Path: e.na.Repo().Path(repoKeyFile)}, api.ErrSecret},
			{"a file over the limit", api.ShareRequest{Path: big}, api.ErrTooLarge},
			{"a body over the limit", api.ShareRequest{Name: "big.bin", Body: bytes.NewReader(make([]byte, suiteMaxFile+1))}, api.ErrTooLarge},
			{"a name with an empty path component", api.ShareRequest{Name: "a//b.txt", Body: strings.NewReader("x")}, api.ErrBadInput},
			{"a name climbing out of its folder", api.ShareRequest{Name: "a/../b.txt", Body: strings.NewReader("x")}, api.ErrBadInput},
			{"an empty name", api.ShareRequest{Name: "", Body: strings.NewReader("x")}, api.ErrBadInput},
		} {
			_, err := e.a.Share(ctx, tc.req)
			e.wantKind(t, "share "+tc.what, err, tc.kind)
		}
	}},
	{"get onto an existing file needs force", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		_, err := e.a.Share(ctx, api.ShareRequest{Name: "suite-exists.txt", Body: strings.NewReader("new\n")})
		mustOK(t, "share", err)
		out := filepath.Join(t.TempDir(), "mine.txt")
		mustOK(t, "write", os.WriteFile(out, []byte("precious\n"), 0o600))
		_, err = e.b.Get(ctx, api.GetRequest{Ref: "suite-exists.txt", Path: out})
		e.wantKind(t, "get onto a file", err, api.ErrExists)
		if b, _ := os.ReadFile(out); string(b) != "precious\n" {
			t.Fatalf("the existing file now holds %q", b)
		}
		_, err = e.b.Get(ctx, api.GetRequest{Ref: "suite-exists.txt", Path: out, Force: true})
		mustOK(t, "get --force", err)
		if b, _ := os.ReadFile(out); string(b) != "new\n" {
			t.Fatalf("get --force wrote %q", b)
		}
	}},
	{"get and cat refusals", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		out := filepath.Join(t.TempDir(), "out")
		_, err := e.a.Get(ctx, api.GetRequest{Ref: "no-such-file.txt", Path: out})
		e.wantKind(t, "get an unknown name", err, api.ErrNotFound)
		_, err = e.a.Get(ctx, api.GetRequest{Ref: "bafkrei" + strings.Repeat("1", 52), Path: out})
		e.wantKind(t, "get a mistyped CID", err, api.ErrBadInput)
		_, err = e.a.Get(ctx, api.GetRequest{Ref: "x.txt", Path: "relative/out"})
		e.wantKind(t, "get into a relative path", err, api.ErrBadInput)
		_, err = e.a.Get(ctx, api.GetRequest{Path: out})
		e.wantKind(t, "get nothing", err, api.ErrBadInput)
		_, _, err = e.a.Cat(ctx, "no-such-file.txt")
		e.wantKind(t, "cat an unknown name", err, api.ErrNotFound)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused get left %s", out)
		}
	}},
	{"ls and search the catalog", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		_, err := e.a.Share(ctx, api.ShareRequest{Name: "Suite-Search-Report.pdf", Body: strings.NewReader("report")})
		mustOK(t, "share", err)
		waitFor(t, 10*time.Second, "the name in the other node's catalog", func() bool {
			es, err := e.b.Catalog(ctx, "search-report")
			return err == nil && len(es) == 1 && es[0].Name == "Suite-Search-Report.pdf"
		})
		all, err := e.b.Catalog(ctx, "")
		mustOK(t, "ls", err)
		for i := 1; i < len(all); i++ {
			if all[i-1].Name > all[i].Name {
				t.Fatalf("ls is not sorted by name: %q before %q", all[i-1].Name, all[i].Name)
			}
		}
		if es, err := e.b.Catalog(ctx, "no-such-term-anywhere"); err != nil || len(es) != 0 {
			t.Fatalf("search for nothing = %v, %v", es, err)
		}
	}},
	{"kv put, get, ls, delete", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		put, err := e.a.KVPut(ctx, api.KVPutRequest{Key: "suite/colour", Value: []byte("blue"), TTL: "1h"})
		mustOK(t, "kv put", err)
		if put.Key != "suite/colour" || put.Value != "blue" || put.Writer != e.na.Host().ID().String() || put.Expires == "" {
			t.Fatalf("kv put = %+v", put)
		}
		waitFor(t, 10*time.Second, "the key on the other node", func() bool {
			got, err := e.b.KVGet(ctx, "suite/colour")
			return err == nil && got.Value == "blue"
		})
		ls, err := e.a.KVList(ctx)
		mustOK(t, "kv ls", err)
		found := false
		for _, k := range ls {
			found = found || k.Key == "suite/colour"
		}
		if !found {
			t.Fatalf("kv ls = %+v, want suite/colour", ls)
		}
		del, err := e.a.KVDelete(ctx, "suite/colour")
		mustOK(t, "kv del", err)
		if !del.Deleted {
			t.Fatalf("kv del = %+v, want a tombstone", del)
		}
		_, err = e.a.KVGet(ctx, "suite/colour")
		e.wantKind(t, "kv get a deleted key", err, api.ErrNotFound)
	}},
	{"kv refusals", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		_, err := e.a.KVGet(ctx, "suite/never-written")
		e.wantKind(t, "kv get an unknown key", err, api.ErrNotFound)
		_, err = e.a.KVPut(ctx, api.KVPutRequest{Key: "", Value: []byte("v")})
		e.wantKind(t, "kv put an empty key", err, api.ErrBadInput)
		_, err = e.a.KVPut(ctx, api.KVPutRequest{Key: "bad\x00key", Value: []byte("v")})
		e.wantKind(t, "kv put a key with a NUL", err, api.ErrBadInput)
		_, err = e.a.KVPut(ctx, api.KVPutRequest{Key: "suite/ttl", Value: []byte("v"), TTL: "soon"})
		e.wantKind(t, "kv put a TTL that is no duration", err, api.ErrBadInput)
		_, err = e.a.KVPut(ctx, api.KVPutRequest{Key: "suite/ttl", Value: []byte("v"), TTL: "-5s"})
		e.wantKind(t, "kv put a negative TTL", err, api.ErrBadInput)
		_, err = e.a.KVPut(ctx, api.KVPutRequest{Key: "suite/big", Value: make([]byte, 65<<10)})
		e.wantKind(t, "kv put a value over the limit", err, api.ErrTooLarge)
		_, err = e.a.KVDelete(ctx, "suite/never-written")
		e.wantKind(t, "kv del an unknown key", err, api.ErrNotFound)
		if _, err := e.a.KVGet(ctx, "suite/ttl"); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("a refused put stored the key: %v", err)
		}
	}},
	{"members and peers list both nodes", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		waitFor(t, 10*time.Second, "both members alive", func() bool {
			ms, err := e.a.Members(ctx)
			alive := 0
			for _, m := range ms {
				if m.State == "alive" {
					alive++
				}
			}
			return err == nil && alive == 2
		})
		ps, err := e.a.Peers(ctx)
		mustOK(t, "peers", err)
		found := false
		for _, p := range ps {
			found = found || p.ID == e.nb.Host().ID().String()
		}
		if !found {
			t.Fatalf("peers = %+v, want %s", ps, e.nb.Host().ID())
		}
	}},
	{"stats, transfers, and what a node run in process refuses", func(t *testing.T, e *apiEnv) {
		ctx := context.Background()
		st, err := e.a.Stats(ctx)
		mustOK(t, "stats", err)
		if st.UptimeSeconds <= 0 || len(st.Protocols) == 0 {
			t.Fatalf("stats = %+v", st)
		}
		if _, err := e.a.Transfers(ctx); err != nil {
			t.Fatalf("transfers: %v", err)
		}
		e.wantKind(t, "shutdown", e.a.Shutdown(ctx), api.ErrNotDaemon)
		_, err = e.a.Revoke(ctx, []byte("not a revocation"))
		e.wantKind(t, "revoke without an authority", err, api.ErrBadInput)
	}},
}

// runAPISuite runs every case against the env made by env.
func runAPISuite(t *testing.T, env func(t *testing.T, na, nb *Node) *apiEnv) {
	nodes := newTestNetwork(t, 2, func(c *Config) { c.Share.MaxFileSize = suiteMaxFile })
	e := env(t, nodes[0], nodes[1])
	for _, tc := range apiSuite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, e) })
	}
}

func TestAPISuiteInProcess(t *testing.T) {
	runAPISuite(t, func(t *testing.T, na, nb *Node) *apiEnv {
		return &apiEnv{a: na.API(), b: nb.API(), na: na, nb: nb}
	})
}

func TestAPISuiteOverHTTP(t *testing.T) {
	runAPISuite(t, func(t *testing.T, na, nb *Node) *apiEnv {
		var last atomic.Int32
		serve := func(n *Node) *api.Client {
			srv := api.NewServer(n.API(), "suite-token", quietLogger())
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				last.Store(http.StatusOK)
				srv.ServeHTTP(&statusWriter{ResponseWriter: w, last: &last}, r)
			}))
			t.Cleanup(hs.Close)
			return api.NewClient(hs.URL, "suite-token")
		}
		return &apiEnv{a: serve(na), b: serve(nb), na: na, nb: nb,
			status: func() int { return int(last.Load()) }}
	})
}

// statusWriter records the status of an answer before the client can
// read it.
type statusWriter struct {
	http.ResponseWriter
	last *atomic.Int32
}

func (w *statusWriter) WriteHeader(status int) {
	w.last.Store(int32(status))
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
