package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/p2pshare/p2pshare/node/api/dashboard"
)

// Limits of the API server.
const (
	// MaxJSONBody caps a JSON request body.
	MaxJSONBody = 64 << 10
	// PathPrefix is where the API lives.
	PathPrefix = "/api/v1/"
)

// Header names of download answers.
const (
	HeaderCID      = "X-P2pshare-Cid"
	HeaderProvider = "X-P2pshare-Provider"
	HeaderName     = "X-P2pshare-Name"
	HeaderSize     = "X-P2pshare-Size"
	// HeaderResult is the trailer of a cat asked with "TE: trailers": the
	// get's answer (CatBody.Result) as JSON, path-escaped.
	HeaderResult = "X-P2pshare-Result"
)

// Server serves an API over HTTP. Every request needs "Authorization: Bearer
// TOKEN"; the Host header must name a loopback host (no DNS rebinding), and
// cross-origin requests are refused. The one exception to the token is the
// dashboard's static app shell (see serveDashboard).
type Server struct {
	api   API
	token string
	log   *slog.Logger
	mux   *http.ServeMux
	dash  http.Handler
}

// NewServer returns the HTTP handler of api.
func NewServer(api API, token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{api: api, token: token, log: log.With("component", "api"), mux: http.NewServeMux(), dash: dashboard.Handler()}
	s.mux.HandleFunc("GET "+PathPrefix+"id", s.handleID)
	s.mux.HandleFunc("POST "+PathPrefix+"share", s.handleShare)
	s.mux.HandleFunc("POST "+PathPrefix+"get", s.handleGet)
	s.mux.HandleFunc("GET "+PathPrefix+"cat", s.handleCat)
	s.mux.HandleFunc("GET "+PathPrefix+"peers", s.handlePeers)
	s.mux.HandleFunc("POST "+PathPrefix+"shutdown", s.handleShutdown)
	s.mux.HandleFunc("GET "+PathPrefix+"members", s.handleMembers)
	s.mux.HandleFunc("POST "+PathPrefix+"leave", s.handleLeave)
	s.mux.HandleFunc("GET "+PathPrefix+"stats", s.handleStats)
	s.mux.HandleFunc("GET "+PathPrefix+"kv", s.handleKVGet)
	s.mux.HandleFunc("PUT "+PathPrefix+"kv", s.handleKVPut)
	s.mux.HandleFunc("DELETE "+PathPrefix+"kv", s.handleKVDelete)
	s.mux.HandleFunc("GET "+PathPrefix+"kv/ls", s.handleKVList)
	s.mux.HandleFunc("GET "+PathPrefix+"catalog", s.handleCatalog)
	s.mux.HandleFunc("POST "+PathPrefix+"revoke", s.handleRevoke)
	s.mux.HandleFunc("GET "+PathPrefix+"transfers", s.handleTransfers)
	// Anything else is answered in JSON too, not with the mux's plain text.
	s.mux.HandleFunc("/", s.handleUnknown)
	return s
}

// HandleProfiling serves Go's pprof profiles at /debug/pprof/, behind the
// same token as the API (go tool pprof -http: :0 with an Authorization
// header, or curl -H ... > cpu.pprof).
func (s *Server) HandleProfiling() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// HandleMetrics serves h (Prometheus metrics) at GET /metrics, behind the
// same token as the API: point Prometheus at it with bearer_token_file set
// to the repo's api.token.
func (s *Server) HandleMetrics(h http.Handler) { s.mux.Handle("GET /metrics", h) }

// handleUnknown answers a path no endpoint serves (404), or an endpoint
// asked with the wrong method (405).
func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if _, pattern := s.mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, Errorf(ErrNotFound, "no such endpoint: %s %s (the API is under %s)", r.Method, r.URL.Path, PathPrefix))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeStatus(w, http.StatusMethodNotAllowed, Errorf(ErrBadInput, "method %s not allowed on %s (use %s)", r.Method, r.URL.Path, strings.Join(allow, " or ")))
}

