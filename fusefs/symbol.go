package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"featurefs/manifest"
)

// symbolNode is one symbol's directory: its committed entries from the
// manifest plus its scratch dot-files.
type symbolNode struct {
	fs.Inode
	noXattrs
	fsys *FS
	// name is the symbol when the node was made; symbol() follows renames.
	name string
}

var (
	_ fs.NodeLookuper       = (*symbolNode)(nil)
	_ fs.NodeOpendirHandler = (*symbolNode)(nil)
	_ fs.NodeGetattrer      = (*symbolNode)(nil)
	_ fs.NodeSetattrer      = (*symbolNode)(nil)
	_ fs.NodeCreater        = (*symbolNode)(nil)
	_ fs.NodeUnlinker       = (*symbolNode)(nil)
	_ fs.NodeRenamer        = (*symbolNode)(nil)
	_ fs.NodeMkdirer        = (*symbolNode)(nil)
	_ fs.NodeMknoder        = (*symbolNode)(nil)
	_ fs.NodeSymlinker      = (*symbolNode)(nil)
	_ fs.NodeLinker         = (*symbolNode)(nil)
	_ fs.NodeRmdirer        = (*symbolNode)(nil)
)

func (s *symbolNode) symbol() string {
	if name, parent := s.Parent(); parent != nil {
		return name
	}
	return s.name
}

// Getattr shows the manifest's mtime of the directory. The kernel may keep
// it long: changes through this mount and those the change log reports
// invalidate it (see invalidateDir).
func (s *symbolNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	sym := s.symbol()
	mtimeNS, err := s.fsys.db.SymbolModTime(uninterruptible(ctx), sym)
	if errors.Is(err, manifest.ErrNotFound) {
		// Removed (by another daemon) while the kernel held the inode.
		return syscall.ENOENT
	}
	if err != nil {
		return s.fsys.fail("getattr", sym, err)
	}
	symbolAttr(s.fsys, &out.Attr, mtimeNS)
	out.SetTimeout(s.fsys.cfg.CacheTimeout)
	return 0
}

// Setattr of a symbol directory keeps a time set on it as its mtime, so a
// second rsync -a finds the directory up to date; chmod and chown succeed
// and change nothing (cp -rp, rsync -a set them).
func (s *symbolNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	sym := s.symbol()
	if mtime, ok := in.GetMTime(); ok {
		if err := s.fsys.db.SetSymbolModTime(uninterruptible(ctx), sym, mtime.UnixNano()); err != nil {
			return s.fsys.fail("utimes", sym, err)
		}
	}
	return s.Getattr(ctx, f, out)
}

func (s *symbolNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	kind, key, _ := classify(name)
	switch kind {
	case kindScratch:
		sc := s.fsys.scratchGet(s.symbol(), name)
		if sc == nil {
			return nil, syscall.ENOENT
		}
		return s.scratchInode(ctx, sc, out), 0
	case kindEntry:
		e, err := s.fsys.db.Get(uninterruptible(ctx), s.symbol(), key)
		if err == manifest.ErrNotFound || (err != nil && toErrno(err) == syscall.ENOENT) {
			if p, _ := s.fsys.pendingFor(s.symbol(), key, callerUID(ctx), false); p != nil {
				return s.pendingInode(ctx, p, out), 0
			}
			if sc := s.fsys.scratchGet(s.symbol(), name); sc != nil {
				// Made by mknod, not written and closed yet.
				return s.scratchInode(ctx, sc, out), 0
			}
			s.fsys.stats.misses.Add(1)
			return nil, syscall.ENOENT
		}
		if err != nil {
			return nil, s.fsys.fail("lookup", s.symbol()+"/"+name, err)
		}
		if caller, ok := fuse.FromContext(ctx); ok && s.fsys.redirected(caller.Pid) {
			return s.writerInode(ctx, e, out), 0
		}
		return s.fsys.entryInode(ctx, &s.Inode, e, out), 0
	}
	return nil, syscall.ENOENT
}

