package fusefs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The control files of SPEC §5, all in this file so the virtual namespace
// has one home.
const (
	controlGC     = "gc"
	controlStats  = "stats"
	controlErrors = "errors"
)

// controlDir is .control: resolvable by name, never listed in the root.
type controlDir struct {
	fs.Inode
	controlXattrs
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*controlDir)(nil)
	_ fs.NodeReaddirer = (*controlDir)(nil)
	_ fs.NodeGetattrer = (*controlDir)(nil)
	_ fs.NodeCreater   = (*controlDir)(nil)
	_ fs.NodeUnlinker  = (*controlDir)(nil)
	_ fs.NodeRenamer   = (*controlDir)(nil)
	_ fs.NodeMkdirer   = (*controlDir)(nil)
	_ fs.NodeMknoder   = (*controlDir)(nil)
	_ fs.NodeSymlinker = (*controlDir)(nil)
	_ fs.NodeLinker    = (*controlDir)(nil)
)

var controlFiles = []struct {
	name     string
	ino      uint64
	writable bool
}{
	{controlErrors, controlErrIno, false},
	{controlGC, controlGCIno, true},
	{controlStats, controlStatIno, false},
}

func (d *controlDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttrOut(out)
	return 0
}

func (d *controlDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	for _, cf := range controlFiles {
		if cf.name == name {
			node := &controlFile{fsys: d.fsys, name: cf.name, writable: cf.writable}
			node.fill(&out.Attr)
			d.fsys.cacheName(out, 0)
			return d.NewPersistentInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG, Ino: cf.ino}), 0
		}
	}
	return nil, syscall.ENOENT
}

func (d *controlDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	list := []fuse.DirEntry{
		{Name: ".", Mode: fuse.S_IFDIR, Ino: controlDirIno},
		{Name: "..", Mode: fuse.S_IFDIR, Ino: rootIno},
	}
	for _, cf := range controlFiles {
		list = append(list, fuse.DirEntry{Name: cf.name, Mode: fuse.S_IFREG, Ino: cf.ino})
	}
	return fs.NewListDirStream(list), 0
}

// Control files cannot be created, removed or renamed.
func (d *controlDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, d.fsys.controlRefused("create", name)
}
func (d *controlDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.fsys.controlRefused("unlink", name)
}
func (d *controlDir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return d.fsys.controlRefused("rename", name)
}
func (d *controlDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.fsys.controlRefused("mkdir", name)
}
func (d *controlDir) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.fsys.controlRefused("mknod", name)
}
func (d *controlDir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.fsys.controlRefused("symlink", name)
}
func (d *controlDir) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.fsys.controlRefused("link", name)
}

// controlRefused lists a refused change to .control in .control/errors and
// returns EACCES.
func (fsys *FS) controlRefused(op, name string) syscall.Errno {
	path := controlName
	if name != "" {
		path += "/" + name
	}
	fsys.errs.add(fsys.now(), path, op+": permission denied (control files are fixed; only gc is writable)")
	return syscall.EACCES
}

// controlXattrs: the control directory and files have no attributes and
// take none (they are fixed, so setting one is refused as any other change
// is), and answer the namespaces the mount does not keep as every node does.
type controlXattrs struct{}

var (
	_ fs.NodeGetxattrer    = controlXattrs{}
	_ fs.NodeListxattrer   = controlXattrs{}
	_ fs.NodeSetxattrer    = controlXattrs{}
	_ fs.NodeRemovexattrer = controlXattrs{}
)

func (controlXattrs) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, getNoXattr(attr)
}

func (controlXattrs) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

func (controlXattrs) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if foreignXattr(attr) {
		return syscall.EOPNOTSUPP
	}
	return syscall.EACCES
}

func (controlXattrs) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return controlXattrs{}.Setxattr(ctx, attr, nil, 0)
}

// controlFile is one of gc, stats, errors. Its content is produced at open,
// so every open sees a fresh snapshot; the size shows as 0, which is why
// handles use direct I/O (the kernel would otherwise stop reading at 0).
type controlFile struct {
	fs.Inode
	controlXattrs
	fsys     *FS
	name     string
	writable bool
}

var (
	_ fs.NodeGetattrer = (*controlFile)(nil)
	_ fs.NodeSetattrer = (*controlFile)(nil)
	_ fs.NodeOpener    = (*controlFile)(nil)
)

