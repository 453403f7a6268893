// Package fusefs presents a cache root as a FUSE filesystem:
// <mountpoint>/<symbol>/<key>.parquet, plus the virtual .control directory.
//
// It is a thin layer: kernel operations become calls on manifest (what
// exists), blobstore (the bytes) and hashing (validation at commit). The
// invariants it keeps on top of them:
//   - every committed version is immutable and has its own inode number (its
//     manifest row id), so the kernel never pairs a cached size with other
//     bytes and page caches may be kept across opens;
//   - a write builds a new version in a staged file and commits it in Flush,
//     the only operation whose error reaches close(2); the name is visible to
//     others only after the manifest commit;
//   - a reader's handle pins the blob it opened, so replace, unlink and GC
//     never change what it reads.
package fusefs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/manifest"
)

// GCResult is what a GC run reports back to the mount.
type GCResult struct {
	// Report is the run's JSON report, served by reads of .control/gc.
	Report       []byte
	FilesDeleted int64
	BytesFreed   int64
}

// Config wires an FS to its cache root.
type Config struct {
	// Cache is the cache root served: its manifest, blobs and commits.
	Cache *cache.Cache
	// Passthrough lets the kernel read raw blobs directly where it can.
	Passthrough bool
	// RunGC runs one GC over the cache root; nil disables .control/gc writes.
	RunGC func(ctx context.Context, dryRun bool) (GCResult, error)
	// LastGCReport returns the last report ("{}" before the first run).
	LastGCReport func() ([]byte, error)
	// UID and GID own every file; the mounting user by default.
	UID, GID uint32
	// CacheTimeout is how long the kernel may cache names and attributes.
	// Changes made through this mount or seen by Watch are pushed to the
	// kernel explicitly, so it can be long.
	CacheTimeout time.Duration
	// OrphanGrace is how long a closed scratch file may sit unchanged before
	// a GC run through this mount drops it.
	OrphanGrace time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	// Failpoint, when set, is called with a point's name at each step of a
	// commit, so tests can crash the daemon there. Production leaves it nil.
	Failpoint func(name string)
}

// Inode numbers. The root is 1, as on most local filesystems (0 would show
// as "?" in ls -i, and some tools take it for "no inode"); the control
// files sit just above it. Entries use entryInoBase plus their manifest row
// id, so a version keeps its number across remounts and never meets the
// fixed numbers; symbols hash their name into the range above symbolInoBit;
// files that are not committed yet count up from pendingInoBase.
const (
	rootIno        = 1
	controlDirIno  = 2
	controlGCIno   = 3
	controlStatIno = 4
	controlErrIno  = 5
	entryInoBase   = 1 << 20
	symbolInoBit   = 1 << 61
	pendingInoBase = 1 << 62
)

func entryIno(id int64) uint64 { return entryInoBase + uint64(id) }

func symbolIno(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return symbolInoBit | (h.Sum64() & (symbolInoBit - 1))
}

// FS is one mounted cache root.
type FS struct {
	cfg   Config
	cache *cache.Cache
	db    *manifest.DB
	store *blobstore.Store
	log   *slog.Logger
	now   func() time.Time

	root    *rootNode
	nextIno atomic.Uint64
	stats   counters
	errs    *errorLog
	started time.Time

	// scratch holds the dot-files of every symbol directory. It lives here
	// rather than on directory nodes because the kernel may forget a
	// directory inode while its scratch files are still wanted.
	scratchMu sync.Mutex
	scratch   map[scratchKey]*scratchNode
	// pending holds the entry names whose last close left no complete
	// parquet file yet (see pendingName), under scratchMu too: they live
	// and die like scratch files.
	pending map[entryRef]*pendingName

	// redirects marks writers sent back to look their name up again, so
	// that the lookup gives them a private inode (see redirectTable).
	redirects redirectTable

	// watchMu serialises polls of the manifest's change log.
	watchMu     sync.Mutex
	watchCursor int64
}

// counters feed .control/stats.
type counters struct {
	hits, misses       atomic.Int64
	commits, rejected  atomic.Int64
	fullHashes         atomic.Int64
	footerHashes       atomic.Int64
	gcRuns             atomic.Int64
	gcFiles, gcBytes   atomic.Int64
	openReaders        atomic.Int64
	openWriters        atomic.Int64
	passthroughOpens   atomic.Int64
	notifyInvalidation atomic.Int64
}

// New builds the filesystem; Mount serves it.
func New(ctx context.Context, cfg Config) (*FS, error) {
	if cfg.Cache == nil {
		return nil, fmt.Errorf("fusefs: a cache is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheTimeout <= 0 {
		cfg.CacheTimeout = time.Minute
	}
	cursor, err := cfg.Cache.DB().LastChange(ctx)
	if err != nil {
		return nil, fmt.Errorf("fusefs: read change cursor: %w", err)
	}
	fsys := &FS{
		cfg:         cfg,
		cache:       cfg.Cache,
		db:          cfg.Cache.DB(),
		store:       cfg.Cache.Blobs(),
		log:         cfg.Logger,
		now:         cfg.Now,
		errs:        newErrorLog(100),
		started:     cfg.Now(),
		scratch:     make(map[scratchKey]*scratchNode),
		pending:     make(map[entryRef]*pendingName),
		watchCursor: cursor,
		redirects:   redirectTable{now: cfg.Now},
	}
	fsys.nextIno.Store(pendingInoBase)
	fsys.root = &rootNode{fsys: fsys}
	return fsys, nil
}

// Root is the root node, for fs.Mount.
func (fsys *FS) Root() fs.InodeEmbedder { return fsys.root }

// MountOptions are the user-facing mount settings.
type MountOptions struct {
	AllowOther bool
	// Direct mounts through mount(2) instead of fusermount3 (needs root).
	Direct bool
	Debug  bool
	// FsName shows in /proc/mounts and df (the cache root).
	FsName string
}

// Mount serves fsys at mountpoint until the returned server is unmounted.
func Mount(mountpoint string, fsys *FS, mo MountOptions) (*fuse.Server, error) {
	// No default cache timeouts: every reply sets its own (see cacheName),
	// and absent names are not cached at all: a name must be visible to
	// everyone as soon as its commit returns, and a negative entry has no
	// inode that a commit or the change log could invalidate.
	opts := &fs.Options{
		UID:            fsys.cfg.UID,
		GID:            fsys.cfg.GID,
		RootStableAttr: &fs.StableAttr{Ino: rootIno},
		MountOptions: fuse.MountOptions{
			FsName:     mo.FsName,
			Name:       "featurefs",
			AllowOther: mo.AllowOther,
			// Others reach the mount only with --allow-other, and then the
			// kernel enforces the modes shown (0644 files of the owner).
			Options:     permissionOptions(mo.AllowOther),
			DirectMount: mo.Direct,
			// 1 MiB writes roughly double write throughput over 128 KiB.
			MaxWrite:     1 << 20,
			MaxReadAhead: maxReadAhead,
			Debug:        mo.Debug,
			// O_TRUNC arrives in Open's flags instead of a separate SETATTR,
			// so truncating an entry starts a new version atomically while
			// the old one stays visible until the commit.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
		},
	}
	server, err := fs.Mount(mountpoint, fsys.root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	if err := raiseReadAhead(mountpoint, maxReadAhead); err != nil {
		fsys.log.Debug("kernel read-ahead stays at its default", "mountpoint", mountpoint, "err", err)
	}
	return server, nil
}

// maxReadAhead is the most the kernel reads ahead of a sequential reader in
// one request.
const maxReadAhead = 1 << 20

// raiseReadAhead lets the kernel read ahead up to n bytes in one request.
// The FUSE connection's limit alone does not: the kernel caps read-ahead at
// the mount's backing device setting, 128 KiB unless raised, and a zstd
// entry read cold in 128 KiB requests spends ~7% more time than in 1 MiB
// ones (per-request overhead). Only root may write the setting; elsewhere
// the default stays.
func raiseReadAhead(mountpoint string, n int) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return fmt.Errorf("stat %s: %w", mountpoint, err)
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(path, []byte(strconv.Itoa(n>>10)), 0); err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	return nil
}

func permissionOptions(allowOther bool) []string {
	if allowOther {
		return []string{"default_permissions"}
	}
	return nil
}

// Close discards every uncommitted scratch file and pending name; the mount
// must be gone.
func (fsys *FS) Close() {
	fsys.cache.Retirer().Flush()
	fsys.scratchMu.Lock()
	defer fsys.scratchMu.Unlock()
	for k, s := range fsys.scratch {
		s.content.discard()
		delete(fsys.scratch, k)
	}
	for ref, p := range fsys.pending {
		p.content.discard()
		delete(fsys.pending, ref)
	}
}

// redirectWriter, redirected and redirectDone consult the writer redirect
// table (see redirectTable).
func (fsys *FS) redirectWriter(tid uint32) bool { return fsys.redirects.mark(tid) }
func (fsys *FS) redirected(tid uint32) bool     { return fsys.redirects.lookedUp(tid) }
func (fsys *FS) redirectDone(tid uint32)        { fsys.redirects.done(tid) }

// uninterruptible drops the kernel's interrupt from a request's context, for
// the short manifest queries behind lookups and namespace changes. The kernel
// sends an interrupt whenever the caller takes any handled signal, and Go
// programs take the runtime's preemption signal all the time: failing the
// query with EINTR would give stat, unlink or rename an error no local
// filesystem gives, and an interrupted lookup of a redirected writer sends
// its retried open to the readers' inode. A fatal signal still ends the
// caller: the kernel abandons the request without waiting for us.
func uninterruptible(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// superseded reports whether the version with row id is no longer
// committed (replaced or removed), as opposed to damaged.
func (fsys *FS) superseded(ctx context.Context, id int64) bool {
	_, err := fsys.db.GetByID(uninterruptible(ctx), id)
	return errors.Is(err, manifest.ErrNotFound)
}

// entryAttrTimeout is how long the kernel keeps a committed entry's
// attributes: short, so stat shows access times as they move.
const entryAttrTimeout = time.Second

// cacheName lets the kernel cache a committed name for CacheTimeout and its
// attributes for attr. Names of files not committed yet get no call and so
// are never cached: everyone else's next lookup must ask again.
func (fsys *FS) cacheName(out *fuse.EntryOut, attr time.Duration) {
	out.SetEntryTimeout(fsys.cfg.CacheTimeout)
	out.SetAttrTimeout(attr)
}

// newIno hands out an inode number for a file that has no row id yet.
func (fsys *FS) newIno() uint64 { return fsys.nextIno.Add(1) }

// fail logs a failed operation, lists it in .control/errors and returns the
// errno for the caller.
func (fsys *FS) fail(op, path string, err error) syscall.Errno {
	errno := toErrno(err)
	fsys.log.Warn("operation failed", "op", op, "path", path, "errno", errno.Error(), "err", err)
	fsys.errs.add(fsys.now(), path, fmt.Sprintf("%s: %v", op, err))
	return errno
}

// refuse logs an operation refused for what was asked (a bad name, a link
// in a symbol directory, a write that cannot make parquet), lists it in
// .control/errors, counts it as a rejected write, and returns errno for the
// caller. Shells ignore close's error, so the log and the list are where a
// user finds out.
func (fsys *FS) refuse(op, path string, errno syscall.Errno, why string) syscall.Errno {
	fsys.stats.rejected.Add(1)
	fsys.log.Warn("operation refused", "op", op, "path", path, "errno", errno.Error(), "reason", why)
	fsys.errs.add(fsys.now(), path, fmt.Sprintf("%s: %v (%s)", op, errno, why))
	return errno
}

// failpoint marks a step of a commit for crash tests.
func (fsys *FS) failpoint(name string) {
	if fsys.cfg.Failpoint != nil {
		fsys.cfg.Failpoint(name)
	}
}

// owner returns uid/gid for attributes.
func (fsys *FS) owner() fuse.Owner { return fuse.Owner{Uid: fsys.cfg.UID, Gid: fsys.cfg.GID} }
