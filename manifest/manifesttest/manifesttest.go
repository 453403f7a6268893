// Package manifesttest is the conformance suite of manifest engines: the
// behaviour every engine behind the cache's manifest must show, whatever
// stores it (SQLite embedded, a server shared by many hosts).
//
// Engine is the union of what the cache's packages ask of a manifest
// (fusefs, gc, fullhash, compact, the command line); each of those packages
// declares the smaller interface it uses. Run checks an engine through two
// handles on one store where the behaviour involves more than one process:
// two daemons on one cache root, or a daemon and a standalone GC.
package manifesttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"featurefs/manifest"
)

// Engine is the manifest contract the suite checks.
type Engine interface {
	Commit(ctx context.Context, e manifest.Entry) (committed manifest.Entry, replaced *manifest.Entry, err error)
	Get(ctx context.Context, symbol, key string) (manifest.Entry, error)
	GetByID(ctx context.Context, id int64) (manifest.Entry, error)
	List(ctx context.Context, symbol, after string, limit int) ([]manifest.Entry, error)
	Symbols(ctx context.Context) ([]string, error)
	SymbolExists(ctx context.Context, symbol string) (bool, error)
	Delete(ctx context.Context, symbol, key string) (manifest.Entry, error)
	DeleteVersion(ctx context.Context, id int64) (bool, error)
	Rename(ctx context.Context, fromSym, fromKey, toSym, toKey string) (moved manifest.Entry, replaced *manifest.Entry, err error)
	RenameSymbol(ctx context.Context, from, to string) error
	Mkdir(ctx context.Context, symbol string) error
	Rmdir(ctx context.Context, symbol string) error
	SetModTime(ctx context.Context, id int64, mtimeNS int64) error

	RecordAccess(id int64, t time.Time)
	PendingAccess(id int64) (count int64, last time.Time)
	FlushAccess(ctx context.Context) error

	Changes(ctx context.Context, since int64) ([]manifest.Change, int64, error)
	LastChange(ctx context.Context) (int64, error)

	References(ctx context.Context, path string) (bool, error)
	Each(ctx context.Context, fn func(manifest.Entry) error) error
	EachAccessedBefore(ctx context.Context, t time.Time, fn func(manifest.Entry) error) error
	EachByAccess(ctx context.Context, fn func(manifest.Entry) (bool, error)) error
	Stats(ctx context.Context) (manifest.Stats, error)
	ClaimBlob(ctx context.Context, path string) (bool, error)
	PruneClaims(ctx context.Context, t time.Time) (int64, error)

	EachUnhashed(ctx context.Context, fn func(manifest.Entry) error) error
	SetFullHash(ctx context.Context, id int64, hash string) error
	EachCompressible(ctx context.Context, before time.Time, fn func(manifest.Entry) (bool, error)) error
	SetCompressible(ctx context.Context, id int64, compressible bool) error
	ReplaceBlob(ctx context.Context, old manifest.Entry, path string, storedSize int64, publishedAt time.Time) (manifest.Entry, error)

	Close() error
}

// Opener opens a handle on the store called name, with now as its clock.
// Handles opened with the same name within one test share one store (as
// two processes on one cache root do); the suite closes every handle.
type Opener func(t *testing.T, name string, now func() time.Time) Engine

// Clock is a settable clock for the suite's engines.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed, whole second.
func NewClock() *Clock { return &Clock{t: time.Unix(1_700_000_000, 0)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Run runs the suite against the engines open makes.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"CommitGivesEveryVersionANewID", testCommitIDs},
		{"ConcurrentReplacesOfOneKeyFromTwoHandles", testConcurrentReplaces},
		{"DeleteAndDeleteVersion", testDelete},
		{"RenameKeepsTheVersion", testRename},
		{"SymbolRules", testSymbols},
		{"ChangeFeedInCommitOrderAcrossHandles", testChanges},
		{"AccessesArePendingUntilFlushed", testAccess},
		{"GCQueries", testGCQueries},
		{"ClaimedBlobsCannotBeCommitted", testClaims},
		{"HashesCompressionAndBlobReplacement", testBlobFields},
		{"ErrorsAreSentinels", testErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &suite{t: t, open: open, clock: NewClock()}
			tt.fn(t, s)
		})
	}
}

type suite struct {
	t     *testing.T
	open  Opener
	clock *Clock
}

var ctx = context.Background()

