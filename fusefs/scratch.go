package fusefs

import (
	"context"
	"io"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// scratchKey names a scratch file: symbol and dot-name.
type scratchKey struct{ symbol, name string }

// scratchNode is a dot-file in a symbol directory (rsync's .name.XXXXXX, an
// editor's swap file): written, read, renamed and removed like a normal file,
// never committed by itself, dropped at unmount and by GC after the orphan
// grace. Renaming it to <key>.parquet commits it.
type scratchNode struct {
	fs.Inode
	fsys    *FS
	name    string
	ino     uint64
	content *content
	// opens counts open handles; touched is the last change (Unix ns). GC
	// drops a scratch file only when it is closed and untouched for the grace.
	opens   atomic.Int64
	touched atomic.Int64
	// renamed is set once a rename committed the content as an entry. The
	// kernel moved this inode to the entry's name, and the notification
	// that drops it cannot be sent while the rename holds the directory
	// lock; until it lands, path calls get ESTALE, which the kernel answers
	// by looking the name up again and finding the entry.
	renamed atomic.Bool
	// commitKey, for a file made by mknod under an entry's name, is that
	// entry's key in commitSymbol: the first close of a descriptor that
	// wrote to it commits the content, as the close of a created file does.
	commitSymbol, commitKey string
}

var (
	_ fs.NodeGetattrer     = (*scratchNode)(nil)
	_ fs.NodeSetattrer     = (*scratchNode)(nil)
	_ fs.NodeOpener        = (*scratchNode)(nil)
	_ fs.NodeGetxattrer    = (*scratchNode)(nil)
	_ fs.NodeListxattrer   = (*scratchNode)(nil)
	_ fs.NodeSetxattrer    = (*scratchNode)(nil)
	_ fs.NodeRemovexattrer = (*scratchNode)(nil)
)

func (fsys *FS) scratchGet(symbol, name string) *scratchNode {
	fsys.scratchMu.Lock()
	defer fsys.scratchMu.Unlock()
	return fsys.scratch[scratchKey{symbol, name}]
}

// scratchCreate returns the scratch file, creating it when absent.
func (fsys *FS) scratchCreate(symbol, name string) (*scratchNode, bool) {
	fsys.scratchMu.Lock()
	defer fsys.scratchMu.Unlock()
	k := scratchKey{symbol, name}
	if sc, ok := fsys.scratch[k]; ok {
		return sc, false
	}
	c := newContent(fsys, nil, true)
	c.dirty = false
	sc := &scratchNode{fsys: fsys, name: name, ino: fsys.newIno(), content: c}
	sc.touch()
	fsys.scratch[k] = sc
	return sc, true
}

func (fsys *FS) scratchRemove(symbol, name string) bool {
	fsys.scratchMu.Lock()
	k := scratchKey{symbol, name}
	sc, ok := fsys.scratch[k]
	delete(fsys.scratch, k)
	fsys.scratchMu.Unlock()
	if ok {
		sc.content.discard()
	}
	return ok
}

func (fsys *FS) scratchMove(fromSym, fromName, toSym, toName string) bool {
	fsys.scratchMu.Lock()
	from, to := scratchKey{fromSym, fromName}, scratchKey{toSym, toName}
	sc, ok := fsys.scratch[from]
	if !ok {
		fsys.scratchMu.Unlock()
		return false
	}
	old := fsys.scratch[to]
	delete(fsys.scratch, from)
	sc.name = toName
	fsys.scratch[to] = sc
	fsys.scratchMu.Unlock()
	if old != nil && old != sc {
		old.content.discard()
	}
	return true
}

// scratchList returns a symbol's scratch files sorted by name.
func (fsys *FS) scratchList(symbol string) []*scratchNode {
	fsys.scratchMu.Lock()
	var list []*scratchNode
	for k, sc := range fsys.scratch {
		if k.symbol == symbol {
			list = append(list, sc)
		}
	}
	fsys.scratchMu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list
}

func (fsys *FS) hasScratch(symbol string) bool { return len(fsys.scratchList(symbol)) > 0 }

// dropStaleScratch discards scratch files and pending names closed and
// untouched since before, and reports how many.
func (fsys *FS) dropStaleScratch(before time.Time) int {
	cutoff := before.UnixNano()
	dropped := fsys.dropStalePending(cutoff)
	fsys.scratchMu.Lock()
	var stale []*scratchNode
	for k, sc := range fsys.scratch {
		if sc.opens.Load() == 0 && sc.touched.Load() < cutoff {
			stale = append(stale, sc)
			delete(fsys.scratch, k)
		}
	}
	fsys.scratchMu.Unlock()
	for _, sc := range stale {
		sc.content.discard()
	}
	return dropped + len(stale)
}

func (sc *scratchNode) touch() { sc.touched.Store(sc.fsys.now().UnixNano()) }

func (sc *scratchNode) fill(a *fuse.Attr) {
	size, mtimeNS := sc.content.snapshot()
	t := time.Unix(0, sc.touched.Load())
	if mtimeNS != 0 {
		t = time.Unix(0, mtimeNS)
	}
	fileAttr(sc.fsys, a, size, size, t, t, t)
	a.Ino = sc.ino
}

func (sc *scratchNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if f == nil && sc.renamed.Load() {
		return syscall.ESTALE
	}
	sc.fill(&out.Attr)
	return 0
}

// Getxattr: scratch files have no attributes of their own.
func (sc *scratchNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if sc.renamed.Load() {
		return 0, syscall.ESTALE
	}
	return 0, getNoXattr(attr)
}

func (sc *scratchNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if sc.renamed.Load() {
		return 0, syscall.ESTALE
	}
	return 0, 0
}

// Setxattr and Removexattr change nothing: rsync -X sets the attributes of
// the file it copies on its scratch file before renaming it to the entry,
// whose own attributes are computed (see xattr.go).
func (sc *scratchNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if sc.renamed.Load() {
		return syscall.ESTALE
	}
	return setNoXattr(attr)
}

func (sc *scratchNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if sc.renamed.Load() {
		return syscall.ESTALE
	}
	return setNoXattr(attr)
}

func (sc *scratchNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f == nil && sc.renamed.Load() {
		return syscall.ESTALE
	}
	if size, ok := in.GetSize(); ok {
		if err := sc.content.truncate(ctx, int64(size)); err != nil {
			return sc.fsys.fail("truncate", sc.name, err)
		}
		sc.touch()
	}
	if mtime, ok := in.GetMTime(); ok {
		sc.content.setMtime(mtime.UnixNano())
	}
	sc.fill(&out.Attr)
	return 0
}

func (sc *scratchNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if sc.renamed.Load() {
		return nil, 0, syscall.ESTALE
	}
	if flags&syscall.O_TRUNC != 0 {
		if err := sc.content.truncate(ctx, 0); err != nil {
			return nil, 0, sc.fsys.fail("open", sc.name, err)
		}
	}
	sc.opens.Add(1)
	sc.touch()
	return &scratchHandle{node: sc, writable: flags&syscall.O_ACCMODE != syscall.O_RDONLY}, fuse.FOPEN_DIRECT_IO, 0
}

// scratchHandle reads and writes a scratch file's content; closing it
// commits nothing, unless the file was made by mknod under an entry's name.
type scratchHandle struct {
	node     *scratchNode
	writable bool
}

var (
	_ fs.FileReader   = (*scratchHandle)(nil)
	_ fs.FileWriter   = (*scratchHandle)(nil)
	_ fs.FileFlusher  = (*scratchHandle)(nil)
	_ fs.FileFsyncer  = (*scratchHandle)(nil)
	_ fs.FileReleaser = (*scratchHandle)(nil)
)

func (h *scratchHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.content.readAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, h.node.fsys.fail("read", h.node.name, err)
	}
	return dataResult(dest[:n]), 0
}

