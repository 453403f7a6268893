package manifest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

func TestCommitSetsTimesAndReturnsRow(t *testing.T) {
	clk := newClock()
	db := openT(t, Options{Now: clk.Now})

	in := entry("AAPL", "k1")
	in.ID, in.CreatedTS, in.LastAccessedTS, in.AccessCount = 99, 5, 5, 7 // ignored
	got, replaced := commitT(t, db, in)
	if replaced != nil {
		t.Fatalf("first commit replaced %+v", replaced)
	}
	want := entry("AAPL", "k1")
	want.ID = got.ID
	want.CreatedTS = clk.Now().Unix()
	want.LastAccessedTS = clk.Now().Unix()
	want.ModTimeNS = clk.Now().UnixNano()
	if got != want {
		t.Fatalf("Commit returned\n %+v\nwant\n %+v", got, want)
	}
	if got.ID == 99 || got.ID <= 0 {
		t.Fatalf("id %d not assigned by Commit", got.ID)
	}
	if fromDB, err := db.Get(ctx, "AAPL", "k1"); err != nil || fromDB != want {
		t.Fatalf("Get = %+v, %v; want %+v", fromDB, err, want)
	}
	if fromDB, err := db.GetByID(ctx, got.ID); err != nil || fromDB != want {
		t.Fatalf("GetByID = %+v, %v; want %+v", fromDB, err, want)
	}

	// A writer-set mtime (rsync -a, cp -p) is kept.
	e := entry("AAPL", "k2")
	e.ModTimeNS = 42
	if got, _ := commitT(t, db, e); got.ModTimeNS != 42 {
		t.Fatalf("ModTimeNS = %d, want the caller's 42", got.ModTimeNS)
	}
	if c := db.Counters(); c.Commits != 2 || c.Transactions != 2 {
		t.Fatalf("counters %+v, want 2 commits in 2 transactions", c)
	}
}

func TestReplaceGivesNewIDAndReturnsOldRow(t *testing.T) {
	clk := newClock()
	db := openT(t, Options{Now: clk.Now})
	v1, _ := commitT(t, db, entry("AAPL", "k"))
	clk.Advance(time.Minute)
	e := entry("AAPL", "k")
	e.Path, e.Hash = "blobs/v2", "cd"
	v2, replaced := commitT(t, db, e)
	if v2.ID <= v1.ID {
		t.Fatalf("replacement id %d not above %d", v2.ID, v1.ID)
	}
	if replaced == nil || *replaced != v1 {
		t.Fatalf("replaced = %+v, want %+v", replaced, v1)
	}
	if _, err := db.GetByID(ctx, v1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old version still readable: %v", err)
	}
	if got, _ := db.Get(ctx, "AAPL", "k"); got != v2 {
		t.Fatalf("Get = %+v, want %+v", got, v2)
	}
	if n := countRows(t, db, "SELECT count(*) FROM manifest"); n != 1 {
		t.Fatalf("%d rows after replace, want 1", n)
	}
}

