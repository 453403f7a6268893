//go:build linux && !blobstore_osroot

package blobstore

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// resolveFlags confine every lookup beneath the root and refuse symlinks in
// any component, so no path, however crafted or raced, leaves the root.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openat opens rel beneath the root without following symlinks. mode is
// used only with O_CREAT.
func (s *Store) openat(rel string, flags int, mode uint32) (int, error) {
	return openBeneath(s.rootFD, rel, flags, mode)
}

func openBeneath(dirfd int, rel string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: resolveFlags,
	}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat2(dirfd, rel, &how)
		// EAGAIN: a concurrent rename anywhere on the system made the kernel
		// unable to prove confinement; it asks for a retry.
		if (err == unix.EAGAIN || err == unix.EINTR) && attempt < 16 {
			continue
		}
		return fd, err
	}
}

// openDir opens the directory rel (or "." for the root) for *at calls.
func (s *Store) openDir(rel string) (int, error) {
	fd, err := s.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: s.abs(rel), Err: err}
	}
	return fd, nil
}

// openParent opens the directory holding rel and returns it with rel's base.
func (s *Store) openParent(rel string) (int, string, error) {
	dir, base := path.Split(rel)
	fd, err := s.openDir(strings.TrimSuffix(dir, "/"))
	return fd, base, err
}

// syncDir fsyncs the directory rel, unless NoSync.
func (s *Store) syncDir(rel string) error {
	if s.opts.NoSync {
		return nil
	}
	fd, err := s.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return s.fsync(fd, rel)
}

// fsync flushes fd, unless NoSync.
func (s *Store) fsync(fd int, rel string) error {
	if s.opts.NoSync {
		return nil
	}
	for {
		err := unix.Fsync(fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fsync", Path: s.abs(rel), Err: err}
		}
		return nil
	}
}

// unlink removes the file rel, resolving its directory without symlinks.
func (s *Store) unlink(rel string) error {
	dfd, base, err := s.openParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, base, 0); err != nil {
		return &os.PathError{Op: "remove", Path: s.abs(rel), Err: err}
	}
	return nil
}

// openShard opens the shard directory for a new blob, creating it durably
// when needed.
func (s *Store) openShard(shard string) (int, error) {
	for attempt := 0; ; attempt++ {
		if err := s.mkdirDurable(shard); err != nil {
			return -1, err
		}
		fd, err := s.openDir(shard)
		// Someone removed a shard this process had made durable: make it again.
		if errors.Is(err, unix.ENOENT) && attempt == 0 {
			s.durableDirs.Delete(shard)
			continue
		}
		return fd, err
	}
}

// mkdirDurable makes sure blobs/<a>/<b> exists and that its entries up to
// blobs/ are on disk.
func (s *Store) mkdirDurable(shard string) error {
	if _, ok := s.durableDirs.Load(shard); ok {
		return nil
	}
	// Create each level; fsync the parent of every level, whether this call
	// created it or a concurrent publisher (maybe in a process that crashed
	// before its fsync) did: a blob is durable only if its directories are.
	parts := strings.Split(shard, "/")
	for i := 1; i < len(parts); i++ {
		parent, dir := strings.Join(parts[:i], "/"), strings.Join(parts[:i+1], "/")
		pfd, err := s.openDir(parent)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, parts[i], dirMode)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(pfd)
			return &os.PathError{Op: "mkdir", Path: s.abs(dir), Err: err}
		}
		// Persist the new directory's entry in its parent.
		err = s.fsync(pfd, parent)
		unix.Close(pfd)
		if err != nil {
			return err
		}
	}
	s.durableDirs.Store(shard, struct{}{})
	return nil
}

// createLocked creates a new file staging/<random name><suffix>, takes its
// GC lock and returns it with the name.
//
// A file exists, unlocked, between its creation and the flock, and a sweeper
// that ignores the orphan grace may take and delete it in that gap. So the
// lock is taken blocking (a sweeper holds it only while unlinking) and the
// name is checked to still denote the locked file; if not, try a new name.
func (s *Store) createLocked(suffix string) (f *os.File, name string, err error) {
	sfd, err := s.openDir(StagingDir)
	if err != nil {
		return nil, "", err
	}
	defer unix.Close(sfd)
	for range 8 {
		if name, err = newName(); err != nil {
			return nil, "", err
		}
		rel := StagingDir + "/" + name + suffix
		fd, err := openBeneath(sfd, name+suffix, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, fileMode)
		if err != nil {
			return nil, "", &os.PathError{Op: "create", Path: s.abs(rel), Err: err}
		}
		if err := flock(fd, unix.LOCK_EX); err != nil {
			_ = unix.Unlinkat(sfd, name+suffix, 0)
			unix.Close(fd)
			return nil, "", &os.PathError{Op: "flock", Path: s.abs(rel), Err: err}
		}
		same, err := sameFile(fd, sfd, name+suffix)
		if err != nil {
			unix.Close(fd)
			return nil, "", &os.PathError{Op: "stat", Path: s.abs(rel), Err: err}
		}
		if same {
			return os.NewFile(uintptr(fd), s.abs(rel)), name, nil
		}
		unix.Close(fd)
	}
	return nil, "", fmt.Errorf("create in %s: new files keep disappearing", s.abs(StagingDir))
}

// flock is flock(2), retried on EINTR.
func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// sameFile reports whether name in directory dirfd is the file open as fd.
// A missing name is not an error.
func sameFile(fd, dirfd int, name string) (bool, error) {
	var open, named unix.Stat_t
	if err := unix.Fstat(fd, &open); err != nil {
		return false, err
	}
	if err := unix.Fstatat(dirfd, name, &named, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	return open.Dev == named.Dev && open.Ino == named.Ino, nil
}

// renameNoReplace renames without ever clobbering an existing name, falling
// back to a plain rename on filesystems without RENAME_NOREPLACE (names are
// random, so a clash there is practically impossible).
func renameNoReplace(oldfd int, oldname string, newfd int, newname string) error {
	err := unix.Renameat2(oldfd, oldname, newfd, newname, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		err = unix.Renameat(oldfd, oldname, newfd, newname)
	}
	return err
}

// makePrivate removes group and other permissions from the open file fd,
// leaving the owner's as they are.
func makePrivate(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&0o077 == 0 {
		return nil
	}
	return unix.Fchmod(fd, st.Mode&0o7777&^0o077)
}
