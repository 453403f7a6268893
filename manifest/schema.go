package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// schemaVersion is stored in PRAGMA user_version. Version 0 is the original
// layout: table manifest without id, logical_size_bytes and mtime_ns, and no
// symbols or changes tables. Version 2 adds manifest.full_hash,
// manifest.compressible, table blob_claims and symbols.mtime_ns (see
// docs/design.md).
const schemaVersion = 2

// errNotManifest marks a SQLite file that holds something else.
var errNotManifest = errors.New("not a manifest")

// manifestTable is the current layout of table manifest. id is the inode
// number of a version, so AUTOINCREMENT: SQLite never hands out an id again,
// even after the row with the highest id is deleted.
const manifestTable = `CREATE TABLE manifest (
	id                 INTEGER PRIMARY KEY AUTOINCREMENT,
	key                TEXT    NOT NULL CHECK (key <> ''),
	symbol             TEXT    NOT NULL CHECK (symbol <> ''),
	path               TEXT    NOT NULL,
	start_ts           INTEGER NOT NULL DEFAULT 0,
	end_ts             INTEGER NOT NULL DEFAULT 0,
	rows               INTEGER NOT NULL DEFAULT 0,
	file_size_bytes    INTEGER NOT NULL DEFAULT 0,
	logical_size_bytes INTEGER NOT NULL DEFAULT 0,
	hash               TEXT    NOT NULL DEFAULT '',
	hash_method        TEXT    NOT NULL DEFAULT '',
	created_ts         INTEGER NOT NULL,
	mtime_ns           INTEGER NOT NULL,
	last_accessed_ts   INTEGER NOT NULL,
	access_count       INTEGER NOT NULL DEFAULT 0,
	full_hash          TEXT    NOT NULL DEFAULT '',
	compressible       INTEGER NOT NULL DEFAULT 0,
	UNIQUE (symbol, key)
)`

// blobClaimsTable records the blobs GC has decided to remove (ClaimBlob).
// A commit naming a claimed blob fails, so a commit that published its blob
// long ago and reaches its row only now can never insert a row whose blob
// GC is deleting or has deleted.
const blobClaimsTable = `CREATE TABLE IF NOT EXISTS blob_claims (
	path       TEXT PRIMARY KEY NOT NULL,
	claimed_ts INTEGER NOT NULL
) WITHOUT ROWID`

// unhashedIndex finds the entries whose full hash is still to be computed
// (see DB.EachUnhashed); it holds only those, so it costs nothing once they
// are hashed.
const unhashedIndex = `CREATE INDEX IF NOT EXISTS manifest_unhashed ON manifest (id)
	WHERE hash_method = 'footer' AND full_hash = ''`

// compressibleIndex orders the raw entries that are worth compressing by
// last access (see DB.EachCompressible); a compressed entry leaves it.
const compressibleIndex = `CREATE INDEX IF NOT EXISTS manifest_compressible ON manifest (last_accessed_ts)
	WHERE compressible = 1`

// schemaRest is everything but table manifest. It is created after the rows
// of a migration are copied, so the copy neither logs one change per row nor
// pays for index maintenance row by row.
var schemaRest = []string{
	// Retention and size-cap walks go oldest access first; the index carries
	// the rowid, so ORDER BY last_accessed_ts, id needs no sort.
	`CREATE INDEX manifest_last_accessed ON manifest (last_accessed_ts)`,
	// GC asks for every blob whether a row still names it.
	`CREATE INDEX manifest_path ON manifest (path)`,
	unhashedIndex,
	compressibleIndex,

	symbolsTable,
	blobClaimsTable,
	`CREATE TABLE IF NOT EXISTS changes (
		seq    INTEGER PRIMARY KEY AUTOINCREMENT,
		symbol TEXT NOT NULL,
		key    TEXT NOT NULL
	)`,

	// Every change a mount must show is logged for other processes. Updates
	// of last_accessed_ts and access_count, the frequent ones, are not.
	`CREATE TRIGGER manifest_changes_insert AFTER INSERT ON manifest BEGIN
		INSERT INTO changes (symbol, key) VALUES (NEW.symbol, NEW.key);
	END`,
	`CREATE TRIGGER manifest_changes_delete AFTER DELETE ON manifest BEGIN
		INSERT INTO changes (symbol, key) VALUES (OLD.symbol, OLD.key);
	END`,
	`CREATE TRIGGER manifest_changes_update AFTER UPDATE OF id, symbol, key, path, mtime_ns ON manifest BEGIN
		INSERT INTO changes (symbol, key) VALUES (OLD.symbol, OLD.key);
		INSERT INTO changes (symbol, key) SELECT NEW.symbol, NEW.key
			WHERE NEW.symbol IS NOT OLD.symbol OR NEW.key IS NOT OLD.key;
	END`,

	// A symbol directory exists while it has a row in symbols: a row in
	// manifest brings its symbol into being, only Rmdir takes it away.
	// (Created after the triggers above: SQLite fires the most recent first,
	// so the log shows the symbol before its first entry.)
	`CREATE TRIGGER manifest_symbol_insert AFTER INSERT ON manifest BEGIN
		INSERT OR IGNORE INTO symbols (name) VALUES (NEW.symbol);
	END`,
	`CREATE TRIGGER manifest_symbol_update AFTER UPDATE OF symbol ON manifest BEGIN
		INSERT OR IGNORE INTO symbols (name) VALUES (NEW.symbol);
	END`,
	`CREATE TRIGGER symbols_changes_insert AFTER INSERT ON symbols BEGIN
		INSERT INTO changes (symbol, key) VALUES (NEW.name, '');
	END`,
	`CREATE TRIGGER symbols_changes_delete AFTER DELETE ON symbols BEGIN
		INSERT INTO changes (symbol, key) VALUES (OLD.name, '');
	END`,
}

