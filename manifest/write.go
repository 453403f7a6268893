package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Every write runs in db.withTx: BEGIN EXCLUSIVE … COMMIT on the writer
// connection, retried as a whole on SQLITE_BUSY. An exclusive (not deferred)
// transaction takes the write lock before reading, so the read-then-write
// below can never fail with SQLITE_BUSY_SNAPSHOT after another process's
// commit, and what it read stays true until COMMIT.

// maxBatch bounds how many Commits share one transaction, so one batch never
// holds the write lock for long while other processes wait.
const maxBatch = 256

type commitReq struct {
	ctx  context.Context
	e    Entry
	done chan commitRes
	// queued is when Commit was called; deadline is queued + RetryBudget.
	queued, deadline time.Time
	// attempts counts the transactions the request has been part of.
	attempts int
}

type commitRes struct {
	committed Entry
	replaced  *Entry
	err       error
}

// Commit inserts e as the new version of (e.Symbol, e.Key), replacing any
// current one, and returns it with its new ID, plus the replaced version if
// there was one (whose blob the caller removes). e.ID, e.CreatedTS,
// e.LastAccessedTS and e.AccessCount are set by Commit; e.ModTimeNS is kept
// when non-zero. Concurrent calls are batched into one transaction.
//
// The blob e.Path names must already be durable. When Commit returns nil the
// row is durable (synchronous=FULL); when it returns an error nothing was
// committed. ctx is honoured until the request joins a transaction; from then
// on Commit waits for that transaction's outcome, so the answer is never a
// guess.
func (db *DB) Commit(ctx context.Context, e Entry) (committed Entry, replaced *Entry, err error) {
	db.gate.RLock()
	if db.closed {
		db.gate.RUnlock()
		return Entry{}, nil, fmt.Errorf("commit %s/%s: %w", e.Symbol, e.Key, ErrClosed)
	}
	db.inflight.Add(1)
	db.gate.RUnlock()
	defer db.inflight.Done()

	if db.opts.NoGroupCommit {
		var res commitRes
		err := db.withTx(ctx, func(tx *sql.Tx) error {
			res = commitRes{}
			res.committed, res.replaced, res.err = db.commitOne(ctx, tx, e)
			return res.err
		})
		if err != nil {
			return Entry{}, nil, fmt.Errorf("commit %s/%s: %w", e.Symbol, e.Key, err)
		}
		db.transactions.Add(1)
		db.commits.Add(1)
		return res.committed, res.replaced, nil
	}

	now := time.Now()
	req := &commitReq{ctx: ctx, e: e, done: make(chan commitRes, 1), queued: now, deadline: now.Add(db.opts.RetryBudget)}
	select {
	case db.commitCh <- req:
	case <-ctx.Done():
		return Entry{}, nil, fmt.Errorf("commit %s/%s: %w", e.Symbol, e.Key, ctx.Err())
	}
	res := <-req.done
	if res.err != nil {
		return Entry{}, nil, fmt.Errorf("commit %s/%s: %w", e.Symbol, e.Key, res.err)
	}
	return res.committed, res.replaced, nil
}

// committer is the single goroutine that turns queued Commits into
// transactions. While one transaction waits for its fsync, the next Commits
// queue up and go into the following transaction together: under load the
// cost of an fsync is shared, with no load no Commit waits for company.
func (db *DB) committer() {
	defer close(db.committerDone)
	batch := make([]*commitReq, 0, maxBatch)
	for {
		select {
		case req := <-db.commitCh:
			batch = append(batch[:0], req)
		drain:
			for len(batch) < maxBatch {
				select {
				case req := <-db.commitCh:
					batch = append(batch, req)
				default:
					break drain
				}
			}
			db.commitBatch(batch)
		case <-db.stopCommitter:
			// Close waited for every admitted Commit, so the queue is empty.
			return
		}
	}
}