func TestIDNeverReusedAfterDelete(t *testing.T) {
	path := t.TempDir() + "/manifest.db"
	db, err := Open(ctx, path, Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := commitT(t, db, entry("S", "a"))
	b, _ := commitT(t, db, entry("S", "b"))
	// Deleting the highest id is the case plain rowids would reuse.
	if _, err := db.Delete(ctx, "S", "b"); err != nil {
		t.Fatal(err)
	}
	c, _ := commitT(t, db, entry("S", "b"))
	if c.ID <= b.ID || c.ID <= a.ID {
		t.Fatalf("ids a=%d b=%d then c=%d: reused", a.ID, b.ID, c.ID)
	}
	if _, err := db.Delete(ctx, "S", "b"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAtT(t, path, Options{})
	d, _ := commitT(t, db, entry("S", "b"))
	if d.ID <= c.ID {
		t.Fatalf("after reopen id %d not above %d", d.ID, c.ID)
	}
}

func TestDelete(t *testing.T) {
	db := openT(t, Options{})
	v, _ := commitT(t, db, entry("AAPL", "k"))
	got, err := db.Delete(ctx, "AAPL", "k")
	if err != nil || got != v {
		t.Fatalf("Delete = %+v, %v; want %+v", got, err, v)
	}
	if _, err := db.Get(ctx, "AAPL", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	_, err = db.Delete(ctx, "AAPL", "k")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "AAPL/k") {
		t.Fatalf("second Delete: %v, want ErrNotFound naming AAPL/k", err)
	}
}

func TestDeleteVersionSparesNewerVersion(t *testing.T) {
	db := openT(t, Options{})
	v1, _ := commitT(t, db, entry("AAPL", "k"))
	v2, _ := commitT(t, db, entry("AAPL", "k"))
	if ok, err := db.DeleteVersion(ctx, v1.ID); err != nil || ok {
		t.Fatalf("DeleteVersion(replaced) = %v, %v; want false", ok, err)
	}
	if got, err := db.Get(ctx, "AAPL", "k"); err != nil || got.ID != v2.ID {
		t.Fatalf("newer version touched: %+v, %v", got, err)
	}
	if ok, err := db.DeleteVersion(ctx, v2.ID); err != nil || !ok {
		t.Fatalf("DeleteVersion(current) = %v, %v; want true", ok, err)
	}
	if _, err := db.Get(ctx, "AAPL", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
}

func TestRename(t *testing.T) {
	tests := []struct {
		name             string
		from, to         [2]string
		setup            []Entry
		wantErr          error
		wantReplacedPath string
	}{
		{name: "within symbol", from: [2]string{"A", "x"}, to: [2]string{"A", "y"},
			setup: []Entry{entry("A", "x")}},
		{name: "to new symbol", from: [2]string{"A", "x"}, to: [2]string{"B", "x"},
			setup: []Entry{entry("A", "x")}},
		{name: "over existing", from: [2]string{"A", "x"}, to: [2]string{"B", "y"},
			setup: []Entry{entry("A", "x"), entry("B", "y")}, wantReplacedPath: entry("B", "y").Path},
		{name: "onto itself", from: [2]string{"A", "x"}, to: [2]string{"A", "x"},
			setup: []Entry{entry("A", "x")}},
		{name: "missing source", from: [2]string{"A", "nope"}, to: [2]string{"A", "y"},
			setup: []Entry{entry("A", "x")}, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openT(t, Options{})
			var src Entry
			for _, e := range tt.setup {
				c, _ := commitT(t, db, e)
				if e.Symbol == tt.from[0] && e.Key == tt.from[1] {
					src = c
				}
			}
			moved, replaced, err := db.Rename(ctx, tt.from[0], tt.from[1], tt.to[0], tt.to[1])
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Rename: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Rename: %v", err)
			}
			if moved.ID != src.ID || moved.Symbol != tt.to[0] || moved.Key != tt.to[1] || moved.Path != src.Path {
				t.Fatalf("moved = %+v, want id %d at %v", moved, src.ID, tt.to)
			}
			if (replaced == nil) != (tt.wantReplacedPath == "") ||
				(replaced != nil && replaced.Path != tt.wantReplacedPath) {
				t.Fatalf("replaced = %+v, want path %q", replaced, tt.wantReplacedPath)
			}
			got, err := db.Get(ctx, tt.to[0], tt.to[1])
			if err != nil || got != moved {
				t.Fatalf("Get destination = %+v, %v; want %+v", got, err, moved)
			}
			if tt.from != tt.to {
				if _, err := db.Get(ctx, tt.from[0], tt.from[1]); !errors.Is(err, ErrNotFound) {
					t.Fatalf("source still there: %v", err)
				}
			}
			if ok, _ := db.SymbolExists(ctx, tt.to[0]); !ok {
				t.Fatalf("destination symbol %s does not exist", tt.to[0])
			}
		})
	}
}

func TestRenameSymbol(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(db *DB)
		wantErr error
	}{
		{name: "to absent", setup: func(db *DB) {}},
		{name: "to empty", setup: func(db *DB) { db.Mkdir(ctx, "B") }},
		{name: "to emptied", setup: func(db *DB) {
			db.Commit(ctx, entry("B", "z"))
			db.Delete(ctx, "B", "z")
		}},
		{name: "to non-empty", setup: func(db *DB) { db.Commit(ctx, entry("B", "z")) }, wantErr: ErrNotEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openT(t, Options{})
			x, _ := commitT(t, db, entry("A", "x"))
			y, _ := commitT(t, db, entry("A", "y"))
			tt.setup(db)
			err := db.RenameSymbol(ctx, "A", "B")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("RenameSymbol: %v, want %v", err, tt.wantErr)
				}
				if got, _ := db.List(ctx, "A", "", 0); len(got) != 2 {
					t.Fatalf("failed rename moved entries: %d left in A", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("RenameSymbol: %v", err)
			}
			got, _ := db.List(ctx, "B", "", 0)
			if len(got) != 2 || got[0].ID != x.ID || got[1].ID != y.ID {
				t.Fatalf("B holds %+v, want ids %d,%d", got, x.ID, y.ID)
			}
			syms, _ := db.Symbols(ctx)
			if !slices.Equal(syms, []string{"B"}) {
				t.Fatalf("symbols %v, want [B]", syms)
			}
		})
	}
	t.Run("missing source", func(t *testing.T) {
		db := openT(t, Options{})
		if err := db.RenameSymbol(ctx, "A", "B"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RenameSymbol: %v, want ErrNotFound", err)
		}
	})
}

