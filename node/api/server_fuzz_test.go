package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// stubAPI answers the endpoints the fuzzer drives; anything else would
// panic on the nil embedded interface, which the fuzzer would report.
type stubAPI struct{ API }

func (stubAPI) Get(_ context.Context, req GetRequest) (GetResult, error) {
	if req.Ref == "" {
		return GetResult{}, Errorf(ErrBadInput, "no ref")
	}
	return GetResult{Name: req.Ref}, nil
}

func (stubAPI) KVPut(_ context.Context, req KVPutRequest) (KVEntry, error) {
	return KVEntry{Key: req.Key, Size: len(req.Value)}, nil
}

func (stubAPI) Revoke(context.Context, []byte) (RevokeResult, error) {
	return RevokeResult{}, Errorf(ErrBadInput, "no authority")
}

// FuzzServerRequestBodies: whatever body, path query or method arrives,
// the server answers with a JSON body and a status, never a panic, and a
// request without the token never reaches the API.
func FuzzServerRequestBodies(f *testing.F) {
	f.Add("POST", "get", []byte(`{"ref":"notes.txt","path":"/tmp/x"}`), true)
	f.Add("POST", "get", []byte(`{"ref":1}`), true)
	f.Add("POST", "get", []byte(`{"ref":"a","extra":true}`), true)
	f.Add("PUT", "kv?key=a&ttl=1h", []byte("value"), true)
	f.Add("PUT", "kv", []byte("value"), true)
	f.Add("POST", "revoke", []byte(`{"peer":"x"}`), true)
	f.Add("POST", "get", []byte(`{"ref":"notes.txt"}`), false)
	f.Add("GET", "../../etc/passwd", []byte{}, true)
	f.Fuzz(func(t *testing.T, method, path string, body []byte, auth bool) {
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			method = "POST"
		}
		base, query, _ := strings.Cut(path, "?")
		switch base {
		case "get", "kv", "revoke":
		default:
			base = "get" // the stub answers only these
		}
		path = base
		if query != "" {
			path += "?" + query
		}
		srv := NewServer(stubAPI{}, "secret", nil)
		req, err := http.NewRequest(method, "http://127.0.0.1:1/api/v1/x", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = PathPrefix + path
		if i := bytes.IndexByte([]byte(path), '?'); i >= 0 {
			req.URL.Path, req.URL.RawQuery = PathPrefix+path[:i], path[i+1:]
		}
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer secret")
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if !auth && w.Code != http.StatusUnauthorized {
			t.Fatalf("no token: status %d, want 401", w.Code)
		}
		if w.Code >= 400 && w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusMovedPermanently {
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || (w.Code < 500 && kindByName(e.Kind) == nil) {
				t.Fatalf("status %d with a body that is not an error object of a kind: %q", w.Code, w.Body.String())
			}
		}
	})
}
