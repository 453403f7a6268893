// Package gc runs one garbage collection over a cache root, whether a daemon
// has it mounted or not.
//
// A run takes the cache root's GC lock, makes every access that happened
// before it visible in the manifest, and then, in order:
//
//  1. integrity: removes rows whose blob is missing or has the wrong size
//     (a wrong-sized blob is moved to quarantine/, never deleted);
//  2. retention: deletes entries not accessed within the retention;
//  3. size cap: deletes least recently accessed entries until the stored
//     bytes fit under the cap;
//  4. orphans: removes unreferenced blobs and staging files older than the
//     orphan grace that no live process holds locked;
//  5. maintenance: checkpoints, optimizes and, when worthwhile, vacuums the
//     manifest.
//
// Invariants:
//   - a row is always deleted before its blob, so a reader resolving a name
//     never finds a row without its blob;
//   - a blob that a committed row references is never deleted, and a file
//     locked by a write or a commit in flight is never removed;
//   - nothing outside the cache root is touched and no symbolic link is
//     followed;
//   - memory stays flat whatever the number of entries: rows and files are
//     streamed and decided one at a time, never collected;
//   - a dry run decides exactly as a real run would and changes nothing but
//     its report file.
package gc

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

// Manifest is what a run needs of the manifest.
type Manifest interface {
	FlushAccess(ctx context.Context) error
	PendingAccess(id int64) (count int64, last time.Time)
	Each(ctx context.Context, fn func(manifest.Entry) error) error
	EachAccessedBefore(ctx context.Context, t time.Time, fn func(manifest.Entry) error) error
	EachByAccess(ctx context.Context, fn func(manifest.Entry) (bool, error)) error
	GetByID(ctx context.Context, id int64) (manifest.Entry, error)
	DeleteVersion(ctx context.Context, id int64) (bool, error)
	References(ctx context.Context, path string) (bool, error)
	Stats(ctx context.Context) (manifest.Stats, error)
	ClaimBlob(ctx context.Context, path string) (bool, error)
	PruneClaims(ctx context.Context, t time.Time) (int64, error)
}

// Maintainer is a manifest that needs upkeep after deletions (SQLite:
// checkpoint, optimize, vacuum); the maintenance phase runs it.
type Maintainer interface {
	Maintain(ctx context.Context) error
}

// Blobs is what a run needs of the blob store.
type Blobs interface {
	Root() string
	Stat(path string) (os.FileInfo, error)
	Walk(ctx context.Context, fn func(blobstore.File) error) error
	Remove(path string) error
	RemoveUnlockedIf(path string, decide func() (bool, error)) (bool, error)
	Quarantine(path string) (string, error)
}

// Defaults applied to zero Options fields.
const (
	DefaultRetention   = 4 * 7 * 24 * time.Hour
	DefaultOrphanGrace = time.Hour
	// DefaultSettle covers the window in which a daemon coalesces opens
	// before writing them (about a second) with a margin.
	DefaultSettle = 2 * time.Second
	// DefaultSamples is how many deletions a report lists by default.
	DefaultSamples = 100
)

// maxListed caps the integrity issues and errors a report lists one by one;
// the summary still counts all of them. A cache whose blob directory was
// wiped would otherwise produce a report as large as its manifest.
const maxListed = 1000

// Options configure a run. The zero value gives the production defaults.
type Options struct {
	// Retention: entries whose last access is older than this are deleted
	// (default DefaultRetention).
	Retention time.Duration
	// MaxSize caps the stored bytes; 0 means no cap.
	MaxSize int64
	// OrphanGrace: unreferenced blobs and staging files younger than this are
	// left alone, as they may belong to a write or commit in flight (default
	// DefaultOrphanGrace).
	OrphanGrace time.Duration
	// DryRun decides everything and changes nothing except the report file.
	DryRun bool
	// Now is the clock that retention and the grace are measured against
	// (default time.Now).
	Now func() time.Time
	// Settle is how long to wait, after flushing this process's pending
	// accesses, for other processes to flush theirs (default DefaultSettle;
	// negative waits not at all).
	Settle time.Duration
	// Samples is how many deletions the report lists (default DefaultSamples;
	// negative lists none).
	Samples int
	// Logger receives progress (Info) and every decision (Debug); default
	// discards.
	Logger *slog.Logger

	// Failpoint, when set, is called with a point's name at the steps tests
	// crash the process at ("gc-after-row-delete": a row deleted, its blob
	// not yet). Production leaves it nil.
	Failpoint func(name string)
	// hooks are failpoints for tests.
	hooks hooks
}

