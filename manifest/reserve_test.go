package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReserveIsGivenUpByStepsAndRefilled(t *testing.T) {
	dir := t.TempDir()
	db := openAtT(t, filepath.Join(dir, "manifest.db"), Options{AccessFlushInterval: -1})
	path := filepath.Join(dir, ReserveName)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("reserve mode %v, want 0600", fi.Mode().Perm())
		}
		return fi.Size()
	}
	if n := size(); n != ReserveSize {
		t.Fatalf("reserve after Open: %d bytes, want %d", n, ReserveSize)
	}
	full := errors.New("disk full")
	for want := int64(ReserveSize - ReserveStep); want >= 0; want -= ReserveStep {
		if !db.releaseReserve(full) {
			t.Fatalf("nothing released with %d bytes left", want+ReserveStep)
		}
		if n := size(); n != want {
			t.Fatalf("reserve after a release: %d bytes, want %d", n, want)
		}
	}
	if db.releaseReserve(full) {
		t.Fatal("an empty reserve was released")
	}
	// The next successful write refills it (this file system has room).
	commitT(t, db, entry("S", "k"))
	if n := size(); n != ReserveSize {
		t.Fatalf("reserve after a write with room: %d bytes, want %d", n, ReserveSize)
	}
}

// TestDeleteFitsInAReserveStep measures what a row delete needs on disk
// (the WAL it writes after a checkpoint emptied it, plus the -shm a first
// open creates) on a manifest of 100k entries, and checks it fits in one
// ReserveStep with room to spare.
func TestDeleteFitsInAReserveStep(t *testing.T) {
	if testing.Short() {
		t.Skip("100k rows")
	}
	dir := t.TempDir()
	db := openAtT(t, filepath.Join(dir, "manifest.db"), Options{AccessFlushInterval: -1})
	bulkInsert(t, db, "S", 100_000, "i")
	if _, err := db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Delete(ctx, "S", "k050000"); err != nil {
		t.Fatal(err)
	}
	stat := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	wal, shm := stat("manifest.db-wal"), stat("manifest.db-shm")
	t.Logf("one delete: WAL %d bytes, -shm %d bytes", wal, shm)
	if wal+shm > ReserveStep/4 {
		t.Errorf("one delete needs %d bytes, more than a quarter of a reserve step (%d)", wal+shm, ReserveStep)
	}
}