// ServeHTTP checks the host, origin and token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		writeError(w, Errorf(ErrForbidden, "host %q is not a loopback address", r.Host))
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			writeError(w, Errorf(ErrForbidden, "cross-origin request from %q refused", o))
			return
		}
	}
	if s.serveDashboard(w, r) {
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
		writeError(w, Errorf(ErrUnauthorized, "missing or wrong API token (see the repo's %s file)", "api.token"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// DashboardPath is where the web dashboard is served.
const DashboardPath = dashboard.Path

// serveDashboard serves the web dashboard's files at DashboardPath (and
// redirects the bare path there), reporting whether r asked for them.
//
// These files alone are served without the token, after the same Host and
// Origin checks as the API: they are a static app shell, the same in every
// binary, with no data of the node in them, so reading them tells nothing a
// copy of the source would not. Everything the page shows it fetches from
// the API with "Authorization: Bearer TOKEN", the token coming from the
// fragment of the login link that `p2pshare dashboard` prints (a fragment
// is never sent to the server). Requiring the token for the shell itself
// would need a cookie, and with it CSRF defences for every endpoint; a
// bearer header cannot be attached by another site.
func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p == strings.TrimSuffix(DashboardPath, "/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return false
		}
		http.Redirect(w, r, DashboardPath, http.StatusMovedPermanently)
		return true
	}
	if !strings.HasPrefix(p, DashboardPath) {
		return false
	}
	s.dash.ServeHTTP(w, r)
	return true
}

// loopbackHost reports whether a Host header names a loopback address.
func loopbackHost(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (s *Server) handleID(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.ID(r.Context())
	s.reply(w, res, err)
}

func (s *Server) handleShare(w http.ResponseWriter, r *http.Request) {
	var req ShareRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if !decodeJSON(w, r, &req) {
			return
		}
		if req.Path == "" {
			writeError(w, Errorf(ErrBadInput, "share: no path given"))
			return
		}
	} else {
		req.Name = r.URL.Query().Get("name")
		req.ID = r.URL.Query().Get("id")
		if req.Name == "" {
			writeError(w, Errorf(ErrBadInput, "share: an upload needs ?name=NAME"))
			return
		}
		req.Body = r.Body
	}
	res, err := s.api.Share(r.Context(), req)
	s.reply(w, res, err)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	var req GetRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	res, err := s.api.Get(r.Context(), req)
	s.reply(w, res, err)
}

func (s *Server) handleCat(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		writeError(w, Errorf(ErrBadInput, "cat: no ref given (?ref=NAME or CID)"))
		return
	}
	res, body, err := s.api.Cat(r.Context(), ref)
	if err != nil {
		writeError(w, err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(HeaderSize, strconv.FormatInt(res.Size, 10))
	h.Set(HeaderCID, res.CID)
	h.Set(HeaderProvider, res.Provider)
	h.Set(HeaderName, url.PathEscape(res.Name))
	if !acceptsTrailers(r) {
		// With a length, the bytes go from the file to the socket
		// (sendfile), and a cut stream is short of it.
		h.Set("Content-Length", strconv.FormatInt(res.Size, 10))
		if _, err := io.Copy(w, body); err != nil {
			s.log.Debug("cat interrupted", "ref", ref, "err", err)
		}
		return
	}
	// Chunked, to end with the get's answer. Through a buffer (a chunked
	// answer cannot be sent from the file), and a stream cut short is
	// aborted: a clean last chunk would pass it for whole.
	h.Set("Trailer", HeaderResult)
	if _, err := io.Copy(writerOnly{w}, body); err != nil {
		s.log.Debug("cat interrupted", "ref", ref, "err", err)
		panic(http.ErrAbortHandler)
	}
	if final, ok := body.Result(); ok {
		b, _ := json.Marshal(final)
		h.Set(HeaderResult, url.PathEscape(string(b)))
	}
}

// acceptsTrailers reports whether r says "TE: trailers".
func acceptsTrailers(r *http.Request) bool {
	for _, v := range r.Header.Values("TE") {
		for _, t := range strings.Split(v, ",") {
			if t, _, _ := strings.Cut(t, ";"); strings.EqualFold(strings.TrimSpace(t), "trailers") {
				return true
			}
		}
	}
	return false
}

// writerOnly hides a writer's other methods (ReadFrom) from io.Copy.
type writerOnly struct{ io.Writer }

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Peers(r.Context())
	if res == nil {
		res = []PeerInfo{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Members(r.Context())
	if res == nil {
		res = []MemberInfo{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleLeave(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Leave(r.Context())
	if res.Moved == nil {
		res.Moved = []MovedFile{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Stats(r.Context())
	s.reply(w, res, err)
}

// MaxKVBody caps a KV value upload (the store's own limit is usually lower).
const MaxKVBody = 1 << 20

// kvKey returns the request's ?key=, answering an error when there is none.
func kvKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !r.URL.Query().Has("key") {
		writeError(w, Errorf(ErrBadInput, "kv: no key given (?key=KEY; to list keys, GET %skv/ls)", PathPrefix))
		return "", false
	}
	return r.URL.Query().Get("key"), true
}

func (s *Server) handleKVGet(w http.ResponseWriter, r *http.Request) {
	key, ok := kvKey(w, r)
	if !ok {
		return
	}
	res, err := s.api.KVGet(r.Context(), key)
	s.reply(w, res, err)
}

func (s *Server) handleKVPut(w http.ResponseWriter, r *http.Request) {
	key, ok := kvKey(w, r)
	if !ok {
		return
	}
	v, err := io.ReadAll(io.LimitReader(r.Body, MaxKVBody+1))
	if err != nil {
		writeError(w, Errorf(ErrBadInput, "kv put: read value: %v", err))
		return
	}
	if len(v) > MaxKVBody {
		writeError(w, Errorf(ErrTooLarge, "kv put: value over %d bytes", MaxKVBody))
		return
	}
	res, err := s.api.KVPut(r.Context(), KVPutRequest{Key: key, Value: v, TTL: r.URL.Query().Get("ttl")})
	s.reply(w, res, err)
}

func (s *Server) handleKVDelete(w http.ResponseWriter, r *http.Request) {
	key, ok := kvKey(w, r)
	if !ok {
		return
	}
	res, err := s.api.KVDelete(r.Context(), key)
	s.reply(w, res, err)
}

func (s *Server) handleKVList(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.KVList(r.Context())
	if res == nil {
		res = []KVEntry{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleTransfers(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Transfers(r.Context())
	if res == nil {
		res = []Transfer{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBody))
	if err != nil {
		writeError(w, Errorf(ErrBadInput, "revoke: read body: %v", err))
		return
	}
	res, err := s.api.Revoke(r.Context(), b)
	s.reply(w, res, err)
}

func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	res, err := s.api.Catalog(r.Context(), r.URL.Query().Get("q"))
	if res == nil {
		res = []CatalogEntry{}
	}
	s.reply(w, res, err)
}

func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	err := s.api.Shutdown(r.Context())
	s.reply(w, map[string]bool{"ok": err == nil}, err)
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON decodes the request body, one JSON object of at most
// MaxJSONBody bytes of UTF-8 (encoding/json would silently replace invalid
// bytes, so a name could arrive as another name) with no unknown fields and
// nothing after it.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBody+1))
	switch {
	case err != nil:
		writeError(w, Errorf(ErrBadInput, "bad request body: %v", err))
		return false
	case len(b) > MaxJSONBody:
		writeError(w, Errorf(ErrBadInput, "bad request body: over the limit of %d bytes", MaxJSONBody))
		return false
	case !utf8.Valid(b):
		writeError(w, Errorf(ErrBadInput, "bad request body: not valid UTF-8"))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, Errorf(ErrBadInput, "bad request body: %v", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, Errorf(ErrBadInput, "bad request body: more after the JSON object"))
		return false
	}
	return true
}

// statuses maps the kinds of API errors to HTTP statuses; Client maps a
// status back to the first kind with it when an answer names no kind.
// An error of no kind is a 500.
var statuses = []struct {
	kind   error
	status int
}{
	{ErrBadInput, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrSecret, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrExists, http.StatusConflict},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{context.Canceled, 499}, // the client went away (nginx's code)
	{ErrNotDaemon, http.StatusNotImplemented},
	{ErrUnavailable, http.StatusServiceUnavailable},
	{ErrClockOff, http.StatusServiceUnavailable},
	{ErrNoSpace, http.StatusInsufficientStorage},
	{ErrWriterLimit, http.StatusInsufficientStorage},
}

// statusOf is the HTTP status that answers err.
func statusOf(err error) int {
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			return s.status
		}
	}
	return http.StatusInternalServerError
}

// kindOfStatus is the first kind answered with status, nil if none is.
func kindOfStatus(status int) error {
	for _, s := range statuses {
		if s.status == status {
			return s.kind
		}
	}
	return nil
}

// writeError answers err as JSON, with the status of its kind.
func writeError(w http.ResponseWriter, err error) { writeStatus(w, statusOf(err), err) }

// writeStatus answers err as JSON with status.
func writeStatus(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: err.Error(), Kind: kindName(err)})
}
