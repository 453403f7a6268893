package manifest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func symbolMTimeT(t *testing.T, db *DB, symbol string) int64 {
	t.Helper()
	ns, err := db.SymbolModTime(context.Background(), symbol)
	if err != nil {
		t.Fatalf("SymbolModTime(%s): %v", symbol, err)
	}
	return ns
}

// advanced fails unless symbol's mtime moved forward from before during op,
// landing within op's wall-clock window (SQLite's clock has millisecond
// resolution).
func advanced(t *testing.T, db *DB, symbol string, before int64, what string, op func()) int64 {
	t.Helper()
	start := time.Now().Add(-time.Millisecond).UnixNano()
	op()
	end := time.Now().Add(time.Millisecond).UnixNano()
	got := symbolMTimeT(t, db, symbol)
	if got <= before {
		t.Fatalf("%s: mtime of %s stayed at %d (now %d)", what, symbol, before, got)
	}
	if got < start && got != before+1 || got > end {
		t.Fatalf("%s: mtime of %s = %d, want within [%d, %d]", what, symbol, got, start, end)
	}
	return got
}

func TestSymbolModTimeMovesWithEveryChangeOfItsEntries(t *testing.T) {
	ctx := context.Background()
	db := openT(t, Options{})

	var aapl, msft int64
	aapl = advanced(t, db, "AAPL", 0, "mkdir", func() {
		if err := db.Mkdir(ctx, "AAPL"); err != nil {
			t.Fatal(err)
		}
	})
	aapl = advanced(t, db, "AAPL", aapl, "first commit", func() { commitT(t, db, entry("AAPL", "a")) })
	aapl = advanced(t, db, "AAPL", aapl, "commit", func() { commitT(t, db, entry("AAPL", "b")) })
	aapl = advanced(t, db, "AAPL", aapl, "replace", func() { commitT(t, db, entry("AAPL", "b")) })
	aapl = advanced(t, db, "AAPL", aapl, "rename within", func() {
		if _, _, err := db.Rename(ctx, "AAPL", "b", "AAPL", "c"); err != nil {
			t.Fatal(err)
		}
	})
	aapl = advanced(t, db, "AAPL", aapl, "delete", func() {
		if _, err := db.Delete(ctx, "AAPL", "a"); err != nil {
			t.Fatal(err)
		}
	})

	// A symbol brought into being by its first commit gets a time too.
	msft = advanced(t, db, "MSFT", 0, "commit to a new symbol", func() { commitT(t, db, entry("MSFT", "m")) })
	before := [2]int64{aapl, msft}
	if _, _, err := db.Rename(ctx, "AAPL", "c", "MSFT", "c"); err != nil {
		t.Fatal(err)
	}
	aapl, msft = symbolMTimeT(t, db, "AAPL"), symbolMTimeT(t, db, "MSFT")
	if aapl <= before[0] || msft <= before[1] {
		t.Fatalf("rename between symbols: AAPL %d -> %d, MSFT %d -> %d; want both to move",
			before[0], aapl, before[1], msft)
	}

	// GC's removal of one version moves it as well.
	c, _ := commitT(t, db, entry("MSFT", "gc"))
	msft = symbolMTimeT(t, db, "MSFT")
	msft = advanced(t, db, "MSFT", msft, "delete version", func() {
		if ok, err := db.DeleteVersion(ctx, c.ID); err != nil || !ok {
			t.Fatalf("DeleteVersion: %v, %v", ok, err)
		}
	})

	// Access updates and an entry's own mtime are not directory changes.
	db.RecordAccess(c.ID-1, time.Now())
	if err := db.FlushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := db.Get(ctx, "MSFT", "m")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetModTime(ctx, m.ID, 42); err != nil {
		t.Fatal(err)
	}
	if got := symbolMTimeT(t, db, "MSFT"); got != msft {
		t.Fatalf("access or utimes of an entry moved the directory's mtime: %d -> %d", msft, got)
	}
}

func TestSymbolModTimeSetIsKeptAndNextChangeMovesItOn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	commitT(t, db, entry("AAPL", "a"))
	set := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	if err := db.SetSymbolModTime(ctx, "AAPL", set); err != nil {
		t.Fatal(err)
	}
	if got := symbolMTimeT(t, db, "AAPL"); got != set {
		t.Fatalf("mtime after SetSymbolModTime = %d, want %d", got, set)
	}
	if err := db.SetSymbolModTime(ctx, "NOPE", set); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetSymbolModTime of a missing symbol: %v, want ErrNotFound", err)
	}
	if _, err := db.SymbolModTime(ctx, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SymbolModTime of a missing symbol: %v, want ErrNotFound", err)
	}

	// Kept across a reopen, like everything in the file.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAtT(t, path, Options{})
	if got := symbolMTimeT(t, db, "AAPL"); got != set {
		t.Fatalf("mtime after reopen = %d, want %d", got, set)
	}
	advanced(t, db, "AAPL", set, "commit after a set time", func() { commitT(t, db, entry("AAPL", "b")) })

	// A time set in the future still moves forward with a change.
	future := time.Now().Add(time.Hour).UnixNano()
	if err := db.SetSymbolModTime(ctx, "AAPL", future); err != nil {
		t.Fatal(err)
	}
	commitT(t, db, entry("AAPL", "c"))
	if got := symbolMTimeT(t, db, "AAPL"); got != future+1 {
		t.Fatalf("mtime after a change past a future time = %d, want %d", got, future+1)
	}
}

func TestMigrationFromVersion1GivesSymbolsTheirNewestCommitTime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "manifest.db")
	clk := newClock()
	db := openAtT(t, path, Options{Now: clk.Now})
	commitT(t, db, entry("AAPL", "a"))
	clk.Advance(time.Hour)
	commitT(t, db, entry("AAPL", "b"))
	newest := clk.Now().Unix() * int64(time.Second)
	if err := db.Mkdir(ctx, "EMPTY"); err != nil {
		t.Fatal(err)
	}

	downgradeToV1(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	start := time.Now().Add(-time.Millisecond).UnixNano()
	db = openAtT(t, path, Options{Now: clk.Now})
	if got := symbolMTimeT(t, db, "AAPL"); got != newest {
		t.Fatalf("migrated mtime of AAPL = %d, want its newest commit %d", got, newest)
	}
	if got := symbolMTimeT(t, db, "EMPTY"); got < start {
		t.Fatalf("migrated mtime of an empty symbol = %d, want the migration's time (>= %d)", got, start)
	}
	// The triggers came with the migration.
	clk.Advance(time.Hour)
	advanced(t, db, "AAPL", newest, "commit after migration", func() { commitT(t, db, entry("AAPL", "c")) })
}
