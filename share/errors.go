package share

import (
	"errors"
	"fmt"

	"github.com/p2pshare/p2pshare/catalog"
	"github.com/p2pshare/p2pshare/internal/oserr"
)

// Sentinel errors returned (wrapped) by this package.
var (
	// ErrNotFound: the store does not hold the CID, or no record names it.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: a file exceeds the configured maximum size.
	ErrTooLarge = errors.New("file too large")
	// ErrBadName: a name that cannot be used (see catalog.ValidateName).
	ErrBadName = catalog.ErrBadName
	// ErrBadCID: a string or bytes that are not a p2pshare CID.
	ErrBadCID = errors.New("invalid CID")
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
	if err == nil || errors.Is(err, ErrNoSpace) || !oserr.NoSpace(err) {
		return err
	}
	return fmt.Errorf("%w (%s): free space and retry", ErrNoSpace, dir)
}

// CatalogError: a share whose name the Directory did not record; Err says
// why (the catalog's own errors, such as a clock too far off the
// network's).
type CatalogError struct {
	Name string
	Err  error
}

func (e *CatalogError) Error() string {
	return fmt.Sprintf("share %q: add to the catalog: %v", e.Name, e.Err)
}

func (e *CatalogError) Unwrap() error { return e.Err }