func (h *scratchHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.node.content.writeAt(ctx, data, off)
	h.node.touch()
	if err != nil {
		return uint32(n), h.node.fsys.fail("write", h.node.name, err)
	}
	return uint32(n), 0
}

func (h *scratchHandle) Flush(ctx context.Context) syscall.Errno {
	sc := h.node
	if sc.commitKey == "" || !h.writable || sc.renamed.Load() {
		return 0
	}
	return sc.fsys.commitMknod(ctx, sc)
}

// commitMknod commits a file made by mknod under an entry's name at the
// close of its writer. Committed or refused, the placeholder is gone after:
// a name that is not a committed entry must not stay visible.
func (fsys *FS) commitMknod(ctx context.Context, sc *scratchNode) syscall.Errno {
	sym, key := sc.commitSymbol, sc.commitKey
	path := sym + "/" + entryName(key)
	_, err := fsys.commit(ctx, sym, key, sc.content)
	sc.renamed.Store(true)
	fsys.scratchRemove(sym, entryName(key))
	if dir := fsys.root.EmbeddedInode().GetChild(sym); dir != nil {
		// The kernel holds the placeholder's inode under the name; drop it
		// so the next lookup finds the entry (ESTALE meanwhile).
		go dir.NotifyEntry(entryName(key))
	}
	if err != nil {
		return fsys.fail("close", path, err)
	}
	return 0
}

func (h *scratchHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if err := h.node.content.fsync(); err != nil {
		return h.node.fsys.fail("fsync", h.node.name, err)
	}
	return 0
}

func (h *scratchHandle) Release(ctx context.Context) syscall.Errno {
	h.node.opens.Add(-1)
	return 0
}
