package manifest

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 123_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openT opens a fresh manifest in a temporary directory and closes it at
// the end of the test.
func openT(t testing.TB, opts Options) *DB {
	t.Helper()
	return openAtT(t, filepath.Join(t.TempDir(), "manifest.db"), opts)
}

func openAtT(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	if opts.AccessFlushInterval == 0 {
		opts.AccessFlushInterval = -1 // tests flush explicitly
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	db, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func entry(sym, key string) Entry {
	return Entry{
		Symbol: sym, Key: key,
		Path:    fmt.Sprintf("blobs/%s/%s.parquet", sym, key),
		StartTS: 1, EndTS: 2, Rows: 10,
		FileSize: 100, LogicalSize: 120,
		Hash: "ab", HashMethod: "full",
	}
}

func commitT(t testing.TB, db *DB, e Entry) (Entry, *Entry) {
	t.Helper()
	c, r, err := db.Commit(context.Background(), e)
	if err != nil {
		t.Fatalf("Commit %s/%s: %v", e.Symbol, e.Key, err)
	}
	return c, r
}

// bulkInsert adds n rows to symbol in one statement (keys k000000…), with
// last_accessed_ts given by the SQL expression access over the row number i.
// It stands in for n Commits where the test is about reading, not committing.
func bulkInsert(t testing.TB, db *DB, symbol string, n int, access string) {
	t.Helper()
	ctx := context.Background()
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1)
			INSERT INTO manifest (key, symbol, path, file_size_bytes, logical_size_bytes, hash, hash_method,
				created_ts, mtime_ns, last_accessed_ts)
			SELECT printf('k%06d', i), ?2, printf('blobs/%s/k%06d', ?2, i), 100, 120, 'ab', 'full',
				1, 1000000000, `+access+` FROM c`, n, symbol)
		return err
	})
	if err != nil {
		t.Fatalf("bulk insert: %v", err)
	}
}

func countRows(t testing.TB, db *DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.r.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// downgradeToV1 turns db's file back into schema version 1: what version 2
// added is dropped, so the next Open migrates it again.
func downgradeToV1(t testing.TB, db *DB) {
	t.Helper()
	ctx := context.Background()
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		for _, stmt := range []string{
			"DROP TRIGGER symbols_mtime_insert", "DROP TRIGGER manifest_mtime_insert",
			"DROP TRIGGER manifest_mtime_delete", "DROP TRIGGER manifest_mtime_rename",
			"ALTER TABLE symbols DROP COLUMN mtime_ns",
			"DROP TABLE blob_claims", "DROP INDEX manifest_unhashed", "DROP INDEX manifest_compressible",
			"ALTER TABLE manifest DROP COLUMN full_hash", "ALTER TABLE manifest DROP COLUMN compressible",
			"PRAGMA user_version = 1",
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("downgrade to version 1: %v", err)
	}
}
