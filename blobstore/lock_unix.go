//go:build unix && (!linux || blobstore_osroot)

package blobstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes the file's exclusive flock(2), the GC lock; with wait false
// it reports false instead of waiting when another descriptor holds it.
// Closing the file releases the lock.
func lockFile(f *os.File, wait bool) (bool, error) {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err := unix.Flock(int(f.Fd()), how)
		switch err {
		case nil:
			return true, nil
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			if !wait {
				return false, nil
			}
		}
		return false, err
	}
}

// dirSync: a directory's fsync makes its new entries durable.
const dirSync = true
