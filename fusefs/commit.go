package fusefs

import (
	"context"
	"fmt"

	"featurefs/cache"
	"featurefs/hashing"
)

// commit turns c into the new version of symbol/key (cache.Put: validate,
// hash, describe, store durably, then insert the manifest row; see
// docs/design.md). Only the row makes the version visible, so a failure at
// any step leaves the previous version as it was. The caller holds no lock on c. The version
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
	// The commit sequence itself is cache.Put's. A file written front to
	// back was hashed as it arrived (see content.prefix).
	committed, _, err := fsys.cache.Put(ctx, cache.Put{
		Symbol: symbol, Key: key,
		Staged: c.staged, Size: c.size,
		ModTimeNS: c.mtimeNS,
		Hash:      c.hash,
		Failpoint: fsys.failpoint,
	})
	if c.staged.File() == nil {
		// Published: the staged file is the blob's now (or gone with it).
		c.staged, c.prefix = nil, nil
	}
	if err != nil {
		if c.staged == nil {
			// Published, then the row failed: nothing is left to commit
			// again; the writer's next close starts from an empty file.
			c.dirty, c.base = false, nil
		}
		return nil, err
	}
	if committed.HashMethod == string(hashing.Footer) {
		fsys.stats.footerHashes.Add(1)
	} else {
		fsys.stats.fullHashes.Add(1)
	}
	v := newVersion(&committed)
	c.base = &v
	c.dirty = false
	return &v, nil
}

// removeBlob retires the blob of a version whose row is already gone (see
// cache.Retirer).
func (fsys *FS) removeBlob(path string) { fsys.cache.Retirer().Retire(path) }
