// Package manifest is the SQLite record of what the cache holds.
//
// One row per (symbol, key) in table manifest. Invariants:
//   - a row is inserted only after its blob is durable, and deleted before its
//     blob is removed, so a row always names a blob that exists;
//   - every committed version gets a new row id (AUTOINCREMENT, never reused),
//     so an id names one immutable version and serves as a stable inode number;
//   - all writes run in BEGIN EXCLUSIVE transactions on a single writer
//     connection and are retried with backoff on SQLITE_BUSY; reads use a
//     separate read-only pool and never queue behind the write lock;
//   - every change to a row is appended to table changes (by triggers), so a
//     process sharing the file can see what another one changed.
package manifest

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

var (
	// ErrNotFound: no such entry or symbol.
	ErrNotFound = errors.New("not found")
	// ErrExists: the symbol already exists (mkdir).
	ErrExists = errors.New("already exists")
	// ErrNotEmpty: the symbol still has entries (rmdir).
	ErrNotEmpty = errors.New("not empty")
	// ErrBusy: the database stayed locked through every retry.
	ErrBusy = errors.New("manifest busy")
)

// Entry is one committed version of (Symbol, Key).
type Entry struct {
	ID     int64
	Symbol string
	Key    string
	// Path is the blob's path relative to the cache root.
	Path    string
	StartTS int64
	EndTS   int64
	Rows    int64
	// FileSize is the stored (blob) size; LogicalSize the parquet's size.
	FileSize    int64
	LogicalSize int64
	Hash        string
	HashMethod  string
	// CreatedTS is the commit time (Unix seconds).
	CreatedTS int64
	// ModTimeNS is the mtime shown by stat: the commit time, or the time a
	// writer set (Unix nanoseconds).
	ModTimeNS      int64
	LastAccessedTS int64
	AccessCount    int64
}

