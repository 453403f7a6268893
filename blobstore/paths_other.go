//go:build !linux || blobstore_osroot

package blobstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// syncDir fsyncs the directory rel where the platform can (see dirSync),
// unless NoSync.
func (s *Store) syncDir(rel string) error {
	if s.opts.NoSync || !dirSync {
		return nil
	}
	d, err := s.osRoot.Open(rel)
	if err != nil {
		return s.pathErr("open", rel, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return s.pathErr("fsync", rel, err)
	}
	return nil
}

// fsync flushes f, unless NoSync.
func (s *Store) fsync(f *os.File, rel string) error {
	if s.opts.NoSync {
		return nil
	}
	if err := f.Sync(); err != nil {
		return s.pathErr("fsync", rel, err)
	}
	return nil
}

// unlink removes the file rel.
func (s *Store) unlink(rel string) error {
	if err := s.osRoot.Remove(rel); err != nil {
		return s.pathErr("remove", rel, err)
	}
	return nil
}

// mkdirDurable makes sure blobs/<a>/<b> exists and that its entries up to
// blobs/ are on disk (where directories can be synced).
func (s *Store) mkdirDurable(shard string) error {
	if _, ok := s.durableDirs.Load(shard); ok {
		return nil
	}
	// As on Linux: sync the parent of every level, whoever created it.
	parts := strings.Split(shard, "/")
	for i := 1; i < len(parts); i++ {
		parent, dir := strings.Join(parts[:i], "/"), strings.Join(parts[:i+1], "/")
		if err := s.osRoot.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return s.pathErr("mkdir", dir, err)
		}
		if err := s.syncDir(parent); err != nil {
			return err
		}
	}
	s.durableDirs.Store(shard, struct{}{})
	return nil
}

// createLocked creates a new file staging/<random name><suffix>, takes its
// GC lock and returns it with the name. As on Linux, the lock is taken
// blocking and the name checked to still denote the locked file, since a
// sweeper may take and delete a file in the gap between create and lock.
func (s *Store) createLocked(suffix string) (f *os.File, name string, err error) {
	for range 8 {
		if name, err = newName(); err != nil {
			return nil, "", err
		}
		rel := StagingDir + "/" + name + suffix
		f, err := s.osRoot.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if err != nil {
			return nil, "", s.pathErr("create", rel, err)
		}
		if _, err := lockFile(f, true); err != nil {
			_ = s.osRoot.Remove(rel)
			f.Close()
			return nil, "", s.pathErr("lock", rel, err)
		}
		same, err := s.sameFile(f, rel)
		if err != nil {
			f.Close()
			return nil, "", s.pathErr("stat", rel, err)
		}
		if same {
			return f, name, nil
		}
		f.Close()
	}
	return nil, "", fmt.Errorf("create in %s: new files keep disappearing", s.abs(StagingDir))
}

// sameFile reports whether rel names the file open as f. A missing name is
// not an error.
func (s *Store) sameFile(f *os.File, rel string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	named, err := s.osRoot.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(open, named), nil
}

// renameNoReplace renames oldrel to newrel unless newrel exists. os.Root
// has no RENAME_NOREPLACE, so the check and the rename are two steps; names
// are random, so only Quarantine's kept base names can meet a clash, and a
// race there replaces one quarantined copy of a blob with another.
// Like the Linux version it returns the bare cause, for the caller to wrap.
func (s *Store) renameNoReplace(oldrel, newrel string) error {
	if _, err := s.osRoot.Lstat(newrel); err == nil {
		return fs.ErrExist
	} else if !errors.Is(err, fs.ErrNotExist) {
		return bare(err)
	}
	return bare(s.osRoot.Rename(oldrel, newrel))
}

// bare is err without the *os.PathError or *os.LinkError around it.
func bare(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
