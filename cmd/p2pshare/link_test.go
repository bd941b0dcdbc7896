package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinkerDropsUnusedMethods links the binary with the linker's
// reachability dump (-ldflags=-dumpdep) and fails if a reachable function
// is marked <ReflectMethod>: one that calls reflect's Method, MethodByName
// with a name not known at compile time, or the Methods iterators. With
// one, the linker keeps every exported method of every reachable type, as
// reflection might call any: with google.golang.org/protobuf v1.36.11,
// whose MethodByName("Methods") kept Go 1.26's reflect iterators, the
// binary grew from 41.1 to 47.6 MB and each idle daemon's RSS by about 4 MiB.
// The usual culprits are a dependency's reflection and text/template
// (cobra's templates, SetVersionTemplate among them).
func TestLinkerDropsUnusedMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("links the whole binary")
	}
	cmd := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", filepath.Join(t.TempDir(), "p2pshare"), ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var dump strings.Builder
	cmd.Stderr = &dump
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build -ldflags=-dumpdep: %v\n%s", err, dump.String())
	}
	var marked []string
	for line := range strings.Lines(dump.String()) {
		if strings.Contains(line, "<ReflectMethod>") {
			marked = append(marked, strings.TrimSpace(line))
		}
	}
	if len(marked) == 0 && !strings.Contains(dump.String(), "main.main") {
		t.Fatalf("the linker's dump names no main.main: is -dumpdep still its flag?\n%.500s", dump.String())
	}
	if len(marked) > 0 {
		t.Fatalf("%d reachability edges involve a function marked <ReflectMethod>, so the linker keeps every exported method; find the caller in the dump of go build -ldflags=-dumpdep (or with github.com/aarzilli/whydeadcode):\n%s",
			len(marked), strings.Join(marked[:min(len(marked), 10)], "\n"))
	}
}
