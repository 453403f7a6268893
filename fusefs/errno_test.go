package fusefs

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"featurefs/manifest"
)

func TestToErrno(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("delete S/k: %w: database or disk is full", manifest.ErrNoSpace), syscall.ENOSPC},
		{fmt.Errorf("write: %w", syscall.ENOSPC), syscall.ENOSPC},
		{fmt.Errorf("get S/k: %w: malformed", manifest.ErrCorrupt), syscall.EIO},
		{fmt.Errorf("x: %w", manifest.ErrReadOnly), syscall.EROFS},
		{fmt.Errorf("x: %w", manifest.ErrNotFound), syscall.ENOENT},
		{context.Canceled, syscall.EINTR},
	} {
		if got := toErrno(tc.err); got != tc.want {
			t.Errorf("toErrno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