// commitBatch commits reqs in one exclusive transaction, each inside its own
// savepoint so that a request that fails is undone alone and the others
// still commit. Every request gets its answer after COMMIT (or the failure).
//
// While the database is locked by another process the batch is retried,
// and requests queued meanwhile join it: each request waits at most its own
// RetryBudget from when it was queued, never the budgets of those ahead of
// it, and fails with ErrBusy once that is spent.
func (db *DB) commitBatch(reqs []*commitReq) {
	delay := backoffBase
	var lastErr error
	released := false
	for {
		reqs = db.admit(reqs, lastErr)
		if len(reqs) == 0 {
			return
		}
		if lastErr != nil {
			db.busyRetries.Add(1)
		}
		results, err := db.commitAttempt(reqs)
		if err != nil && isFull(err) && !released {
			// As in retry: give up part of the reserve, try once more.
			released = true
			if db.releaseReserve(err) {
				continue
			}
		}
		if err == nil {
			db.transactions.Add(1)
			for i, r := range reqs {
				if results[i].err == nil {
					db.commits.Add(1)
				}
				r.done <- results[i]
			}
			return
		}
		if !isBusy(err) {
			err = db.classify(err)
			for _, r := range reqs {
				r.done <- commitRes{err: err}
			}
			return
		}
		lastErr = err
		wait := delay/2 + rand.N(delay/2)
		if delay *= 2; delay > backoffMax {
			delay = backoffMax
		}
		// Wake no later than the first deadline, to answer it on time.
		for _, r := range reqs {
			wait = min(wait, max(time.Until(r.deadline), 0))
		}
		time.Sleep(wait)
	}
}

// admit returns reqs plus the requests queued since (up to maxBatch), less
// those whose caller gave up or whose budget is spent, which are answered
// here: no attempt of theirs committed anything.
func (db *DB) admit(reqs []*commitReq, lastErr error) []*commitReq {
drain:
	for len(reqs) < maxBatch {
		select {
		case r := <-db.commitCh:
			reqs = append(reqs, r)
		default:
			break drain
		}
	}
	now := time.Now()
	live := reqs[:0]
	for _, r := range reqs {
		switch {
		case r.ctx.Err() != nil:
			r.done <- commitRes{err: r.ctx.Err()}
		case lastErr != nil && (!now.Before(r.deadline) || r.attempts > db.opts.MaxRetries):
			r.done <- commitRes{err: fmt.Errorf("%w after %d attempts in %s: %w",
				ErrBusy, r.attempts, now.Sub(r.queued).Round(time.Millisecond), lastErr)}
		default:
			r.attempts++
			live = append(live, r)
		}
	}
	clear(reqs[len(live):]) // drop answered requests from the backing array
	return live
}

// commitAttempt makes one try at committing reqs together.
func (db *DB) commitAttempt(reqs []*commitReq) ([]commitRes, error) {
	results := make([]commitRes, len(reqs))
	ctx := context.Background()
	err := db.attempt(ctx, func(tx *sql.Tx) error {
		for i, r := range reqs {
			res := db.commitSavepoint(ctx, tx, r.e)
			if res.err != nil && !isConstraint(res.err) && !errors.Is(res.err, ErrBlobClaimed) {
				// Only a constraint failure (or a refusal this code made
				// itself) is known to leave the outer transaction intact.
				// Others (I/O, disk full, ...) may have rolled it back,
				// after which later statements would autocommit one by
				// one: fail the whole batch instead.
				return res.err
			}
			results[i] = res
		}
		return nil
	})
	return results, err
}

// commitSavepoint runs one Commit inside SAVEPOINT commit_req.
func (db *DB) commitSavepoint(ctx context.Context, tx *sql.Tx, e Entry) commitRes {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT commit_req"); err != nil {
		return commitRes{err: err}
	}
	committed, replaced, err := db.commitOne(ctx, tx, e)
	if err != nil {
		// ROLLBACK TO undoes this request only; RELEASE then drops the
		// savepoint, leaving the outer transaction as it was before it.
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO commit_req; RELEASE commit_req"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		return commitRes{err: err}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE commit_req"); err != nil {
		return commitRes{err: err}
	}
	return commitRes{committed: committed, replaced: replaced}
}