func (f *controlFile) fill(a *fuse.Attr) {
	a.Mode = fuse.S_IFREG | 0o444
	if f.writable {
		a.Mode = fuse.S_IFREG | 0o644
	}
	a.Nlink = 1
	a.Owner = f.fsys.owner()
	t := f.fsys.now()
	a.SetTimes(&t, &t, &t)
}

func (f *controlFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.fill(&out.Attr)
	// Content changes all the time; never cache the attributes.
	out.SetTimeout(0)
	return 0
}

func (f *controlFile) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if !f.writable {
		return f.fsys.controlRefused("setattr", f.name)
	}
	// Truncating gc (a shell's `>`) is part of writing a command.
	f.fill(&out.Attr)
	return 0
}

func (f *controlFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	write := flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0
	if write && !f.writable {
		return nil, 0, f.fsys.controlRefused("open for writing", f.name)
	}
	h := &controlHandle{file: f}
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		data, err := f.content(ctx)
		if err != nil {
			return nil, 0, f.fsys.fail("open", controlName+"/"+f.name, err)
		}
		h.data = data
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (f *controlFile) content(ctx context.Context) ([]byte, error) {
	switch f.name {
	case controlGC:
		if f.fsys.cfg.LastGCReport == nil {
			return []byte("{}\n"), nil
		}
		data, err := f.fsys.cfg.LastGCReport()
		if err != nil {
			return nil, err
		}
		return withNewline(data), nil
	case controlStats:
		st, err := f.fsys.Stats(ctx)
		if err != nil {
			return nil, err
		}
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return nil, err
		}
		return withNewline(data), nil
	case controlErrors:
		return f.fsys.errs.format(), nil
	}
	return nil, fmt.Errorf("unknown control file %q", f.name)
}

func withNewline(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// controlHandle serves one open of a control file.
type controlHandle struct {
	file *controlFile
	data []byte
}

var (
	_ fs.FileReader  = (*controlHandle)(nil)
	_ fs.FileWriter  = (*controlHandle)(nil)
	_ fs.FileFlusher = (*controlHandle)(nil)
)

func (h *controlHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return dataResult(nil), 0
	}
	return dataResult(h.data[off:min(int64(len(h.data)), off+int64(len(dest)))]), 0
}

// Write runs the command it carries and returns when it finished; its error
// comes back on write(2), which shells report more reliably than close.
func (h *controlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.file.writable {
		return 0, h.file.fsys.controlRefused("write", h.file.name)
	}
	dryRun, err := ParseGCCommand(data)
	if err != nil {
		h.file.fsys.errs.add(h.file.fsys.now(), controlName+"/"+controlGC, err.Error())
		return 0, syscall.EINVAL
	}
	if _, err := h.file.fsys.RunGC(ctx, dryRun); err != nil {
		return 0, h.file.fsys.fail("gc", controlName+"/"+controlGC, err)
	}
	return uint32(len(data)), 0
}

