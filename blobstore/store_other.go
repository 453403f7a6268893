//go:build !linux || blobstore_osroot

package blobstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// rootDir is the cache root as an os.Root: every path is resolved beneath
// it, and one that leaves the root (by "..", an absolute name or a symlink
// pointing outside) is refused. Unlike openat2 on Linux, a symlink that
// stays inside the root is followed.
type rootDir struct {
	osRoot *os.Root
}

func openRootDir(abs string) (rootDir, error) {
	r, err := os.OpenRoot(abs)
	if err != nil {
		return rootDir{}, err
	}
	return rootDir{osRoot: r}, nil
}

func (d rootDir) close() error { return d.osRoot.Close() }

// startWriteout does nothing: there is no sync_file_range here, and the
// fsync at publish makes the bytes durable anyway.
func startWriteout(*os.File, int64, int64) {}

// pathErr rewraps an error from an os.Root method (whose path is relative
// to the root) with rel's full path, keeping the underlying error.
func (s *Store) pathErr(op, rel string, err error) error {
	return &os.PathError{Op: op, Path: s.abs(rel), Err: bare(err)}
}

// makeDirs creates blobs/, staging/ and quarantine/ and makes them durable,
// refusing anything but a directory in their place.
func (s *Store) makeDirs() error {
	created := false
	for _, d := range []string{BlobsDir, StagingDir, QuarantineDir} {
		err := s.osRoot.Mkdir(d, dirMode)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, fs.ErrExist):
		default:
			return s.pathErr("mkdir", d, err)
		}
		fi, err := s.osRoot.Lstat(d)
		if err != nil {
			return s.pathErr("lstat", d, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("blobstore: %s: not a directory", s.abs(d))
		}
		// Windows has no group and other bits to take away.
		if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
			if err := s.osRoot.Chmod(d, perm&^0o077); err != nil {
				return s.pathErr("chmod", d, err)
			}
		}
	}
	if created {
		return s.syncDir(".")
	}
	return nil
}