// commitOne replaces (e.Symbol, e.Key) with e inside tx. A replace is a
// delete and an insert, so the new version gets a new id (inode) and the
// kernel never pairs the old version's cached size with the new bytes.
func (db *DB) commitOne(ctx context.Context, tx *sql.Tx, e Entry) (Entry, *Entry, error) {
	if err := unclaimed(ctx, tx, e.Path, e.PublishedAt); err != nil {
		return Entry{}, nil, err
	}
	var replaced *Entry
	old, err := getOne(ctx, tx, "symbol = ? AND key = ?", e.Symbol, e.Key)
	switch {
	case err == nil:
		replaced = &old
		if _, err := tx.ExecContext(ctx, "DELETE FROM manifest WHERE id = ?", old.ID); err != nil {
			return Entry{}, nil, fmt.Errorf("delete replaced version %d: %w", old.ID, err)
		}
	case !errors.Is(err, ErrNotFound):
		return Entry{}, nil, err
	}

	now := db.opts.Now()
	e.CreatedTS = now.Unix()
	e.LastAccessedTS = e.CreatedTS
	e.AccessCount = 0
	if e.ModTimeNS == 0 {
		e.ModTimeNS = now.UnixNano()
	}
	if err := insert(ctx, tx, &e); err != nil {
		return Entry{}, nil, err
	}
	return e, replaced, nil
}

