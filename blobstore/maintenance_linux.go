//go:build linux && !blobstore_osroot

package blobstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Remove deletes a blob. A missing blob is not an error.
func (s *Store) Remove(path string) error {
	if err := checkPath(path, BlobsDir, StagingDir); err != nil {
		return fmt.Errorf("blobstore: remove: %w", err)
	}
	dfd, base, err := s.openParent(path)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobstore: remove: %w", err)
	}
	defer unix.Close(dfd)
	// No fsync: a blob that a crash brings back is referenced by no row and
	// GC removes it as an orphan.
	if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("blobstore: %w", &os.PathError{Op: "remove", Path: s.abs(path), Err: err})
	}
	return nil
}

// Quarantine moves a blob into quarantine/ instead of deleting it and
// returns its new path. A name already taken there gets a random suffix.
func (s *Store) Quarantine(path string) (string, error) {
	if err := checkPath(path, BlobsDir, StagingDir); err != nil {
		return "", fmt.Errorf("blobstore: quarantine: %w", err)
	}
	sfd, base, err := s.openParent(path)
	if err != nil {
		return "", fmt.Errorf("blobstore: quarantine: %w", err)
	}
	defer unix.Close(sfd)
	qfd, err := s.openDir(QuarantineDir)
	if err != nil {
		return "", fmt.Errorf("blobstore: quarantine: %w", err)
	}
	defer unix.Close(qfd)
	name := base
	for range 8 {
		err = renameNoReplace(sfd, base, qfd, name)
		if err != unix.EEXIST {
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
			&os.LinkError{Op: "rename", Old: s.abs(path), New: s.abs(dst), Err: err})
	}
	// Keep the evidence across a crash; otherwise the blob would come back
	// unreferenced and be collected as an orphan.
	if err := s.fsync(qfd, QuarantineDir); err != nil {
		return dst, fmt.Errorf("blobstore: quarantine: %w", err)
	}
	return dst, nil
}

func (s *Store) walkDir(ctx context.Context, rel string, staging bool, fn func(File) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Each directory is opened afresh from the root without following
	// symlinks, so swapping a directory for a link mid-walk leads nowhere.
	fd, err := s.openDir(rel)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobstore: walk: %w", err)
	}
	dir := os.NewFile(uintptr(fd), s.abs(rel))
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("blobstore: walk: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := rel + "/" + name
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return fmt.Errorf("blobstore: walk: %w", &os.PathError{Op: "lstat", Path: s.abs(child), Err: err})
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := s.walkDir(ctx, child, staging, fn); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := fn(File{
				Path:    child,
				Size:    st.Size,
				ModTime: time.Unix(st.Mtim.Unix()),
				Staging: staging,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveUnlockedIf is RemoveUnlocked that, once it holds the file's lock,
// asks decide (when not nil) whether to go on. A decision taken before the
// lock could be stale by then: the owner may have finished and released the
// file meanwhile (a commit that inserted its row), so the caller re-checks
// here, where nothing local can change the answer before the unlink.
func (s *Store) RemoveUnlockedIf(path string, decide func() (bool, error)) (bool, error) {
	if err := checkPath(path, BlobsDir, StagingDir); err != nil {
		return false, fmt.Errorf("blobstore: remove: %w", err)
	}
	dfd, base, err := s.openParent(path)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobstore: remove: %w", err)
	}
	defer unix.Close(dfd)
	// O_NONBLOCK: opening a FIFO must not hang; flock works on any fd but an
	// O_PATH one, so a plain read-only open it is.
	fd, err := openBeneath(dfd, base, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", &os.PathError{Op: "open", Path: s.abs(path), Err: err})
	}
	defer unix.Close(fd)
	if err := flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return false, nil
		}
		return false, fmt.Errorf("blobstore: %w", &os.PathError{Op: "flock", Path: s.abs(path), Err: err})
	}
	var locked unix.Stat_t
	if err := unix.Fstat(fd, &locked); err != nil {
		return false, fmt.Errorf("blobstore: %w", &os.PathError{Op: "stat", Path: s.abs(path), Err: err})
	}
	if locked.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("blobstore: remove %s: not a regular file", s.abs(path))
	}
	// Unlink only if the name still denotes the inode we locked: between the
	// open and the lock its owner may have renamed it and released it.
	same, err := sameFile(fd, dfd, base)
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", &os.PathError{Op: "lstat", Path: s.abs(path), Err: err})
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
	// Unlink before the deferred close drops the lock. No fsync: an orphan
	// brought back by a crash is simply collected again.
	if err := unix.Unlinkat(dfd, base, 0); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, fmt.Errorf("blobstore: %w", &os.PathError{Op: "remove", Path: s.abs(path), Err: err})
	}
	return true, nil
}

// Stat returns the blob file's information, without following symlinks.
func (s *Store) Stat(path string) (os.FileInfo, error) {
	if err := checkPath(path, BlobsDir, StagingDir); err != nil {
		return nil, fmt.Errorf("blobstore: stat: %w", err)
	}
	// O_PATH|O_NOFOLLOW opens a final symlink itself (openat2 allows that
	// even with RESOLVE_NO_SYMLINKS), so fstat gives lstat semantics, while
	// any link in the directories above is refused.
	fd, err := s.openat(path, unix.O_PATH, 0)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", &os.PathError{Op: "lstat", Path: s.abs(path), Err: err})
	}
	f := os.NewFile(uintptr(fd), s.abs(path))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return fi, nil
}
