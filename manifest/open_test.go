package manifest

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	var v, mode string
	db.r.QueryRow("PRAGMA user_version").Scan(&v)
	db.r.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if v != fmt.Sprint(schemaVersion) || mode != "wal" {
		t.Fatalf("user_version %s, journal_mode %s; want %d, wal", v, mode, schemaVersion)
	}
	var sync int
	db.w.QueryRow("PRAGMA synchronous").Scan(&sync)
	if sync != 2 {
		t.Fatalf("writer synchronous = %d, want 2 (FULL)", sync)
	}
}

func TestOpenPathWithURISpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c#d%20e")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "manifest.db")
	db := openAtT(t, path, Options{})
	commitT(t, db, entry("A", "k"))
	if _, err := db.Get(ctx, "A", "k"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database not at %s: %v", path, err)
	}
}

func TestSyncNormalOption(t *testing.T) {
	db := openT(t, Options{SyncNormal: true})
	var sync int
	db.w.QueryRow("PRAGMA synchronous").Scan(&sync)
	if sync != 1 {
		t.Fatalf("writer synchronous = %d, want 1 (NORMAL)", sync)
	}
}

func TestOpenRefusesGarbageAndLeavesItAlone(t *testing.T) {
	tests := map[string][]byte{
		"text":         bytes.Repeat([]byte("this is not a database\n"), 300),
		"short":        []byte("PAR1"),
		"broken page1": append([]byte(sqliteMagic), bytes.Repeat([]byte{0xff}, 4096)...),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "manifest.db")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			db, err := Open(ctx, path, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open accepted garbage")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is not a valid manifest database") {
				t.Fatalf("error does not name the file and the problem: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, content) {
				t.Fatal("Open modified the file")
			}
			if names, _ := os.ReadDir(dir); len(names) != 1 {
				t.Fatalf("Open left files beside it: %v", names)
			}
		})
	}
}

func TestOpenRefusesForeignSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not a valid manifest database") ||
		!strings.Contains(err.Error(), "accounts") {
		t.Fatalf("Open of another application's database: %v", err)
	}
	raw, _ = sql.Open("sqlite3", path)
	defer raw.Close()
	var n int
	raw.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n)
	if n != 1 {
		t.Fatalf("foreign database now has %d schema objects", n)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.w.Exec("PRAGMA user_version = 99")
	db.Close()
	if _, err := Open(ctx, path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// v0Schema is the original design's layout.
const v0Schema = `CREATE TABLE manifest (
	key TEXT PRIMARY KEY,
	symbol TEXT NOT NULL,
	path TEXT NOT NULL,
	start_ts INTEGER,
	end_ts INTEGER,
	rows INTEGER,
	file_size_bytes INTEGER,
	hash TEXT,
	hash_method TEXT,
	created_ts INTEGER,
	last_accessed_ts INTEGER,
	access_count INTEGER DEFAULT 0
);
CREATE INDEX idx_manifest_last_accessed ON manifest (last_accessed_ts);
CREATE INDEX idx_manifest_symbol ON manifest (symbol);`

func TestMigrateFromVersion0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(v0Schema); err != nil {
		t.Fatal(err)
	}
	type v0row struct {
		key, symbol, path, hash, method string
		start, end, rows, size          int64
		created, accessed, count        int64
	}
	old := []v0row{
		{"k1", "AAPL", "blobs/a1", "h1", "full", 10, 20, 100, 1000, 1_600_000_000, 1_600_000_100, 3},
		{"k2", "AAPL", "blobs/a2", "h2", "footer", 11, 21, 101, 2000, 1_600_000_001, 1_600_000_200, 0},
		{"k3", "MSFT", "blobs/m3", "h3", "full", 12, 22, 102, 3000, 1_599_999_999, 1_600_000_300, 9},
	}
	for _, r := range old {
		_, err := raw.Exec(`INSERT INTO manifest VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.key, r.symbol, r.path, r.start, r.end, r.rows, r.size, r.hash, r.method, r.created, r.accessed, r.count)
		if err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db := openAtT(t, path, Options{})
	var ids []int64
	for _, r := range old {
		e, err := db.Get(ctx, r.symbol, r.key)
		if err != nil {
			t.Fatalf("row %s/%s lost: %v", r.symbol, r.key, err)
		}
		want := Entry{ID: e.ID, Symbol: r.symbol, Key: r.key, Path: r.path, StartTS: r.start, EndTS: r.end,
			Rows: r.rows, FileSize: r.size, LogicalSize: r.size, Hash: r.hash, HashMethod: r.method,
			CreatedTS: r.created, ModTimeNS: r.created * 1e9, LastAccessedTS: r.accessed, AccessCount: r.count}
		if e != want {
			t.Fatalf("migrated\n %+v\nwant\n %+v", e, want)
		}
		ids = append(ids, e.ID)
	}
	// ids follow creation order: k3 was created first.
	if !(ids[2] < ids[0] && ids[0] < ids[1]) {
		t.Fatalf("ids %v not in creation order", ids)
	}
	if syms, _ := db.Symbols(ctx); strings.Join(syms, ",") != "AAPL,MSFT" {
		t.Fatalf("symbols after migration: %v", syms)
	}
	var v int
	db.r.QueryRow("PRAGMA user_version").Scan(&v)
	if v != schemaVersion {
		t.Fatalf("user_version %d", v)
	}
	// The migrated file works like a new one: commits, changes, symbols.
	start, _ := db.LastChange(ctx)
	c, replaced := commitT(t, db, entry("AAPL", "k1"))
	if replaced == nil || replaced.Path != "blobs/a1" || c.ID <= ids[1] {
		t.Fatalf("replace after migration: %+v replaced %+v", c, replaced)
	}
	if ch, _, err := db.Changes(ctx, start); err != nil || len(ch) != 2 {
		t.Fatalf("changes after migration: %v, %v", ch, err)
	}
	if err := db.Rmdir(ctx, "MSFT"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Rmdir of migrated symbol: %v", err)
	}
	db.Close()

	// Opening again does not migrate again.
	db2 := openAtT(t, path, Options{})
	if n := countRows(t, db2, "SELECT count(*) FROM manifest"); n != 3 {
		t.Fatalf("%d rows after reopen, want 3", n)
	}
}

func TestHealthy(t *testing.T) {
	t.Run("removed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "manifest.db")
		db := openAtT(t, path, Options{})
		if err := db.Healthy(ctx); err != nil {
			t.Fatalf("fresh manifest unhealthy: %v", err)
		}
		os.Remove(path)
		if err := db.Healthy(ctx); err == nil {
			t.Fatal("Healthy after the file was removed")
		}
		// Reads go on working on the unlinked file, which is exactly why
		// Healthy looks at the path.
		if _, err := db.Symbols(ctx); err != nil {
			t.Logf("read after removal: %v", err)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "manifest.db")
		db := openAtT(t, path, Options{})
		other := openAtT(t, filepath.Join(dir, "other.db"), Options{})
		other.Close()
		if err := os.Rename(filepath.Join(dir, "other.db"), path); err != nil {
			t.Fatal(err)
		}
		err := db.Healthy(ctx)
		if err == nil || !strings.Contains(err.Error(), "replaced") {
			t.Fatalf("Healthy after replacement: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "manifest.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if err := db.Healthy(ctx); err == nil {
			t.Fatal("Healthy after Close")
		}
	})
}

func TestAccessCoalescedIntoOneUpdate(t *testing.T) {
	clk := newClock()
	db := openT(t, Options{Now: clk.Now})
	v, _ := commitT(t, db, entry("A", "k"))
	other, _ := commitT(t, db, entry("A", "other"))
	base := clk.Now()
	for i := range 1000 {
		db.RecordAccess(v.ID, base.Add(time.Duration(i)*time.Second))
	}
	db.RecordAccess(other.ID, base.Add(time.Hour))
	count, last := db.PendingAccess(v.ID)
	if count != 1000 || !last.Equal(base.Add(999*time.Second)) {
		t.Fatalf("PendingAccess = %d, %v", count, last)
	}
	if got, _ := db.GetByID(ctx, v.ID); got.AccessCount != 0 {
		t.Fatalf("written before flush: %+v", got)
	}
	if err := db.FlushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	c := db.Counters()
	if c.AccessFlushes != 1 || c.AccessUpdates != 2 {
		t.Fatalf("1001 accesses of 2 versions took %d flushes, %d row updates; want 1, 2", c.AccessFlushes, c.AccessUpdates)
	}
	got, _ := db.GetByID(ctx, v.ID)
	if got.AccessCount != 1000 || got.LastAccessedTS != base.Add(999*time.Second).Unix() {
		t.Fatalf("after flush: count %d last %d", got.AccessCount, got.LastAccessedTS)
	}
	if n, _ := db.PendingAccess(v.ID); n != 0 {
		t.Fatalf("%d still pending after flush", n)
	}
	// An older access never moves last_accessed_ts back.
	db.RecordAccess(v.ID, base)
	db.FlushAccess(ctx)
	if got2, _ := db.GetByID(ctx, v.ID); got2.LastAccessedTS != got.LastAccessedTS || got2.AccessCount != 1001 {
		t.Fatalf("older access: %+v", got2)
	}
	// Accesses of a version deleted meanwhile are dropped, not an error.
	db.RecordAccess(other.ID, base)
	db.DeleteVersion(ctx, other.ID)
	if err := db.FlushAccess(ctx); err != nil {
		t.Fatalf("flush with a deleted version: %v", err)
	}
}

func TestAccessFlushFailureKeepsPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{BusyTimeout: 20 * time.Millisecond, MaxRetries: 1})
	v, _ := commitT(t, db, entry("A", "k"))
	for range 5 {
		db.RecordAccess(v.ID, time.Unix(2_000_000_000, 0))
	}

	// Another connection holds the write lock: the flush must fail...
	lock, err := sql.Open("sqlite3", path+"?_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	tx, err := lock.Begin()
	if err != nil {
		t.Fatal(err)
	}
	err = db.FlushAccess(ctx)
	if !errors.Is(err, ErrBusy) {
		tx.Rollback()
		t.Fatalf("flush under a foreign lock: %v, want ErrBusy", err)
	}
	// ... and keep the accesses, merged with the ones recorded since.
	db.RecordAccess(v.ID, time.Unix(2_000_000_100, 0))
	if n, last := db.PendingAccess(v.ID); n != 6 || last.Unix() != 2_000_000_100 {
		tx.Rollback()
		t.Fatalf("after failed flush PendingAccess = %d, %v; want 6", n, last)
	}
	tx.Rollback()

	if err := db.FlushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := db.GetByID(ctx, v.ID)
	if got.AccessCount != 6 || got.LastAccessedTS != 2_000_000_100 {
		t.Fatalf("after retry: count %d last %d; want 6, 2000000100", got.AccessCount, got.LastAccessedTS)
	}
}

func TestBackgroundFlushAndCloseFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db, err := Open(ctx, path, Options{AccessFlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := commitT(t, db, entry("A", "k"))
	db.RecordAccess(v.ID, time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := db.GetByID(ctx, v.ID); got.AccessCount == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background flusher did not write the access")
		}
		time.Sleep(10 * time.Millisecond)
	}
	db.Close()

	db2, err := Open(ctx, path, Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	db2.RecordAccess(v.ID, time.Now())
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	db3 := openAtT(t, path, Options{})
	if got, _ := db3.GetByID(ctx, v.ID); got.AccessCount != 2 {
		t.Fatalf("Close did not flush: count %d", got.AccessCount)
	}
}