// hooks let tests stop a run at a chosen point.
type hooks struct {
	// locked runs once the GC lock is held.
	locked func()
	// orphanChecked runs between the orphan phase's reference check of a
	// blob or staging file and its removal.
	orphanChecked func(path string)
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = DefaultOrphanGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run performs one GC run over the cache root of store, whose manifest is db.
//
// Only one run at a time proceeds per cache root, across processes: Run takes
// an exclusive lock on <root>/gc.lock and, while another run holds it, waits
// until it is released or ctx is done.
//
// The report is returned and also written atomically to <root>/gc-report.json
// (see LastReport), for dry runs too. A failure to check, remove or move one
// file is listed in Report.Errors and the run goes on (whatever it left is
// collected by a later run). A manifest error, or ctx ending, stops the run:
// the error is returned with the partial report, which is written too. Only
// when the lock cannot be taken is the report nil.
func Run(ctx context.Context, db Manifest, store Blobs, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	root := store.Root()
	// The run starts now: every decision is measured against this moment.
	rep := newReport(root, opts)

	// Every open that happened before the run started must be in the
	// manifest before anything is decided. Other daemons write theirs within
	// their coalescing window, which the settle wait outlasts. The wait comes
	// before the lock, so a run that waits does not hold up the others.
	if err := settle(ctx, db, opts.Settle); err != nil {
		return nil, err
	}
	lock, err := acquireLock(ctx, root, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	if opts.hooks.locked != nil {
		opts.hooks.locked()
	}
	// Opens of this process during a wait for the lock are written too.
	if err := db.FlushAccess(ctx); err != nil {
		return nil, fmt.Errorf("gc: flush pending accesses: %w", err)
	}

	r := &runner{
		ctx:   ctx,
		db:    db,
		store: store,
		opts:  opts,
		log:   opts.Logger,
		rep:   rep,
	}
	runErr := r.run()
	r.rep.finish(opts.Now())
	if err := writeReport(root, r.rep); err != nil {
		r.rep.addError(err)
		runErr = errors.Join(runErr, err)
	}
	s := r.rep.Summary
	r.log.Info("gc finished", "dry_run", opts.DryRun,
		"files_deleted", s.TotalFilesDeleted, "bytes_freed", s.TotalBytesFreed,
		"expired", s.ExpiredEntries, "evicted", s.EvictedEntries,
		"orphans", s.OrphanedFiles, "integrity_issues", s.IntegrityIssues,
		"errors", s.Errors, "duration", time.Duration(r.rep.DurationSeconds*float64(time.Second)))
	return r.rep, runErr
}

// settle writes this process's pending opens, then waits for other
// processes to write theirs.
func settle(ctx context.Context, db Manifest, wait time.Duration) error {
	if err := db.FlushAccess(ctx); err != nil {
		return fmt.Errorf("gc: flush pending accesses: %w", err)
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runner is the state of one run.
type runner struct {
	ctx   context.Context
	db    Manifest
	store Blobs
	opts  Options
	log   *slog.Logger
	rep   *Report

	// start is the moment every decision is measured against.
	start time.Time
	// dryFreed is the stored bytes that the integrity and retention phases
	// of a dry run would have removed, so that the size cap decides as it
	// would after a real removal.
	dryFreed int64
}

func (r *runner) run() error {
	r.start = r.rep.Started
	r.log.Info("gc started", "cache_root", r.rep.CacheRoot, "dry_run", r.opts.DryRun,
		"retention", r.opts.Retention, "max_size", r.opts.MaxSize, "orphan_grace", r.opts.OrphanGrace)

	phases := []struct {
		name string
		fn   func() error
	}{
		{"integrity", r.integrity},
		{"retention", r.retention},
		{"size cap", r.sizeCap},
		{"orphans", r.orphans},
		{"maintenance", r.maintain},
	}
	for _, p := range phases {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := p.fn(); err != nil {
			return fmt.Errorf("gc %s: %w", p.name, err)
		}
		r.log.Debug("gc phase done", "phase", p.name, "took", time.Since(t0))
	}
	return nil
}

// integrity removes rows whose blob is missing or damaged.
func (r *runner) integrity() error {
	return r.db.Each(r.ctx, func(e manifest.Entry) error {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		c, err := Check(r.store, e)
		if err != nil {
			r.rep.addError(err)
			return nil
		}
		if c.Problem == Healthy {
			return nil
		}
		// The iteration reads a snapshot. A concurrent unlink or replace
		// deletes the row before its blob, so a fresh read of the row
		// tells a vanished blob from a legitimately removed version.
		cur, err := r.db.GetByID(r.ctx, e.ID)
		if errors.Is(err, manifest.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("re-read %s/%s (id %d): %w", e.Symbol, e.Key, e.ID, err)
		}
		if c, err = Check(r.store, cur); err != nil {
			r.rep.addError(err)
			return nil
		}
		if c.Problem == Healthy {
			return nil
		}
		issue := Issue{
			Symbol: cur.Symbol, Key: cur.Key, Path: cur.Path,
			Problem: c.Problem, Action: c.Problem.action(),
			ExpectedBytes: cur.FileSize, ActualBytes: c.ActualSize,
		}
		if r.opts.DryRun {
			r.dryFreed += cur.FileSize
			if c.Problem.quarantines() {
				r.rep.Summary.QuarantinedFiles++
			}
			r.rep.addIssue(issue)
			r.log.Debug("gc would remove damaged entry", "symbol", cur.Symbol, "key", cur.Key, "path", cur.Path, "problem", c.Problem)
			return nil
		}
		deleted, err := r.db.DeleteVersion(r.ctx, cur.ID)
		if err != nil {
			return fmt.Errorf("remove row of %s/%s (%s): %w", cur.Symbol, cur.Key, cur.Path, err)
		}
		if !deleted {
			// Removed or replaced meanwhile: no longer ours to judge.
			return nil
		}
		if c.Problem.quarantines() {
			dst, err := r.quarantine(cur.Path)
			if err != nil {
				r.rep.addError(err)
			} else {
				issue.QuarantinePath = dst
				r.rep.Summary.QuarantinedFiles++
			}
		}
		r.rep.addIssue(issue)
		r.log.Warn("gc removed damaged entry", "symbol", cur.Symbol, "key", cur.Key, "path", cur.Path,
			"problem", c.Problem, "quarantined_to", issue.QuarantinePath)
		return nil
	})
}

// quarantine moves a blob whose row was just removed out of blobs/. Another
// row may name the same path only if blobs are shared; the bytes are then
// still wrong for it, and its own integrity check reports it as missing.
func (r *runner) quarantine(path string) (string, error) {
	dst, err := r.store.Quarantine(path)
	if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	return dst, nil
}

// retention deletes entries not accessed since the retention cutoff.
func (r *runner) retention() error {
	cutoff := r.start.Add(-r.opts.Retention)
	return r.db.EachAccessedBefore(r.ctx, cutoff, func(e manifest.Entry) error {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if r.opts.DryRun && r.damaged(e) {
			return nil // the integrity phase would have removed it
		}
		freed, err := r.deleteEntry(e, func(cur manifest.Entry) bool {
			return cur.LastAccessedTS < cutoff.Unix() && !r.accessedSince(cur.ID, cutoff)
		}, PhaseRetention)
		if err != nil {
			return err
		}
		if freed {
			r.rep.Summary.ExpiredEntries++
			if r.opts.DryRun {
				r.dryFreed += e.FileSize
			}
		}
		return nil
	})
}

// sizeCap deletes least recently accessed entries until the stored bytes
// fit under MaxSize.
func (r *runner) sizeCap() error {
	if r.opts.MaxSize <= 0 {
		return nil
	}
	st, err := r.db.Stats(r.ctx)
	if err != nil {
		return fmt.Errorf("manifest stats: %w", err)
	}
	stored := st.StoredBytes - r.dryFreed
	if stored <= r.opts.MaxSize {
		return nil
	}
	cutoff := r.start.Add(-r.opts.Retention)
	r.log.Info("gc size cap exceeded", "stored", stored, "max_size", r.opts.MaxSize)
	return r.db.EachByAccess(r.ctx, func(e manifest.Entry) (bool, error) {
		if stored <= r.opts.MaxSize {
			return false, nil
		}
		if err := r.ctx.Err(); err != nil {
			return false, err
		}
		// A dry run still sees what the earlier phases would have removed.
		if r.opts.DryRun && (e.LastAccessedTS < cutoff.Unix() || r.damaged(e)) {
			return true, nil
		}
		deleted, err := r.deleteEntry(e, func(cur manifest.Entry) bool {
			// Opened since the snapshot: it is no longer the least recent.
			return cur.LastAccessedTS <= e.LastAccessedTS && !r.accessedSince(cur.ID, time.Unix(e.LastAccessedTS+1, 0))
		}, PhaseSizeCap)
		if err != nil {
			return false, err
		}
		if deleted {
			r.rep.Summary.EvictedEntries++
			stored -= e.FileSize
		}
		return true, nil
	})
}

// deleteEntry deletes the version e, row first, then its blob, provided
// stillDue holds for a fresh read of the row. It reports whether the entry
// was (or, in a dry run, would be) deleted. Only manifest errors are
// returned; a blob that cannot be removed is listed in the report.
func (r *runner) deleteEntry(e manifest.Entry, stillDue func(manifest.Entry) bool, phase Phase) (bool, error) {
	if r.opts.DryRun {
		r.rep.addDeletion(Deletion{Phase: phase, Symbol: e.Symbol, Key: e.Key, Path: e.Path, Bytes: e.FileSize}, true)
		r.log.Debug("gc would delete", "phase", phase, "symbol", e.Symbol, "key", e.Key, "path", e.Path, "bytes", e.FileSize)
		return true, nil
	}
	// The iteration reads a snapshot taken when it began; the entry may
	// have been opened, replaced or removed since.
	cur, err := r.db.GetByID(r.ctx, e.ID)
	if errors.Is(err, manifest.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("re-read %s/%s (id %d): %w", e.Symbol, e.Key, e.ID, err)
	}
	if !stillDue(cur) {
		r.log.Debug("gc keeps entry accessed meanwhile", "symbol", cur.Symbol, "key", cur.Key)
		return false, nil
	}
	deleted, err := r.db.DeleteVersion(r.ctx, cur.ID)
	if err != nil {
		return false, fmt.Errorf("delete row of %s/%s: %w", cur.Symbol, cur.Key, err)
	}
	if !deleted {
		return false, nil
	}
	if r.opts.Failpoint != nil {
		r.opts.Failpoint("gc-after-row-delete")
	}
	// The row is gone, so no new reader can resolve this version; readers
	// that already have it open keep their handle to the blob.
	removedFile, err := r.removeBlob(cur.Path)
	if err != nil {
		r.rep.addError(err)
	}
	r.rep.addDeletion(Deletion{Phase: phase, Symbol: cur.Symbol, Key: cur.Key, Path: cur.Path, Bytes: cur.FileSize}, removedFile)
	r.log.Debug("gc deleted", "phase", phase, "symbol", cur.Symbol, "key", cur.Key, "path", cur.Path, "bytes", cur.FileSize)
	return true, nil
}

// removeBlob removes the blob of a row just deleted, unless another row still
// names the same path. It reports whether a file was removed.
func (r *runner) removeBlob(path string) (bool, error) {
	if !validBlobPath(path) {
		return false, nil
	}
	ref, err := r.db.References(r.ctx, path)
	if err != nil {
		return false, fmt.Errorf("check references of %s: %w", path, err)
	}
	if ref {
		return false, nil
	}
	// A failure leaves an unreferenced blob, which the orphan phase of a
	// later run removes.
	if err := r.store.Remove(path); err != nil {
		return false, fmt.Errorf("remove blob %s: %w", path, err)
	}
	return true, nil
}

// damaged reports whether the integrity phase finds a problem with e. A dry
// run uses it so later phases skip rows a real run would already have removed.
func (r *runner) damaged(e manifest.Entry) bool {
	c, err := Check(r.store, e)
	return err == nil && c.Problem != Healthy
}

// accessedSince reports whether this process has an unwritten open of id at
// or after t. Opens are flushed before the run, so this only catches those
// that happened during it.
func (r *runner) accessedSince(id int64, t time.Time) bool {
	n, last := r.db.PendingAccess(id)
	return n > 0 && !last.Before(t)
}

// orphans removes blobs no row references and stale staging files, then
// forgets claims old enough that no commit can still name their blobs.
func (r *runner) orphans() error {
	cutoff := r.start.Add(-r.opts.OrphanGrace)
	if err := r.store.Walk(r.ctx, r.orphan(cutoff)); err != nil {
		return err
	}
	if r.opts.DryRun {
		return nil
	}
	if _, err := r.db.PruneClaims(r.ctx, r.start.Add(-manifest.ClaimRetention)); err != nil {
		r.rep.addError(err)
	}
	return nil
}

// orphan returns the decision for one file of the orphan walk.
func (r *runner) orphan(cutoff time.Time) func(blobstore.File) error {
	return func(f blobstore.File) error {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		// Young files may belong to a write or commit in flight; the age
		// test comes first because it costs no query.
		if !f.ModTime.Before(cutoff) {
			return nil
		}
		if !f.Staging {
			ref, err := r.db.References(r.ctx, f.Path)
			if err != nil {
				return fmt.Errorf("check references of %s: %w", f.Path, err)
			}
			if ref {
				return nil
			}
		}
		d := Deletion{Phase: PhaseOrphan, Path: f.Path, Bytes: f.Size}
		if r.opts.DryRun {
			r.rep.Summary.OrphanedFiles++
			r.rep.addDeletion(d, true)
			r.log.Debug("gc would remove orphan", "path", f.Path, "bytes", f.Size, "staging", f.Staging)
			return nil
		}
		if r.opts.hooks.orphanChecked != nil {
			r.opts.hooks.orphanChecked(f.Path)
		}
		// A writer or a local commit between blob publication and manifest
		// insert holds the file's lock, so an old but live file is skipped.
		// The reference check above is stale once the lock is ours: a
		// commit may have inserted its row and released the file since. So
		// a blob is removed only after the manifest, under its write lock,
		// found no row naming it and recorded the claim that makes any
		// later commit of it fail (manifest.ClaimBlob); that holds where no
		// file lock reaches (another host, a shared store).
		var decide func() (bool, error)
		if !f.Staging {
			decide = func() (bool, error) { return r.db.ClaimBlob(r.ctx, f.Path) }
		}
		removed, err := r.store.RemoveUnlockedIf(f.Path, decide)
		if err != nil {
			r.rep.addError(fmt.Errorf("remove orphan %s: %w", f.Path, err))
			return nil
		}
		if !removed {
			r.log.Debug("gc skips locked orphan", "path", f.Path)
			return nil
		}
		r.rep.Summary.OrphanedFiles++
		r.rep.addDeletion(d, true)
		r.log.Debug("gc removed orphan", "path", f.Path, "bytes", f.Size, "staging", f.Staging)
		return nil
	}
}

// maintain keeps the manifest small and its WAL short.
func (r *runner) maintain() error {
	if r.opts.DryRun {
		return nil
	}
	m, ok := r.db.(Maintainer)
	if !ok {
		return nil // the engine keeps itself
	}
	if err := m.Maintain(r.ctx); err != nil {
		// The deletions are done and durable; a failed vacuum is reported,
		// not fatal.
		r.rep.addError(fmt.Errorf("manifest maintenance: %w", err))
	}
	return nil
}
