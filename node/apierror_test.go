package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// share's errors reach API clients with the status that says whose problem
// they are: a full local disk is this node's (507), not a missing file.
func TestAPIErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("get x: %w (/data): free space and retry", share.ErrNoSpace), http.StatusInsufficientStorage},
		{fmt.Errorf("get x: %w", share.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("get x: %w could deliver it", share.ErrNoProviders), http.StatusNotFound},
		{fmt.Errorf("get x: %w", share.ErrTooLarge), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("get x: %w", share.ErrBadName), http.StatusBadRequest},
		{fmt.Errorf("get x: %w", context.Canceled), 499},
		{errors.New("something else"), http.StatusInternalServerError},
	} {
		var ae *api.Error
		if !errors.As(apiError(tc.err), &ae) || ae.Status != tc.want || ae.Message != tc.err.Error() {
			t.Errorf("apiError(%v) = %+v, want status %d with the same message", tc.err, ae, tc.want)
		}
	}
}
