package fusefs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"featurefs/manifest"
)

// rootNode is the mountpoint: one directory per symbol, plus .control,
// which resolves by name but is never listed (so rsync, cp -r, du and backup
// tools walking the mount never touch it).
type rootNode struct {
	fs.Inode
	noXattrs
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*rootNode)(nil)
	_ fs.NodeReaddirer = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
	_ fs.NodeSetattrer = (*rootNode)(nil)
	_ fs.NodeMkdirer   = (*rootNode)(nil)
	_ fs.NodeRmdirer   = (*rootNode)(nil)
	_ fs.NodeRenamer   = (*rootNode)(nil)
	_ fs.NodeCreater   = (*rootNode)(nil)
	_ fs.NodeMknoder   = (*rootNode)(nil)
	_ fs.NodeSymlinker = (*rootNode)(nil)
	_ fs.NodeLinker    = (*rootNode)(nil)
	_ fs.NodeUnlinker  = (*rootNode)(nil)
	_ fs.NodeStatfser  = (*rootNode)(nil)
)

func (r *rootNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.dirAttrOut(out)
	return 0
}

func (r *rootNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	// chmod/chown/utimes of the mountpoint succeed and change nothing, as for
	// every directory here (cp -rp and rsync -a set them).
	r.fsys.dirAttrOut(out)
	return 0
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == controlName {
		return r.controlDir(ctx, out), 0
	}
	if checkComponent(name) != 0 {
		return nil, syscall.ENOENT
	}
	mtimeNS, err := r.fsys.db.SymbolModTime(uninterruptible(ctx), name)
	if errors.Is(err, manifest.ErrNotFound) {
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, r.fsys.fail("lookup", name, err)
	}
	return r.symbolInode(ctx, name, mtimeNS, out), 0
}

func (r *rootNode) symbolInode(ctx context.Context, name string, mtimeNS int64, out *fuse.EntryOut) *fs.Inode {
	symbolAttr(r.fsys, &out.Attr, mtimeNS)
	r.fsys.cacheName(out, r.fsys.cfg.CacheTimeout)
	out.Ino = symbolIno(name)
	return r.NewInode(ctx, &symbolNode{fsys: r.fsys, name: name}, fs.StableAttr{Mode: fuse.S_IFDIR, Ino: out.Ino})
}

func (r *rootNode) controlDir(ctx context.Context, out *fuse.EntryOut) *fs.Inode {
	dirAttr(r.fsys, &out.Attr)
	r.fsys.cacheName(out, r.fsys.cfg.CacheTimeout)
	out.Ino = controlDirIno
	return r.NewPersistentInode(ctx, &controlDir{fsys: r.fsys}, fs.StableAttr{Mode: fuse.S_IFDIR, Ino: controlDirIno})
}

func (r *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	symbols, err := r.fsys.db.Symbols(uninterruptible(ctx))
	if err != nil {
		return nil, r.fsys.fail("readdir", "/", err)
	}
	entries := make([]fuse.DirEntry, 0, len(symbols)+2)
	entries = append(entries,
		fuse.DirEntry{Name: ".", Mode: fuse.S_IFDIR, Ino: rootIno},
		fuse.DirEntry{Name: "..", Mode: fuse.S_IFDIR, Ino: rootIno})
	for _, s := range symbols {
		entries = append(entries, fuse.DirEntry{Name: s, Mode: fuse.S_IFDIR, Ino: symbolIno(s)})
	}
	return fs.NewListDirStream(entries), 0
}

func (r *rootNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == controlName {
		return nil, syscall.EEXIST
	}
	if errno := checkComponent(name); errno != 0 {
		return nil, errno
	}
	if err := r.fsys.db.Mkdir(uninterruptible(ctx), name); err != nil {
		return nil, r.fsys.fail("mkdir", name, err)
	}
	mtimeNS, err := r.fsys.db.SymbolModTime(uninterruptible(ctx), name)
	if err != nil {
		return nil, r.fsys.fail("mkdir", name, err)
	}
	return r.symbolInode(ctx, name, mtimeNS, out), 0
}

func (r *rootNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if name == controlName {
		return r.fsys.controlRefused("rmdir", "")
	}
	if r.fsys.hasScratch(name) {
		return syscall.ENOTEMPTY
	}
	if err := r.fsys.db.Rmdir(uninterruptible(ctx), name); err != nil {
		return toErrno(err)
	}
	return 0
}

// Rename of a symbol directory moves all its entries in one transaction.
func (r *rootNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if name == controlName || newName == controlName {
		return r.fsys.controlRefused("rename", "")
	}
	switch newParent.(type) {
	case *rootNode:
	case *controlDir:
		return r.fsys.controlRefused("rename", newName)
	default:
		return syscall.EXDEV
	}
	if flags&fs.RENAME_EXCHANGE != 0 {
		return syscall.EINVAL
	}
	if errno := checkComponent(newName); errno != 0 {
		return errno
	}
	if flags&unix.RENAME_NOREPLACE != 0 {
		if ok, err := r.fsys.db.SymbolExists(uninterruptible(ctx), newName); err != nil {
			return r.fsys.fail("rename", name, err)
		} else if ok {
			return syscall.EEXIST
		}
	}
	if r.fsys.hasScratch(name) || r.fsys.hasScratch(newName) {
		// Scratch files are in flight; moving them under a renamed
		// directory is not worth the complexity.
		return syscall.EBUSY
	}
	if err := r.fsys.db.RenameSymbol(uninterruptible(ctx), name, newName); err != nil {
		return toErrno(err)
	}
	return 0
}

// Only directories live in the root.
func (r *rootNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (r *rootNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if name == controlName {
		return syscall.EACCES
	}
	return syscall.EISDIR
}

// Statfs reports the cache root's filesystem, so df shows the space that
// commits can use.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.fsys.store.Root(), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}

// dirAttrOut answers GETATTR and SETATTR of the root and the control
// directory: they never change, so the kernel may keep them as long as names.
func (fsys *FS) dirAttrOut(out *fuse.AttrOut) {
	dirAttr(fsys, &out.Attr)
	out.SetTimeout(fsys.cfg.CacheTimeout)
}

// symbolAttr fills a symbol directory's attributes: its mtime (and ctime)
// is the manifest's, which moves with every change of its entries.
func symbolAttr(fsys *FS, a *fuse.Attr, mtimeNS int64) {
	dirAttr(fsys, a)
	if mtimeNS != 0 {
		t := time.Unix(0, mtimeNS)
		a.SetTimes(&t, &t, &t)
	}
}

// dirAttr fills the attributes every directory shares.
func dirAttr(fsys *FS, a *fuse.Attr) {
	a.Mode = fuse.S_IFDIR | 0o755
	a.Nlink = 2
	a.Owner = fsys.owner()
	t := fsys.started
	a.SetTimes(&t, &t, &t)
}