// entryInode returns the inode of a committed version under parent, reusing
// the kernel's inode when it already knows the version.
func (fsys *FS) entryInode(ctx context.Context, parent *fs.Inode, e manifest.Entry, out *fuse.EntryOut) *fs.Inode {
	v := newVersion(&e)
	node := &fileNode{fsys: fsys, entry: &v}
	child := parent.NewInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG, Ino: entryIno(e.ID)})
	if existing, ok := child.Operations().(*fileNode); ok && existing != node {
		// Same version, possibly fresher metadata (mtime, access).
		existing.setEntry(&v)
	}
	fsys.entryAttr(&out.Attr, &v)
	fsys.cacheName(out, entryAttrTimeout)
	return child
}

// writerInode is a private inode for a writer about to replace e: it shows
// e until the commit, readers never get it, and the kernel may not cache the
// name, so everyone else's next lookup returns to the committed version.
func (s *symbolNode) writerInode(ctx context.Context, e manifest.Entry, out *fuse.EntryOut) *fs.Inode {
	v := newVersion(&e)
	node := &fileNode{fsys: s.fsys, entry: &v, private: &entryRef{symbol: e.Symbol, key: e.Key}}
	child := s.NewInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG, Ino: s.fsys.newIno()})
	node.fill(&out.Attr)
	return child
}

// pendingInode is the inode of a pending name with no committed version,
// shown to its owner only, so that stat after touch and an open to continue
// it find it; opening it for reading is ENOENT, as for a created file. The
// name is not cached, so every other lookup asks again (and others get
// ENOENT).
func (s *symbolNode) pendingInode(ctx context.Context, p *pendingName, out *fuse.EntryOut) *fs.Inode {
	node := &fileNode{fsys: s.fsys, created: p.content}
	child := s.NewInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG, Ino: p.ino})
	if existing, ok := child.Operations().(*fileNode); ok && existing != node {
		existing.mu.Lock()
		if existing.entry == nil {
			existing.created = p.content
		}
		existing.mu.Unlock()
		node = existing
	}
	node.fill(&out.Attr)
	return child
}

func (s *symbolNode) scratchInode(ctx context.Context, sc *scratchNode, out *fuse.EntryOut) *fs.Inode {
	sc.fill(&out.Attr)
	// Scratch files change size with every write: no attribute caching.
	s.fsys.cacheName(out, 0)
	child := s.NewInode(ctx, sc, fs.StableAttr{Mode: fuse.S_IFREG, Ino: sc.ino})
	return child
}

func (s *symbolNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return newDirHandle(s), 0, 0
}

func (s *symbolNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	sym := s.symbol()
	kind, key, errno := classify(name)
	switch kind {
	case kindScratch:
		sc, created := s.fsys.scratchCreate(sym, name)
		if !created && flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if flags&syscall.O_TRUNC != 0 {
			if err := sc.content.truncate(ctx, 0); err != nil {
				return nil, nil, 0, s.fsys.fail("create", sym+"/"+name, err)
			}
		}
		child := s.scratchInode(ctx, sc, out)
		sc.opens.Add(1)
		return child, &scratchHandle{node: sc}, fuse.FOPEN_DIRECT_IO, 0
	case kindEntry:
		if flags&syscall.O_EXCL != 0 {
			if _, err := s.fsys.db.Get(uninterruptible(ctx), sym, key); err == nil {
				return nil, nil, 0, syscall.EEXIST
			}
		}
		uid := callerUID(ctx)
		var p *pendingName
		if flags&(syscall.O_APPEND|syscall.O_TRUNC) == syscall.O_APPEND {
			// Its owner's lookup finds a pending name, but one that raced
			// the close making the name pending can leave the kernel
			// thinking it absent: the O_APPEND open arrives here and
			// continues it all the same.
			var others bool
			if p, others = s.fsys.pendingFor(sym, key, uid, true); others {
				return nil, nil, 0, s.fsys.refuse("create", sym+"/"+name, syscall.EACCES, "a pending name belongs to the user who created it")
			}
		}
		node := &fileNode{fsys: s.fsys, io: ioModes{writers: 1}}
		var h *writeHandle
		if p != nil {
			node.created = p.content
			h = s.fsys.continueHandle(node, sym, key, p, uid)
		} else {
			node.created = newContent(s.fsys, nil, true)
			h = &writeHandle{fsys: s.fsys, node: node, symbol: sym, key: key, content: node.created,
				uid: uid, appending: flags&syscall.O_APPEND != 0}
			s.fsys.stats.openWriters.Add(1)
		}
		ino := s.fsys.newIno()
		child := s.NewInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG, Ino: ino})
		// The name is not cached (no cacheName): until the commit it exists
		// for its creator's descriptor only, and others' lookups must ask.
		node.fill(&out.Attr)
		return child, h, fuse.FOPEN_DIRECT_IO, 0
	}
	return nil, nil, 0, s.fsys.refuse("create", sym+"/"+name, errno, "entries are <key>.parquet of 1..200 bytes of UTF-8; dot-files are scratch")
}