func TestSymbolsBehaveLikeDirectories(t *testing.T) {
	db := openT(t, Options{})
	if err := db.Mkdir(ctx, "EMPTY"); err != nil {
		t.Fatal(err)
	}
	if err := db.Mkdir(ctx, "EMPTY"); !errors.Is(err, ErrExists) {
		t.Fatalf("second Mkdir: %v, want ErrExists", err)
	}
	commitT(t, db, entry("AAPL", "k")) // no Mkdir needed
	if err := db.Mkdir(ctx, "AAPL"); !errors.Is(err, ErrExists) {
		t.Fatalf("Mkdir of symbol with entries: %v, want ErrExists", err)
	}
	syms, err := db.Symbols(ctx)
	if err != nil || !slices.Equal(syms, []string{"AAPL", "EMPTY"}) {
		t.Fatalf("Symbols = %v, %v", syms, err)
	}
	if err := db.Rmdir(ctx, "AAPL"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Rmdir non-empty: %v, want ErrNotEmpty", err)
	}
	if _, err := db.Delete(ctx, "AAPL", "k"); err != nil {
		t.Fatal(err)
	}
	// Like a directory whose files were removed, the symbol stays.
	if ok, err := db.SymbolExists(ctx, "AAPL"); err != nil || !ok {
		t.Fatalf("SymbolExists after last delete = %v, %v; want true", ok, err)
	}
	for _, s := range []string{"AAPL", "EMPTY"} {
		if err := db.Rmdir(ctx, s); err != nil {
			t.Fatalf("Rmdir %s: %v", s, err)
		}
		if ok, _ := db.SymbolExists(ctx, s); ok {
			t.Fatalf("%s exists after Rmdir", s)
		}
	}
	if err := db.Rmdir(ctx, "EMPTY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rmdir missing: %v, want ErrNotFound", err)
	}
	if syms, _ := db.Symbols(ctx); len(syms) != 0 {
		t.Fatalf("Symbols = %v, want none", syms)
	}
}