// handle opens a handle on the test's store "main".
func (s *suite) handle() Engine {
	s.t.Helper()
	e := s.open(s.t, "main", s.clock.Now)
	s.t.Cleanup(func() { _ = e.Close() })
	return e
}

// entry is a version of symbol/key whose blob path is unique to it.
func entry(symbol, key, blob string) manifest.Entry {
	return manifest.Entry{
		Symbol: symbol, Key: key, Path: "blobs/00/00/" + blob + ".parquet",
		StartTS: 1, EndTS: 2, Rows: 10, FileSize: 100, LogicalSize: 120,
		Hash: "ab", HashMethod: "full",
	}
}

func commit(t *testing.T, db Engine, e manifest.Entry) (manifest.Entry, *manifest.Entry) {
	t.Helper()
	c, r, err := db.Commit(ctx, e)
	if err != nil {
		t.Fatalf("Commit %s/%s: %v", e.Symbol, e.Key, err)
	}
	return c, r
}

func testCommitIDs(t *testing.T, s *suite) {
	db := s.handle()
	a, r := commit(t, db, entry("AAPL", "k", "a"))
	if r != nil || a.ID <= 0 || a.CreatedTS != s.clock.Now().Unix() || a.LastAccessedTS != a.CreatedTS || a.AccessCount != 0 {
		t.Fatalf("first commit = %+v, replaced %v", a, r)
	}
	s.clock.Advance(time.Second)
	b, r := commit(t, db, entry("AAPL", "k", "b"))
	if r == nil || r.ID != a.ID || r.Path != a.Path || b.ID <= a.ID {
		t.Fatalf("replace = %+v, replaced %+v; want a new, higher id and the old version back", b, r)
	}
	got, err := db.Get(ctx, "AAPL", "k")
	if err != nil || got.ID != b.ID || got.Path != b.Path || got.ModTimeNS == 0 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// An id is never handed out again, even after the highest is deleted.
	if _, err := db.Delete(ctx, "AAPL", "k"); err != nil {
		t.Fatal(err)
	}
	c, _ := commit(t, db, entry("AAPL", "k", "c"))
	if c.ID <= b.ID {
		t.Fatalf("id %d after deleting id %d: ids must never be reused", c.ID, b.ID)
	}
	// A writer's mtime is kept.
	e := entry("AAPL", "m", "m")
	e.ModTimeNS = 1_600_000_000_123_456_789
	if m, _ := commit(t, db, e); m.ModTimeNS != e.ModTimeNS {
		t.Fatalf("ModTimeNS = %d, want the writer's %d", m.ModTimeNS, e.ModTimeNS)
	}
}

