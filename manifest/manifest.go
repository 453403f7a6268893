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
//     process sharing the file can see what another one changed;
//   - a Commit or other write that returns an error committed nothing;
//   - a damaged file is never written: Open refuses one that PRAGMA
//     quick_check finds damaged, and once a query at run time meets
//     SQLITE_CORRUPT or SQLITE_NOTADB every later call fails with ErrCorrupt,
//     Corrupted is closed and Close leaves the connections open, because
//     closing the last connection of a WAL database checkpoints the WAL into
//     the file. The process is expected to exit; the WAL stays beside it.
//
// Full disk: Open keeps manifest.reserve beside manifest.db, a file of
// ReserveSize bytes that holds space for the manifest's own files (WAL
// frames, the -shm index a first open creates). When a write or an open
// fails because the file system is full, ReserveStep of it is given back and
// the operation retried once, so that deleting entries and GC, which must
// write the manifest before they free a blob, still work; what still does not
// fit fails with ErrNoSpace. The reserve is refilled once the file system has
// room for it and as much again.
//
// Many processes may open one manifest.db at once (several mount daemons, a
// standalone GC): SQLite's file locks serialise their writers, WAL lets their
// readers run during another process's write transaction.
package manifest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// ErrReadOnly: the file system holding the manifest refuses writes
	// (an ext4 that remounted itself read-only after an error, say). Reads
	// still work; nothing of the failed write was committed.
	ErrReadOnly = errors.New("manifest read-only")
	// ErrClosed: the DB was closed.
	ErrClosed = errors.New("manifest closed")
	// ErrBlobClaimed: GC claimed the blob a Commit names as an orphan, or
	// the blob was published too long ago for the commit to be safe
	// (MaxCommitDelay). Nothing was committed.
	ErrBlobClaimed = errors.New("blob claimed by garbage collection")
	// ErrChangesTrimmed: the changes after the cursor passed to Changes were
	// trimmed by Maintain; the caller must treat everything as changed and
	// continue from the returned cursor.
	ErrChangesTrimmed = errors.New("changes trimmed")
	// ErrNoSpace: the file system holding the manifest is full, even after
	// the reserve was given up; nothing of the failed write was committed.
	ErrNoSpace = errors.New("manifest: no space left on device")
	// ErrCorrupt: SQLite found the database file damaged. The DB refuses
	// every later call and must not be written again; see Corrupted.
	ErrCorrupt = errors.New("database file damaged")
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
	// FullHash is the SHA-256 of every byte of an entry whose Hash is a
	// footer hash, computed after the commit (SetFullHash); empty until
	// then, and for entries whose Hash already covers every byte.
	FullHash string
	// Compressible marks a raw blob worth compressing once the entry is
	// cold (see DB.ReplaceBlob).
	Compressible bool

	// PublishedAt, when set, is when the blob Path names was published; it
	// is not stored. Commit refuses a blob published more than
	// MaxCommitDelay ago: GC may have judged it an orphan by then (see
	// ClaimBlob).
	PublishedAt time.Time
}

// Options configure Open. The zero value gives the production defaults.
type Options struct {
	// SyncNormal sets synchronous=NORMAL instead of FULL (faster, a power loss
	// may lose the last commits; a process crash loses nothing).
	SyncNormal bool
	// BusyTimeout is SQLite's own wait for a lock per attempt (default 1s).
	// With the default MaxRetries a write gives up after about 15 s of
	// waiting in total.
	BusyTimeout time.Duration
	// MaxRetries bounds the retries of a write after SQLITE_BUSY (default 10;
	// negative means none).
	MaxRetries int
	// RetryBudget bounds how long one write waits for the lock in all,
	// from when it was asked for (default DefaultRetryBudget): a commit
	// queued behind others waiting for the same lock shares their wait
	// instead of starting its own after theirs.
	RetryBudget time.Duration
	// AccessFlushInterval is how long opens are coalesced before being written
	// (default 1s; negative disables the background flusher).
	AccessFlushInterval time.Duration
	// NoGroupCommit commits each Commit in its own transaction (benchmarks).
	NoGroupCommit bool
	// KeepChanges is how many rows of table changes Maintain keeps
	// (default 100000).
	KeepChanges int
	// ReadConns is the size of the read-only connection pool (default 4).
	ReadConns int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Failpoint, when set, is called with a point's name at the steps tests
	// crash the process at ("manifest-before-commit": inside the exclusive
	// transaction, before COMMIT). Production leaves it nil.
	Failpoint func(name string)
}

// DefaultRetryBudget is the longest a write waits for a manifest another
// process holds locked before it fails with ErrBusy.
const DefaultRetryBudget = 20 * time.Second

