package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Reads run on the read-only pool. In WAL mode they see the last committed
// state and never wait for a writer, in this process or another.

const entryCols = `id, symbol, key, path, start_ts, end_ts, rows, file_size_bytes,
	logical_size_bytes, hash, hash_method, created_ts, mtime_ns, last_accessed_ts, access_count, full_hash, compressible`

// pageSize is how many rows a streaming walk reads per query. Each page is its
// own short read transaction, so a walk over millions of rows neither pins an
// old WAL snapshot (which would stop checkpoints) nor grows in memory.
const pageSize = 500

type scanner interface{ Scan(dest ...any) error }

func scanEntry(s scanner) (Entry, error) {
	var e Entry
	err := s.Scan(&e.ID, &e.Symbol, &e.Key, &e.Path, &e.StartTS, &e.EndTS, &e.Rows, &e.FileSize,
		&e.LogicalSize, &e.Hash, &e.HashMethod, &e.CreatedTS, &e.ModTimeNS, &e.LastAccessedTS, &e.AccessCount, &e.FullHash, &e.Compressible)
	return e, err
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// getOne reads one entry; sql.ErrNoRows becomes ErrNotFound.
func getOne(ctx context.Context, q queryer, where string, args ...any) (Entry, error) {
	e, err := scanEntry(q.QueryRowContext(ctx, "SELECT "+entryCols+" FROM manifest WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	return e, err
}

// queryStrings returns the first column of every row of query.
func queryStrings(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func queryEntries(ctx context.Context, q queryer, query string, args ...any) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// read runs a read on the reader pool, retrying the rare SQLITE_BUSY a
// reader can meet (WAL recovery after a crashed writer).
func (db *DB) read(ctx context.Context, op func() error) error {
	return db.retry(ctx, op)
}

// Get returns the current version of (symbol, key) or ErrNotFound.
// Accesses not yet flushed are not included; see PendingAccess.
func (db *DB) Get(ctx context.Context, symbol, key string) (Entry, error) {
	var e Entry
	err := db.read(ctx, func() (err error) {
		e, err = getOne(ctx, db.r, "symbol = ? AND key = ?", symbol, key)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", symbol, key, err)
	}
	return e, nil
}

// GetByID returns the version with this row id or ErrNotFound.
func (db *DB) GetByID(ctx context.Context, id int64) (Entry, error) {
	var e Entry
	err := db.read(ctx, func() (err error) {
		e, err = getOne(ctx, db.r, "id = ?", id)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("get id %d: %w", id, err)
	}
	return e, nil
}

// List returns up to limit entries of symbol with key > after, in key order
// (all of them when limit <= 0). It walks the (symbol, key) index, so a page
// costs the same at the start and at the end of a 100k-entry symbol.
func (db *DB) List(ctx context.Context, symbol, after string, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var out []Entry
	err := db.read(ctx, func() (err error) {
		out, err = queryEntries(ctx, db.r, "SELECT "+entryCols+
			" FROM manifest WHERE symbol = ? AND key > ? ORDER BY key LIMIT ?", symbol, after, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s after %q: %w", symbol, after, err)
	}
	return out, nil
}

// Symbols returns every symbol (with entries or made by Mkdir), sorted.
func (db *DB) Symbols(ctx context.Context) ([]string, error) {
	var out []string
	err := db.read(ctx, func() (err error) {
		out, err = queryStrings(ctx, db.r, "SELECT name FROM symbols ORDER BY name")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	return out, nil
}

// SymbolExists reports whether the symbol has entries or was made by Mkdir.
func (db *DB) SymbolExists(ctx context.Context, symbol string) (bool, error) {
	var ok bool
	err := db.read(ctx, func() error {
		return db.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM symbols WHERE name = ?)", symbol).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("symbol %s: %w", symbol, err)
	}
	return ok, nil
}

// SymbolModTime returns the symbol directory's mtime in Unix nanoseconds:
// when an entry was last added, removed or renamed into or out of it, or the
// time set by SetSymbolModTime since. ErrNotFound if the symbol does not exist.
func (db *DB) SymbolModTime(ctx context.Context, symbol string) (int64, error) {
	var ns int64
	err := db.read(ctx, func() error {
		return db.r.QueryRowContext(ctx, "SELECT mtime_ns FROM symbols WHERE name = ?", symbol).Scan(&ns)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("symbol %s: %w", symbol, err)
	}
	return ns, nil
}

// References reports whether any row names the blob path.
func (db *DB) References(ctx context.Context, path string) (bool, error) {
	var ok bool
	err := db.read(ctx, func() error {
		return db.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM manifest WHERE path = ?)", path).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("references %s: %w", path, err)
	}
	return ok, nil
}

// Each calls fn for every entry in id order, streaming (memory stays flat).
// fn may call write methods, DeleteVersion included; rows added during the
// walk with a higher id are visited too.
func (db *DB) Each(ctx context.Context, fn func(Entry) error) error {
	var last int64
	for {
		var page []Entry
		err := db.read(ctx, func() (err error) {
			page, err = queryEntries(ctx, db.r, "SELECT "+entryCols+
				" FROM manifest WHERE id > ? ORDER BY id LIMIT ?", last, pageSize)
			return err
		})
		if err != nil {
			return fmt.Errorf("walk entries after id %d: %w", last, err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = page[len(page)-1].ID
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// EachAccessedBefore calls fn for entries whose last access is before t,
// oldest first, streaming. Pending accesses are not seen: flush first.
func (db *DB) EachAccessedBefore(ctx context.Context, t time.Time, fn func(Entry) error) error {
	return db.eachByAccess(ctx, t.Unix(), func(e Entry) (bool, error) { return true, fn(e) })
}

// EachByAccess calls fn for all entries, least recently accessed first, until
// fn returns false or an error. Pending accesses are not seen: flush first.
// The walk is by (last_accessed_ts, id) cursor; an entry whose access time
// moves past the cursor during the walk is visited again.
func (db *DB) EachByAccess(ctx context.Context, fn func(Entry) (bool, error)) error {
	return db.eachByAccess(ctx, math.MaxInt64, fn)
}

func (db *DB) eachByAccess(ctx context.Context, before int64, fn func(Entry) (bool, error)) error {
	lastTS, lastID := int64(math.MinInt64), int64(0)
	for {
		var page []Entry
		err := db.read(ctx, func() (err error) {
			// The row-value comparison is a range on index
			// manifest_last_accessed (whose entries end in the rowid).
			page, err = queryEntries(ctx, db.r, "SELECT "+entryCols+
				` FROM manifest WHERE last_accessed_ts < ? AND (last_accessed_ts, id) > (?, ?)
				ORDER BY last_accessed_ts, id LIMIT ?`, before, lastTS, lastID, pageSize)
			return err
		})
		if err != nil {
			return fmt.Errorf("walk entries by access: %w", err)
		}
		for _, e := range page {
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		lastTS, lastID = page[len(page)-1].LastAccessedTS, page[len(page)-1].ID
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Stats is an aggregate over the manifest.
type Stats struct {
	Entries      int64
	Symbols      int64
	LogicalBytes int64
	StoredBytes  int64
	// Oldest/Newest creation and oldest access (Unix seconds, 0 when empty).
	OldestCreatedTS  int64
	NewestCreatedTS  int64
	OldestAccessedTS int64
	ByMethod         map[string]int64
}

// Stats aggregates the manifest, from one consistent snapshot.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := db.read(ctx, func() error {
		st = Stats{ByMethod: make(map[string]int64)}
		tx, err := db.r.BeginTx(ctx, nil) // deferred: a read snapshot, no lock
		if err != nil {
			return err
		}
		defer tx.Rollback()
		err = tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(sum(logical_size_bytes), 0),
			COALESCE(sum(file_size_bytes), 0), COALESCE(min(created_ts), 0),
			COALESCE(max(created_ts), 0) FROM manifest`).
			Scan(&st.Entries, &st.LogicalBytes, &st.StoredBytes, &st.OldestCreatedTS, &st.NewestCreatedTS)
		if err != nil {
			return err
		}
		// Separate so that min() walks the access index instead of the table.
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(min(last_accessed_ts), 0) FROM manifest").
			Scan(&st.OldestAccessedTS); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM symbols").Scan(&st.Symbols); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT hash_method, count(*) FROM manifest GROUP BY hash_method")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m string
			var n int64
			if err := rows.Scan(&m, &n); err != nil {
				return err
			}
			st.ByMethod[m] = n
		}
		return rows.Err()
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// Change is one row change recorded by the triggers. Key is "" for a change
// of the symbol itself (mkdir, rmdir, first entry).
type Change struct {
	Seq    int64
	Symbol string
	Key    string
}

// Changes returns the changes after since (oldest first) and the new cursor.
// It is cheap (a primary-key range), so a mount polls it to learn what other
// processes changed. When changes after since are no longer all there
// (trimmed by Maintain, or since is not a cursor of this file) it returns an
// error wrapping ErrChangesTrimmed together with the current cursor: the
// caller must drop everything it cached and continue from that cursor.
func (db *DB) Changes(ctx context.Context, since int64) ([]Change, int64, error) {
	var (
		out    []Change
		cursor int64
		gap    bool
	)
	err := db.read(ctx, func() error {
		out, cursor, gap = out[:0], since, false
		tx, err := db.r.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var first sql.NullInt64
		last, err := lastChange(ctx, tx)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT min(seq) FROM changes").Scan(&first); err != nil {
			return err
		}
		// Sequence numbers have no holes (AUTOINCREMENT rolls back with its
		// transaction), so a hole between since and the oldest kept row
		// means rows were trimmed.
		if since > last || (first.Valid && since < first.Int64-1) || (!first.Valid && since < last) {
			gap, cursor = true, last
			return nil
		}
		rows, err := tx.QueryContext(ctx, "SELECT seq, symbol, key FROM changes WHERE seq > ? ORDER BY seq", since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c Change
			if err := rows.Scan(&c.Seq, &c.Symbol, &c.Key); err != nil {
				return err
			}
			out = append(out, c)
			cursor = c.Seq
		}
		return rows.Err()
	})
	if err != nil {
		return nil, since, fmt.Errorf("changes since %d: %w", since, err)
	}
	if gap {
		return nil, cursor, fmt.Errorf("changes since %d: %w (now at %d)", since, ErrChangesTrimmed, cursor)
	}
	return out, cursor, nil
}

// LastChange is the current cursor, for a mount starting to watch.
func (db *DB) LastChange(ctx context.Context) (int64, error) {
	var last int64
	err := db.read(ctx, func() (err error) {
		last, err = lastChange(ctx, db.r)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("last change: %w", err)
	}
	return last, nil
}

// lastChange reads the highest sequence number ever handed out, which
// sqlite_sequence keeps even when the rows are trimmed.
func lastChange(ctx context.Context, q queryer) (int64, error) {
	var last int64
	err := q.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'").Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return last, err
}

// EachUnhashed calls fn for every entry hashed by its footer whose full hash
// is not yet stored (see SetFullHash), in id order, streaming.
func (db *DB) EachUnhashed(ctx context.Context, fn func(Entry) error) error {
	var last int64
	for {
		var page []Entry
		err := db.read(ctx, func() (err error) {
			page, err = queryEntries(ctx, db.r, "SELECT "+entryCols+
				" FROM manifest INDEXED BY manifest_unhashed WHERE hash_method = 'footer' AND full_hash = '' AND id > ? ORDER BY id LIMIT ?",
				last, pageSize)
			return err
		})
		if err != nil {
			return fmt.Errorf("unhashed entries: %w", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
			last = e.ID
		}
		if len(page) < pageSize {
			return nil
		}
	}
}

// EachCompressible calls fn, least recently accessed first, for every raw
// entry marked compressible that nobody opened since before; fn returns
// false to stop. One page at most: callers come back for more.
func (db *DB) EachCompressible(ctx context.Context, before time.Time, fn func(Entry) (bool, error)) error {
	var page []Entry
	err := db.read(ctx, func() (err error) {
		page, err = queryEntries(ctx, db.r, "SELECT "+entryCols+
			" FROM manifest INDEXED BY manifest_compressible WHERE compressible = 1 AND last_accessed_ts < ?"+
			" ORDER BY last_accessed_ts, id LIMIT ?", before.Unix(), pageSize)
		return err
	})
	if err != nil {
		return fmt.Errorf("compressible entries: %w", err)
	}
	for _, e := range page {
		if more, err := fn(e); err != nil || !more {
			return err
		}
	}
	return nil
}