func TestSetModTime(t *testing.T) {
	db := openT(t, Options{})
	v, _ := commitT(t, db, entry("A", "k"))
	if err := db.SetModTime(ctx, v.ID, 1234); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetByID(ctx, v.ID); got.ModTimeNS != 1234 {
		t.Fatalf("ModTimeNS = %d, want 1234", got.ModTimeNS)
	}
	if err := db.SetModTime(ctx, v.ID+100, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetModTime of missing id: %v, want ErrNotFound", err)
	}
}

func TestGetMissing(t *testing.T) {
	db := openT(t, Options{})
	if _, err := db.Get(ctx, "A", "k"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "A/k") {
		t.Fatalf("Get: %v", err)
	}
	if _, err := db.GetByID(ctx, 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetByID: %v", err)
	}
}

func TestListPagesInKeyOrder(t *testing.T) {
	db := openT(t, Options{})
	keys := []string{"d", "a", "c", "b", "e"}
	for _, k := range keys {
		commitT(t, db, entry("S", k))
	}
	commitT(t, db, entry("OTHER", "a"))
	var seen []string
	after := ""
	for {
		page, err := db.List(ctx, "S", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, e := range page {
			seen = append(seen, e.Key)
		}
		after = page[len(page)-1].Key
	}
	if !slices.Equal(seen, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("listed %v", seen)
	}
	if all, _ := db.List(ctx, "S", "", 0); len(all) != 5 {
		t.Fatalf("List without limit: %d", len(all))
	}
	if none, err := db.List(ctx, "NOPE", "", 10); err != nil || len(none) != 0 {
		t.Fatalf("List of missing symbol: %v, %v", none, err)
	}
}

func TestReferences(t *testing.T) {
	db := openT(t, Options{})
	v, _ := commitT(t, db, entry("A", "k"))
	if ok, err := db.References(ctx, v.Path); err != nil || !ok {
		t.Fatalf("References(%s) = %v, %v", v.Path, ok, err)
	}
	if ok, _ := db.References(ctx, "blobs/other"); ok {
		t.Fatal("References of an unknown path")
	}
	db.DeleteVersion(ctx, v.ID)
	if ok, _ := db.References(ctx, v.Path); ok {
		t.Fatal("References after delete")
	}
}

func TestStats(t *testing.T) {
	clk := newClock()
	db := openT(t, Options{Now: clk.Now})
	if st, err := db.Stats(ctx); err != nil || st.Entries != 0 || st.OldestCreatedTS != 0 {
		t.Fatalf("empty Stats = %+v, %v", st, err)
	}
	t0 := clk.Now().Unix()
	commitT(t, db, entry("A", "1"))
	clk.Advance(10 * time.Second)
	e := entry("B", "1")
	e.HashMethod, e.FileSize, e.LogicalSize = "footer", 1000, 5000
	commitT(t, db, e)
	db.Mkdir(ctx, "C")
	st, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Entries: 2, Symbols: 3, LogicalBytes: 5120, StoredBytes: 1100,
		OldestCreatedTS: t0, NewestCreatedTS: t0 + 10, OldestAccessedTS: t0,
		ByMethod: map[string]int64{"full": 1, "footer": 1}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("Stats =\n %+v\nwant\n %+v", st, want)
	}
}

