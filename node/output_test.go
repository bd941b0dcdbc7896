package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pshare/p2pshare/node/api"
)

// TestGetKeepsExistingFile: a get onto an existing file fails and keeps the
// file's bytes unless told to replace it; with Force it replaces it.
func TestGetKeepsExistingFile(t *testing.T) {
	n := newTestNode(t, nil)
	shareBytes(t, n, "notes.txt", []byte("the new bytes\n"))
	dir := t.TempDir()
	old := []byte("my own notes, not to be lost\n")
	for _, tc := range []struct {
		name string
		req  api.GetRequest
		path string
	}{
		{"file", api.GetRequest{Ref: "notes.txt", Path: filepath.Join(dir, "mine.txt")}, filepath.Join(dir, "mine.txt")},
		{"into a directory", api.GetRequest{Ref: "notes.txt", Path: dir, Dir: true}, filepath.Join(dir, "notes.txt")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(tc.path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := n.API().Get(context.Background(), tc.req)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Kind != api.ErrExists || ae.Message != tc.path+" exists: use --force to replace it" {
				t.Fatalf("get onto %s = %v, want %q (exists)", tc.path, err, tc.path+" exists: use --force to replace it")
			}
			if b, _ := os.ReadFile(tc.path); string(b) != string(old) {
				t.Fatalf("the existing file now holds %q", b)
			}
			tc.req.Force = true
			if _, err := n.API().Get(context.Background(), tc.req); err != nil {
				t.Fatalf("get --force: %v", err)
			}
			if b, _ := os.ReadFile(tc.path); string(b) != "the new bytes\n" {
				t.Fatalf("get --force left %q", b)
			}
			noPartFiles(t, dir)
		})
	}
}

// TestCopyOutputAcrossFileSystems takes the path of a target directory on
// another file system: a temp file recorded in the repo, then a link or
// rename; a record left by a crash is cleaned at the next start.
func TestCopyOutputAcrossFileSystems(t *testing.T) {
	n := newTestNode(t, nil)
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("verified\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.copyOutput(src, root, dir, "out.txt", false); err != nil {
		t.Fatal(err)
	}
	if err := n.copyOutput(src, root, dir, "out.txt", false); err == nil || !strings.Contains(err.Error(), "exists: use --force") {
		t.Fatalf("second copy without force: %v", err)
	}
	if err := n.copyOutput(src, root, dir, "out.txt", true); err != nil {
		t.Fatalf("copy with force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "verified\n" {
		t.Fatalf("out.txt holds %q", b)
	}
	noPartFiles(t, dir)
	if ents, _ := os.ReadDir(n.repo.Path(repoPartialDir)); len(ents) != 0 {
		t.Fatalf("records left in %s: %v", repoPartialDir, ents)
	}

	// A crash mid-copy leaves a temp file and its record; the next start
	// removes the file, and nothing else of the directory.
	part := filepath.Join(dir, partPrefix+"0123456789abcdef"+partSuffix)
	if err := os.WriteFile(part, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.recordPartial(part); err != nil {
		t.Fatal(err)
	}
	notOurs := filepath.Join(dir, "keep.part")
	if err := os.WriteFile(notOurs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.recordPartial(notOurs); err != nil {
		t.Fatal(err)
	}
	cleanPartials(n.repo, quietLogger())
	noPartFiles(t, dir)
	if _, err := os.Stat(notOurs); err != nil {
		t.Fatalf("a file not named as ours was removed: %v", err)
	}
}

// noPartFiles fails if dir holds a temp file of a get.
func noPartFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), partPrefix) {
			t.Fatalf("temp file %s left in %s", e.Name(), dir)
		}
	}
}