// symbolsTable lists the symbol directories. mtime_ns is the directory's
// mtime, kept here rather than by each daemon so that every daemon on the
// cache root shows the same one and it survives a remount; 0 until the
// insert trigger sets it.
const symbolsTable = `CREATE TABLE IF NOT EXISTS symbols (
	name     TEXT PRIMARY KEY NOT NULL,
	mtime_ns INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID`

// nowNS is SQLite's clock in nanoseconds (millisecond resolution). The
// triggers below take the time from SQLite because a delete has no statement
// value to take it from, and GC deletes rows without this package's clock.
const nowNS = `CAST(unixepoch('subsec') * 1000000000 AS INTEGER)`

// symbolMTimeTriggers keep symbols.mtime_ns: a directory's mtime moves when
// an entry is added, removed or renamed into or out of it (a replace is a
// delete and an insert), whoever changes the row. It moves to now but always
// forward by at least 1 ns, so two changes within SQLite's millisecond still
// order for make and find -newer.
var symbolMTimeTriggers = []string{
	`CREATE TRIGGER symbols_mtime_insert AFTER INSERT ON symbols WHEN NEW.mtime_ns = 0 BEGIN
		UPDATE symbols SET mtime_ns = ` + nowNS + ` WHERE name = NEW.name;
	END`,
	`CREATE TRIGGER manifest_mtime_insert AFTER INSERT ON manifest BEGIN
		UPDATE symbols SET mtime_ns = max(mtime_ns + 1, ` + nowNS + `) WHERE name = NEW.symbol;
	END`,
	`CREATE TRIGGER manifest_mtime_delete AFTER DELETE ON manifest BEGIN
		UPDATE symbols SET mtime_ns = max(mtime_ns + 1, ` + nowNS + `) WHERE name = OLD.symbol;
	END`,
	`CREATE TRIGGER manifest_mtime_rename AFTER UPDATE OF symbol, key ON manifest
		WHEN NEW.symbol IS NOT OLD.symbol OR NEW.key IS NOT OLD.key BEGIN
		UPDATE symbols SET mtime_ns = max(mtime_ns + 1, ` + nowNS + `) WHERE name IN (OLD.symbol, NEW.symbol);
	END`,
}

// migrate brings the file to schemaVersion. The check and every step run in
// one exclusive transaction, so when several processes open an old file at
// once exactly one migrates and the others see the result; a crash midway
// leaves the old layout intact.
func (db *DB) migrate(ctx context.Context) error {
	// Fast path without the write lock: the usual Open finds the file current.
	var v int
	if err := db.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v == schemaVersion {
		return nil
	}
	return db.withTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		switch {
		case v == schemaVersion:
			return nil // another process migrated meanwhile
		case v > schemaVersion:
			return fmt.Errorf("schema version %d is newer than this build understands (%d)", v, schemaVersion)
		}
		tables, err := userTables(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case len(tables) == 0:
			if err := createSchema(ctx, tx); err != nil {
				return err
			}
		case v == 1:
			if err := migrateV1(ctx, tx); err != nil {
				return fmt.Errorf("migrate from version 1: %w", err)
			}
			db.log.Info("manifest migrated", "from", 1, "to", schemaVersion)
		case slices.Contains(tables, "manifest"):
			if err := db.migrateV0(ctx, tx); err != nil {
				return fmt.Errorf("migrate from version 0: %w", err)
			}
		default:
			return fmt.Errorf("%w: it holds tables %s and no table manifest",
				errNotManifest, strings.Join(tables, ", "))
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
		return nil
	})
}