const (
	defaultBusyTimeout   = time.Second
	defaultMaxRetries    = 10
	defaultFlushInterval = time.Second
	defaultKeepChanges   = 100_000
	defaultReadConns     = 4
)

func (o Options) withDefaults() Options {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = defaultBusyTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = defaultMaxRetries
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	if o.AccessFlushInterval == 0 {
		o.AccessFlushInterval = defaultFlushInterval
	}
	if o.KeepChanges <= 0 {
		o.KeepChanges = defaultKeepChanges
	}
	if o.ReadConns <= 0 {
		o.ReadConns = defaultReadConns
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// DB is an open manifest. Safe for concurrent use.
type DB struct {
	path string
	opts Options
	log  *slog.Logger
	// info identifies the file opened (device and inode), for Healthy.
	info os.FileInfo

	// w is the writer pool: one connection whose every Begin is BEGIN
	// EXCLUSIVE. r is the read-only pool.
	w *sql.DB
	r *sql.DB

	commits      atomic.Int64
	transactions atomic.Int64
	busyRetries  atomic.Int64
	accessFlush  atomic.Int64
	accessRows   atomic.Int64

	// gate admits Commit calls until Close; inflight lets Close wait for the
	// admitted ones, which the committer still serves.
	gate     sync.RWMutex
	closed   bool
	inflight sync.WaitGroup

	commitCh      chan *commitReq
	stopCommitter chan struct{}
	committerDone chan struct{}

	acc         accessRecorder
	stopFlusher chan struct{}
	flusherDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	// corrupt holds the first SQLITE_CORRUPT/NOTADB error; corruptCh is
	// closed when it is set.
	corrupt     atomic.Pointer[error]
	corruptOnce sync.Once
	corruptCh   chan struct{}

	// reserveMu serialises releasing and recreating the reserve;
	// reserveGone is set while it is missing.
	reserveMu   sync.Mutex
	reserveGone atomic.Bool
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// Open opens or creates the manifest at path, migrating an older schema in place.
// A file that is not a SQLite database is refused and left untouched.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if err := ensureFile(abs); err != nil {
		return nil, err
	}

	db := &DB{
		path:          abs,
		opts:          opts,
		log:           opts.Logger.With("manifest", abs),
		commitCh:      make(chan *commitReq, 1024),
		stopCommitter: make(chan struct{}),
		committerDone: make(chan struct{}),
		stopFlusher:   make(chan struct{}),
		flusherDone:   make(chan struct{}),
		corruptCh:     make(chan struct{}),
	}
	db.acc.pending = make(map[int64]pendingAccess)

	syncMode := "FULL"
	if opts.SyncNormal {
		syncMode = "NORMAL"
	}
	busyMS := fmt.Sprint(opts.BusyTimeout.Milliseconds())
	if busyMS == "0" {
		busyMS = "1"
	}
	// mode=rw, not rwc: ensureFile created the file; a pooled connection
	// reopened after the file vanished must fail, never create an empty one.
	// synchronous=FULL fsyncs the WAL at every commit, so a row whose Commit
	// returned survives a power loss; NORMAL only survives a process crash.
	db.w, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"mode":          {"rw"},
		"_txlock":       {"exclusive"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {syncMode},
		"_busy_timeout": {busyMS},
		"_foreign_keys": {"0"},
		"_cache_size":   {"-16000"},
	}))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", abs, err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// queueing in database/sql is cheaper than queueing on the file lock.
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)

	db.r, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"mode":          {"ro"},
		"_txlock":       {"deferred"},
		"_query_only":   {"1"},
		"_busy_timeout": {busyMS},
	}))
	if err != nil {
		db.w.Close()
		return nil, fmt.Errorf("manifest %s: %w", abs, err)
	}
	db.r.SetMaxOpenConns(opts.ReadConns)
	db.r.SetMaxIdleConns(opts.ReadConns)
	db.r.SetConnMaxIdleTime(5 * time.Minute)

	if err := db.init(ctx); err != nil {
		if db.corruptErr() == nil {
			db.w.Close()
			db.r.Close()
		} // else: left open, so nothing checkpoints into the damaged file
		return nil, err
	}
	db.keepReserve(true)

	if opts.NoGroupCommit {
		close(db.committerDone)
	} else {
		go db.committer()
	}
	if opts.AccessFlushInterval > 0 {
		go db.flusher(opts.AccessFlushInterval)
	} else {
		close(db.flusherDone)
	}
	return db, nil
}

// dsn builds a go-sqlite3 URI for path. The path is escaped, so names holding
// '?', '#' or '%' reach SQLite intact.
func dsn(path string, params url.Values) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive path: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: params.Encode()}
	return u.String()
}

