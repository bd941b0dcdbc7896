package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// findBrowser returns a Chromium or Chrome binary: $P2PSHARE_CHROME if set,
// else the first of the usual names in PATH.
func findBrowser() string {
	if p := os.Getenv("P2PSHARE_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// dashboardView is what the test reads off the rendered page.
type dashboardView struct {
	Self    string   `json:"self"`
	Alive   []string `json:"alive"`
	Peers   []string `json:"peers"`
	Catalog []struct {
		Name    string   `json:"name"`
		Holders []string `json:"holders"` // "PEER STATE"
	} `json:"catalog"`
	KV     []string `json:"kv"`
	Hash   string   `json:"hash"`
	Error  string   `json:"error"`
	Status string   `json:"status"`
}

const dashboardViewJS = `(() => ({
  self: document.getElementById("self-id").textContent,
  alive: Array.from(document.querySelectorAll('#members tbody tr[data-state="alive"]')).map(r => r.dataset.peer),
  peers: Array.from(document.querySelectorAll('#peers tbody tr[data-peer]')).map(r => r.dataset.peer),
  catalog: Array.from(document.querySelectorAll('#catalog tbody tr[data-name]')).map(r => ({
    name: r.dataset.name,
    holders: Array.from(r.querySelectorAll('.holder')).map(h => h.dataset.peer + " " + h.dataset.state),
  })),
  kv: Array.from(document.querySelectorAll('#kv tbody tr[data-key]')).map(r => r.dataset.key),
  hash: location.hash,
  error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
  status: document.getElementById("status").textContent,
}))()`

func (v dashboardView) catalogEntry(name string) (holders []string, ok bool) {
	for _, e := range v.Catalog {
		if e.Name == name {
			return e.Holders, true
		}
	}
	return nil, false
}

// TestDashboardInChromium opens node 1's web dashboard in headless Chromium
// and checks that it shows the network's real members, catalog and KV
// store, that a file uploaded through the page can be got on node 3, and
// that a catalog name downloads through the page.
//
// The screenshot goes to the test's temp dir; with P2PSHARE_SCREENSHOT_OUT
// set it is also copied there (the value "1" means
// testnet/testdata/dashboard.png). P2PSHARE_DASHBOARD_NODES (default 3)
// sets the network's size, say 5 for the README's picture;
// P2PSHARE_DASHBOARD_DEBUG=1 logs what the page shows while waiting.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network and a browser; skipped under -short")
	}
	chrome := findBrowser()
	if chrome == "" {
		t.Skip("no Chromium or Chrome found (looked for chromium, chromium-browser, google-chrome, google-chrome-stable in PATH and $P2PSHARE_CHROME): install Debian's chromium package (apt-get install chromium) to run the dashboard test")
	}
	n := envCount(t, "P2PSHARE_DASHBOARD_NODES", 3, 3)
	nw := startNetwork(t, n)
	dir := t.TempDir()

	// Beforehand, on node 2: a file and a key.
	shared := []byte("shared on node 2 before the page opened\n")
	var sh shareOut
	if err := nw.Node(2).JSON(&sh, "share", writeFile(t, dir, "from-node2.txt", shared), "--json"); err != nil {
		t.Fatal(err)
	}
	if r := nw.Node(2).Run("kv", "put", "motd", "hello from node 2"); r.Code != 0 {
		t.Fatalf("kv put: %s", r.Stderr)
	}

	r := nw.Node(1).Run("dashboard")
	link := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !strings.Contains(link, "/dashboard/#token=") {
		t.Fatalf("p2pshare dashboard: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("login link %s", strings.SplitN(link, "#", 2)[0]+"#token=…")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	start := time.Now()
	if err := chromedp.Run(bctx, chromedp.Navigate(link)); err != nil {
		t.Fatalf("open the dashboard in %s: %v", chrome, err)
	}
	t.Logf("browser %s up and page loaded in %s", chrome, time.Since(start).Round(time.Millisecond))

	// poll evaluates the page until ok holds, failing after timeout.
	poll := func(what string, timeout time.Duration, ok func(v dashboardView) bool) dashboardView {
		t.Helper()
		deadline := time.Now().Add(timeout)
		var v dashboardView
		for {
			v = dashboardView{}
			if err := chromedp.Run(bctx, chromedp.Evaluate(dashboardViewJS, &v)); err != nil {
				t.Fatalf("%s: read the page: %v", what, err)
			}
			if ok(v) {
				return v
			}
			if os.Getenv("P2PSHARE_DASHBOARD_DEBUG") != "" {
				t.Logf("%s: %+v", what, v)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not on the page after %s; the page shows %+v", what, timeout, v)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	ids := make([]string, 0, n)
	for _, d := range nw.Nodes {
		ids = append(ids, d.ID)
	}
	v := poll("all members alive and node 2's file in the catalog", 30*time.Second, func(v dashboardView) bool {
		for _, id := range ids {
			if !slices.Contains(v.Alive, id) {
				return false
			}
		}
		h, ok := v.catalogEntry("from-node2.txt")
		return ok && slices.Contains(h, nw.Node(2).ID+" alive") && slices.Contains(v.KV, "motd")
	})
	if v.Self != nw.Node(1).ID {
		t.Fatalf("page shows node %q, want node 1 %s", v.Self, nw.Node(1).ID)
	}
	if v.Hash != "" {
		t.Fatalf("the token stayed in the address bar: %q", v.Hash)
	}
	if v.Error != "" {
		t.Fatalf("page shows an error: %s", v.Error)
	}
	t.Logf("members and catalog on the page after %s", time.Since(start).Round(time.Millisecond))

	// Upload through the page's file input.
	upName := "uploaded-" + randHex(t, 4) + ".txt"
	upBytes := []byte("uploaded through the dashboard " + randHex(t, 16) + "\n")
	upPath := writeFile(t, dir, upName, upBytes)
	var upStatus string
	if err := chromedp.Run(bctx,
		chromedp.SetUploadFiles("#file", []string{upPath}, chromedp.ByQuery),
		chromedp.Click("#upload", chromedp.ByQuery),
		chromedp.WaitVisible(`#upload-status[data-state="done"]`, chromedp.ByQuery),
		chromedp.Text("#upload-status", &upStatus, chromedp.ByQuery),
	); err != nil {
		var s string
		_ = chromedp.Run(bctx, chromedp.Text("#upload-status", &s, chromedp.ByQuery))
		t.Fatalf("upload through the page: %v (status %q)", err, s)
	}
	if !strings.Contains(upStatus, "shared "+upName) {
		t.Fatalf("upload status %q", upStatus)
	}
	t.Logf("upload: %s", upStatus)
	poll("the uploaded file in the catalog", 30*time.Second, func(v dashboardView) bool {
		h, ok := v.catalogEntry(upName)
		return ok && slices.Contains(h, nw.Node(1).ID+" alive")
	})

	// Node 3 gets it by name through the CLI.
	out := filepath.Join(dir, "got-"+upName)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var g getOut
		err := nw.Node(3).JSON(&g, "get", upName, "-o", out, "--json")
		if err == nil {
			if b, _ := os.ReadFile(out); string(b) != string(upBytes) {
				t.Fatalf("node 3 got %q, want %q", b, upBytes)
			}
			t.Logf("node 3 got %s from %s", upName, g.Provider)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3 cannot get the uploaded file: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Download node 2's file with the page's button into a directory.
	dlDir := t.TempDir()
	if err := chromedp.Run(bctx,
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dlDir),
		chromedp.Click(`#catalog tr[data-name="from-node2.txt"] button.download`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("click download: %v", err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dlDir, "from-node2.txt"))
		if err == nil && string(b) == string(shared) {
			break
		}
		if time.Now().After(deadline) {
			var s string
			_ = chromedp.Run(bctx, chromedp.Text("#download-status", &s, chromedp.ByQuery))
			entries, _ := os.ReadDir(dlDir)
			t.Fatalf("download through the page: %q, %v (status %q, dir %v)", b, err, s, entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("downloaded from-node2.txt through the page")

	// A screenshot, after one more refresh.
	time.Sleep(1500 * time.Millisecond)
	var png []byte
	if err := chromedp.Run(bctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%d bytes): %s", len(png), shot)
	if o := os.Getenv("P2PSHARE_SCREENSHOT_OUT"); o != "" {
		if o == "1" {
			_, file, _, _ := runtime.Caller(0)
			o = filepath.Join(filepath.Dir(file), "testdata", "dashboard.png")
		}
		if err := os.MkdirAll(filepath.Dir(o), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(o, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot copied to %s", o)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
