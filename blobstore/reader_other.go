//go:build !linux || blobstore_osroot

package blobstore

import (
	"fmt"
	"strings"
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
	// Without O_NONBLOCK in os.OpenFile everywhere, refuse a FIFO or device
	// before opening it; the check after the open is the one that counts.
	if fi, err := s.osRoot.Lstat(path); err != nil {
		return nil, fmt.Errorf("blobstore: %w", s.pathErr("open", path, err))
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("blobstore: open %s: %w: not a regular file", s.abs(path), ErrCorrupt)
	}
	f, err := s.osRoot.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", s.pathErr("open", path, err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: %w", s.pathErr("stat", path, err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blobstore: open %s: %w: not a regular file", s.abs(path), ErrCorrupt)
	}
	if !compressed {
		return &rawReader{f: f, size: fi.Size()}, nil
	}
	r, err := s.newZstdReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: open %s: %w", s.abs(path), err)
	}
	return r, nil
}
