package manifest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStartCheckCostAt1M measures the start-up integrity check on a manifest
// of a million entries with realistic path and hash lengths. It is opt-in
// (FEATUREFS_CHECK_1M=1): building the file takes a minute.
func TestStartCheckCostAt1M(t *testing.T) {
	if os.Getenv("FEATUREFS_CHECK_1M") == "" {
		t.Skip("set FEATUREFS_CHECK_1M=1 to build a 1M-entry manifest and time the check")
	}
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{AccessFlushInterval: -1})
	ctx := context.Background()
	const n = 1_000_000
	for sym := 0; sym < 10; sym++ {
		err := db.withTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1)
				INSERT INTO manifest (key, symbol, path, start_ts, end_ts, rows, file_size_bytes, logical_size_bytes, hash, hash_method,
					created_ts, mtime_ns, last_accessed_ts)
				SELECT printf('feature_%08d_v2', i), ?2, 'blobs/' || lower(hex(randomblob(32))) || '.parquet.zst',
					1700000000, 1700086400, 100000, 1048576, 2097152, lower(hex(randomblob(32))), 'full',
					1700000000 + i, 1700000000000000000 + i, 1700000000 + abs(random() % 1000000) FROM c`, n/10, "SYM"+string(rune('A'+sym)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	t.Logf("manifest of %d entries: %d MB", n, fi.Size()>>20)

	// Warm, as after the previous daemon stopped.
	if _, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	r, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, q := range []string{
		"PRAGMA quick_check",
		"PRAGMA quick_check",
		"PRAGMA integrity_check",
	} {
		t0 := time.Now()
		var res string
		if err := r.QueryRow(q).Scan(&res); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %q in %v", q, res, time.Since(t0))
	}
	t0 := time.Now()
	db2, err := Open(ctx, path, Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Open (with its check): %v", time.Since(t0))
	db2.Close()
}
