//go:build unix

package oserr

import (
	"errors"
	"syscall"
)

// ConnRefused reports whether err is a refused connection: nothing listens.
func ConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// ConnReset reports whether err is a connection reset by the other end.
func ConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// NoSpace reports whether err is a full disk or an exhausted quota.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// CrossDevice reports whether err is a link or rename across file systems.
func CrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }
