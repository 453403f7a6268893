package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"featurefs/blobstore"
)

// fileNode is an entry: one committed, immutable version (inode number =
// row id), or a file just created and not committed yet.
type fileNode struct {
	fs.Inode
	fsys *FS

	mu sync.Mutex
	// entry is the committed version; nil until a created file commits.
	entry *version
	// created is the creator's content: its size is what the writer's own
	// fstat must show. Never set on a version that readers can reach: its
	// inode is shared with them, and a pending size there would cut their
	// reads short.
	created *content
	// private, set on an inode made for one writer replacing entry (see
	// FS.redirectWriter), is the name it was made for; readers never use
	// such an inode.
	private *entryRef
	// io counts the open handles by the kernel I/O mode they put the inode
	// in. The kernel fails (EIO) an open whose mode conflicts with the
	// inode's: while passthrough readers hold it every open must be
	// passthrough, and while page-cached readers hold it none may be. Both
	// decisions are taken here, under mu, so they never conflict.
	io ioModes
}

// ioModes counts a node's open handles per kernel I/O mode.
type ioModes struct {
	passthrough int // raw-blob readers the kernel reads directly
	cached      int // readers served by the daemon through the page cache
	writers     int // direct-I/O writers: compatible with cached readers only
}

var (
	_ fs.NodeGetattrer     = (*fileNode)(nil)
	_ fs.NodeSetattrer     = (*fileNode)(nil)
	_ fs.NodeOpener        = (*fileNode)(nil)
	_ fs.NodeGetxattrer    = (*fileNode)(nil)
	_ fs.NodeListxattrer   = (*fileNode)(nil)
	_ fs.NodeSetxattrer    = (*fileNode)(nil)
	_ fs.NodeRemovexattrer = (*fileNode)(nil)
)

// entryRef names an entry.
type entryRef struct{ symbol, key string }

func (n *fileNode) current() (*version, *content) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.entry, n.created
}

func (n *fileNode) setEntry(e *version) {
	n.mu.Lock()
	n.entry = e
	n.mu.Unlock()
}

func (n *fileNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	n.attrTimeout(out)
	return 0
}

// attrTimeout lets the kernel cache the attributes of a committed version
// shared by readers; a file being created or a writer's private inode
// changes under its writer and is never cached.
func (n *fileNode) attrTimeout(out *fuse.AttrOut) {
	e, created := n.current()
	if e != nil && created == nil && n.private == nil {
		out.SetTimeout(entryAttrTimeout)
	}
}

// fill writes the attributes of the node's current state.
func (n *fileNode) fill(a *fuse.Attr) {
	e, created := n.current()
	if created != nil && (e == nil || created.isDirty()) {
		size, mtimeNS := created.snapshot()
		t := n.fsys.now()
		if mtimeNS != 0 {
			t = time.Unix(0, mtimeNS)
		}
		fileAttr(n.fsys, a, size, size, t, t, t)
		return
	}
	if e == nil {
		fileAttr(n.fsys, a, 0, 0, n.fsys.started, n.fsys.started, n.fsys.started)
		return
	}
	n.fsys.entryAttr(a, e)
}

// entryAttr fills the attributes of a committed version.
func (fsys *FS) entryAttr(a *fuse.Attr, e *version) {
	atime := time.Unix(e.accessedTS, 0)
	if _, last := fsys.db.PendingAccess(e.id); last.After(atime) {
		atime = last
	}
	mtime := time.Unix(0, e.modTimeNS)
	fileAttr(fsys, a, e.size, e.stored, atime, mtime, time.Unix(e.createdTS, 0))
	a.Ino = entryIno(e.id)
}

// fileAttr fills a regular file's attributes. Blocks count the stored
// (possibly compressed) bytes, so du reports the disk the cache really uses.
func fileAttr(fsys *FS, a *fuse.Attr, size, stored int64, atime, mtime, ctime time.Time) {
	a.Mode = fuse.S_IFREG | 0o644
	a.Nlink = 1
	a.Owner = fsys.owner()
	a.Size = uint64(size)
	a.Blocks = uint64((stored + 511) / 512)
	// A large preferred block size makes cp and rsync move 1 MiB at a time.
	a.Blksize = 1 << 20
	a.SetTimes(&atime, &mtime, &ctime)
}

func (n *fileNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	e, created := n.current()
	c := created
	if h, ok := f.(*writeHandle); ok {
		c = h.content
	}
	path := n.fsys.pathOf(&n.Inode)
	if size, ok := in.GetSize(); ok {
		switch {
		case c != nil:
			if err := c.truncate(ctx, int64(size)); err != nil {
				return n.fsys.fail("truncate", path, err)
			}
		case e != nil && int64(size) == e.size:
			// Nothing changes.
		default:
			// Truncating a committed version in place by path cannot give
			// valid parquet; a writer opens with O_TRUNC and writes anew.
			n.fsys.errs.add(n.fsys.now(), path, "truncate: a committed entry cannot be truncated in place")
			return syscall.EINVAL
		}
	}
	if mtime, ok := in.GetMTime(); ok {
		switch {
		case c != nil:
			c.setMtime(mtime.UnixNano())
		case e != nil:
			if err := n.fsys.db.SetModTime(uninterruptible(ctx), e.id, mtime.UnixNano()); err != nil {
				return n.fsys.fail("utimes", path, err)
			}
			updated := *e
			updated.modTimeNS = mtime.UnixNano()
			n.setEntry(&updated)
		}
	}
	// Mode, owner and atime changes succeed and change nothing, so cp -p and
	// rsync -a work; every entry is 0644 of the mounting user.
	n.fill(&out.Attr)
	n.attrTimeout(out)
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	write := flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 || flags&syscall.O_TRUNC != 0
	e, _ := n.current()
	if e == nil {
		// Not committed yet: invisible to readers. A second writer racing
		// the creator reaches the same pending inode; it gets its own new
		// version, and the last close wins, as for any replace.
		if write {
			if sym, key, ok := n.fsys.location(&n.Inode); ok {
				if flags&(syscall.O_APPEND|syscall.O_TRUNC) == syscall.O_APPEND {
					if h, errno := n.continuation(ctx, sym, key, true); h != nil || errno != 0 {
						return h, fuse.FOPEN_DIRECT_IO, errno
					}
				}
				n.mu.Lock()
				n.io.writers++
				n.mu.Unlock()
				return n.openWriter(ctx, sym, key, nil, flags), fuse.FOPEN_DIRECT_IO, 0
			}
		}
		return nil, 0, syscall.ENOENT
	}
	sym, key, located := n.fsys.location(&n.Inode)
	if !located && n.private != nil {
		sym, key = n.private.symbol, n.private.key
	}
	path := sym + "/" + entryName(key)
	if !located && n.private == nil {
		// Only for messages: writers never use this name (openWrite). A
		// node the tree has dropped has no path left.
		if path = n.fsys.pathOf(&n.Inode); path == "" {
			path = fmt.Sprintf("entry id %d (replaced or removed)", e.id)
		}
	}
	if write {
		return n.openWrite(ctx, e, sym, key, located, flags)
	}
	if n.private != nil {
		// A writer's private inode, reached by a reader: racing the
		// writer's lookup, or on a thread whose writer mark outlived its
		// writer (an open that failed before reaching its inode). Clear
		// the mark so that the kernel's retry looks up the shared inode.
		if caller, ok := fuse.FromContext(ctx); ok {
			n.fsys.redirectDone(caller.Pid)
		}
		return nil, 0, syscall.ESTALE
	}
	r, err := n.fsys.store.OpenBlob(e.path())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && n.fsys.superseded(ctx, e.id) {
			// The kernel resolved the name to a version that was replaced
			// or removed since (its notification is on the way): ESTALE
			// makes it look the name up again and open what is there now.
			return nil, 0, syscall.ESTALE
		}
		return nil, 0, n.fsys.fail("open", path, err)
	}
	if size := r.Size(); size != e.size {
		// A blob cut short (or grown) behind the daemon's back: serving
		// it would hand out short bytes as a success, and by passthrough
		// the reads would never even reach the daemon. OpenBlob has the
		// size from its fstat already.
		r.Close()
		return nil, 0, n.fsys.fail("open", path, fmt.Errorf("blob %s holds %d bytes, the manifest says %d: %w",
			e.path(), size, e.size, blobstore.ErrCorrupt))
	}
	n.fsys.db.RecordAccess(e.id, n.fsys.now())
	n.fsys.stats.hits.Add(1)
	n.fsys.stats.openReaders.Add(1)
	h := &readHandle{fsys: n.fsys, node: n, r: r, path: path}
	n.mu.Lock()
	if n.fsys.cfg.Passthrough && r.RawFile() != nil && n.io.cached == 0 && n.io.writers == 0 {
		h.passthrough = true
		n.io.passthrough++
	} else {
		n.io.cached++
	}
	n.mu.Unlock()
	if h.passthrough {
		n.fsys.stats.passthroughOpens.Add(1)
	}
	// The version never changes, so its pages stay valid across opens. A
	// reader's close has nothing to flush: NOFLUSH spares it the round
	// trip to the daemon (close returns at once; Release comes later).
	return h, fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH, 0
}

// openWrite opens committed version e for writing a new version of
// symbol/key; located says whether that name comes from the tree (else it is
// e's, which a rename may have made stale).
func (n *fileNode) openWrite(ctx context.Context, e *version, sym, key string, located bool, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_APPEND|syscall.O_TRUNC) == syscall.O_APPEND {
		if h, errno, done := n.openAppend(ctx, sym, key); done {
			if h == nil {
				return nil, 0, errno
			}
			return h, fuse.FOPEN_DIRECT_IO, 0
		}
	}
	// Redirect even a node that has left the tree (a lookup racing a
	// replace can leave the kernel a stale name for a moment): the
	// retry looks the name up afresh.
	if caller, ok := fuse.FromContext(ctx); ok && n.private == nil {
		if n.fsys.redirectWriter(caller.Pid) {
			// Readers share this inode: have the kernel look the name
			// up again, and give this writer an inode of its own.
			return nil, 0, syscall.ESTALE
		}
		if !located {
			// The retry reached a node the tree has dropped: the name
			// the writer opened is unknown, and committing under e's
			// could write to a name it no longer has.
			return nil, 0, syscall.ESTALE
		}
	}
	n.mu.Lock()
	if n.io.passthrough > 0 {
		// The kernel fails a non-passthrough open of an inode that
		// passthrough readers hold; its retry did not reach a lookup.
		n.mu.Unlock()
		return nil, 0, syscall.EBUSY
	}
	n.io.writers++
	n.mu.Unlock()
	var base *version
	if flags&syscall.O_TRUNC == 0 {
		base = e
	}
	h := n.openWriter(ctx, sym, key, base, flags)
	if n.private != nil {
		// The inode is this writer's alone: its fstat may show the
		// pending size, as for a created file.
		if caller, ok := fuse.FromContext(ctx); ok {
			n.fsys.redirectDone(caller.Pid)
		}
		n.mu.Lock()
		if n.created == nil {
			n.created = h.content
		}
		n.mu.Unlock()
	}
	// Direct I/O keeps the new version's bytes out of the page cache of
	// an inode that may belong to the committed version readers see.
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// openWriter starts a new version of symbol/key on this node, from base
// (O_RDWR without O_TRUNC) or empty. The caller has counted it in io.writers.
func (n *fileNode) openWriter(ctx context.Context, symbol, key string, base *version, flags uint32) *writeHandle {
	n.fsys.stats.openWriters.Add(1)
	return &writeHandle{
		fsys:      n.fsys,
		node:      n,
		symbol:    symbol,
		key:       key,
		content:   newContent(n.fsys, base, base == nil),
		uid:       callerUID(ctx),
		appending: flags&syscall.O_APPEND != 0,
	}
}

// openAppend decides an O_APPEND open of committed symbol/key: it continues
// the caller's pending name of that key, and is refused otherwise, at open,
// where a shell reports it: appending to a complete parquet file does not
// make one. done is false when the open must go on as any writer's (to be
// given a private inode first).
func (n *fileNode) openAppend(ctx context.Context, sym, key string) (h *writeHandle, errno syscall.Errno, done bool) {
	path := sym + "/" + entryName(key)
	if n.private == nil {
		p, others := n.fsys.pendingFor(sym, key, callerUID(ctx), false)
		switch {
		case others:
			return nil, n.fsys.refuse("open", path, syscall.EACCES, "a pending name belongs to the user who created it"), true
		case p == nil:
			return nil, n.fsys.refuse("open", path, syscall.EINVAL, "O_APPEND of a committed entry: appending to a parquet file does not make one"), true
		}
		if caller, ok := fuse.FromContext(ctx); ok && n.fsys.redirectWriter(caller.Pid) {
			// As for any writer: readers share this inode.
			return nil, syscall.ESTALE, true
		}
		// The kernel's one retry did not come through a lookup: continue
		// on the shared inode, whose shown size the handle leaves alone.
		h, errno := n.continuation(ctx, sym, key, false)
		if h == nil && errno == 0 {
			errno = syscall.ESTALE
		}
		return h, errno, true
	}
	if caller, ok := fuse.FromContext(ctx); ok {
		n.fsys.redirectDone(caller.Pid)
	}
	h, errno = n.continuation(ctx, sym, key, true)
	if h == nil && errno == 0 {
		errno = n.fsys.refuse("open", path, syscall.EINVAL, "O_APPEND of a committed entry: appending to a parquet file does not make one")
	}
	return h, errno, true
}

// continuation opens the caller's pending name of symbol/key to continue
// it; nil without an error when there is none. own says the inode is the
// writer's alone (created, or private), so its attributes may show the
// pending size.
func (n *fileNode) continuation(ctx context.Context, sym, key string, own bool) (*writeHandle, syscall.Errno) {
	uid := callerUID(ctx)
	p, others := n.fsys.pendingFor(sym, key, uid, true)
	if others {
		return nil, n.fsys.refuse("open", sym+"/"+entryName(key), syscall.EACCES, "a pending name belongs to the user who created it")
	}
	if p == nil {
		return nil, 0
	}
	n.mu.Lock()
	if n.io.passthrough > 0 {
		n.mu.Unlock()
		p.opens.Add(-1)
		return nil, syscall.EBUSY
	}
	n.io.writers++
	if own {
		n.created = p.content
	}
	n.mu.Unlock()
	return n.fsys.continueHandle(n, sym, key, p, uid), 0
}

// continueHandle is a write handle continuing pending name p, which the
// caller has attached to (counted an open of) and counted in the node's
// io.writers.
func (fsys *FS) continueHandle(n *fileNode, sym, key string, p *pendingName, uid uint32) *writeHandle {
	fsys.stats.openWriters.Add(1)
	return &writeHandle{
		fsys:      fsys,
		node:      n,
		symbol:    sym,
		key:       key,
		content:   p.content,
		uid:       uid,
		appending: true,
		continued: true,
		pending:   p,
	}
}

// Extended attributes (SPEC §1), read-only.
const xattrPrefix = "user.featurefs."

var xattrNames = []string{"hash", "hash_method", "rows", "start_ts", "end_ts", "stored_bytes", "access_count"}

func (n *fileNode) xattr(name string) (string, bool) {
	e, _ := n.current()
	if e == nil {
		return "", false
	}
	switch name {
	case xattrPrefix + "hash":
		return e.hashHex(), true
	case xattrPrefix + "hash_method":
		return e.hashMethod(), true
	case xattrPrefix + "rows":
		return strconv.FormatInt(e.rows, 10), true
	case xattrPrefix + "start_ts":
		return strconv.FormatInt(e.startTS, 10), true
	case xattrPrefix + "end_ts":
		return strconv.FormatInt(e.endTS, 10), true
	case xattrPrefix + "stored_bytes":
		return strconv.FormatInt(e.stored, 10), true
	case xattrPrefix + "access_count":
		count := e.accessCount
		if fresh, err := n.fsys.db.GetByID(context.Background(), e.id); err == nil {
			count = fresh.AccessCount
		}
		pending, _ := n.fsys.db.PendingAccess(e.id)
		return strconv.FormatInt(count+pending, 10), true
	}
	return "", false
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreignXattr(attr) {
		// Includes security.capability, asked before every write: answered
		// without a look at the version.
		return 0, syscall.EOPNOTSUPP
	}
	v, ok := n.xattr(attr)
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyXattr(dest, v)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if e, _ := n.current(); e == nil {
		return 0, 0
	}
	var list []byte
	for _, name := range xattrNames {
		list = append(list, xattrPrefix+name...)
		list = append(list, 0)
	}
	return copyXattr(dest, string(list))
}

// Setxattr and Removexattr change nothing: user.featurefs.* follow the
// content, and other user.* names are not stored (see xattr.go).
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setNoXattr(attr)
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return setNoXattr(attr)
}

// copyXattr follows getxattr(2): an empty buffer asks for the size.
func copyXattr(dest []byte, v string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// readHandle reads one committed version; it holds the blob open, so the
// version stays readable whole even after a replace, unlink or GC.
type readHandle struct {
	fsys        *FS
	node        *fileNode
	r           blobstore.Reader
	path        string
	passthrough bool
}

var (
	_ fs.FileReader          = (*readHandle)(nil)
	_ fs.FileReleaser        = (*readHandle)(nil)
	_ fs.FileFlusher         = (*readHandle)(nil)
	_ fs.FileFsyncer         = (*readHandle)(nil)
	_ fs.FilePassthroughFder = (*readHandle)(nil)
)

func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if raw := h.r.RawFile(); raw != nil && canSplice(len(dest)) {
		// The kernel splices straight from the blob.
		return fuse.ReadResultFd(raw.Fd(), off, len(dest)), 0
	}
	n, err := h.r.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, h.fsys.fail("read", h.path, err)
	}
	return dataResult(dest[:n]), 0
}

func (h *readHandle) PassthroughFd() (int, bool) {
	if !h.passthrough {
		return 0, false
	}
	return int(h.r.RawFile().Fd()), true
}

// Flush is only reached on kernels that ignore FOPEN_NOFLUSH (before
// 5.16). It must exist all the same: a FLUSH answered ENOSYS makes the
// kernel stop sending FLUSH for every file of the mount, and a writer's
// close commits in Flush.
func (h *readHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

func (h *readHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.fsys.stats.openReaders.Add(-1)
	h.node.mu.Lock()
	if h.passthrough {
		h.node.io.passthrough--
	} else {
		h.node.io.cached--
	}
	h.node.mu.Unlock()
	if err := h.r.Close(); err != nil {
		h.fsys.log.Warn("close blob", "path", h.path, "err", err)
	}
	return 0
}

// writeHandle builds a new version of an entry; Flush commits it.
type writeHandle struct {
	fsys    *FS
	node    *fileNode
	content *content
	// symbol and key name the entry when the node has left the tree
	// (replaced or renamed away while open).
	symbol, key string
	// uid opened the handle: a pending name it leaves is that user's.
	uid uint32
	// appending is an O_APPEND open: writes go to the content's end.
	appending bool
	// continued says the handle continues a pending name: its close
	// commits only once the file ends with the magic. A file created or
	// truncated in this open is not continued: closed without its end
	// magic it fails, so a truncated copy is never silent.
	continued bool
	// pending is the pending name the content belongs to, if any.
	pending *pendingName
}

var (
	_ fs.FileReader   = (*writeHandle)(nil)
	_ fs.FileWriter   = (*writeHandle)(nil)
	_ fs.FileFlusher  = (*writeHandle)(nil)
	_ fs.FileFsyncer  = (*writeHandle)(nil)
	_ fs.FileReleaser = (*writeHandle)(nil)
)

func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.content.readAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, h.fsys.fail("read", h.symbol+"/"+entryName(h.key), err)
	}
	return dataResult(dest[:n]), 0
}

func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.content.writeEntry(ctx, data, off, h.appending)
	if h.pending != nil {
		h.pending.touched.Store(h.fsys.now().UnixNano())
	}
	if errors.Is(err, errHead) {
		return 0, h.fsys.refuse("write", h.symbol+"/"+entryName(h.key), syscall.EINVAL, err.Error())
	}
	if err != nil {
		return uint32(n), h.fsys.fail("write", h.symbol+"/"+entryName(h.key), err)
	}
	return uint32(n), 0
}

// Flush commits: it runs for every close(2) of every descriptor sharing this
// handle, and is the only place whose error reaches close.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	if !h.content.isDirty() {
		return 0
	}
	sym, key := h.symbol, h.key
	if s, k, ok := h.fsys.location(&h.node.Inode); ok {
		sym, key = s, k
	}
	size, endMagic, failed := h.content.state()
	if failed == nil && (size == 0 || (h.continued && !endMagic)) {
		// Not a parquet file yet, and not a failure either: touch, a
		// shell closing its first descriptor before the command writes,
		// a writer that creates the file and appends in later opens. The
		// name becomes pending; readers keep the previous version.
		h.symbol, h.key = sym, key
		p := h.fsys.keepPending(sym, key, h.content, h.uid)
		if h.pending != p {
			p.opens.Add(1)
			if h.pending != nil {
				h.pending.opens.Add(-1)
			}
			h.pending = p
		}
		h.dropUncommittedName()
		return 0
	}
	if errors.Is(failed, errHead) {
		// The write was refused, logged and listed already; its close
		// fails too, without a second line, and leaves nothing pending.
		h.fsys.dropPending(sym, key, h.content)
		h.dropUncommittedName()
		return syscall.EINVAL
	}
	v, err := h.fsys.commit(ctx, sym, key, h.content)
	if err != nil {
		errno := h.fsys.fail("close", sym+"/"+entryName(key), err)
		// Bytes that failed are not continued.
		h.fsys.dropPending(sym, key, h.content)
		h.dropUncommittedName()
		return errno
	}
	// The name is committed: no pending version of it is left to continue.
	h.fsys.dropPending(sym, key, nil)
	h.symbol, h.key = sym, key
	h.node.mu.Lock()
	// A version readers share keeps showing itself to them; any other node
	// (a created file, a writer's private inode) now shows the new one.
	shared := h.node.private == nil && h.node.created == nil && h.node.entry != nil
	if !shared {
		h.node.entry = v
	}
	replaced := shared || h.node.private != nil
	h.node.mu.Unlock()
	if replaced {
		// Others may hold the name cached as the replaced version's inode:
		// drop it so nobody pairs the old inode's size with the new bytes.
		// A created file needs no such call (its name is never cached), and
		// it is avoided where it can be: the call waits for the directory's
		// lock, and a daemon killed while waiting can exit only once its
		// kernel connection is aborted.
		if dir := h.fsys.root.EmbeddedInode().GetChild(sym); dir != nil {
			if errno := dir.NotifyEntry(entryName(key)); errno != 0 && errno != syscall.ENOENT {
				h.fsys.log.Warn("notify entry", "name", entryName(key), "errno", errno)
			}
		}
	}
	return 0
}

func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if err := h.content.fsync(); err != nil {
		return h.fsys.fail("fsync", h.symbol+"/"+entryName(h.key), err)
	}
	return 0
}

// dropUncommittedName makes the kernel forget the name of a created file
// whose commit failed: its dentry was cached briefly at create, and the
// name must not seem to exist once close has reported the failure.
func (h *writeHandle) dropUncommittedName() {
	if e, _ := h.node.current(); e != nil {
		// The name still leads to the committed version, rightly.
		return
	}
	name, parent := h.node.Parent()
	if parent == nil {
		return
	}
	if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
		h.fsys.log.Warn("notify entry", "name", name, "errno", errno)
	}
}

// Release runs after the last close, asynchronously: it only cleans up.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.fsys.stats.openWriters.Add(-1)
	if p := h.pending; p != nil {
		p.touched.Store(h.fsys.now().UnixNano())
		p.opens.Add(-1)
		if !h.fsys.stillPending(p) {
			h.content.discard()
		}
	} else {
		h.content.discard()
	}
	h.node.mu.Lock()
	h.node.io.writers--
	if h.node.created == h.content {
		h.node.created = nil
	}
	h.node.mu.Unlock()
	return 0
}
