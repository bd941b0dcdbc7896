//go:build !linux

package direct

import "os"

// Supported is false here: writes go through the cache.
func Supported(f *os.File) bool { return false }

func set(f *os.File, on bool) bool { return !on }

// startWriteback does nothing here: a sync writes the whole file.
func startWriteback(f *os.File, off, n int64) {}
