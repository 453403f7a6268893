package fusefs

import (
	"bytes"
	"context"
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// pendingName is an entry name whose last close left no complete parquet
// file yet: an empty file (touch, a writer that creates the file and writes
// it in later opens), or the chunks appended to one so far. It commits
// nothing and is never listed; readers keep the previous version, or, with
// none, ENOENT (others' lookups, everyone's opens for reading: its owner's
// lookups find it, so that stat after touch and reopening it work). An
// O_APPEND open by its owner continues it, and the first close that leaves
// a file ending in PAR1 commits it. Like a
// scratch file it lives in the daemon's memory (its bytes in a staging
// file) and is dropped at unmount and, once closed and untouched for the
// orphan grace, by a GC run.
type pendingName struct {
	ref     entryRef
	content *content
	// ino is the inode number its owner's lookups show.
	ino uint64
	// uid is the user who created it: only that user may continue it.
	uid uint32
	// opens counts the write handles using content; touched is the last
	// close or write (Unix ns).
	opens   atomic.Int64
	touched atomic.Int64
}

// parquetMagic opens and ends every parquet file.
var parquetMagic = []byte("PAR1")

// callerUID is the uid of the process behind a request.
func callerUID(ctx context.Context) uint32 {
	if caller, ok := fuse.FromContext(ctx); ok {
		return caller.Uid
	}
	return 0
}

// pendingFor returns symbol/key's pending name if uid may continue it; a
// pending name of another user is reported by the second result. attach
// counts the caller as one more open of it, in the same step, so that GC
// cannot drop it in between.
func (fsys *FS) pendingFor(symbol, key string, uid uint32, attach bool) (p *pendingName, others bool) {
	fsys.scratchMu.Lock()
	defer fsys.scratchMu.Unlock()
	p = fsys.pending[entryRef{symbol, key}]
	if p != nil && p.uid != uid {
		return nil, true
	}
	if p != nil && attach {
		p.opens.Add(1)
	}
	return p, false
}

// keepPending makes c the pending content of symbol/key and returns the
// pending name. A pending name it replaces is discarded unless a handle
// still uses it (that handle's Release discards it).
func (fsys *FS) keepPending(symbol, key string, c *content, uid uint32) *pendingName {
	ref := entryRef{symbol, key}
	fsys.scratchMu.Lock()
	old := fsys.pending[ref]
	if old != nil && old.content == c {
		fsys.scratchMu.Unlock()
		old.touched.Store(fsys.now().UnixNano())
		return old
	}
	p := &pendingName{ref: ref, content: c, uid: uid, ino: fsys.newIno()}
	p.touched.Store(fsys.now().UnixNano())
	fsys.pending[ref] = p
	discardOld := old != nil && old.opens.Load() == 0
	fsys.scratchMu.Unlock()
	if discardOld {
		old.content.discard()
	}
	return p
}

// dropPending forgets symbol/key's pending name if it still holds c (a
// commit of c, or its failure), or whatever it holds when c is nil (a new
// version of the name started or committed by another open).
func (fsys *FS) dropPending(symbol, key string, c *content) {
	ref := entryRef{symbol, key}
	fsys.scratchMu.Lock()
	p := fsys.pending[ref]
	if p == nil || (c != nil && p.content != c) {
		fsys.scratchMu.Unlock()
		return
	}
	delete(fsys.pending, ref)
	discard := p.content != c && p.opens.Load() == 0
	fsys.scratchMu.Unlock()
	if discard {
		p.content.discard()
	}
}

// stillPending reports whether p is still its name's pending name: its
// content must then outlive the handle being released.
func (fsys *FS) stillPending(p *pendingName) bool {
	fsys.scratchMu.Lock()
	defer fsys.scratchMu.Unlock()
	return fsys.pending[p.ref] == p
}

// dropStalePending discards pending names closed and untouched since
// cutoff (Unix ns), and reports how many.
func (fsys *FS) dropStalePending(cutoff int64) int {
	fsys.scratchMu.Lock()
	var stale []*pendingName
	for ref, p := range fsys.pending {
		if p.opens.Load() == 0 && p.touched.Load() < cutoff {
			stale = append(stale, p)
			delete(fsys.pending, ref)
		}
	}
	fsys.scratchMu.Unlock()
	for _, p := range stale {
		p.content.discard()
	}
	return len(stale)
}

// headMismatch reports whether data, written at off, puts anything but the
// magic in a parquet file's first four bytes. Writers that write the head
// last still pass: only the bytes a write really covers are compared.
func headMismatch(data []byte, off int64) bool {
	if off >= int64(len(parquetMagic)) {
		return false
	}
	want := parquetMagic[off:]
	n := min(len(data), len(want))
	return !bytes.Equal(data[:n], want[:n])
}
