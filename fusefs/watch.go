package fusefs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"

	"featurefs/manifest"
)

// DefaultWatchInterval is how often a mount polls the change log: a
// change made by another process shows within two seconds (the README's
// promise), with room for a poll that waits on a busy manifest.
const DefaultWatchInterval = 500 * time.Millisecond

// Watch polls the manifest's change log every interval until ctx ends and
// tells the kernel to forget the names another process changed (a second
// daemon, a standalone GC), so ls, stat and open agree within two seconds.
func (fsys *FS) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fsys.Poll(ctx)
		}
	}
}

// Poll applies the changes logged since the last poll.
func (fsys *FS) Poll(ctx context.Context) {
	fsys.watchMu.Lock()
	defer fsys.watchMu.Unlock()
	changes, cursor, err := fsys.db.Changes(ctx, fsys.watchCursor)
	root := fsys.root.EmbeddedInode()
	if errors.Is(err, manifest.ErrChangesTrimmed) {
		// Changes were lost to trimming: forget every name the kernel holds.
		fsys.log.Warn("manifest change log trimmed past this mount's cursor; invalidating all cached names", "err", err)
		fsys.watchCursor = cursor
		fsys.invalidateAll(root)
		return
	}
	if err != nil {
		fsys.log.Warn("poll manifest changes", "err", err)
		return
	}
	fsys.watchCursor = cursor
	changed := make(map[string]bool)
	for _, c := range changes {
		changed[c.Symbol] = true
		if c.Key == "" {
			// A symbol was made, removed or renamed.
			root.NotifyEntry(c.Symbol)
			continue
		}
		dir := root.GetChild(c.Symbol)
		if dir == nil {
			// The kernel holds nothing below this symbol.
			continue
		}
		if !fsys.stale(ctx, dir, c.Symbol, c.Key) {
			continue
		}
		// Dropping the dentry is enough: the next lookup returns the new
		// version's inode (or ENOENT), and open readers keep their blob.
		dir.NotifyEntry(entryName(c.Key))
		fsys.stats.notifyInvalidation.Add(1)
	}
	// Every change moved its directory's mtime, including this mount's own
	// (the kernel cannot tell an entry's commit at close or GC's removal
	// from no change at all): one notification per directory and poll.
	for symbol := range changed {
		fsys.invalidateDir(symbol)
	}
}

// invalidateDir makes the kernel ask again for a symbol directory's
// attributes (its mtime), if it holds them. It leaves the directory's names
// alone and takes no lock the kernel might hold for a request in progress,
// so it may be called from any request. A short attribute timeout for
// directories would instead cost a GETATTR round trip per stat, and per
// permission check through the directory, whether anything changed or not.
func (fsys *FS) invalidateDir(symbol string) {
	dir := fsys.root.EmbeddedInode().GetChild(symbol)
	if dir == nil {
		return
	}
	// A negative offset invalidates the attributes only.
	if errno := dir.NotifyContent(-1, 0); errno != 0 && errno != syscall.ENOENT {
		fsys.log.Debug("invalidate directory attributes", "symbol", symbol, "errno", errno)
	}
}

// invalidateAll drops every name below the root from the kernel's cache.
func (fsys *FS) invalidateAll(root *fs.Inode) {
	for symbol, dir := range root.Children() {
		if symbol == controlName {
			continue
		}
		for name := range dir.Children() {
			dir.NotifyEntry(name)
		}
		fsys.invalidateDir(symbol)
		root.NotifyEntry(symbol)
	}
}

// stale reports whether the kernel may hold a name that no longer leads to
// the current version of symbol/key. Most changes in the log are this
// mount's own commits, whose names are already right; notifying them anyway
// would cost a lookup each and, worse, a notification waits for the
// directory's lock, which a busy directory holds often. A name the kernel
// has not looked up needs nothing: negative entries expire within a second.
func (fsys *FS) stale(ctx context.Context, dir *fs.Inode, symbol, key string) bool {
	child := dir.GetChild(entryName(key))
	if child == nil {
		return false
	}
	node, ok := child.Operations().(*fileNode)
	if !ok {
		return true
	}
	shown, _ := node.current()
	cur, err := fsys.db.Get(ctx, symbol, key)
	if err != nil {
		// Gone (or unknown): let the kernel ask again.
		return true
	}
	return shown == nil || shown.id != cur.ID || shown.modTimeNS != cur.ModTimeNS
}