// Two handles (two hosts or processes) replace one key at once: every
// acknowledged commit is a distinct version, exactly one is current, and
// every other acknowledged version was replaced exactly once.
func testConcurrentReplaces(t *testing.T, s *suite) {
	a, b := s.handle(), s.handle()
	const each = 20
	var mu sync.Mutex
	committed := map[int64]bool{}
	replaced := map[int64]int{}
	var wg sync.WaitGroup
	for h, db := range []Engine{a, b} {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					c, r, err := db.Commit(ctx, entry("SPY", "hot", fmt.Sprintf("h%dw%di%d", h, w, i)))
					if err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
					mu.Lock()
					committed[c.ID] = true
					if r != nil {
						replaced[r.ID]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	cur, err := b.Get(ctx, "SPY", "hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) != 4*each || !committed[cur.ID] {
		t.Fatalf("%d distinct versions acknowledged (want %d), current %d among them: %v", len(committed), 4*each, cur.ID, committed[cur.ID])
	}
	for id := range committed {
		want := 1
		if id == cur.ID {
			want = 0
		}
		if replaced[id] != want {
			t.Fatalf("version %d was reported replaced %d times, want %d", id, replaced[id], want)
		}
	}
}

func testDelete(t *testing.T, s *suite) {
	db := s.handle()
	old, _ := commit(t, db, entry("A", "k", "1"))
	cur, _ := commit(t, db, entry("A", "k", "2"))
	if ok, err := db.DeleteVersion(ctx, old.ID); err != nil || ok {
		t.Fatalf("DeleteVersion(replaced version) = %v, %v; want false", ok, err)
	}
	if got, _ := db.Get(ctx, "A", "k"); got.ID != cur.ID {
		t.Fatalf("DeleteVersion of an old id touched the current version")
	}
	gone, err := db.Delete(ctx, "A", "k")
	if err != nil || gone.ID != cur.ID {
		t.Fatalf("Delete = %+v, %v", gone, err)
	}
	if _, err := db.Delete(ctx, "A", "k"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("Delete of a missing entry: %v, want ErrNotFound", err)
	}
	if ok, err := db.DeleteVersion(ctx, cur.ID); err != nil || ok {
		t.Fatalf("DeleteVersion(deleted) = %v, %v", ok, err)
	}
	// The symbol outlives its last entry.
	if ok, err := db.SymbolExists(ctx, "A"); err != nil || !ok {
		t.Fatalf("symbol after its last entry went: %v, %v", ok, err)
	}
}

func testRename(t *testing.T, s *suite) {
	db := s.handle()
	a, _ := commit(t, db, entry("A", "a", "a"))
	b, _ := commit(t, db, entry("B", "b", "b"))
	moved, replaced, err := db.Rename(ctx, "A", "a", "B", "b")
	if err != nil || moved.ID != a.ID || moved.Symbol != "B" || moved.Key != "b" || replaced == nil || replaced.ID != b.ID {
		t.Fatalf("Rename onto an entry = %+v, %+v, %v", moved, replaced, err)
	}
	if _, err := db.Get(ctx, "A", "a"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("source after rename: %v", err)
	}
	if got, _ := db.Get(ctx, "B", "b"); got.ID != a.ID || got.Path != a.Path {
		t.Fatalf("destination after rename: %+v", got)
	}
	if m, r, err := db.Rename(ctx, "B", "b", "B", "b"); err != nil || r != nil || m.ID != a.ID {
		t.Fatalf("rename onto itself = %+v, %+v, %v", m, r, err)
	}
	if _, _, err := db.Rename(ctx, "A", "a", "C", "c"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("rename of a missing entry: %v", err)
	}
	if syms, _ := db.Symbols(ctx); !slices.Contains(syms, "B") {
		t.Fatalf("symbols %v", syms)
	}
}

func testSymbols(t *testing.T, s *suite) {
	db := s.handle()
	if err := db.Mkdir(ctx, "EMPTY"); err != nil {
		t.Fatal(err)
	}
	if err := db.Mkdir(ctx, "EMPTY"); !errors.Is(err, manifest.ErrExists) {
		t.Fatalf("second Mkdir: %v, want ErrExists", err)
	}
	commit(t, db, entry("FULL", "k", "k"))
	if err := db.Rmdir(ctx, "FULL"); !errors.Is(err, manifest.ErrNotEmpty) {
		t.Fatalf("Rmdir of a symbol with entries: %v, want ErrNotEmpty", err)
	}
	if err := db.Rmdir(ctx, "NONE"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("Rmdir of a missing symbol: %v, want ErrNotFound", err)
	}
	if err := db.RenameSymbol(ctx, "EMPTY", "FULL"); !errors.Is(err, manifest.ErrNotEmpty) {
		t.Fatalf("RenameSymbol onto a symbol with entries: %v, want ErrNotEmpty", err)
	}
	if err := db.RenameSymbol(ctx, "FULL", "MOVED"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Get(ctx, "MOVED", "k"); err != nil || got.Symbol != "MOVED" {
		t.Fatalf("entry after RenameSymbol: %+v, %v", got, err)
	}
	syms, err := db.Symbols(ctx)
	if err != nil || !slices.Equal(syms, []string{"EMPTY", "MOVED"}) {
		t.Fatalf("Symbols = %v, %v; want [EMPTY MOVED], sorted", syms, err)
	}
	if err := db.Rmdir(ctx, "EMPTY"); err != nil {
		t.Fatal(err)
	}
	// List pages through a symbol in key order.
	for _, k := range []string{"c", "a", "b"} {
		commit(t, db, entry("L", k, "l"+k))
	}
	page, err := db.List(ctx, "L", "a", 10)
	if err != nil || len(page) != 2 || page[0].Key != "b" || page[1].Key != "c" {
		t.Fatalf("List after a = %+v, %v", page, err)
	}
}

// A change made through one handle reaches another's feed, in commit order,
// and a cursor never goes back.
func testChanges(t *testing.T, s *suite) {
	a, b := s.handle(), s.handle()
	start, err := b.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, a, entry("X", "k1", "1"))
	commit(t, a, entry("X", "k2", "2"))
	if _, _, err := a.Rename(ctx, "X", "k1", "Y", "k3"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, "X", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Mkdir(ctx, "Z"); err != nil {
		t.Fatal(err)
	}
	changes, cursor, err := b.Changes(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if cursor <= start {
		t.Fatalf("cursor %d after %d changes, from %d", cursor, len(changes), start)
	}
	var names []string
	last := start
	for _, c := range changes {
		if c.Seq <= last {
			t.Fatalf("change sequence not increasing: %d after %d", c.Seq, last)
		}
		last = c.Seq
		names = append(names, c.Symbol+"/"+c.Key)
	}
	// Each name's first appearance follows the order of the operations.
	want := []string{"X/k1", "X/k2", "Y/k3", "Z/"}
	pos := -1
	for _, w := range want {
		i := slices.Index(names, w)
		if i < 0 || i < pos {
			t.Fatalf("changes %v: %s missing or out of commit order", names, w)
		}
		pos = i
	}
	more, again, err := b.Changes(ctx, cursor)
	if err != nil || len(more) != 0 || again != cursor {
		t.Fatalf("Changes at the cursor = %v, %d, %v; want none and the same cursor", more, again, err)
	}
	if lc, _ := a.LastChange(ctx); lc != cursor {
		t.Fatalf("LastChange %d on the writing handle, cursor %d on the other", lc, cursor)
	}
}

// Opens are kept as pending accesses and written in batches; flushing
// writes them all, and another handle then sees them.
func testAccess(t *testing.T, s *suite) {
	a, b := s.handle(), s.handle()
	e, _ := commit(t, a, entry("A", "k", "k"))
	s.clock.Advance(time.Hour)
	t1 := s.clock.Now()
	a.RecordAccess(e.ID, t1.Add(-time.Minute))
	a.RecordAccess(e.ID, t1)
	if n, last := a.PendingAccess(e.ID); n != 2 || !last.Equal(t1) {
		t.Fatalf("PendingAccess = %d, %v; want 2, %v", n, last, t1)
	}
	if got, _ := a.Get(ctx, "A", "k"); got.AccessCount != 0 {
		t.Fatalf("access written before a flush: %+v", got)
	}
	if err := a.FlushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "A", "k")
	if err != nil || got.AccessCount != 2 || got.LastAccessedTS != t1.Unix() {
		t.Fatalf("after flush, other handle sees %+v, %v; want 2 accesses, last %d", got, err, t1.Unix())
	}
	if n, _ := a.PendingAccess(e.ID); n != 0 {
		t.Fatalf("%d accesses still pending after a flush", n)
	}
	// An access to a version replaced meanwhile is dropped, not an error.
	a.RecordAccess(e.ID, t1)
	commit(t, b, entry("A", "k", "k2"))
	if err := a.FlushAccess(ctx); err != nil {
		t.Fatalf("flush of an access to a replaced version: %v", err)
	}
}

func testGCQueries(t *testing.T, s *suite) {
	db := s.handle()
	var all []manifest.Entry
	for i := range 5 {
		e, _ := commit(t, db, entry("G", fmt.Sprint("k", i), fmt.Sprint("g", i)))
		all = append(all, e)
		s.clock.Advance(24 * time.Hour)
	}
	cutoff := time.Unix(all[2].LastAccessedTS, 0)
	var before []int64
	if err := db.EachAccessedBefore(ctx, cutoff, func(e manifest.Entry) error {
		before = append(before, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, []int64{all[0].ID, all[1].ID}) {
		t.Fatalf("EachAccessedBefore = %v, want the two oldest", before)
	}
	var order []int64
	if err := db.EachByAccess(ctx, func(e manifest.Entry) (bool, error) {
		order = append(order, e.ID)
		return len(order) < 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []int64{all[0].ID, all[1].ID, all[2].ID}) {
		t.Fatalf("EachByAccess = %v, want least recent first, stopping when asked", order)
	}
	n := 0
	if err := db.Each(ctx, func(manifest.Entry) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("Each visited %d, %v", n, err)
	}
	if ok, err := db.References(ctx, all[3].Path); err != nil || !ok {
		t.Fatalf("References(live blob) = %v, %v", ok, err)
	}
	if ok, err := db.References(ctx, "blobs/00/00/none.parquet"); err != nil || ok {
		t.Fatalf("References(no row) = %v, %v", ok, err)
	}
	st, err := db.Stats(ctx)
	if err != nil || st.Entries != 5 || st.Symbols != 1 || st.StoredBytes != 500 || st.LogicalBytes != 600 ||
		st.OldestAccessedTS != all[0].LastAccessedTS || st.ByMethod["full"] != 5 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

func testClaims(t *testing.T, s *suite) {
	a, b := s.handle(), s.handle()
	live, _ := commit(t, a, entry("C", "live", "live"))
	if ok, err := b.ClaimBlob(ctx, live.Path); err != nil || ok {
		t.Fatalf("ClaimBlob(referenced) = %v, %v", ok, err)
	}
	late := entry("C", "late", "late")
	if ok, err := b.ClaimBlob(ctx, late.Path); err != nil || !ok {
		t.Fatalf("ClaimBlob(unreferenced) = %v, %v", ok, err)
	}
	if _, _, err := a.Commit(ctx, late); !errors.Is(err, manifest.ErrBlobClaimed) {
		t.Fatalf("Commit of a blob another handle claimed: %v, want ErrBlobClaimed", err)
	}
	if _, err := a.Get(ctx, "C", "late"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("a row names a claimed blob: %v", err)
	}
	stalled := entry("C", "stalled", "stalled")
	stalled.PublishedAt = time.Now().Add(-manifest.MaxCommitDelay - time.Second)
	if _, _, err := a.Commit(ctx, stalled); !errors.Is(err, manifest.ErrBlobClaimed) {
		t.Fatalf("Commit past MaxCommitDelay: %v, want ErrBlobClaimed", err)
	}
	s.clock.Advance(manifest.ClaimRetention + time.Hour)
	if n, err := b.PruneClaims(ctx, s.clock.Now().Add(-manifest.ClaimRetention)); err != nil || n != 1 {
		t.Fatalf("PruneClaims = %d, %v", n, err)
	}
	commit(t, a, late)
}

func testBlobFields(t *testing.T, s *suite) {
	db := s.handle()
	big := entry("B", "big", "big")
	big.HashMethod = "footer"
	big.Compressible = true
	e, _ := commit(t, db, big)
	var unhashed []int64
	if err := db.EachUnhashed(ctx, func(x manifest.Entry) error { unhashed = append(unhashed, x.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unhashed, []int64{e.ID}) {
		t.Fatalf("EachUnhashed = %v", unhashed)
	}
	if err := db.SetFullHash(ctx, e.ID, "ff"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetModTime(ctx, e.ID, 42); err != nil {
		t.Fatal(err)
	}
	if err := db.SetModTime(ctx, e.ID+1000, 42); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("SetModTime of a missing version: %v", err)
	}
	s.clock.Advance(time.Hour)
	var cold []manifest.Entry
	if err := db.EachCompressible(ctx, s.clock.Now(), func(x manifest.Entry) (bool, error) {
		cold = append(cold, x)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(cold) != 1 || cold[0].ID != e.ID || cold[0].FullHash != "ff" || cold[0].ModTimeNS != 42 {
		t.Fatalf("EachCompressible = %+v", cold)
	}
	r, err := db.ReplaceBlob(ctx, cold[0], "blobs/00/00/big.parquet.zst", 40, time.Now())
	if err != nil || r.ID == e.ID || r.Path != "blobs/00/00/big.parquet.zst" || r.FileSize != 40 ||
		r.Compressible || r.FullHash != "ff" || r.ModTimeNS != 42 || r.CreatedTS != e.CreatedTS || r.LogicalSize != e.LogicalSize {
		t.Fatalf("ReplaceBlob = %+v, %v", r, err)
	}
	if _, err := db.ReplaceBlob(ctx, cold[0], "blobs/00/00/again.parquet.zst", 40, time.Now()); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("ReplaceBlob of a version no longer current: %v, want ErrNotFound", err)
	}
	if err := db.SetCompressible(ctx, r.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetByID(ctx, r.ID); !got.Compressible {
		t.Fatalf("SetCompressible did not stick: %+v", got)
	}
}

func testErrors(t *testing.T, s *suite) {
	db := s.open(t, "main", s.clock.Now)
	if _, err := db.Get(ctx, "NO", "such"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("Get of a missing entry: %v, want ErrNotFound", err)
	}
	if _, err := db.GetByID(ctx, 1<<40); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("GetByID of a missing id: %v, want ErrNotFound", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Commit(ctx, entry("A", "k", "k")); !errors.Is(err, manifest.ErrClosed) {
		t.Fatalf("Commit after Close: %v, want ErrClosed", err)
	}
}
