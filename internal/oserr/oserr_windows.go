package oserr

import (
	"errors"

	"golang.org/x/sys/windows"
)

// ConnRefused reports whether err is a refused connection: nothing listens.
func ConnRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }

// ConnReset reports whether err is a connection reset by the other end.
func ConnReset(err error) bool { return errors.Is(err, windows.WSAECONNRESET) }

// NoSpace reports whether err is a full disk or an exhausted quota.
func NoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, windows.ERROR_DISK_QUOTA_EXCEEDED)
}

// CrossDevice reports whether err is a link or rename across volumes.
func CrossDevice(err error) bool { return errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) }
