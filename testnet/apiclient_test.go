package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawAPI talks to a daemon's HTTP API the way a script would: the address
// and token read from the repo, plain net/http.
type rawAPI struct {
	base, token string
}

func apiClient(t *testing.T, d *Daemon) rawAPI {
	t.Helper()
	u, err1 := os.ReadFile(filepath.Join(d.Repo, "api"))
	tok, err2 := os.ReadFile(filepath.Join(d.Repo, "api.token"))
	if err1 != nil || err2 != nil {
		t.Fatalf("read api files: %v %v", err1, err2)
	}
	if fi, _ := os.Stat(filepath.Join(d.Repo, "api.token")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.token has mode %v, want 0600", fi.Mode().Perm())
	}
	return rawAPI{strings.TrimSpace(string(u)), strings.TrimSpace(string(tok))}
}

func (a rawAPI) req(method, path, token string, body io.Reader) (*http.Response, error) {
	r, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return http.DefaultClient.Do(r)
}

func (a rawAPI) status(method, path, token string) int {
	if token == "" {
		token = a.token
	}
	resp, err := a.req(method, path, token, nil)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (a rawAPI) upload(name string, b []byte) (shareOut, error) {
	var out shareOut
	resp, err := a.req("POST", "/api/v1/share?name="+name, a.token, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return out, fmt.Errorf("upload: %d %s", resp.StatusCode, msg)
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

func (a rawAPI) download(ref string) ([]byte, string, error) {
	resp, err := a.req("GET", "/api/v1/cat?ref="+ref, a.token, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("download: %d %s", resp.StatusCode, b)
	}
	return b, resp.Header.Get("X-P2pshare-Provider"), err
}
