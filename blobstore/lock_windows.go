//go:build windows

package blobstore

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is the byte LockFileEx locks. Windows locks are mandatory: a
// locked byte cannot be read through another handle, so the lock is far past
// the end of any parquet, leaving the file's bytes readable by everyone.
const lockOffset = 1 << 62

// lockFile takes the file's exclusive GC lock; with wait false it reports
// false instead of waiting when another handle holds it. Closing the file
// releases the lock.
func lockFile(f *os.File, wait bool) (bool, error) {
	flags := uint32(windows.LOCKFILE_EXCLUSIVE_LOCK)
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	ol := &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case !wait && errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return false, nil
	default:
		return false, err
	}
}

// dirSync is false: Windows cannot flush a directory handle opened for
// reading; NTFS journals the directory entries of a rename itself.
const dirSync = false