// insert adds e as a new row and sets e.ID.
func insert(ctx context.Context, tx *sql.Tx, e *Entry) error {
	err := tx.QueryRowContext(ctx, `INSERT INTO manifest
		(key, symbol, path, start_ts, end_ts, rows, file_size_bytes, logical_size_bytes,
		 hash, hash_method, created_ts, mtime_ns, last_accessed_ts, access_count, full_hash, compressible)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Key, e.Symbol, e.Path, e.StartTS, e.EndTS, e.Rows, e.FileSize, e.LogicalSize,
		e.Hash, e.HashMethod, e.CreatedTS, e.ModTimeNS, e.LastAccessedTS, e.AccessCount,
		e.FullHash, e.Compressible).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// unclaimed fails with ErrBlobClaimed when a row may not name path. It runs
// under the write lock, so GC's claim (ClaimBlob) either came first and is
// seen here, or comes after the row and sees it. A blob published more than
// MaxCommitDelay ago may have been claimed and its claim pruned since
// (claims are kept ClaimRetention, far longer); a zero publishedAt skips
// that check.
func unclaimed(ctx context.Context, tx *sql.Tx, path string, publishedAt time.Time) error {
	if !publishedAt.IsZero() {
		if age := time.Since(publishedAt); age > MaxCommitDelay {
			return fmt.Errorf("blob %s was published %s ago, over %s: %w",
				path, age.Round(time.Second), MaxCommitDelay, ErrBlobClaimed)
		}
	}
	var claimed bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM blob_claims WHERE path = ?)", path).
		Scan(&claimed); err != nil {
		return fmt.Errorf("check claim of %s: %w", path, err)
	}
	if claimed {
		return fmt.Errorf("blob %s: %w", path, ErrBlobClaimed)
	}
	return nil
}

// ReplaceBlob makes a new version of old with the same bytes stored in
// another blob (old's, compressed), keeping everything else about it: its
// times, access count and hashes. The version gets a new id, as every
// change of bytes on disk does, so a kernel that cached the old inode never
// reads the new blob through it; old's readers keep their blob. It returns
// the new version, or ErrNotFound when old is no longer the current
// version (replaced, removed or renamed meanwhile: the caller removes its
// new blob). The caller retires old's blob.
func (db *DB) ReplaceBlob(ctx context.Context, old Entry, path string, storedSize int64, publishedAt time.Time) (Entry, error) {
	var e Entry
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		cur, err := getOne(ctx, tx, "id = ?", old.ID)
		if err != nil {
			return err
		}
		if cur.Path != old.Path || cur.Symbol != old.Symbol || cur.Key != old.Key {
			return ErrNotFound
		}
		if err := unclaimed(ctx, tx, path, publishedAt); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM manifest WHERE id = ?", cur.ID); err != nil {
			return err
		}
		e = cur
		e.Path, e.FileSize, e.Compressible = path, storedSize, false
		return insert(ctx, tx, &e)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("replace blob of %s/%s: %w", old.Symbol, old.Key, err)
	}
	return e, nil
}

// Delete removes the current version of (symbol, key) and returns it.
func (db *DB) Delete(ctx context.Context, symbol, key string) (Entry, error) {
	var old Entry
	err := db.withTx(ctx, func(tx *sql.Tx) (err error) {
		old, err = getOne(ctx, tx, "symbol = ? AND key = ?", symbol, key)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM manifest WHERE id = ?", old.ID)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("delete %s/%s: %w", symbol, key, err)
	}
	return old, nil
}

// DeleteVersion removes the row with this id only if it is still there (a newer
// version of the same key is never touched). It reports whether it deleted.
func (db *DB) DeleteVersion(ctx context.Context, id int64) (bool, error) {
	var n int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM manifest WHERE id = ?", id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete version %d: %w", id, err)
	}
	return n > 0, nil
}

// Rename moves (fromSym, fromKey) to (toSym, toKey) keeping its row id,
// replacing the destination if present (returned for blob removal).
// ErrNotFound if the source is absent. Renaming onto itself is a no-op.
func (db *DB) Rename(ctx context.Context, fromSym, fromKey, toSym, toKey string) (moved Entry, replaced *Entry, err error) {
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		replaced = nil
		src, err := getOne(ctx, tx, "symbol = ? AND key = ?", fromSym, fromKey)
		if err != nil {
			return err
		}
		moved = src
		if fromSym == toSym && fromKey == toKey {
			return nil
		}
		dst, err := getOne(ctx, tx, "symbol = ? AND key = ?", toSym, toKey)
		switch {
		case err == nil:
			replaced = &dst
			if _, err := tx.ExecContext(ctx, "DELETE FROM manifest WHERE id = ?", dst.ID); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE manifest SET symbol = ?, key = ? WHERE id = ?",
			toSym, toKey, src.ID); err != nil {
			return err
		}
		moved.Symbol, moved.Key = toSym, toKey
		return nil
	})
	if err != nil {
		return Entry{}, nil, fmt.Errorf("rename %s/%s to %s/%s: %w", fromSym, fromKey, toSym, toKey, err)
	}
	return moved, replaced, nil
}

// RenameSymbol moves every entry of from to to (which must be absent or
// empty: ErrNotEmpty otherwise). ErrNotFound if from does not exist.
func (db *DB) RenameSymbol(ctx context.Context, from, to string) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if ok, err := symbolExists(ctx, tx, from); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		if from == to {
			return nil
		}
		var busy bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM manifest WHERE symbol = ?)", to).
			Scan(&busy); err != nil {
			return err
		}
		if busy {
			return fmt.Errorf("destination %w", ErrNotEmpty)
		}
		// The destination is empty, so no (symbol, key) can collide.
		if _, err := tx.ExecContext(ctx, "UPDATE manifest SET symbol = ? WHERE symbol = ?", to, from); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO symbols (name) VALUES (?)", to); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM symbols WHERE name = ?", from)
		return err
	})
	if err != nil {
		return fmt.Errorf("rename symbol %s to %s: %w", from, to, err)
	}
	return nil
}

// Mkdir creates an empty symbol; ErrExists if it exists.
func (db *DB) Mkdir(ctx context.Context, symbol string) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if ok, err := symbolExists(ctx, tx, symbol); err != nil {
			return err
		} else if ok {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO symbols (name) VALUES (?)", symbol)
		return err
	})
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", symbol, err)
	}
	return nil
}

// Rmdir removes an empty symbol; ErrNotEmpty if it has entries, ErrNotFound if absent.
func (db *DB) Rmdir(ctx context.Context, symbol string) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if ok, err := symbolExists(ctx, tx, symbol); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		var busy bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM manifest WHERE symbol = ?)", symbol).
			Scan(&busy); err != nil {
			return err
		}
		if busy {
			return ErrNotEmpty
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM symbols WHERE name = ?", symbol)
		return err
	})
	if err != nil {
		return fmt.Errorf("rmdir %s: %w", symbol, err)
	}
	return nil
}

// SetModTime sets the mtime shown for the version id; ErrNotFound if gone.
func (db *DB) SetModTime(ctx context.Context, id int64, mtimeNS int64) error {
	if err := db.updateOne(ctx, "UPDATE manifest SET mtime_ns = ? WHERE id = ?", mtimeNS, id); err != nil {
		return fmt.Errorf("set mtime of id %d: %w", id, err)
	}
	return nil
}

// updateOne runs one UPDATE in its own transaction; ErrNotFound when it
// changed no row.
func (db *DB) updateOne(ctx context.Context, query string, args ...any) error {
	return db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// SetSymbolModTime sets the symbol directory's mtime (utimes of the
// directory, as cp -a and rsync -a do after filling it); the next change of
// its entries moves it again. ErrNotFound if the symbol does not exist.
func (db *DB) SetSymbolModTime(ctx context.Context, symbol string, mtimeNS int64) error {
	if err := db.updateOne(ctx, "UPDATE symbols SET mtime_ns = ? WHERE name = ?", mtimeNS, symbol); err != nil {
		return fmt.Errorf("set mtime of symbol %s: %w", symbol, err)
	}
	return nil
}

func symbolExists(ctx context.Context, q queryer, symbol string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM symbols WHERE name = ?)", symbol).Scan(&ok)
	return ok, err
}

// MaxCommitDelay bounds the time from a blob's publication to its row:
// Commit refuses an Entry whose PublishedAt is older. It is shorter than any
// sensible orphan grace, so GC never claims the blob of a commit that can
// still succeed, and far shorter than ClaimRetention, so a claim is always
// still there when a commit that outlived its blob's claim arrives.
const MaxCommitDelay = 10 * time.Minute

// ClaimRetention is how long a claim outlives the GC run that made it.
const ClaimRetention = 24 * time.Hour

// ClaimBlob records, if no row names path, that GC is about to remove the
// blob, and reports whether it did. From then on a Commit naming path fails
// with ErrBlobClaimed. The check and the claim are one exclusive
// transaction, so no commit can slip between them: this is what makes
// removing an unreferenced blob safe without trusting file locks, which a
// shared or remote store does not give.
func (db *DB) ClaimBlob(ctx context.Context, path string) (bool, error) {
	var claimed bool
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		var ref bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM manifest WHERE path = ?)", path).
			Scan(&ref); err != nil {
			return err
		}
		if ref {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO blob_claims (path, claimed_ts) VALUES (?, ?)",
			path, db.opts.Now().Unix()); err != nil {
			return err
		}
		claimed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("claim blob %s: %w", path, err)
	}
	return claimed, nil
}

// PruneClaims forgets claims made before t. Only a commit whose blob was
// published before the claim could name a claimed blob, and MaxCommitDelay
// stops such a commit long before ClaimRetention has passed.
func (db *DB) PruneClaims(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM blob_claims WHERE claimed_ts < ?", t.Unix())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune blob claims: %w", err)
	}
	return n, nil
}

// SetFullHash stores the SHA-256 of every byte of version id (see
// Entry.FullHash). A version replaced or removed meanwhile is left alone,
// without error.
func (db *DB) SetFullHash(ctx context.Context, id int64, hash string) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE manifest SET full_hash = ? WHERE id = ?", hash, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("set full hash of id %d: %w", id, err)
	}
	return nil
}

// SetCompressible marks whether version id is worth compressing (see
// Entry.Compressible). A version gone meanwhile is left alone.
func (db *DB) SetCompressible(ctx context.Context, id int64, compressible bool) error {
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE manifest SET compressible = ? WHERE id = ?", compressible, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("set compressible of id %d: %w", id, err)
	}
	return nil
}
