package testnet

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestE2EGetJSONSameOnBothPaths gets one file written by the daemon and
// streamed through the command: both answers carry the same fields, with
// the same values where they describe the same file and transfer (which
// peer served it, over what), and neither draws a progress bar on a
// stderr that is not a terminal.
func TestE2EGetJSONSameOnBothPaths(t *testing.T) {
	nw := startNetwork(t, 2, "--replicas", "1")
	content := make([]byte, 3<<20+17)
	rand.Read(content)
	src := writeFile(t, t.TempDir(), "données 1.bin", content)
	var sh shareOut
	if err := nw.Node(1).JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	answers := map[string]map[string]any{}
	for _, how := range []string{"--via-daemon", "--stream"} {
		dst := filepath.Join(out, how[2:]+".bin")
		r := nw.Node(2).Run("get", sh.Name, "-o", dst, how, "--json")
		if r.Code != 0 {
			t.Fatalf("get %s: exit %d: %s", how, r.Code, r.Stderr)
		}
		if r.Stderr != "" {
			t.Fatalf("get %s --json wrote to stderr: %q", how, r.Stderr)
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &a); err != nil {
			t.Fatalf("get %s: %v in %s", how, err, r.Stdout)
		}
		if b, _ := os.ReadFile(dst); !bytes.Equal(b, content) {
			t.Fatalf("get %s: the file differs from the shared one", how)
		}
		if a["path"] != dst {
			t.Fatalf("get %s: path %v, want %s", how, a["path"], dst)
		}
		for _, k := range []string{"rtt_ms", "elapsed_ms"} {
			if v, _ := a[k].(float64); v <= 0 {
				t.Fatalf("get %s: %s = %v, want a time", how, k, a[k])
			}
		}
		answers[how] = a
	}
	d, s := answers["--via-daemon"], answers["--stream"]
	if dk, sk := slices.Sorted(maps.Keys(d)), slices.Sorted(maps.Keys(s)); !slices.Equal(dk, sk) {
		t.Fatalf("the daemon's write answers with %v, the command's with %v", dk, sk)
	}
	want := map[string]any{"name": sh.Name, "cid": sh.CID, "size": float64(sh.Size), "provider": nw.Node(1).ID, "via": "direct"}
	for k, v := range want {
		if d[k] != v || s[k] != v {
			t.Errorf("%s: the daemon's write says %v, the command's %v; want %v", k, d[k], s[k], v)
		}
	}

	// Without --json, on a stderr that is not a terminal: the answer on
	// stdout, nothing on stderr.
	r := nw.Node(2).Run("get", sh.Name, "-o", filepath.Join(out, "plain.bin"), "--stream")
	if r.Code != 0 || r.Stderr != "" || !bytes.Contains([]byte(r.Stdout), []byte(sh.CID)) {
		t.Fatalf("get --stream: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
