// Package dashboard holds the daemon's web dashboard: one HTML page, its
// script and its style sheet, embedded in the binary (no build step, nothing
// fetched from elsewhere) and served by the API server at /dashboard/.
//
// The files are an app shell with no data in them: everything the page
// shows it fetches from the API with the bearer token, which it reads from
// the URL fragment of the login link that `p2pshare dashboard` prints
// (http://127.0.0.1:PORT/dashboard/#token=TOKEN). A fragment never leaves
// the browser, so the token is not in any request line or server log; the
// page moves it into sessionStorage and strips it from the address bar.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the API server serves the dashboard.
const Path = "/dashboard/"

//go:embed static
var files embed.FS

// Handler serves the embedded files under Path (GET and HEAD only), with
// headers that keep the page from being framed, from running anything but
// its own script and from talking to anything but its own origin.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.StripPrefix(Path[:len(Path)-1], http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}
