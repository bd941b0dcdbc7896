package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/p2pshare/p2pshare/internal/oserr"
)

// ErrNoDaemon: no daemon is running on the repo.
var ErrNoDaemon = errors.New("no daemon running")

// Client is an API over HTTP, for the CLI and scripts.
type Client struct {
	base  string // http://HOST:PORT
	token string
	hc    *http.Client
	repo  string
}

var _ API = (*Client)(nil)

// NewClient returns a client of the API at base (http://HOST:PORT) with the
// bearer token.
func NewClient(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{}}
}

// Dial finds the daemon of the repo at dir through its api and api.token
// files. It fails with ErrNoDaemon, saying what to do, when none runs.
func Dial(dir string) (*Client, error) {
	u, err := os.ReadFile(filepath.Join(dir, "api"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w on repo %s (start one with 'p2pshare daemon')", ErrNoDaemon, dir)
		}
		return nil, fmt.Errorf("read api address: %w", err)
	}
	t, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	c := NewClient(strings.TrimSpace(string(u)), strings.TrimSpace(string(t)))
	c.repo = dir
	return c, nil
}

// Base returns the API's base URL (http://HOST:PORT).
func (c *Client) Base() string { return c.base }

// Token returns the bearer token the client sends.
func (c *Client) Token() string { return c.token }

// do sends a request with the token and the header fields hdr (name,
// value pairs), and turns an error answer into an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, hdr ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+PathPrefix+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if oserr.ConnRefused(err) && c.repo != "" {
			return nil, fmt.Errorf("%w on repo %s (its api file is stale; start one with 'p2pshare daemon')", ErrNoDaemon, c.repo)
		}
		return nil, fmt.Errorf("reach daemon at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var body errorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxJSONBody))
		if json.Unmarshal(b, &body) != nil || body.Error == "" {
			body.Error = strings.TrimSpace(string(b))
		}
		kind := kindByName(body.Kind)
		if kind == nil {
			kind = kindOfStatus(resp.StatusCode)
		}
		return nil, &Error{Kind: kind, Message: body.Error}
	}
	return resp, nil
}

// call sends in (if not nil) as JSON and decodes the JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	return c.send(ctx, method, path, body, ctype, out)
}

// send sends body as is, with content type ctype, and decodes the JSON
// answer into out.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	var hdr []string
	if ctype != "" {
		hdr = []string{"Content-Type", ctype}
	}
	resp, err := c.do(ctx, method, path, body, hdr...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode daemon answer: %w", err)
	}
	return nil
}

// ID implements API.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var out IDInfo
	return out, c.call(ctx, http.MethodGet, "id", nil, &out)
}

// Share implements API: a Path is sent as JSON, a Body is uploaded.
func (c *Client) Share(ctx context.Context, req ShareRequest) (ShareResult, error) {
	var out ShareResult
	if req.Body == nil {
		if err := checkUTF8(req.Name, req.Path); err != nil {
			return out, err
		}
		return out, c.call(ctx, http.MethodPost, "share", req, &out)
	}
	return out, c.send(ctx, http.MethodPost, "share?name="+url.QueryEscape(req.Name)+"&id="+url.QueryEscape(req.ID), req.Body, "application/octet-stream", &out)
}

// Get implements API.
func (c *Client) Get(ctx context.Context, req GetRequest) (GetResult, error) {
	var out GetResult
	if err := checkUTF8(req.Ref, req.Path); err != nil {
		return out, err
	}
	return out, c.call(ctx, http.MethodPost, "get", req, &out)
}

// checkUTF8 refuses a name (or name or CID) and a path that JSON cannot
// carry: encoding/json replaces bytes that are not UTF-8 with U+FFFD, so
// they would reach the daemon as another name or another path.
func checkUTF8(name, path string) error {
	if !utf8.ValidString(name) {
		return Errorf(ErrBadInput, "invalid name %q: not valid UTF-8", name)
	}
	if !utf8.ValidString(path) {
		return Errorf(ErrBadInput, "path %q: not valid UTF-8 (the API carries paths as JSON text)", path)
	}
	return nil
}