// ensureFile creates path if it is missing and refuses a file that is not a
// SQLite database, before SQLite gets a chance to touch it.
func ensureFile(path string) error {
	// Private to the owner: other users read entries through the daemon.
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		// An empty file is a valid empty SQLite database; another process
		// racing to create it sees the same.
		if err := f.Close(); err != nil {
			return fmt.Errorf("manifest %s: create: %w", path, err)
		}
		// Make the new name durable: after a power loss the cache root must
		// not come back without its manifest while blobs committed against
		// it survive.
		return syncDir(filepath.Dir(path))
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("manifest %s: create: %w", path, err)
	}
	f, err = os.Open(path)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a valid manifest database: not a regular file", path)
	}
	if fi.Size() > 0 {
		head := make([]byte, len(sqliteMagic))
		if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteMagic {
			return fmt.Errorf("%s is not a valid manifest database: no SQLite header (left untouched)", path)
		}
	}
	// A manifest an older version made readable by others is closed, with
	// its -wal and -shm files (which hold recent rows too).
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := makePrivate(p); err != nil {
			return fmt.Errorf("manifest %s: %w", p, err)
		}
	}
	return nil
}

// makePrivate removes group and other permissions from the regular file at
// path, if there is one, leaving the owner's.
func makePrivate(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil
	}
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return os.Chmod(path, perm&^0o077)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("manifest: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("manifest: sync %s: %w", dir, err)
	}
	return nil
}

// init opens the writer connection (switching the file to WAL), migrates the
// schema and records the file's identity.
func (db *DB) init(ctx context.Context) error {
	err := db.retry(ctx, func() error { return db.w.PingContext(ctx) })
	if err != nil {
		if isNotADB(err) {
			return fmt.Errorf("%s is not a valid manifest database: %w", db.path, err)
		}
		return fmt.Errorf("manifest %s: open: %w", db.path, err)
	}
	if err := db.check(ctx); err != nil {
		return err
	}
	if err := db.migrate(ctx); err != nil {
		if isNotADB(err) || errors.Is(err, errNotManifest) {
			return fmt.Errorf("%s is not a valid manifest database: %w", db.path, err)
		}
		return fmt.Errorf("manifest %s: %w", db.path, err)
	}
	if err := db.retry(ctx, func() error { return db.r.PingContext(ctx) }); err != nil {
		return fmt.Errorf("manifest %s: open reader: %w", db.path, err)
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", db.path, err)
	}
	db.info = fi
	return nil
}

// Close flushes pending accesses and closes the database. Commits already
// admitted finish first; later calls return ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.gate.Lock()
		db.closed = true
		db.gate.Unlock()
		db.inflight.Wait()

		if !db.opts.NoGroupCommit {
			close(db.stopCommitter)
		}
		<-db.committerDone
		if db.opts.AccessFlushInterval > 0 {
			close(db.stopFlusher)
		}
		<-db.flusherDone

		if err := db.corruptErr(); err != nil {
			// Closing the last connection would checkpoint the WAL into
			// the damaged file; it is left as it is, for inspection.
			db.closeErr = fmt.Errorf("manifest %s: not closed, the file is damaged: %w", db.path, err)
			return
		}
		// Accesses recorded since the last flush are written now; a clean
		// shutdown loses none.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		if err := db.FlushAccess(ctx); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, db.r.Close(), db.w.Close())
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// Healthy returns an error when the database file at the opened path is gone,
// was replaced by another file (different inode than at Open), or no longer
// answers a trivial query. A daemon polls it and exits rather than serve from
// a file nobody else sees. A manifest on a file system that turned read-only
// is healthy: its rows are still right and readers are still served, while
// writes fail with ErrReadOnly.
func (db *DB) Healthy(ctx context.Context) error {
	if err := db.corruptErr(); err != nil {
		return err
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", db.path, err)
	}
	if !os.SameFile(db.info, fi) {
		return fmt.Errorf("manifest %s: file was replaced since open", db.path)
	}
	var v int
	if err := db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("manifest %s: %w", db.path, db.classify(err))
	}
	if v != schemaVersion {
		return fmt.Errorf("manifest %s: schema version is now %d, want %d", db.path, v, schemaVersion)
	}
	return nil
}

// Path is the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Counters are cumulative counts since Open.
type Counters struct {
	Commits      int64
	Transactions int64 // commit transactions (< Commits when batched)
	BusyRetries  int64
	// AccessFlushes counts access-flush transactions, AccessUpdates the rows
	// they updated (one per version opened, however often).
	AccessFlushes int64
	AccessUpdates int64
}

// Counters returns the counters.
func (db *DB) Counters() Counters {
	return Counters{
		Commits:       db.commits.Load(),
		Transactions:  db.transactions.Load(),
		BusyRetries:   db.busyRetries.Load(),
		AccessFlushes: db.accessFlush.Load(),
		AccessUpdates: db.accessRows.Load(),
	}
}