func (h *controlHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

// ErrBadCommand is returned for anything but "run", "dry-run" or an empty line.
var ErrBadCommand = errors.New(`bad gc command (write "run", "dry-run" or an empty line)`)

// ParseGCCommand parses what was written to .control/gc.
func ParseGCCommand(data []byte) (dryRun bool, err error) {
	switch cmd := string(bytes.TrimSpace(data)); cmd {
	case "", "run":
		return false, nil
	case "dry-run":
		return true, nil
	default:
		if len(cmd) > 40 {
			cmd = cmd[:40] + "..."
		}
		return false, fmt.Errorf("%w: %q", ErrBadCommand, cmd)
	}
}

// RunGC runs one GC through the configured runner, counts it, drops stale
// scratch files, and pushes what it removed to the kernel at once.
func (fsys *FS) RunGC(ctx context.Context, dryRun bool) (GCResult, error) {
	if fsys.cfg.RunGC == nil {
		return GCResult{}, errors.New("gc is not configured for this mount")
	}
	// A file is stale by the run's start, as GC judges staging files: the
	// run waits a while before it starts deciding.
	started := fsys.now()
	res, err := fsys.cfg.RunGC(ctx, dryRun)
	if err != nil {
		return res, err
	}
	fsys.stats.gcRuns.Add(1)
	if !dryRun {
		fsys.stats.gcFiles.Add(res.FilesDeleted)
		fsys.stats.gcBytes.Add(res.BytesFreed)
		if fsys.cfg.OrphanGrace > 0 {
			fsys.dropStaleScratch(started.Add(-fsys.cfg.OrphanGrace))
		}
	}
	fsys.Poll(ctx)
	return res, nil
}

// Stats is the JSON of .control/stats.
type Stats struct {
	Entries        int64            `json:"entries"`
	Symbols        int64            `json:"symbols"`
	LogicalBytes   int64            `json:"logical_bytes"`
	StoredBytes    int64            `json:"stored_bytes"`
	CacheHits      int64            `json:"cache_hits"`
	CacheMisses    int64            `json:"cache_misses"`
	Commits        int64            `json:"commits"`
	RejectedWrites int64            `json:"rejected_writes"`
	Hashes         map[string]int64 `json:"hashes_by_method"`
	GCRuns         int64            `json:"gc_runs"`
	FilesCleaned   int64            `json:"gc_files_cleaned"`
	BytesFreed     int64            `json:"gc_bytes_freed"`
	BusyRetries    int64            `json:"busy_retries"`
	OpenReaders    int64            `json:"open_readers"`
	OpenWriters    int64            `json:"open_writers"`
	Passthrough    int64            `json:"passthrough_opens"`
	ScratchFiles   int              `json:"scratch_files"`
	UptimeSeconds  int64            `json:"uptime_seconds"`
}

// Stats gathers the manifest's aggregates and this mount's counters.
func (fsys *FS) Stats(ctx context.Context) (Stats, error) {
	m, err := fsys.db.Stats(ctx)
	if err != nil {
		return Stats{}, err
	}
	fsys.scratchMu.Lock()
	scratch := len(fsys.scratch)
	fsys.scratchMu.Unlock()
	return Stats{
		Entries:        m.Entries,
		Symbols:        m.Symbols,
		LogicalBytes:   m.LogicalBytes,
		StoredBytes:    m.StoredBytes,
		CacheHits:      fsys.stats.hits.Load(),
		CacheMisses:    fsys.stats.misses.Load(),
		Commits:        fsys.stats.commits.Load(),
		RejectedWrites: fsys.stats.rejected.Load(),
		Hashes: map[string]int64{
			"full":   fsys.stats.fullHashes.Load(),
			"footer": fsys.stats.footerHashes.Load(),
		},
		GCRuns:        fsys.stats.gcRuns.Load(),
		FilesCleaned:  fsys.stats.gcFiles.Load(),
		BytesFreed:    fsys.stats.gcBytes.Load(),
		BusyRetries:   fsys.db.Counters().BusyRetries,
		OpenReaders:   fsys.stats.openReaders.Load(),
		OpenWriters:   fsys.stats.openWriters.Load(),
		Passthrough:   fsys.stats.passthroughOpens.Load(),
		ScratchFiles:  scratch,
		UptimeSeconds: int64(fsys.now().Sub(fsys.started) / time.Second),
	}, nil
}

// errorLog keeps the most recent failures for .control/errors.
type errorLog struct {
	mu    sync.Mutex
	max   int
	items []errorItem
}

type errorItem struct {
	time   time.Time
	path   string
	reason string
}

func newErrorLog(max int) *errorLog { return &errorLog{max: max} }

func (l *errorLog) add(t time.Time, path, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) == l.max {
		copy(l.items, l.items[1:])
		l.items = l.items[:l.max-1]
	}
	l.items = append(l.items, errorItem{t, path, reason})
}

// format lists the failures oldest first, newest last, one per line:
//
//	<time RFC 3339, UTC> TAB <path> TAB <reason> LF
//
// Path and reason are each the body of a Go double-quoted string literal
// (strconv.Quote without its quotes): names may hold newlines, tabs, escape
// sequences and invalid UTF-8, and a writer who chose such a name must not
// be able to forge or split lines. Ordinary paths and reasons read as they
// are; a reader recovers any field exactly with strconv.Unquote of the
// field wrapped in double quotes.
func (l *errorLog) format() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for _, it := range l.items {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", it.time.UTC().Format(time.RFC3339), escapeField(it.path), escapeField(it.reason))
	}
	return b.Bytes()
}

// escapeField escapes s as inside a Go string literal: control characters
// (tab and newline included), non-printing runes, invalid UTF-8, backslash
// and double quote.
func escapeField(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
