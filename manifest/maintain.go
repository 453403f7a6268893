package manifest

import (
	"context"
	"database/sql"
	"fmt"
)

// Maintain trims the changes log to the newest Options.KeepChanges rows,
// runs PRAGMA optimize, VACUUMs when more than a quarter of the pages are
// free, and checkpoints the WAL. GC calls it at the end of a run.
func (db *DB) Maintain(ctx context.Context) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?", db.opts.KeepChanges)
		return err
	})
	if err != nil {
		return fmt.Errorf("maintain %s: trim changes: %w", db.path, err)
	}

	if err := db.retry(ctx, func() error {
		_, err := db.w.ExecContext(ctx, "PRAGMA optimize")
		return err
	}); err != nil {
		return fmt.Errorf("maintain %s: optimize: %w", db.path, err)
	}

	var free, pages int64
	if err := db.w.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return fmt.Errorf("maintain %s: %w", db.path, err)
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("maintain %s: %w", db.path, err)
	}
	if pages > 0 && free*4 > pages {
		// VACUUM rewrites the file through the WAL under the write lock;
		// readers in other processes keep their snapshot meanwhile.
		if err := db.retry(ctx, func() error {
			_, err := db.w.ExecContext(ctx, "VACUUM")
			return err
		}); err != nil {
			return fmt.Errorf("maintain %s: vacuum: %w", db.path, err)
		}
		db.log.Info("manifest vacuumed", "free_pages", free, "pages", pages)
	}

	// TRUNCATE copies the WAL into the database and empties it, so the WAL
	// does not keep the size of the largest burst. With readers active in
	// other processes it cannot finish (busy = 1); that is not an error, the
	// next checkpoint catches up.
	var busy, logPages, done int
	if err := db.retry(ctx, func() error {
		return db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
	}); err != nil {
		return fmt.Errorf("maintain %s: checkpoint: %w", db.path, err)
	}
	if busy != 0 {
		db.log.Info("manifest checkpoint incomplete: readers active", "wal_pages", logPages, "checkpointed", done)
	}
	return nil
}
