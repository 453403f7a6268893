//go:build linux && !blobstore_osroot

package blobstore

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenBlob opens a blob for reading. A missing blob gives an error wrapping
// fs.ErrNotExist.
func (s *Store) OpenBlob(path string) (Reader, error) {
	if err := checkPath(path, BlobsDir); err != nil {
		return nil, fmt.Errorf("blobstore: open: %w", err)
	}
	compressed := strings.HasSuffix(path, ".parquet.zst")
	if !compressed && !strings.HasSuffix(path, ".parquet") {
		return nil, fmt.Errorf("blobstore: open: %w: %q (want .parquet or .parquet.zst)", ErrInvalidPath, path)
	}
	// O_NONBLOCK: a FIFO planted in place of a blob must not hang the open.
	fd, err := s.openat(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", &os.PathError{Op: "open", Path: s.abs(path), Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("blobstore: %w", &os.PathError{Op: "stat", Path: s.abs(path), Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("blobstore: open %s: %w: not a regular file", s.abs(path), ErrCorrupt)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("blobstore: %w", &os.PathError{Op: "fcntl", Path: s.abs(path), Err: err})
	}
	f := os.NewFile(uintptr(fd), s.abs(path))
	if !compressed {
		return &rawReader{f: f, size: st.Size}, nil
	}
	r, err := s.newZstdReader(f, st.Size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: open %s: %w", f.Name(), err)
	}
	return r, nil
}