func TestTriggersRecordChanges(t *testing.T) {
	db := openT(t, Options{})
	start, err := db.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commitT(t, db, entry("A", "k"))         // symbol A, A/k
	v, _ := commitT(t, db, entry("A", "k")) // A/k deleted, A/k inserted
	mustOK(t, "Rename", func() error { _, _, err := db.Rename(ctx, "A", "k", "B", "k"); return err })
	mustOK(t, "SetModTime", func() error { return db.SetModTime(ctx, v.ID, 5) })
	db.RecordAccess(v.ID, time.Now()) // access times are not changes
	mustOK(t, "FlushAccess", func() error { return db.FlushAccess(ctx) })
	mustOK(t, "Mkdir", func() error { return db.Mkdir(ctx, "C") })
	mustOK(t, "Rmdir", func() error { return db.Rmdir(ctx, "C") })
	mustOK(t, "Delete", func() error { _, err := db.Delete(ctx, "B", "k"); return err })

	got, cursor, err := db.Changes(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, c := range got {
		desc = append(desc, c.Symbol+"/"+c.Key)
	}
	want := []string{"A/", "A/k", "A/k", "A/k", "A/k", "B/", "B/k", "B/k", "C/", "C/", "B/k"}
	// Which of two triggers on one statement fires first is SQLite's
	// business; what matters is that every change is there.
	slices.Sort(desc)
	slices.Sort(want)
	if !slices.Equal(desc, want) {
		t.Fatalf("changes\n %v\nwant\n %v", desc, want)
	}
	if last, _ := db.LastChange(ctx); cursor != last || cursor != got[len(got)-1].Seq {
		t.Fatalf("cursor %d, LastChange %d, last seq %d", cursor, last, got[len(got)-1].Seq)
	}
	if more, c2, err := db.Changes(ctx, cursor); err != nil || len(more) != 0 || c2 != cursor {
		t.Fatalf("Changes at cursor = %v, %d, %v", more, c2, err)
	}
}

func TestMaintainTrimsChanges(t *testing.T) {
	db := openT(t, Options{KeepChanges: 5})
	for i := range 20 {
		commitT(t, db, entry("A", fmt.Sprint(i)))
	}
	if _, err := db.Delete(ctx, "A", "0"); err != nil {
		t.Fatal(err)
	}
	if err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, "SELECT count(*) FROM changes"); n != 5 {
		t.Fatalf("%d changes kept, want 5", n)
	}
	last, _ := db.LastChange(ctx)
	if _, cursor, err := db.Changes(ctx, 0); !errors.Is(err, ErrChangesTrimmed) || cursor != last {
		t.Fatalf("Changes from a trimmed cursor: cursor %d, %v; want %d, ErrChangesTrimmed", cursor, err, last)
	}
	if got, _, err := db.Changes(ctx, last-5); err != nil || len(got) != 5 {
		t.Fatalf("Changes from the oldest kept: %d, %v", len(got), err)
	}
	if _, _, err := db.Changes(ctx, last+10); !errors.Is(err, ErrChangesTrimmed) {
		t.Fatalf("Changes from a cursor ahead of the file: %v", err)
	}
}

func TestMaintainVacuumsWhenMostlyFree(t *testing.T) {
	db := openT(t, Options{})
	bulkInsert(t, db, "A", 20000, "1")
	if _, err := db.w.Exec("DELETE FROM manifest"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, "SELECT freelist_count FROM pragma_freelist_count"); n == 0 {
		t.Fatal("no free pages to vacuum")
	}
	if err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	free := countRows(t, db, "SELECT freelist_count FROM pragma_freelist_count")
	pages := countRows(t, db, "SELECT page_count FROM pragma_page_count")
	if free*4 > pages {
		t.Fatalf("after Maintain %d of %d pages free", free, pages)
	}
}

