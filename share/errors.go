package share

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors returned (wrapped) by this package.
var (
	// ErrNotFound: the store does not hold the CID, or no record names it.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: a file exceeds the configured maximum size.
	ErrTooLarge = errors.New("file too large")
	// ErrBadName: a name that cannot be used (empty, '.', '..', a path
	// separator, NUL or control characters, over MaxNameLen bytes).
	ErrBadName = errors.New("invalid name")
	// ErrBadCID: a string or bytes that are not a p2pshare CID.
	ErrBadCID = errors.New("invalid CID")
	// ErrBadRecord: a name record that is malformed or whose signature
	// does not verify.
	ErrBadRecord = errors.New("invalid name record")
	// ErrHashMismatch: bytes received do not hash to the requested CID.
	ErrHashMismatch = errors.New("content does not match its CID")
	// ErrNoProviders: no peer that holds the CID could be found or reached.
	ErrNoProviders = errors.New("no provider")
	// ErrClosed: the store or service is closed.
	ErrClosed = errors.New("closed")
	// ErrNoSpace: this node's disk is full (ENOSPC or EDQUOT on a local
	// write): this node's problem, not a provider's.
	ErrNoSpace = errors.New("no space left on this node's disk")
)

// noSpace turns a local "no space left" (or quota) error on a write under
// dir into ErrNoSpace, saying what to do; any other error is returned as is.
func noSpace(dir string, err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	return fmt.Errorf("%w (%s): free space and retry", ErrNoSpace, dir)
}
