// Package cache owns a cache root: where everything in it lives, and the
// lifecycle of an entry (put, retire). The kernel adapter (fusefs), GC, the
// command line, the benchmarks and the tests all go through it, so each
// rule has one home (see docs/design.md).
//
// Invariants:
//   - a row is committed only after its blob is durable, and names a blob
//     that exists until the row is gone (Put);
//   - a blob leaves the cache root only once no row names it, and only
//     after the grace readers need (Retire);
//   - a failed Put changes nothing a reader can see.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"featurefs/blobstore"
	"featurefs/hashing"
	"featurefs/manifest"
)

// The cache root's layout, beside blobstore's directories (blobs/,
// staging/, quarantine/).
const (
	// ManifestFile is the SQLite manifest; its -wal, -shm and the
	// manifest's reserve sit beside it.
	ManifestFile = "manifest.db"
	// GCLockFile serialises GC runs on one cache root.
	GCLockFile = "gc.lock"
	// GCReportFile holds the last GC run's report.
	GCReportFile = "gc-report.json"
)

// Options configure Open.
type Options struct {
	// Create makes the cache root (0700) and a new manifest when missing;
	// without it a root that has no manifest is refused.
	Create   bool
	Manifest manifest.Options
	Blobs    blobstore.Options
	// FooterHashThreshold: files larger than this get a footer hash
	// (default hashing.DefaultFooterThreshold).
	FooterHashThreshold int64
	// ValidationBudget bounds the memory validations in flight hold at
	// once (0: hashing's default).
	ValidationBudget int64
}

// Cache is an open cache root. Safe for concurrent use.
type Cache struct {
	root      string
	db        *manifest.DB
	store     *blobstore.Store
	validator *hashing.Validator
	threshold int64
	retirer   *Retirer
}

// Open opens the cache at root.
func Open(ctx context.Context, root string, opts Options) (*Cache, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if opts.Create {
		// Made private when it is made here; an existing root keeps the
		// mode its owner chose (verify warns when it lets others in).
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, fmt.Errorf("create cache root: %w", err)
		}
	} else if _, err := os.Stat(filepath.Join(root, ManifestFile)); err != nil {
		return nil, fmt.Errorf("no cache at %s (%s: %w)", root, ManifestFile, err)
	}
	store, err := blobstore.Open(root, opts.Blobs)
	if err != nil {
		return nil, err
	}
	db, err := manifest.Open(ctx, filepath.Join(root, ManifestFile), opts.Manifest)
	if err != nil {
		store.Close()
		return nil, err
	}
	if opts.FooterHashThreshold <= 0 {
		opts.FooterHashThreshold = hashing.DefaultFooterThreshold
	}
	c := &Cache{
		root: root, db: db, store: store,
		validator: hashing.NewValidator(opts.ValidationBudget),
		threshold: opts.FooterHashThreshold,
	}
	c.retirer = NewRetirer(db, store, 0, opts.Manifest.Logger)
	return c, nil
}

// Root is the cache root's absolute path.
func (c *Cache) Root() string { return c.root }

// DB is the manifest.
func (c *Cache) DB() *manifest.DB { return c.db }

// Blobs is the blob store.
func (c *Cache) Blobs() *blobstore.Store { return c.store }

// FooterHashThreshold is the size above which a commit hashes the footer only.
func (c *Cache) FooterHashThreshold() int64 { return c.threshold }

// Retirer removes blobs of replaced and removed versions.
func (c *Cache) Retirer() *Retirer { return c.retirer }

// Close removes the blobs still waiting to be retired, then closes the
// manifest (flushing pending access times) and the store.
func (c *Cache) Close() error {
	c.retirer.Flush()
	return errors.Join(c.db.Close(), c.store.Close())
}

// Put is one commit: what to store under Symbol/Key.
type Put struct {
	Symbol, Key string
	// Staged holds the bytes; Size of them are the file. Put consumes it
	// once it has published them (Staged.File is nil from then on), even
	// if the row then fails; a failure before that leaves it the caller's,
	// unchanged, for a later Put or for Close.
	Staged *blobstore.Staged
	Size   int64
	// ModTimeNS is the mtime a writer set (0: the commit time).
	ModTimeNS int64
	// Hash, when set, hashes the staged bytes (a caller that hashed them as
	// they arrived); by default they are read and hashed here.
	Hash func(ctx context.Context, r io.ReaderAt, size, threshold int64) (hashing.Sum, error)
	// Failpoint, when set, is called at the steps crash tests stop at.
	Failpoint func(name string)
}

// Put validates, hashes and describes the staged bytes, publishes them as a
// durable blob, and only then commits the manifest row that makes them the
// current version of Symbol/Key; the replaced version's blob is retired. It
// returns the new version and the replaced one, if any. On error nothing is
// committed and the previous version stays as it was; the error wraps
// hashing's, blobstore's or manifest's sentinels.
func (c *Cache) Put(ctx context.Context, p Put) (manifest.Entry, *manifest.Entry, error) {
	fail := p.Failpoint
	if fail == nil {
		fail = func(string) {}
	}
	f := p.Staged.File()

	// 1-3: validate, hash and describe. Nothing has changed on disk yet,
	// so a failure here needs no cleanup.
	info, err := c.validator.Inspect(ctx, f, p.Size)
	if err != nil {
		return manifest.Entry{}, nil, err
	}
	var sum hashing.Sum
	if p.Hash != nil {
		sum, err = p.Hash(ctx, f, p.Size, c.threshold)
	} else {
		sum, err = hashing.Hash(ctx, f, p.Size, c.threshold)
	}
	if err != nil {
		return manifest.Entry{}, nil, err
	}

	// 4: the blob is durable before any row names it. On failure the
	// staged file stays the caller's, unchanged.
	fail("commit-before-publish")
	pub, err := c.store.Publish(ctx, p.Staged, p.Size)
	if err != nil {
		return manifest.Entry{}, nil, err
	}
	published := timeNow()
	defer func() {
		// The blob's lock kept GC off it until the row named it (or until
		// it was removed below).
		_ = pub.Release()
	}()

	// 5: the row.
	e := manifest.Entry{
		Symbol: p.Symbol, Key: p.Key, Path: pub.Blob.Path,
		StartTS: info.StartTS, EndTS: info.EndTS, Rows: info.Rows,
		FileSize: pub.Blob.StoredSize, LogicalSize: p.Size,
		Hash: sum.Hex, HashMethod: string(sum.Method),
		ModTimeNS:   p.ModTimeNS,
		PublishedAt: published,
		// Stored raw for now when compression is deferred; compact
		// compresses it once it is cold.
		Compressible: pub.Blob.Compressible,
	}
	fail("commit-before-row")
	committed, replaced, err := c.db.Commit(ctx, e)
	if err != nil {
		// No row names the blob, so removing it cannot hurt a reader.
		if rmErr := c.store.Remove(pub.Blob.Path); rmErr != nil {
			c.retirer.log.Warn("remove unreferenced blob", "path", pub.Blob.Path, "err", rmErr)
		}
		return manifest.Entry{}, nil, err
	}
	fail("commit-after-row")
	if replaced != nil {
		// The row is gone, so no new reader can reach the old blob; open
		// readers hold their own descriptor and keep reading it.
		c.retirer.Retire(replaced.Path)
	}
	return committed, replaced, nil
}

// timeNow is when a blob was published: Commit refuses one published more
// than manifest.MaxCommitDelay before its row.
var timeNow = time.Now
