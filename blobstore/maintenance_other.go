//go:build !linux || blobstore_osroot

package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
)

// Remove deletes a blob. A missing blob is not an error.
func (s *Store) Remove(rel string) error {
	if err := checkPath(rel, BlobsDir, StagingDir); err != nil {
		return fmt.Errorf("blobstore: remove: %w", err)
	}
	// No sync: a blob that a crash brings back is an orphan GC removes.
	if err := s.osRoot.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", s.pathErr("remove", rel, err))
	}
	return nil
}

// Quarantine moves a blob into quarantine/ instead of deleting it and
// returns its new path. A name already taken there gets a random suffix.
func (s *Store) Quarantine(rel string) (string, error) {
	if err := checkPath(rel, BlobsDir, StagingDir); err != nil {
		return "", fmt.Errorf("blobstore: quarantine: %w", err)
	}
	base := path.Base(rel)
	name := base
	var err error
	for range 8 {
		err = s.renameNoReplace(rel, QuarantineDir+"/"+name)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
		suffix, rerr := newName()
		if rerr != nil {
			return "", fmt.Errorf("blobstore: quarantine: %w", rerr)
		}
		name = base + "." + suffix[:8]
	}
	dst := QuarantineDir + "/" + name
	if err != nil {
		return "", fmt.Errorf("blobstore: quarantine: %w",
			&os.LinkError{Op: "rename", Old: s.abs(rel), New: s.abs(dst), Err: err})
	}
	// Keep the evidence across a crash.
	if err := s.syncDir(QuarantineDir); err != nil {
		return dst, fmt.Errorf("blobstore: quarantine: %w", err)
	}
	return dst, nil
}

func (s *Store) walkDir(ctx context.Context, rel string, staging bool, fn func(File) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.osRoot.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobstore: walk: %w", s.pathErr("open", rel, err))
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return fmt.Errorf("blobstore: walk: %w", s.pathErr("readdir", rel, err))
	}
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := rel + "/" + name
		fi, err := s.osRoot.Lstat(child)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("blobstore: walk: %w", s.pathErr("lstat", child, err))
		}
		switch {
		case fi.IsDir():
			if err := s.walkDir(ctx, child, staging, fn); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := fn(File{Path: child, Size: fi.Size(), ModTime: fi.ModTime(), Staging: staging}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveUnlockedIf is RemoveUnlocked that, once it holds the file's lock,
// asks decide (when not nil) whether to go on (see the Linux version).
func (s *Store) RemoveUnlockedIf(rel string, decide func() (bool, error)) (bool, error) {
	if err := checkPath(rel, BlobsDir, StagingDir); err != nil {
		return false, fmt.Errorf("blobstore: remove: %w", err)
	}
	// Refuse a FIFO before opening it (the open could hang).
	fi, err := s.osRoot.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", s.pathErr("lstat", rel, err))
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("blobstore: remove %s: not a regular file", s.abs(rel))
	}
	f, err := s.osRoot.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", s.pathErr("open", rel, err))
	}
	defer f.Close()
	ok, err := lockFile(f, false)
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", s.pathErr("lock", rel, err))
	}
	if !ok {
		return false, nil
	}
	// Remove only if the name still denotes the file we locked.
	same, err := s.sameFile(f, rel)
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", s.pathErr("lstat", rel, err))
	}
	if !same {
		return false, nil
	}
	if decide != nil {
		ok, err := decide()
		if err != nil || !ok {
			return false, err
		}
	}
	// Remove before the deferred close drops the lock.
	if err := s.osRoot.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("blobstore: %w", s.pathErr("remove", rel, err))
	}
	return true, nil
}

// Stat returns the blob file's information, without following a final
// symlink.
func (s *Store) Stat(rel string) (os.FileInfo, error) {
	if err := checkPath(rel, BlobsDir, StagingDir); err != nil {
		return nil, fmt.Errorf("blobstore: stat: %w", err)
	}
	fi, err := s.osRoot.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", s.pathErr("lstat", rel, err))
	}
	return fi, nil
}
