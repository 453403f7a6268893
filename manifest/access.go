package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Opens are frequent (a trainer may open thousands of files a second) and
// only feed retention and the size cap, so they are coalesced in memory and
// written in one transaction per flush instead of one per open. A crash loses
// at most one flush interval of access times, never a row.

type pendingAccess struct {
	count  int64
	lastNS int64 // latest access, Unix nanoseconds
}

type accessRecorder struct {
	// mu guards pending and is held only for map operations, never across
	// database calls, so RecordAccess never waits for SQLite.
	mu      sync.Mutex
	pending map[int64]pendingAccess
	// flushMu serialises flushes: FlushAccess must not return while a
	// background flush it cannot see is still writing.
	flushMu sync.Mutex
}

// RecordAccess notes an open of version id at time t; it is written with the
// next flush. It never blocks on the database.
func (db *DB) RecordAccess(id int64, t time.Time) {
	ns := t.UnixNano()
	db.acc.mu.Lock()
	p := db.acc.pending[id]
	p.count++
	p.lastNS = max(p.lastNS, ns)
	db.acc.pending[id] = p
	db.acc.mu.Unlock()
}

// PendingAccess returns the opens of id not yet written and the latest one
// (the zero time when there are none). Show last_accessed_ts as the later of
// the row's and this, access_count as the sum.
func (db *DB) PendingAccess(id int64) (count int64, last time.Time) {
	db.acc.mu.Lock()
	p, ok := db.acc.pending[id]
	db.acc.mu.Unlock()
	if !ok {
		return 0, time.Time{}
	}
	return p.count, time.Unix(0, p.lastNS)
}

// FlushAccess writes every pending access now. GC calls it before deciding
// anything, so an entry opened before the run started is never expired. On
// failure nothing is lost: the accesses stay pending for the next flush.
func (db *DB) FlushAccess(ctx context.Context) error {
	db.acc.flushMu.Lock()
	defer db.acc.flushMu.Unlock()

	db.acc.mu.Lock()
	batch := db.acc.pending
	if len(batch) == 0 {
		db.acc.mu.Unlock()
		return nil
	}
	db.acc.pending = make(map[int64]pendingAccess, len(batch))
	db.acc.mu.Unlock()

	var updated int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		updated = 0
		stmt, err := tx.PrepareContext(ctx, `UPDATE manifest
			SET last_accessed_ts = max(last_accessed_ts, ?), access_count = access_count + ?
			WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id, p := range batch {
			// A version deleted meanwhile matches no row; its opens go
			// with it.
			res, err := stmt.ExecContext(ctx, time.Unix(0, p.lastNS).Unix(), p.count, id)
			if err != nil {
				return fmt.Errorf("id %d: %w", id, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			updated += n
		}
		return nil
	})
	if err != nil {
		db.requeue(batch)
		return fmt.Errorf("flush %d accesses: %w", len(batch), err)
	}
	db.accessFlush.Add(1)
	db.accessRows.Add(updated)
	return nil
}

// requeue merges a batch that failed to flush back into the pending map,
// which may have collected new accesses of the same ids meanwhile.
func (db *DB) requeue(batch map[int64]pendingAccess) {
	db.acc.mu.Lock()
	defer db.acc.mu.Unlock()
	for id, p := range batch {
		q := db.acc.pending[id]
		q.count += p.count
		q.lastNS = max(q.lastNS, p.lastNS)
		db.acc.pending[id] = q
	}
}

// flusher writes pending accesses every interval until Close.
func (db *DB) flusher(interval time.Duration) {
	defer close(db.flusherDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	// readOnly is set while flushes fail because the file system refuses
	// writes: that lasts until an operator repairs it, so it is logged once
	// when it starts and once when it ends, not at every tick.
	readOnly := false
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*interval+30*time.Second)
			err := db.FlushAccess(ctx)
			cancel()
			switch {
			case errors.Is(err, ErrReadOnly):
				if !readOnly {
					db.log.Warn("manifest is read-only: access times kept in memory until it is writable again", "err", err)
				}
				readOnly = true
			case err != nil:
				db.log.Warn("access times not flushed; kept for the next flush", "err", err)
			case readOnly:
				db.log.Info("manifest writable again: access times flushed")
				readOnly = false
			}
		case <-db.stopFlusher:
			return
		}
	}
}
