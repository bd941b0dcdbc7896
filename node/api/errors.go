package api

import (
	"context"
	"errors"
	"fmt"
)

// The kinds of API errors. An implementation of API returns errors that
// wrap one of them (errors.Is), most often an *Error made by Errorf; the
// HTTP server answers each kind with its status, and Client turns the
// answer back into an *Error of the same kind, so a caller tells the
// kinds apart the same way in process and over HTTP. An error of no kind
// is the node's own failure.
var (
	// ErrBadInput: the request is wrong (a bad name, key, TTL, path...).
	ErrBadInput = errors.New("bad input")
	// ErrNotFound: no such file, name, key or endpoint.
	ErrNotFound = errors.New("not found")
	// ErrExists: the output file exists (and --force was not given).
	ErrExists = errors.New("exists")
	// ErrSecret: the file is one of the node's secrets, never shared.
	ErrSecret = errors.New("secret")
	// ErrTooLarge: the file or value is over the limit.
	ErrTooLarge = errors.New("too large")
	// ErrNoSpace: this node's disk is full.
	ErrNoSpace = errors.New("no space")
	// ErrWriterLimit: this node holds the per-writer limit of records.
	ErrWriterLimit = errors.New("writer limit")
	// ErrClockOff: this node's clock is too far off the network's for a
	// write.
	ErrClockOff = errors.New("clock off")
	// ErrUnavailable: the node cannot do it now (a leave that failed).
	ErrUnavailable = errors.New("unavailable")
	// ErrNotDaemon: the node is not run by a daemon (shutdown).
	ErrNotDaemon = errors.New("not run by a daemon")
	// ErrForbidden: the request's host, origin or method is refused.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: the API token is missing or wrong.
	ErrUnauthorized = errors.New("unauthorized")
)

// kinds names each kind on the wire (the "kind" of an error answer).
var kinds = []struct {
	err  error
	name string
}{
	{ErrBadInput, "bad_input"}, {ErrNotFound, "not_found"}, {ErrExists, "exists"},
	{ErrSecret, "secret"}, {ErrTooLarge, "too_large"}, {ErrNoSpace, "no_space"},
	{ErrWriterLimit, "writer_limit"}, {ErrClockOff, "clock_off"}, {ErrUnavailable, "unavailable"},
	{ErrNotDaemon, "not_daemon"}, {ErrForbidden, "forbidden"}, {ErrUnauthorized, "unauthorized"},
	{context.Canceled, "canceled"},
}

// kindName is the wire name of err's kind, empty if it has none.
func kindName(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return ""
}

// kindByName is the kind named name, nil if none is.
func kindByName(name string) error {
	for _, k := range kinds {
		if k.name == name {
			return k.err
		}
	}
	return nil
}

// errorBody is an error answer on the wire.
type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"`
}

// Error is an API error: a one-line message of a kind.
type Error struct {
	Kind    error  // one of the Err values, or nil
	Message string // what failed, why, and what to do
}

func (e *Error) Error() string { return e.Message }

// Unwrap makes errors.Is(e, e.Kind) hold.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf makes an *Error of kind.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
