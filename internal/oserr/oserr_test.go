package oserr

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// The checks hold for the errors the operating system really returns.
func TestRealErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.Dial("tcp", addr)
	if err == nil || !ConnRefused(err) {
		t.Errorf("dial to a closed port: %v; ConnRefused = false", err)
	}
	if ConnReset(err) || NoSpace(err) || CrossDevice(err) {
		t.Errorf("a refused dial is taken for another error: %v", err)
	}
	dir := t.TempDir()
	err = os.Rename(filepath.Join(dir, "missing"), filepath.Join(dir, "b"))
	if ConnRefused(err) || ConnReset(err) || NoSpace(err) || CrossDevice(err) {
		t.Errorf("a missing file is taken for another error: %v", err)
	}
	if ConnRefused(nil) || NoSpace(errors.New("no space")) {
		t.Error("nil or a plain error matched")
	}
}
