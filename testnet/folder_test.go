package testnet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestE2EShareAndGetAFolder shares a folder on one daemon and gets it on
// another through the command: every file under its name DIR/rel/path,
// fetched in parallel into the same tree.
func TestE2EShareAndGetAFolder(t *testing.T) {
	nw := startNetwork(t, 2, "--replicas", "1")
	src := filepath.Join(t.TempDir(), "album")
	want := map[string][]byte{}
	for i, rel := range []string{"a.txt", "b.txt", "sub/c.txt", "sub/deeper/d.bin", "e f.txt"} {
		b := bytes.Repeat([]byte(fmt.Sprintf("file %d %s\n", i, rel)), 1000*(i+1))
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), b)
		want["album/"+rel] = b
	}
	var sh struct {
		Shared  []shareOut `json:"shared"`
		Skipped []struct{} `json:"skipped"`
	}
	if err := nw.Node(1).JSON(&sh, "share", src, "--json"); err != nil {
		t.Fatal(err)
	}
	if len(sh.Shared) != len(want) || len(sh.Skipped) != 0 {
		t.Fatalf("share DIR: %d shared, %d skipped, want %d and 0", len(sh.Shared), len(sh.Skipped), len(want))
	}
	for _, s := range sh.Shared {
		if _, ok := want[s.Name]; !ok {
			t.Fatalf("shared an unexpected name %q", s.Name)
		}
	}
	var ls []catalogOut
	if err := nw.Node(2).JSON(&ls, "ls", "album/sub/", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Name != "album/sub/c.txt" || ls[1].Name != "album/sub/deeper/d.bin" {
		t.Fatalf("ls album/sub/: %+v", ls)
	}
	out := t.TempDir()
	var got []getOut
	if err := nw.Node(2).JSON(&got, "get", "album/", "-o", out, "--json"); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("get album/: %d answers, want %d", len(got), len(want))
	}
	for name, b := range want {
		p := filepath.Join(out, filepath.FromSlash(name))
		if g, err := os.ReadFile(p); err != nil || !bytes.Equal(g, b) {
			t.Fatalf("%s: wrong bytes (%v)", p, err)
		}
	}
	// Again: every file exists now; --force replaces them.
	if r := nw.Node(2).Run("get", "album/", "-o", out); r.Code == 0 {
		t.Fatal("get album/ over existing files succeeded without --force")
	}
	if r := nw.Node(2).Run("get", "album/", "-o", out, "--force", "--stream"); r.Code != 0 {
		t.Fatalf("get album/ --force: %s", r.Stderr)
	}
	// A single name of the folder lands under its file name.
	if r := nw.Node(2).Run("get", "album/sub/c.txt", "-o", out); r.Code != 0 {
		t.Fatalf("get album/sub/c.txt: %s", r.Stderr)
	}
	if g, _ := os.ReadFile(filepath.Join(out, "c.txt")); !bytes.Equal(g, want["album/sub/c.txt"]) {
		t.Fatal("get of one name of a folder: wrong bytes")
	}
}
