//go:build linux && !blobstore_osroot

package blobstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// makeDirs creates blobs/, staging/ and quarantine/ and makes them durable.
// Ones an older version made open to others are made private: every blob
// and staging file lies beneath them, so this closes an old cache root
// without walking its files.
func (s *Store) makeDirs() error {
	created := false
	for _, d := range []string{BlobsDir, StagingDir, QuarantineDir} {
		err := unix.Mkdirat(s.rootFD, d, dirMode)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, unix.EEXIST):
		default:
			return &os.PathError{Op: "mkdir", Path: s.abs(d), Err: err}
		}
		// Refuse a symlink or a file in place of a directory now rather than
		// on the first publish.
		fd, err := s.openat(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: s.abs(d), Err: err}
		}
		err = makePrivate(fd)
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "chmod", Path: s.abs(d), Err: err}
		}
	}
	if created {
		// The new directories must survive a crash before anything is
		// published into them.
		return s.syncDir(".")
	}
	return nil
}

// rootDir is the cache root as an O_PATH descriptor, which every path is
// resolved beneath with openat2.
type rootDir struct {
	rootFD int
}

func openRootDir(abs string) (rootDir, error) {
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return rootDir{}, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	return rootDir{rootFD: fd}, nil
}

func (d rootDir) close() error { return unix.Close(d.rootFD) }

// startWriteout sends bytes [off, off+n) of f towards the disk without
// waiting. SYNC_FILE_RANGE_WRITE only queues the dirty pages; errors surface
// in the fsync at publish, which is what makes the bytes durable.
func startWriteout(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
