package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The dashboard's app shell is served without the token, behind the same
// Host and Origin checks as the API, with a strict CSP; everything else
// still needs the token.
func TestDashboardShell(t *testing.T) {
	srv := NewServer(stubAPI{}, "secret", nil)
	do := func(method, target, host, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	for _, p := range []string{"/dashboard/", "/dashboard/app.js", "/dashboard/style.css"} {
		w := do("GET", p, "127.0.0.1:5001", "")
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("GET %s: CSP %q", p, csp)
		}
		if strings.Contains(w.Body.String(), "secret") {
			t.Fatalf("GET %s: the token is in the shell", p)
		}
	}
	if w := do("GET", "/dashboard/", "127.0.0.1:5001", ""); !strings.Contains(w.Body.String(), `<script src="app.js"`) {
		t.Fatalf("GET /dashboard/ is not the page: %s", w.Body)
	}
	if w := do("GET", "/dashboard", "127.0.0.1:5001", ""); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dashboard/" {
		t.Fatalf("GET /dashboard: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if w := do("GET", "/dashboard/nope.js", "127.0.0.1:5001", ""); w.Code != http.StatusNotFound {
		t.Fatalf("GET a missing file: %d", w.Code)
	}
	// Only embedded files: no way out of the shell to an endpoint.
	if w := do("GET", "/dashboard/../api/v1/id", "127.0.0.1:5001", ""); w.Code == http.StatusOK || strings.Contains(w.Body.String(), "12D3") {
		t.Fatalf("GET /dashboard/../api/v1/id: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/dashboard/", "127.0.0.1:5001", ""); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /dashboard/: %d", w.Code)
	}
	if w := do("GET", "/dashboard/", "evil.example:5001", ""); w.Code != http.StatusForbidden {
		t.Fatalf("GET /dashboard/ with a foreign Host: %d, want 403", w.Code)
	}
	if w := do("GET", "/dashboard/", "127.0.0.1:5001", "http://evil.example"); w.Code != http.StatusForbidden {
		t.Fatalf("GET /dashboard/ cross-origin: %d, want 403", w.Code)
	}
	for _, p := range []string{"/api/v1/id", "/metrics", "/", "/dashboardx", "/api/v1/../dashboard/"} {
		if w := do("GET", p, "127.0.0.1:5001", ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("GET %s without a token: %d, want 401", p, w.Code)
		}
	}
}
