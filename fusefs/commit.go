package fusefs

import (
	"context"
	"fmt"
	"time"

	"featurefs/hashing"
	"featurefs/manifest"
)

// commit turns c into the new version of symbol/key, following SPEC §3:
// validate, hash, describe, store durably, then insert the manifest row. Only
// the row makes the version visible, so a failure at any step leaves the
// previous version as it was. The caller holds no lock on c. The version
// returned is also c's new base: versions are never changed once made, so
// the writer's node may share it.
func (fsys *FS) commit(ctx context.Context, symbol, key string, c *content) (*version, error) {
	// A signal to the writer interrupts the FUSE request its close waits on,
	// but close(2) is not restartable: a commit is carried through once
	// begun, and its result is what close returns.
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	v, err := fsys.commitLocked(ctx, symbol, key, c)
	if err != nil {
		fsys.stats.rejected.Add(1)
		return nil, fmt.Errorf("commit %s/%s: %w", symbol, entryName(key), err)
	}
	fsys.stats.commits.Add(1)
	// The kernel dropped the directory's attributes when the file was
	// created, not now that its commit moved the directory's mtime.
	fsys.invalidateDir(symbol)
	return v, nil
}

func (fsys *FS) commitLocked(ctx context.Context, symbol, key string, c *content) (*version, error) {
	if c.failed != nil {
		return nil, fmt.Errorf("an earlier write failed: %w", c.failed)
	}
	if err := c.stage(ctx); err != nil {
		return nil, err
	}
	f, size := c.staged.File(), c.size

	// 1-3: validate, hash and describe from the staged bytes (a file
	// written front to back was hashed as it arrived, see content.prefix).
	// Nothing has changed on disk yet, so a failure here needs no cleanup.
	info, err := fsys.validator.Inspect(ctx, f, size)
	if err != nil {
		return nil, err
	}
	sum, err := c.hash(ctx, f, size)
	if err != nil {
		return nil, err
	}

	// 4: the blob is durable before any row names it. On success Publish
	// consumes the staged file; on failure it stays ours, unchanged, so a
	// later close can try again and Release removes it.
	fsys.failpoint("commit-before-publish")
	pub, err := fsys.store.Publish(ctx, c.staged, size)
	if err != nil {
		return nil, err
	}
	c.staged, c.prefix = nil, nil
	published := time.Now()

	// 5: the row. The commit must not be abandoned half-way because the
	// writer was interrupted: the blob is already in place.
	e := manifest.Entry{
		Symbol:      symbol,
		Key:         key,
		Path:        pub.Blob.Path,
		StartTS:     info.StartTS,
		EndTS:       info.EndTS,
		Rows:        info.Rows,
		FileSize:    pub.Blob.StoredSize,
		LogicalSize: size,
		Hash:        sum.Hex,
		HashMethod:  string(sum.Method),
		ModTimeNS:   c.mtimeNS,
		PublishedAt: published,
	}
	fsys.failpoint("commit-before-row")
	committed, replaced, err := fsys.db.Commit(ctx, e)
	if err != nil {
		// No row names the blob, so removing it cannot hurt a reader.
		fsys.releasePublished(pub)
		if rmErr := fsys.store.Remove(pub.Blob.Path); rmErr != nil {
			fsys.log.Warn("remove unreferenced blob", "path", pub.Blob.Path, "err", rmErr)
		}
		c.dirty, c.base = false, nil
		return nil, err
	}
	fsys.releasePublished(pub)
	switch sum.Method {
	case hashing.Footer:
		fsys.stats.footerHashes.Add(1)
	default:
		fsys.stats.fullHashes.Add(1)
	}
	fsys.failpoint("commit-after-row")
	if replaced != nil {
		// The row is gone, so no new reader can reach the old blob; open
		// readers hold their own descriptor and keep reading it.
		fsys.removeBlob(replaced.Path)
	}
	v := newVersion(&committed)
	c.base = &v
	c.dirty = false
	return &v, nil
}

func (fsys *FS) releasePublished(pub interface{ Release() error }) {
	if err := pub.Release(); err != nil {
		fsys.log.Warn("release published blob", "err", err)
	}
}

// retireDelay is how long the blob of a replaced or removed version
// outlives its row. An open that resolved the name just before the change
// reaches the old inode a moment later; with the blob still there it reads
// the old version, whole, instead of failing. A crash meanwhile leaves an
// orphan for GC.
const retireDelay = 5 * time.Second

// removeBlob deletes, after retireDelay, the blob of a version whose row is
// already gone.
func (fsys *FS) removeBlob(path string) {
	fsys.retiredMu.Lock()
	defer fsys.retiredMu.Unlock()
	if fsys.retired == nil {
		fsys.retired = make(map[string]*time.Timer)
	}
	fsys.retired[path] = time.AfterFunc(retireDelay, func() {
		fsys.retiredMu.Lock()
		delete(fsys.retired, path)
		fsys.retiredMu.Unlock()
		fsys.removeNow(path)
	})
}

func (fsys *FS) removeNow(path string) {
	if err := fsys.store.Remove(path); err != nil {
		// GC collects it as an orphan later.
		fsys.log.Warn("remove blob of a removed version", "path", path, "err", err)
	}
}

// removeRetired deletes every blob still waiting for its delay (shutdown).
func (fsys *FS) removeRetired() {
	fsys.retiredMu.Lock()
	var paths []string
	for path, t := range fsys.retired {
		if t.Stop() {
			paths = append(paths, path)
		}
		delete(fsys.retired, path)
	}
	fsys.retiredMu.Unlock()
	for _, path := range paths {
		fsys.removeNow(path)
	}
}
