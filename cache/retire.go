package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RetireDelay is how long the blob of a replaced or removed version
// outlives its row. An open that resolved the name just before the change
// reaches the old inode a moment later; with the blob still there it reads
// the old version, whole, instead of failing. A crash meanwhile leaves an
// orphan for GC.
const RetireDelay = 5 * time.Second

// References tells whether a row names a blob.
type References interface {
	References(ctx context.Context, path string) (bool, error)
}

// Remover removes a blob file.
type Remover interface {
	Remove(path string) error
}

// Retirer is the one way blobs of versions whose rows are gone leave the
// cache root: after RetireDelay, and only if no row names them again.
type Retirer struct {
	db    References
	blobs Remover
	log   *slog.Logger
	delay time.Duration

	mu      sync.Mutex
	pending map[string]*time.Timer
}

// NewRetirer returns a Retirer that waits delay (RetireDelay when not
// positive); log may be nil.
func NewRetirer(db References, blobs Remover, delay time.Duration, log *slog.Logger) *Retirer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if delay <= 0 {
		delay = RetireDelay
	}
	return &Retirer{db: db, blobs: blobs, log: log, delay: delay, pending: make(map[string]*time.Timer)}
}

// Retire removes path after the delay. The row that named it must already
// be gone.
func (r *Retirer) Retire(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[path]; ok {
		return
	}
	r.pending[path] = time.AfterFunc(r.delay, func() {
		r.mu.Lock()
		delete(r.pending, path)
		r.mu.Unlock()
		r.RemoveNow(context.Background(), path)
	})
}

// RemoveNow removes path at once unless a row names it (blob paths are
// never reused by commits, so that is a row of a version that took its
// blob over, never a new one). It reports whether the file was removed; a
// failure is logged and leaves an orphan for GC.
func (r *Retirer) RemoveNow(ctx context.Context, path string) bool {
	if ref, err := r.db.References(ctx, path); err != nil || ref {
		if err != nil {
			r.log.Warn("check references of a retired blob", "path", path, "err", err)
		}
		return false
	}
	if err := r.blobs.Remove(path); err != nil {
		r.log.Warn("remove blob of a removed version", "path", path, "err", err)
		return false
	}
	return true
}

// Flush removes at once every blob still waiting for its delay (shutdown).
func (r *Retirer) Flush() {
	r.mu.Lock()
	var paths []string
	for path, t := range r.pending {
		if t.Stop() {
			paths = append(paths, path)
		}
		delete(r.pending, path)
	}
	r.mu.Unlock()
	for _, path := range paths {
		r.RemoveNow(context.Background(), path)
	}
}
