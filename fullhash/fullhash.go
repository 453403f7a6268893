// Package fullhash computes, after the commit, the SHA-256 of every byte of
// the entries that were committed with a footer hash.
//
// A commit of a large file hashes only its size and footer, so that close
// does not read gigabytes (see hashing.FooterHash). That hash cannot show
// damage in the middle of a raw blob. The full hash, computed here off the
// close path and stored in the manifest (manifest.Entry.FullHash), gives
// `fsmount verify --deep` something to check every byte against. Until it
// lands an entry is "not yet hashed"; nothing else depends on it, so a
// daemon that dies before hashing loses nothing but the time spent: the
// next one finds the entry again through the manifest.
package fullhash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"featurefs/blobstore"
	"featurefs/hashing"
	"featurefs/manifest"
)

// DefaultInterval is how often Run looks for entries to hash. The query
// reads a partial index that holds only unhashed entries, so an idle cache
// costs a few microseconds a look.
const DefaultInterval = 2 * time.Second

// Manifest is what the hasher needs of the manifest.
type Manifest interface {
	EachUnhashed(ctx context.Context, fn func(manifest.Entry) error) error
	SetFullHash(ctx context.Context, id int64, hash string) error
}

// Blobs opens blobs for reading.
type Blobs interface {
	OpenBlob(path string) (blobstore.Reader, error)
}

// Hasher stores full hashes of one manifest's unhashed entries.
type Hasher struct {
	db    Manifest
	blobs Blobs
	log   *slog.Logger
	// failed holds the entries whose blob could not be hashed (damaged or
	// unreadable): each is reported once and not tried again by this
	// process, so a damaged blob costs one log line, not one per pass.
	failed map[int64]struct{}
}

// maxFailed bounds the entries a Hasher remembers as failed.
const maxFailed = 10_000

// New returns a Hasher; log may be nil.
func New(db Manifest, blobs Blobs, log *slog.Logger) *Hasher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hasher{db: db, blobs: blobs, log: log, failed: make(map[int64]struct{})}
}

// Run makes a pass every interval until ctx ends. Errors are logged, never
// fatal: what cannot be read now is found again by a later process.
func (h *Hasher) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := h.Pass(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("full hash pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass hashes every entry that is unhashed now and returns how many it
// stored. An entry whose blob is gone (replaced or removed meanwhile) is
// skipped; one whose blob cannot be hashed is logged and left unhashed, for
// verify to find. Only manifest errors are returned.
func (h *Hasher) Pass(ctx context.Context) (int, error) {
	var n int
	err := h.db.EachUnhashed(ctx, func(e manifest.Entry) error {
		if _, ok := h.failed[e.ID]; ok {
			return nil
		}
		sum, err := hashBlob(ctx, h.blobs, e)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errGone):
			return nil
		case err != nil:
			h.log.Warn("cannot hash entry in full", "symbol", e.Symbol, "key", e.Key, "path", e.Path, "err", err)
			if len(h.failed) < maxFailed {
				h.failed[e.ID] = struct{}{}
			}
			return nil
		}
		// A version replaced meanwhile is left alone by SetFullHash.
		if err := h.db.SetFullHash(ctx, e.ID, sum); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

var errGone = errors.New("blob gone")

// hashBlob reads e's blob back as a reader of the mount would (decoded, for
// a compressed blob) and returns the SHA-256 of its bytes, provided it has
// the size the row says: a wrong size is damage, not something to record.
func hashBlob(ctx context.Context, blobs Blobs, e manifest.Entry) (string, error) {
	rd, err := blobs.OpenBlob(e.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errGone
		}
		return "", fmt.Errorf("full hash %s/%s: %w", e.Symbol, e.Key, err)
	}
	defer rd.Close()
	if rd.Size() != e.LogicalSize {
		return "", fmt.Errorf("full hash %s/%s: blob %s holds %d bytes, the manifest says %d",
			e.Symbol, e.Key, e.Path, rd.Size(), e.LogicalSize)
	}
	sum, err := hashing.FullHash(ctx, rd, rd.Size())
	if err != nil {
		return "", fmt.Errorf("full hash %s/%s: %w", e.Symbol, e.Key, err)
	}
	return sum.Hex, nil
}
