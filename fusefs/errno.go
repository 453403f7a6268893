package fusefs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"featurefs/hashing"
	"featurefs/manifest"
)

// toErrno maps an error from the packages below to the errno the caller of
// the system call sees. It is the one place where that mapping lives.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, hashing.ErrNotParquet),
		errors.Is(err, hashing.ErrTruncated),
		errors.Is(err, hashing.ErrBadFooter),
		errors.Is(err, hashing.ErrBadLayout):
		return syscall.EINVAL
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, manifest.ErrNoSpace):
		return syscall.ENOSPC
	case errors.Is(err, syscall.EROFS), errors.Is(err, manifest.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, manifest.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, manifest.ErrExists):
		return syscall.EEXIST
	case errors.Is(err, manifest.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.As(err, &errno) && errno == syscall.ENAMETOOLONG:
		return errno
	case errors.Is(err, fs.ErrNotExist):
		// A blob missing under a committed row is damage, not absence.
		return syscall.EIO
	}
	return syscall.EIO
}
