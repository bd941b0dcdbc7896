package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Every kind of error crosses HTTP with its status and comes back as the
// same kind, with the same one-line message; an error of no kind is a 500
// and comes back of no kind.
func TestErrorKindsCrossHTTP(t *testing.T) {
	want := map[int][]error{
		400: {ErrBadInput}, 401: {ErrUnauthorized}, 403: {ErrForbidden, ErrSecret},
		404: {ErrNotFound}, 409: {ErrExists}, 413: {ErrTooLarge}, 499: {context.Canceled},
		500: {nil}, 501: {ErrNotDaemon}, 503: {ErrUnavailable, ErrClockOff},
		507: {ErrNoSpace, ErrWriterLimit},
	}
	type kindStatus struct {
		kind   error
		status int
	}
	var cases []kindStatus
	for status, kinds := range want {
		for _, k := range kinds {
			cases = append(cases, kindStatus{k, status})
		}
	}
	for _, tc := range cases {
		sent := fmt.Errorf("kv put: %w", Errorf(tc.kind, "what failed: why"))
		if tc.kind == nil {
			sent = errors.New("kv put: the node failed")
		}
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeError(w, sent) }))
		resp, err := http.Get(hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, got := NewClient(hs.URL, "").KVGet(context.Background(), "k")
		hs.Close()
		var ae *Error
		if resp.StatusCode != tc.status || !errors.As(got, &ae) || ae.Kind != tc.kind || ae.Message != sent.Error() {
			t.Errorf("%v: status %d, client got %#v; want %d and the same kind and message", tc.kind, resp.StatusCode, got, tc.status)
		}
		if tc.kind != nil && !errors.Is(got, tc.kind) {
			t.Errorf("%v: errors.Is fails on the client's error %v", tc.kind, got)
		}
	}
}
