package blobstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// resolveFlags confine every lookup beneath the root and refuse symlinks in
// any component, so no path, however crafted or raced, leaves the root.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// checkPath validates a caller-supplied path: relative, slash separated,
// clean, no "..", at least one component below one of the dirs.
func checkPath(p string, dirs ...string) error {
	bad := p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") ||
		path.Clean(p) != p
	if !bad {
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." {
				bad = true
				break
			}
		}
	}
	if !bad {
		top, rest, ok := strings.Cut(p, "/")
		bad = !ok || rest == ""
		if !bad {
			bad = true
			for _, d := range dirs {
				if top == d {
					bad = false
					break
				}
			}
		}
	}
	if bad {
		return fmt.Errorf("%w: %q (want a relative path under %s/)", ErrInvalidPath, p, strings.Join(dirs, "/ or "))
	}
	return nil
}

// abs is rel joined to the root, for error messages.
func (s *Store) abs(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) }

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

// newName returns 32 random hex digits.
func newName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// blobPath is the blob path for name: blobs/ab/cd/<name>.parquet[.zst]. Two
// levels of 256 shards keep every directory to a few thousand entries even
// with hundreds of millions of blobs.
func blobPath(name string, compressed bool) (shard, rel string) {
	shard = BlobsDir + "/" + name[0:2] + "/" + name[2:4]
	rel = shard + "/" + name + ".parquet"
	if compressed {
		rel += ".zst"
	}
	return shard, rel
}

// Ref is a blob path in 17 bytes instead of a string of 52 or 56: the form to
// keep where many blob paths are held at once (a mount keeps one per inode
// the kernel holds, 100k after one `ls -l`).
type Ref struct {
	name       [16]byte
	compressed bool
}

// RefOf packs path, which must be blobs/ab/cd/<32 hex digits>.parquet[.zst]
// as Publish names blobs; ok is false for any other path, which the caller
// keeps as it is.
func RefOf(path string) (r Ref, ok bool) {
	base, found := strings.CutPrefix(path, BlobsDir+"/")
	if !found || len(base) < len("ab/cd/")+32 || base[2] != '/' || base[5] != '/' {
		return Ref{}, false
	}
	name, ext := base[6:6+32], base[6+32:]
	switch ext {
	case ".parquet":
	case ".parquet.zst":
		r.compressed = true
	default:
		return Ref{}, false
	}
	// Lower-case hex only, so that Path gives back exactly path.
	if strings.ToLower(name) != name || base[0:2] != name[0:2] || base[3:5] != name[2:4] {
		return Ref{}, false
	}
	if _, err := hex.Decode(r.name[:], []byte(name)); err != nil {
		return Ref{}, false
	}
	return r, true
}

// Path is the blob's path relative to the cache root.
func (r Ref) Path() string {
	_, rel := blobPath(hex.EncodeToString(r.name[:]), r.compressed)
	return rel
}

// The permissions of everything the store creates. Blobs are private to the
// cache root's owner whatever the mount shows or the root's own mode: other
// users read entries through the daemon (passthrough too uses the daemon's
// descriptor), never the files themselves. The umask can only remove bits.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

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