func (s *symbolNode) Unlink(ctx context.Context, name string) syscall.Errno {
	sym := s.symbol()
	kind, key, _ := classify(name)
	switch kind {
	case kindScratch:
		if !s.fsys.scratchRemove(sym, name) {
			return syscall.ENOENT
		}
		return 0
	case kindEntry:
		// Row first: once it is gone nobody new can reach the blob.
		e, err := s.fsys.db.Delete(uninterruptible(ctx), sym, key)
		if err != nil {
			if toErrno(err) == syscall.ENOENT {
				if s.fsys.scratchRemove(sym, name) {
					return 0 // made by mknod, never committed
				}
				return syscall.ENOENT
			}
			return s.fsys.fail("unlink", sym+"/"+name, err)
		}
		s.fsys.removeBlob(e.Path)
		return 0
	}
	return syscall.ENOENT
}

func (s *symbolNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	dst, ok := newParent.(*symbolNode)
	if !ok {
		switch newParent.(type) {
		case *rootNode:
			return syscall.EPERM
		case *controlDir:
			return s.fsys.controlRefused("rename", newName)
		}
		return syscall.EXDEV
	}
	if flags&fs.RENAME_EXCHANGE != 0 {
		return syscall.EINVAL
	}
	fromSym, toSym := s.symbol(), dst.symbol()
	path := fromSym + "/" + name
	fromKind, fromKey, _ := classify(name)
	toKind, toKey, errno := classify(newName)
	if toKind == kindInvalid {
		return s.fsys.refuse("rename", toSym+"/"+newName, errno, "entries are <key>.parquet of 1..200 bytes of UTF-8; dot-files are scratch")
	}
	if flags&unix.RENAME_NOREPLACE != 0 && s.fsys.exists(ctx, toSym, newName) {
		return syscall.EEXIST
	}
	switch {
	case fromKind == kindScratch && toKind == kindScratch:
		if !s.fsys.scratchMove(fromSym, name, toSym, newName) {
			return syscall.ENOENT
		}
		return 0
	case fromKind == kindScratch && toKind == kindEntry:
		// Renaming a scratch file to <key>.parquet commits it exactly as a
		// close would (rsync's and editors' way to publish).
		sc := s.fsys.scratchGet(fromSym, name)
		if sc == nil {
			return syscall.ENOENT
		}
		if _, err := s.fsys.commit(ctx, toSym, toKey, sc.content); err != nil {
			return s.fsys.fail("rename", path, err)
		}
		sc.renamed.Store(true)
		s.fsys.scratchRemove(fromSym, name)
		// The kernel moves the scratch inode to the new name; the entry is
		// a different inode (its row id, its xattrs). Drop that dentry once
		// the rename is done: notifying now would wait for the directory
		// lock this rename holds.
		go func() {
			if errno := dst.NotifyEntry(newName); errno != 0 && errno != syscall.ENOENT {
				s.fsys.log.Warn("notify entry", "name", newName, "errno", errno)
			}
		}()
		return 0
	case fromKind == kindEntry && toKind == kindEntry:
		_, replaced, err := s.fsys.db.Rename(uninterruptible(ctx), fromSym, fromKey, toSym, toKey)
		if err != nil {
			if toErrno(err) == syscall.ENOENT {
				return syscall.ENOENT
			}
			return s.fsys.fail("rename", path, err)
		}
		if replaced != nil {
			s.fsys.removeBlob(replaced.Path)
		}
		return 0
	case fromKind == kindEntry && toKind == kindScratch:
		// A committed entry cannot become uncommitted.
		s.fsys.errs.add(s.fsys.now(), path, "rename: an entry cannot be renamed to a scratch name")
		return syscall.EINVAL
	}
	return syscall.ENOENT
}

