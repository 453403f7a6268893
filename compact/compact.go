// Package compact compresses cold entries in the background.
//
// With `--compression auto` a commit stores every file raw, at the speed of
// a rename, so that close costs what native cp+fsync costs and readers get
// the kernel's passthrough; the commit's trial only marks the files that
// would shrink (manifest.Entry.Compressible). Once such an entry has not
// been opened for a while, Run rewrites it as a seekable zstd blob and
// points the manifest at it (manifest.DB.ReplaceBlob): a new version with
// the same bytes, times and access count, so a reader of the raw blob keeps
// reading it whole and the kernel never pairs the old inode with the new
// blob. The raw blob is removed a few seconds later, like the blob of any
// replaced version; a crash in between leaves an orphan that GC collects.
//
// While a blob is being compressed both copies exist on disk; only one is
// counted in the manifest's stored bytes, and the compressed copy is at
// most the size of the raw one, so the excess is bounded by the largest
// entry being compressed at a time (one).
package compact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"featurefs/blobstore"
	"featurefs/manifest"
)

// DefaultAfter is how long an entry must go unopened before it is
// compressed: a training set that is read every day stays raw.
const DefaultAfter = 24 * time.Hour

// minSavingsPercent: a whole file that saves less stays raw (the trial
// looked at its head only).
const minSavingsPercent = 5

// Manifest is what compaction needs of the manifest.
type Manifest interface {
	EachCompressible(ctx context.Context, before time.Time, fn func(manifest.Entry) (bool, error)) error
	ReplaceBlob(ctx context.Context, old manifest.Entry, path string, storedSize int64, publishedAt time.Time) (manifest.Entry, error)
	SetCompressible(ctx context.Context, id int64, compressible bool) error
}

// Blobs is what compaction needs of the blob store.
type Blobs interface {
	Compress(ctx context.Context, path string) (*blobstore.Published, error)
	Remove(path string) error
}

// Retirer removes the blob of a version whose row is gone, after the grace
// readers need (cache.Retirer).
type Retirer interface {
	Retire(path string)
}

// Compactor compresses the cold entries of one cache root.
type Compactor struct {
	db      Manifest
	blobs   Blobs
	retirer Retirer
	after   time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// New returns a Compactor for entries unopened for after (DefaultAfter
// when not positive); now and log may be nil.
func New(db Manifest, blobs Blobs, retirer Retirer, after time.Duration, now func() time.Time, log *slog.Logger) *Compactor {
	if after <= 0 {
		after = DefaultAfter
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Compactor{db: db, blobs: blobs, retirer: retirer, after: after, now: now, log: log}
}

// Run makes a pass every interval until ctx ends.
func (c *Compactor) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("compaction pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass compresses the entries that are cold now, least recently opened
// first, and returns how many it compressed. The raw blobs it replaced go
// to the retirer.
func (c *Compactor) Pass(ctx context.Context) (int, error) {
	var n int
	for {
		var did int
		err := c.db.EachCompressible(ctx, c.now().Add(-c.after), func(e manifest.Entry) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			ok, err := c.compress(ctx, e)
			if err != nil {
				return false, err
			}
			did++
			if ok {
				n++
				c.retirer.Retire(e.Path)
			}
			return true, nil
		})
		if err != nil || did == 0 {
			return n, err
		}
	}
}

// compress rewrites e's blob compressed and points the manifest at it. It
// reports whether it did; an entry changed meanwhile, or one that does not
// shrink enough, is left as it is (the second is no longer a candidate).
func (c *Compactor) compress(ctx context.Context, e manifest.Entry) (bool, error) {
	pub, err := c.blobs.Compress(ctx, e.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || ctx.Err() != nil {
			return false, ctx.Err() // replaced or removed since the query
		}
		// Unreadable or damaged: verify and GC deal with it; this entry is
		// not tried again.
		c.log.Warn("cannot compress entry", "symbol", e.Symbol, "key", e.Key, "path", e.Path, "err", err)
		return false, c.db.SetCompressible(ctx, e.ID, false)
	}
	published := time.Now()
	defer func() {
		if err := pub.Release(); err != nil {
			c.log.Warn("release compressed blob", "path", pub.Blob.Path, "err", err)
		}
	}()
	if pub.Blob.StoredSize*100 > e.LogicalSize*(100-minSavingsPercent) {
		c.discard(pub.Blob.Path)
		return false, c.db.SetCompressible(ctx, e.ID, false)
	}
	if _, err := c.db.ReplaceBlob(ctx, e, pub.Blob.Path, pub.Blob.StoredSize, published); err != nil {
		c.discard(pub.Blob.Path)
		if errors.Is(err, manifest.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("compress %s/%s: %w", e.Symbol, e.Key, err)
	}
	c.log.Debug("compressed cold entry", "symbol", e.Symbol, "key", e.Key,
		"logical_bytes", e.LogicalSize, "stored_bytes", pub.Blob.StoredSize)
	return true, nil
}

// discard removes a compressed blob no row names.
func (c *Compactor) discard(path string) {
	if err := c.blobs.Remove(path); err != nil {
		c.log.Warn("remove unused compressed blob", "path", path, "err", err)
	}
}