// Options configure Open. The zero value gives the production defaults.
type Options struct {
	// SyncNormal sets synchronous=NORMAL instead of FULL (faster, a power loss
	// may lose the last commits; a process crash loses nothing).
	SyncNormal bool
	// BusyTimeout is SQLite's own wait for a lock per attempt (default 5s).
	BusyTimeout time.Duration
	// MaxRetries bounds the retries of a write after SQLITE_BUSY (default 10).
	MaxRetries int
	// AccessFlushInterval is how long opens are coalesced before being written
	// (default 1s; negative disables the background flusher).
	AccessFlushInterval time.Duration
	// NoGroupCommit commits each Commit in its own transaction (benchmarks).
	NoGroupCommit bool
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// DB is an open manifest. Safe for concurrent use.
type DB struct{}

// Open opens or creates the manifest at path, migrating an older schema in place.
func Open(ctx context.Context, path string, opts Options) (*DB, error) { panic("unimplemented") }

// Close flushes pending accesses and closes the database.
func (db *DB) Close() error { panic("unimplemented") }

// Get returns the current version of (symbol, key) or ErrNotFound.
func (db *DB) Get(ctx context.Context, symbol, key string) (Entry, error) { panic("unimplemented") }

// GetByID returns the version with this row id or ErrNotFound.
func (db *DB) GetByID(ctx context.Context, id int64) (Entry, error) { panic("unimplemented") }

// List returns up to limit entries of symbol with key > after, in key order.
func (db *DB) List(ctx context.Context, symbol, after string, limit int) ([]Entry, error) {
	panic("unimplemented")
}

// Symbols returns every symbol (with entries or made by Mkdir), sorted.
func (db *DB) Symbols(ctx context.Context) ([]string, error) { panic("unimplemented") }

// SymbolExists reports whether the symbol has entries or was made by Mkdir.
func (db *DB) SymbolExists(ctx context.Context, symbol string) (bool, error) { panic("unimplemented") }

// Mkdir creates an empty symbol; ErrExists if it exists.
func (db *DB) Mkdir(ctx context.Context, symbol string) error { panic("unimplemented") }

// Rmdir removes an empty symbol; ErrNotEmpty if it has entries, ErrNotFound if absent.
func (db *DB) Rmdir(ctx context.Context, symbol string) error { panic("unimplemented") }

// RenameSymbol moves every entry of from to to (which must be absent or empty).
func (db *DB) RenameSymbol(ctx context.Context, from, to string) error { panic("unimplemented") }

// Commit inserts e as the new version of (e.Symbol, e.Key), replacing any
// current one, and returns it with its new ID, plus the replaced version if
// there was one (whose blob the caller removes). e.ID, e.CreatedTS,
// e.LastAccessedTS and e.AccessCount are set by Commit; e.ModTimeNS is kept
// when non-zero. Concurrent calls are batched into one transaction.
func (db *DB) Commit(ctx context.Context, e Entry) (committed Entry, replaced *Entry, err error) {
	panic("unimplemented")
}

// Delete removes the current version of (symbol, key) and returns it.
func (db *DB) Delete(ctx context.Context, symbol, key string) (Entry, error) { panic("unimplemented") }

// DeleteVersion removes the row with this id only if it is still there (a newer
// version of the same key is never touched). It reports whether it deleted.
func (db *DB) DeleteVersion(ctx context.Context, id int64) (bool, error) { panic("unimplemented") }

// Rename moves (fromSym, fromKey) to (toSym, toKey) keeping its row id,
// replacing the destination if present (returned for blob removal).
func (db *DB) Rename(ctx context.Context, fromSym, fromKey, toSym, toKey string) (moved Entry, replaced *Entry, err error) {
	panic("unimplemented")
}

// SetModTime sets the mtime shown for the version id.
func (db *DB) SetModTime(ctx context.Context, id int64, mtimeNS int64) error { panic("unimplemented") }

// RecordAccess notes an open of version id at time t; it is written with the
// next flush. It never blocks on the database.
func (db *DB) RecordAccess(id int64, t time.Time) { panic("unimplemented") }

// PendingAccess returns the opens of id not yet written and the latest one.
func (db *DB) PendingAccess(id int64) (count int64, last time.Time) { panic("unimplemented") }

// FlushAccess writes every pending access now.
func (db *DB) FlushAccess(ctx context.Context) error { panic("unimplemented") }

// Each calls fn for every entry in id order, streaming (memory stays flat).
func (db *DB) Each(ctx context.Context, fn func(Entry) error) error { panic("unimplemented") }

// EachAccessedBefore calls fn for entries whose last access is before t,
// oldest first, streaming.
func (db *DB) EachAccessedBefore(ctx context.Context, t time.Time, fn func(Entry) error) error {
	panic("unimplemented")
}

// EachByAccess calls fn for all entries, least recently accessed first, until
// fn returns false or an error.
func (db *DB) EachByAccess(ctx context.Context, fn func(Entry) (bool, error)) error {
	panic("unimplemented")
}

// References reports whether any row names the blob path.
func (db *DB) References(ctx context.Context, path string) (bool, error) { panic("unimplemented") }

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

// Stats aggregates the manifest.
func (db *DB) Stats(ctx context.Context) (Stats, error) { panic("unimplemented") }

// Change is one row change recorded by the triggers.
type Change struct {
	Seq    int64
	Symbol string
	Key    string
}

// Changes returns the changes after since (oldest first) and the new cursor.
// It is cheap (a primary-key range), so a mount polls it to learn what other
// processes changed.
func (db *DB) Changes(ctx context.Context, since int64) ([]Change, int64, error) {
	panic("unimplemented")
}

// LastChange is the current cursor, for a mount starting to watch.
func (db *DB) LastChange(ctx context.Context) (int64, error) { panic("unimplemented") }

// Counters are cumulative counts since Open.
type Counters struct {
	Commits      int64
	Transactions int64 // commit transactions (< Commits when batched)
	BusyRetries  int64
}

// Counters returns the counters.
func (db *DB) Counters() Counters { panic("unimplemented") }

// Maintain checkpoints the WAL, runs PRAGMA optimize, and VACUUMs when more
// than a quarter of the pages are free.
func (db *DB) Maintain(ctx context.Context) error { panic("unimplemented") }
