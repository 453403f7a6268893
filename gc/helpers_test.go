package gc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"featurefs/blobstore"
	"featurefs/manifest"
)

// clock is a settable clock shared by the manifest (commit and access
// times) and the GC run (retention cutoff).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

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

// cacheT is a cache root opened for a test.
type cacheT struct {
	t     testing.TB
	root  string
	db    *manifest.DB
	store *blobstore.Store
	clock *clock
}

func newCacheT(t testing.TB) *cacheT {
	t.Helper()
	root := t.TempDir()
	c := &cacheT{t: t, root: root, clock: newClock()}
	var err error
	// Stored raw so that a blob's size is the size written.
	c.store, err = blobstore.Open(root, blobstore.Options{Compression: blobstore.None, NoSync: true})
	if err != nil {
		t.Fatalf("blobstore.Open: %v", err)
	}
	c.db, err = manifest.Open(context.Background(), filepath.Join(root, "manifest.db"), manifest.Options{
		SyncNormal:          true,
		AccessFlushInterval: -1, // the run flushes; tests decide what is pending
		Now:                 c.clock.Now,
	})
	if err != nil {
		t.Fatalf("manifest.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.db.Close(); err != nil {
			t.Errorf("manifest Close: %v", err)
		}
	})
	return c
}

// opts are the options of a test run: the test's clock, no settle wait,
// every deletion listed.
func (c *cacheT) opts() Options {
	return Options{Now: c.clock.Now, Settle: -1, Samples: 1 << 20}
}

func (c *cacheT) run(opts Options) *Report {
	c.t.Helper()
	rep, err := Run(context.Background(), c.db, c.store, opts)
	if err != nil {
		c.t.Fatalf("Run: %v", err)
	}
	return rep
}

// publish stages data and publishes it as a blob that no row references yet;
// the caller releases it.
func (c *cacheT) publish(data []byte) *blobstore.Published {
	c.t.Helper()
	st, err := c.store.CreateStaged()
	if err != nil {
		c.t.Fatalf("CreateStaged: %v", err)
	}
	if _, err := st.File().WriteAt(data, 0); err != nil {
		c.t.Fatalf("write staged: %v", err)
	}
	p, err := c.store.Publish(context.Background(), st, int64(len(data)))
	if err != nil {
		c.t.Fatalf("Publish: %v", err)
	}
	return p
}

// commitBlob inserts the manifest row for a published blob.
func (c *cacheT) commitBlob(sym, key string, p *blobstore.Published) manifest.Entry {
	c.t.Helper()
	e, _, err := c.db.Commit(context.Background(), manifest.Entry{
		Symbol: sym, Key: key, Path: p.Blob.Path,
		FileSize: p.Blob.StoredSize, LogicalSize: p.Blob.LogicalSize,
		Hash: "0", HashMethod: "full",
	})
	if err != nil {
		c.t.Fatalf("Commit %s/%s: %v", sym, key, err)
	}
	return e
}

// commit stores an entry of n bytes the way a mount does: publish, insert
// the row, release.
func (c *cacheT) commit(sym, key string, n int) manifest.Entry {
	c.t.Helper()
	p := c.publish(bytes.Repeat([]byte{'x'}, n))
	e := c.commitBlob(sym, key, p)
	if err := p.Release(); err != nil {
		c.t.Fatalf("Release: %v", err)
	}
	return e
}

// access records an open of e at the clock's time, pending until flushed.
func (c *cacheT) access(e manifest.Entry) { c.db.RecordAccess(e.ID, c.clock.Now()) }

// exists reports whether the row of e is still there.
func (c *cacheT) exists(e manifest.Entry) bool {
	c.t.Helper()
	_, err := c.db.GetByID(context.Background(), e.ID)
	if err != nil && !errors.Is(err, manifest.ErrNotFound) {
		c.t.Fatalf("GetByID: %v", err)
	}
	return err == nil
}

// fileExists reports whether a path relative to the root exists (without
// following a final symlink).
func (c *cacheT) fileExists(rel string) bool {
	_, err := os.Lstat(filepath.Join(c.root, filepath.FromSlash(rel)))
	return err == nil
}

// age sets the mtime of a path relative to the root to d before the clock.
func (c *cacheT) age(rel string, d time.Duration) {
	c.t.Helper()
	t := c.clock.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(c.root, filepath.FromSlash(rel)), t, t); err != nil {
		c.t.Fatal(err)
	}
}

// parquetFile returns a small valid parquet file with a timestamp column.
func parquetFile(t testing.TB, rows int) []byte {
	t.Helper()
	type row struct {
		TS    time.Time `parquet:"ts,timestamp(millisecond)"`
		Price float64   `parquet:"price"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf)
	rs := make([]row, rows)
	for i := range rs {
		rs[i] = row{TS: time.Unix(1_700_000_000+int64(i), 0), Price: float64(i) / 100}
	}
	if _, err := w.Write(rs); err != nil {
		t.Fatalf("write parquet: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close parquet: %v", err)
	}
	return buf.Bytes()
}

// deletedPaths is the set of paths a report lists as deleted.
func deletedPaths(rep *Report) map[string]Phase {
	m := make(map[string]Phase, len(rep.Deleted))
	for _, d := range rep.Deleted {
		m[d.Path] = d.Phase
	}
	return m
}