func createSchema(ctx context.Context, tx *sql.Tx) error {
	for _, stmt := range slices.Concat([]string{manifestTable}, schemaRest, symbolMTimeTriggers) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	return nil
}

// migrateV1 adds what version 2 brought: the full content hash of entries
// hashed by their footer (empty until computed, see DB.SetFullHash) and the
// table of blobs GC claimed, and the symbol directories' mtimes, which
// start at the newest commit time of each symbol's entries (now for an
// empty one: its history is not known).
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{
		`ALTER TABLE manifest ADD COLUMN full_hash TEXT NOT NULL DEFAULT ''`,
		unhashedIndex,
		`ALTER TABLE manifest ADD COLUMN compressible INTEGER NOT NULL DEFAULT 0`,
		compressibleIndex,
		blobClaimsTable,
		`ALTER TABLE symbols ADD COLUMN mtime_ns INTEGER NOT NULL DEFAULT 0`,
		`UPDATE symbols SET mtime_ns = COALESCE(
			(SELECT NULLIF(max(created_ts), 0) * 1000000000 FROM manifest WHERE symbol = symbols.name),
			` + nowNS + `)`,
	}
	for _, stmt := range slices.Concat(stmts, symbolMTimeTriggers) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// migrateV0 rebuilds table manifest in the current layout (SQLite's
// create-copy-drop-rename procedure), giving every row an id in creation
// order, logical_size_bytes = file_size_bytes and mtime_ns = created_ts.
// Rows that cannot be shown as files (empty symbol or key) and all but the
// newest of duplicate (symbol, key) rows are dropped and logged; their blobs
// become orphans that GC collects.
func (db *DB) migrateV0(ctx context.Context, tx *sql.Tx) error {
	cols, err := tableColumns(ctx, tx, "manifest")
	if err != nil {
		return err
	}
	if !cols["key"] || !cols["symbol"] {
		return fmt.Errorf("%w: table manifest has no key or symbol column", errNotManifest)
	}
	// col returns the old column (NULLs replaced by def) or def when absent.
	col := func(name, def string) string {
		if cols[name] {
			return fmt.Sprintf("COALESCE(%s, %s)", name, def)
		}
		return def
	}
	created := col("created_ts", "0")
	copyRows := fmt.Sprintf(`INSERT OR REPLACE INTO manifest_new
		(key, symbol, path, start_ts, end_ts, rows, file_size_bytes, logical_size_bytes,
		 hash, hash_method, created_ts, mtime_ns, last_accessed_ts, access_count)
		SELECT key, symbol, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s * 1000000000, %s, %s
		FROM manifest
		WHERE key IS NOT NULL AND key <> '' AND symbol IS NOT NULL AND symbol <> ''
		ORDER BY %s, symbol, key`,
		col("path", "''"), col("start_ts", "0"), col("end_ts", "0"), col("rows", "0"),
		col("file_size_bytes", "0"), col("file_size_bytes", "0"),
		col("hash", "''"), col("hash_method", "''"),
		created, created,
		col("last_accessed_ts", created), col("access_count", "0"),
		created)

	var before, after int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM manifest").Scan(&before); err != nil {
		return err
	}
	steps := []string{
		strings.Replace(manifestTable, "CREATE TABLE manifest", "CREATE TABLE manifest_new", 1),
		copyRows,
		"DROP TABLE manifest",
		"ALTER TABLE manifest_new RENAME TO manifest",
	}
	for _, stmt := range steps {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	for _, stmt := range slices.Concat(schemaRest, symbolMTimeTriggers) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	// Symbols of the copied rows; the triggers did not exist during the copy.
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO symbols (name, mtime_ns)
		SELECT symbol, max(created_ts) * 1000000000 FROM manifest GROUP BY symbol`); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM manifest").Scan(&after); err != nil {
		return err
	}
	if after != before {
		db.log.Warn("manifest migration dropped rows with an empty name or a duplicate (symbol, key)",
			"dropped", before-after, "kept", after)
	}
	db.log.Info("manifest migrated", "from", 0, "to", schemaVersion, "rows", after)
	return nil
}

func userTables(ctx context.Context, tx *sql.Tx) ([]string, error) {
	names, err := queryStrings(ctx, tx,
		"SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

func tableColumns(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols := make(map[string]bool)
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols[strings.ToLower(n)] = true
	}
	return cols, rows.Err()
}
