package main

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestIsTerminalRefusesDevNullAndPipes: /dev/null is a character device
// but no terminal, so `get ... 2>/dev/null` draws no bar; nor does a pipe,
// a file, or a writer that is no file.
func TestIsTerminalRefusesDevNullAndPipes(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, wr := range map[string]io.Writer{"/dev/null": null, "a pipe": w, "a file": f, "a buffer": &bytes.Buffer{}} {
		if isTerminal(wr) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}
