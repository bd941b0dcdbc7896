package node

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// share's errors reach API clients with the kind that says whose problem
// they are: a full local disk is this node's, not a missing file.
func TestAPIErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("get x: %w (/data): free space and retry", share.ErrNoSpace), api.ErrNoSpace},
		{fmt.Errorf("get x: %w", share.ErrNotFound), api.ErrNotFound},
		{fmt.Errorf("get x: %w could deliver it", share.ErrNoProviders), api.ErrNotFound},
		{fmt.Errorf("get x: %w", share.ErrTooLarge), api.ErrTooLarge},
		{fmt.Errorf("get x: %w", share.ErrBadName), api.ErrBadInput},
		{fmt.Errorf("get x: %w", context.Canceled), context.Canceled},
		{errors.New("something else"), nil},
	} {
		var ae *api.Error
		if !errors.As(apiError(tc.err), &ae) || ae.Kind != tc.want || ae.Message != tc.err.Error() {
			t.Errorf("apiError(%v) = %+v, want kind %v with the same message", tc.err, ae, tc.want)
		}
	}
}
