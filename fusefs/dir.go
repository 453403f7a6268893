package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"featurefs/manifest"
)

// listPage is how many entries one manifest query fetches for a listing.
const listPage = 1024

// dirHandle lists a symbol directory: ".", "..", the scratch files, then the
// committed entries, paged from the manifest in key order. It also answers
// the lookups of READDIRPLUS from the page it just read, so `ls -l` of a
// large symbol costs one query per page instead of one per entry.
type dirHandle struct {
	dir *symbolNode

	started bool
	fixed   []fuse.DirEntry // ".", "..", scratch names
	page    []manifest.Entry
	pagePos int
	after   string
	done    bool
	// last is the entry most recently returned, for Lookup.
	last *manifest.Entry
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

func newDirHandle(s *symbolNode) *dirHandle { return &dirHandle{dir: s} }

func (d *dirHandle) start() {
	d.started = true
	d.fixed = []fuse.DirEntry{
		{Name: ".", Mode: fuse.S_IFDIR, Ino: d.dir.StableAttr().Ino},
		{Name: "..", Mode: fuse.S_IFDIR, Ino: rootIno},
	}
	for _, sc := range d.dir.fsys.scratchList(d.dir.symbol()) {
		d.fixed = append(d.fixed, fuse.DirEntry{Name: sc.name, Mode: fuse.S_IFREG, Ino: sc.ino})
	}
	d.page, d.pagePos, d.after, d.done, d.last = nil, 0, "", false, nil
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.started {
		d.start()
	}
	if len(d.fixed) > 0 {
		de := d.fixed[0]
		d.fixed = d.fixed[1:]
		d.last = nil
		return &de, 0
	}
	if d.pagePos == len(d.page) {
		if d.done {
			return nil, 0
		}
		page, err := d.dir.fsys.db.List(uninterruptible(ctx), d.dir.symbol(), d.after, listPage)
		if err != nil {
			return nil, d.dir.fsys.fail("readdir", d.dir.symbol(), err)
		}
		d.page, d.pagePos = page, 0
		if len(page) < listPage {
			d.done = true
		}
		if len(page) == 0 {
			return nil, 0
		}
		d.after = page[len(page)-1].Key
	}
	e := &d.page[d.pagePos]
	d.pagePos++
	d.last = e
	return &fuse.DirEntry{Name: entryName(e.Key), Mode: fuse.S_IFREG, Ino: entryIno(e.ID)}, 0
}

func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.last != nil && entryName(d.last.Key) == name {
		return d.dir.fsys.entryInode(ctx, &d.dir.Inode, *d.last, out), 0
	}
	return d.dir.Lookup(ctx, name, out)
}

// Seekdir restarts the listing and skips to off (offsets count entries from
// the start, as go-fuse numbers them).
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.start()
	for i := uint64(0); i < off; i++ {
		de, errno := d.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if de == nil {
			break
		}
	}
	return 0
}