func TestEachStreamsAndAllowsWrites(t *testing.T) {
	db := openT(t, Options{SyncNormal: true}) // many small deletes; durability is not the point
	n := 2*pageSize + 17
	bulkInsert(t, db, "A", n, "1")
	seen := 0
	var lastID int64
	err := db.Each(ctx, func(e Entry) error {
		if e.ID <= lastID {
			t.Fatalf("id %d after %d", e.ID, lastID)
		}
		lastID = e.ID
		seen++
		if seen%2 == 0 {
			if ok, err := db.DeleteVersion(ctx, e.ID); err != nil || !ok {
				return fmt.Errorf("DeleteVersion inside Each: %v %v", ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("Each visited %d of %d", seen, n)
	}
	if left := countRows(t, db, "SELECT count(*) FROM manifest"); left != int64(n-n/2) {
		t.Fatalf("%d rows left, want %d", left, n-n/2)
	}
	stop := errors.New("stop")
	calls := 0
	if err := db.Each(ctx, func(Entry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Each after fn error: %v, %d calls", err, calls)
	}
}

func TestEachByAccessOldestFirst(t *testing.T) {
	db := openT(t, Options{SyncNormal: true}) // many small deletes; durability is not the point
	n := 3*pageSize + 3
	// Access times repeat (i % 7), so the id tie-break crosses page borders.
	bulkInsert(t, db, "A", n, "1000 + i % 7")

	var got []Entry
	err := db.EachByAccess(ctx, func(e Entry) (bool, error) {
		got = append(got, e)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("visited %d of %d", len(got), n)
	}
	ordered := slices.IsSortedFunc(got, func(a, b Entry) int {
		if a.LastAccessedTS != b.LastAccessedTS {
			return int(a.LastAccessedTS - b.LastAccessedTS)
		}
		return int(a.ID - b.ID)
	})
	if !ordered {
		t.Fatal("not in (last_accessed_ts, id) order")
	}

	calls := 0
	db.EachByAccess(ctx, func(Entry) (bool, error) { calls++; return calls < 3, nil })
	if calls != 3 {
		t.Fatalf("EachByAccess went on after false: %d calls", calls)
	}

	var before []Entry
	err = db.EachAccessedBefore(ctx, time.Unix(1003, 0), func(e Entry) error {
		before = append(before, e)
		// GC deletes while walking.
		_, err := db.DeleteVersion(ctx, e.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBefore := 0
	for i := range n {
		if 1000+i%7 < 1003 {
			wantBefore++
		}
	}
	if len(before) != wantBefore {
		t.Fatalf("EachAccessedBefore visited %d, want %d", len(before), wantBefore)
	}
	for _, e := range before {
		if e.LastAccessedTS >= 1003 {
			t.Fatalf("visited entry accessed at %d", e.LastAccessedTS)
		}
	}
	if left := countRows(t, db, "SELECT count(*) FROM manifest"); left != int64(n-wantBefore) {
		t.Fatalf("%d left after deleting while walking, want %d", left, n-wantBefore)
	}
}

func TestAccessWalkUsesIndex(t *testing.T) {
	db := openT(t, Options{})
	plans := map[string]string{
		"by access": `SELECT id FROM manifest WHERE last_accessed_ts < 5 AND (last_accessed_ts, id) > (1, 2)
			ORDER BY last_accessed_ts, id LIMIT 10`,
		"list":       "SELECT id FROM manifest WHERE symbol = 'A' AND key > 'b' ORDER BY key LIMIT 10",
		"references": "SELECT EXISTS (SELECT 1 FROM manifest WHERE path = 'p')",
	}
	for name, q := range plans {
		rows, err := db.r.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING") || strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "SCAN manifest") {
			t.Errorf("%s: plan %q does not use an index range", name, p)
		}
	}
}

func TestCommitBatchIsolatesFailingRequest(t *testing.T) {
	db := openT(t, Options{})
	old, _ := commitT(t, db, entry("A", "replaced"))
	before := db.Counters()

	reqs := []*commitReq{
		{ctx: ctx, e: entry("A", "ok1")},
		{ctx: ctx, e: entry("A", "")}, // fails the key CHECK inside its savepoint
		{ctx: ctx, e: entry("A", "replaced")},
		{ctx: ctx, e: entry("A", "ok2")},
	}
	for _, r := range reqs {
		r.done = make(chan commitRes, 1)
	}
	db.commitBatch(reqs)
	res := make([]commitRes, len(reqs))
	for i, r := range reqs {
		res[i] = <-r.done
	}
	if res[1].err == nil {
		t.Fatal("empty key committed")
	}
	for _, i := range []int{0, 2, 3} {
		if res[i].err != nil {
			t.Fatalf("request %d failed with its neighbour: %v", i, res[i].err)
		}
		if got, err := db.GetByID(ctx, res[i].committed.ID); err != nil || got != res[i].committed {
			t.Fatalf("request %d not committed: %v", i, err)
		}
	}
	if res[2].replaced == nil || res[2].replaced.ID != old.ID {
		t.Fatalf("replace in batch returned %+v, want id %d", res[2].replaced, old.ID)
	}
	if n := countRows(t, db, "SELECT count(*) FROM manifest"); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	c := db.Counters()
	if c.Transactions-before.Transactions != 1 || c.Commits-before.Commits != 3 {
		t.Fatalf("counters moved by %+v → %+v, want 1 transaction, 3 commits", before, c)
	}
}

func TestConcurrentCommits(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			db := openT(t, Options{NoGroupCommit: !group})
			const writers, perWriter, shared = 20, 50, 5
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				ids      = map[int64]bool{}
				replaced int
				errs     []error
			)
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						e := entry(fmt.Sprintf("W%02d", w), fmt.Sprintf("k%03d", i))
						if i%10 == 0 {
							// Every writer also replaces the same few keys.
							e = entry("SHARED", fmt.Sprintf("k%d", (i/10)%shared))
						}
						c, r, err := db.Commit(ctx, e)
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else if ids[c.ID] {
							errs = append(errs, fmt.Errorf("id %d handed out twice", c.ID))
						}
						ids[c.ID] = true
						if r != nil {
							replaced++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%d commits failed, first: %v", len(errs), errs[0])
			}
			sharedCommits := writers * perWriter / 10
			wantRows := writers*perWriter - sharedCommits + shared
			if n := countRows(t, db, "SELECT count(*) FROM manifest"); n != int64(wantRows) {
				t.Fatalf("%d rows, want %d", n, wantRows)
			}
			if replaced != sharedCommits-shared {
				t.Fatalf("%d replacements reported, want %d", replaced, sharedCommits-shared)
			}
			// Every id handed out is either current or was replaced.
			if n := countRows(t, db, "SELECT count(*) FROM manifest WHERE id IN (SELECT value FROM json_each(?))",
				idsJSON(ids)); n != int64(wantRows) {
				t.Fatalf("%d of the returned ids are current, want %d", n, wantRows)
			}
			c := db.Counters()
			t.Logf("group=%v: %d commits in %d transactions, %d busy retries", group, c.Commits, c.Transactions, c.BusyRetries)
			if c.Commits != writers*perWriter {
				t.Fatalf("Commits = %d, want %d", c.Commits, writers*perWriter)
			}
			if group && c.Transactions >= c.Commits {
				t.Fatalf("group commit used %d transactions for %d commits", c.Transactions, c.Commits)
			}
			if !group && c.Transactions != c.Commits {
				t.Fatalf("without group commit %d transactions for %d commits", c.Transactions, c.Commits)
			}
		})
	}
}

func idsJSON(ids map[int64]bool) string {
	var b strings.Builder
	b.WriteByte('[')
	for id := range ids {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, id)
	}
	b.WriteByte(']')
	return b.String()
}

func TestCommitWithCanceledContextCommitsNothing(t *testing.T) {
	for _, group := range []bool{true, false} {
		db := openT(t, Options{NoGroupCommit: !group})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := db.Commit(cctx, entry("A", "k")); !errors.Is(err, context.Canceled) {
			t.Fatalf("group=%v: Commit with canceled ctx: %v", group, err)
		}
		if _, err := db.Get(ctx, "A", "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("group=%v: canceled commit visible: %v", group, err)
		}
	}
}

func TestCloseRefusesLaterCommits(t *testing.T) {
	db, err := Open(ctx, t.TempDir()+"/m.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Commit(ctx, entry("A", "k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func mustOK(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