// exists reports whether name exists in symbol (entry or scratch).
func (fsys *FS) exists(ctx context.Context, symbol, name string) bool {
	kind, key, _ := classify(name)
	switch kind {
	case kindScratch:
		return fsys.scratchGet(symbol, name) != nil
	case kindEntry:
		_, err := fsys.db.Get(uninterruptible(ctx), symbol, key)
		return err == nil
	}
	return false
}

// A symbol directory holds entries and scratch files only.
const onlyFiles = "a symbol directory holds parquet entries and scratch files only"

func (s *symbolNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, s.fsys.refuse("mkdir", s.symbol()+"/"+name, syscall.EPERM, onlyFiles)
}

func (s *symbolNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return syscall.ENOTDIR
}

// Mknod makes an empty regular file: tar --xattrs makes each file so, sets
// its attributes, then opens it for writing. A scratch name is a scratch
// file; an entry's name is a placeholder, visible as an empty file until
// the close of the descriptor that writes it commits it (or refuses it).
func (s *symbolNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	sym := s.symbol()
	if mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, s.fsys.refuse("mknod", sym+"/"+name, syscall.EPERM, onlyFiles)
	}
	kind, key, errno := classify(name)
	switch kind {
	case kindScratch:
		sc, created := s.fsys.scratchCreate(sym, name)
		if !created {
			return nil, syscall.EEXIST
		}
		return s.scratchInode(ctx, sc, out), 0
	case kindEntry:
		if _, err := s.fsys.db.Get(uninterruptible(ctx), sym, key); err == nil {
			return nil, syscall.EEXIST
		}
		sc, created := s.fsys.scratchCreate(sym, name)
		if !created {
			return nil, syscall.EEXIST
		}
		sc.commitSymbol, sc.commitKey = sym, key
		return s.scratchInode(ctx, sc, out), 0
	}
	return nil, s.fsys.refuse("mknod", sym+"/"+name, errno, "entries are <key>.parquet of 1..200 bytes of UTF-8; dot-files are scratch")
}

func (s *symbolNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, s.fsys.refuse("symlink", s.symbol()+"/"+name, syscall.EPERM, onlyFiles)
}

func (s *symbolNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, s.fsys.refuse("link", s.symbol()+"/"+name, syscall.EPERM, onlyFiles)
}

// location names the entry an inode stands for, from its place in the tree.
func (fsys *FS) location(in *fs.Inode) (symbol, key string, ok bool) {
	name, parent := in.Parent()
	if parent == nil {
		return "", "", false
	}
	kind, key, _ := classify(name)
	if kind != kindEntry {
		return "", "", false
	}
	symbol, grand := parent.Parent()
	if grand == nil || grand != fsys.root.EmbeddedInode() {
		return "", "", false
	}
	return symbol, key, true
}

// pathOf is the inode's path below the mountpoint, for messages.
func (fsys *FS) pathOf(in *fs.Inode) string {
	return in.Path(nil)
}