// Cat implements API. It asks for the get's answer as a trailer, which
// the body's Result returns once read to its end.
func (c *Client) Cat(ctx context.Context, ref string) (GetResult, CatBody, error) {
	resp, err := c.do(ctx, http.MethodGet, "cat?ref="+url.QueryEscape(ref), nil, "TE", "trailers")
	if err != nil {
		return GetResult{}, nil, err
	}
	name, _ := url.PathUnescape(resp.Header.Get(HeaderName))
	size, err := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64)
	if err != nil {
		size = resp.ContentLength
	}
	res := GetResult{Name: name, CID: resp.Header.Get(HeaderCID), Provider: resp.Header.Get(HeaderProvider), Size: size}
	return res, catBody{resp}, nil
}

// catBody is the body of a cat answer.
type catBody struct{ resp *http.Response }

func (b catBody) Read(p []byte) (int, error) { return b.resp.Body.Read(p) }

func (b catBody) Close() error { return b.resp.Body.Close() }

// Result implements CatBody: the trailer, there once the body is read.
func (b catBody) Result() (GetResult, bool) {
	v, err := url.PathUnescape(b.resp.Trailer.Get(HeaderResult))
	var res GetResult
	if err != nil || v == "" || json.Unmarshal([]byte(v), &res) != nil {
		return GetResult{}, false
	}
	return res, true
}

// Peers implements API.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	return out, c.call(ctx, http.MethodGet, "peers", nil, &out)
}

// Shutdown implements API.
func (c *Client) Shutdown(ctx context.Context) error {
	var out map[string]bool
	return c.call(ctx, http.MethodPost, "shutdown", nil, &out)
}

// Members implements API.
func (c *Client) Members(ctx context.Context) ([]MemberInfo, error) {
	var out []MemberInfo
	return out, c.call(ctx, http.MethodGet, "members", nil, &out)
}

// Leave implements API.
func (c *Client) Leave(ctx context.Context) (LeaveResult, error) {
	var out LeaveResult
	return out, c.call(ctx, http.MethodPost, "leave", nil, &out)
}

// Stats implements API.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	return out, c.call(ctx, http.MethodGet, "stats", nil, &out)
}

// kvPath is the KV endpoint for key.
func kvPath(key string) string { return "kv?key=" + url.QueryEscape(key) }

// KVPut implements API.
func (c *Client) KVPut(ctx context.Context, req KVPutRequest) (KVEntry, error) {
	var out KVEntry
	p := kvPath(req.Key)
	if req.TTL != "" {
		p += "&ttl=" + url.QueryEscape(req.TTL)
	}
	return out, c.send(ctx, http.MethodPut, p, bytes.NewReader(req.Value), "application/octet-stream", &out)
}

// KVGet implements API.
func (c *Client) KVGet(ctx context.Context, key string) (KVEntry, error) {
	var out KVEntry
	return out, c.call(ctx, http.MethodGet, kvPath(key), nil, &out)
}

// KVDelete implements API.
func (c *Client) KVDelete(ctx context.Context, key string) (KVEntry, error) {
	var out KVEntry
	return out, c.call(ctx, http.MethodDelete, kvPath(key), nil, &out)
}

// KVList implements API.
func (c *Client) KVList(ctx context.Context) ([]KVEntry, error) {
	var out []KVEntry
	return out, c.call(ctx, http.MethodGet, "kv/ls", nil, &out)
}

// Catalog implements API.
func (c *Client) Catalog(ctx context.Context, term string) ([]CatalogEntry, error) {
	var out []CatalogEntry
	return out, c.call(ctx, http.MethodGet, "catalog?q="+url.QueryEscape(term), nil, &out)
}

// Revoke implements API.
func (c *Client) Revoke(ctx context.Context, revocation []byte) (RevokeResult, error) {
	var out RevokeResult
	return out, c.send(ctx, http.MethodPost, "revoke", bytes.NewReader(revocation), "application/json", &out)
}

// Transfers implements API.
func (c *Client) Transfers(ctx context.Context) ([]Transfer, error) {
	var out []Transfer
	return out, c.call(ctx, http.MethodGet, "transfers", nil, &out)
}
