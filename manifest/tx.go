package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

const (
	// Backoff between attempts after SQLITE_BUSY: doubling from backoffBase,
	// capped at backoffMax, each delay drawn uniformly from [d/2, d) so
	// processes that collided do not collide again in step.
	backoffBase = 20 * time.Millisecond
	backoffMax  = time.Second
)

// withTx runs fn inside BEGIN EXCLUSIVE … COMMIT on the writer connection
// (the writer pool's _txlock makes every Begin exclusive), retrying the whole
// transaction on SQLITE_BUSY or SQLITE_LOCKED. fn may run more than once and
// must keep its effects inside tx.
//
// ctx bounds the waiting between attempts, not a running transaction: a
// transaction is never interrupted halfway by a cancellation, so an error
// from withTx always means nothing was committed.
func (db *DB) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.retry(ctx, func() error { return db.attempt(ctx, fn) })
}

// attempt is one try of withTx: BEGIN EXCLUSIVE, fn, COMMIT.
func (db *DB) attempt(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := db.corruptErr(); err != nil {
		// Not one more byte into a damaged file (a commit may checkpoint).
		return err
	}
	txCtx := context.WithoutCancel(ctx)
	err := func() error {
		tx, err := db.w.BeginTx(txCtx, nil)
		if err != nil {
			return fmt.Errorf("begin exclusive: %w", err)
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback() // the error that matters is fn's
			return err
		}
		if db.opts.Failpoint != nil {
			db.opts.Failpoint("manifest-before-commit")
		}
		// With synchronous=FULL this COMMIT returns only after the WAL is
		// fsynced. If it fails the driver rolls back, so a retry starts clean.
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	if isReadOnly(err) {
		// Not damage and not contention: the caller can tell the writer
		// why (EROFS) while reads go on.
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	if err == nil && db.reserveGone.Load() {
		db.keepReserve(false)
	}
	return err
}

// retry runs op until it succeeds, fails with something other than a busy
// database, has been retried MaxRetries times or has spent RetryBudget;
// each retry is counted in Counters().BusyRetries. The final busy error
// wraps ErrBusy. A failure for want of space gives up part of the reserve
// and is retried once; the final one wraps ErrNoSpace. A damaged database
// wraps ErrCorrupt and marks the DB.
func (db *DB) retry(ctx context.Context, op func() error) error {
	if err := db.corruptErr(); err != nil {
		return err
	}
	delay := backoffBase
	deadline := time.Now().Add(db.opts.RetryBudget)
	released := false
	for attempt := 0; ; attempt++ {
		err := op()
		if err != nil && isFull(err) && !released {
			released = true
			if db.releaseReserve(err) {
				continue
			}
		}
		if err == nil || !isBusy(err) {
			return db.classify(err)
		}
		if attempt >= db.opts.MaxRetries || !time.Now().Before(deadline) {
			return fmt.Errorf("%w after %d attempts: %w", ErrBusy, attempt+1, err)
		}
		db.busyRetries.Add(1)
		wait := delay/2 + rand.N(delay/2)
		if delay *= 2; delay > backoffMax {
			delay = backoffMax
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting for the lock: %w)", ctx.Err(), err)
		}
	}
}

// isBusy reports whether err is SQLite saying another connection holds a
// lock (SQLITE_BUSY and its extended codes, SQLITE_LOCKED).
func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

// isReadOnly reports whether SQLite failed to write because the file
// system refused it (EROFS) or the database can only be read.
func isReadOnly(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.SystemErrno == syscall.EROFS || se.Code == sqlite3.ErrReadonly
	}
	return false
}

// classify wraps err in ErrNoSpace or ErrCorrupt when it is one of those,
// marking the DB damaged in the second case.
func (db *DB) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrNoSpace):
		return err
	case isNotADB(err):
		cerr := fmt.Errorf("%w: %w", ErrCorrupt, err)
		db.markCorrupt(cerr)
		return cerr
	case isFull(err):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// isFull reports whether SQLite failed for want of space: SQLITE_FULL, or
// any error whose system errno says so (creating or growing the -shm file
// on a full disk fails with an I/O error code).
func isFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT
	}
	return false
}

// isNotADB reports whether SQLite found the file is not a (sound) database.
func isNotADB(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt
	}
	return false
}

// isConstraint reports a statement-level constraint failure (CHECK, UNIQUE,
// NOT NULL), which leaves the enclosing transaction usable.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}
