package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// damage overwrites every page but the first (4096-byte pages).
func damage(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte{0xa5, 0x3c, 0xff, 0x01}, 1024)
	for off := int64(4096); off < fi.Size(); off += 4096 {
		if _, err := f.WriteAt(page, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDamagedFileAndLeavesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{AccessFlushInterval: -1})
	for i := 0; i < 20; i++ {
		commitT(t, db, entry("S", fmt.Sprintf("k%d", i)))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	damage(t, path)
	sum := fileSum(t, path)
	_, err := Open(context.Background(), path, Options{AccessFlushInterval: -1})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a damaged file: %v, want ErrCorrupt", err)
	}
	if fileSum(t, path) != sum {
		t.Fatal("Open changed the damaged file")
	}
}

func TestDamageAtRunTimeStopsWritesAndCloseLeavesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db, err := Open(context.Background(), path, Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		commitT(t, db, entry("S", fmt.Sprintf("k%d", i)))
	}
	if _, err := db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	damage(t, path)
	sum := fileSum(t, path)
	// A commit changes the WAL, so the readers drop their cached pages;
	// the index of unhashed entries is a page the commit of a fully hashed
	// entry does not rewrite into the WAL.
	_, _, cerr := db.Commit(context.Background(), entry("S", "new"))
	rerr := db.EachUnhashed(context.Background(), func(Entry) error { return nil })
	if !errors.Is(cerr, ErrCorrupt) && !errors.Is(rerr, ErrCorrupt) {
		t.Fatalf("commit: %v, unhashed entries: %v; want ErrCorrupt from one of them", cerr, rerr)
	}
	select {
	case <-db.Corrupted():
	default:
		t.Fatal("Corrupted not closed")
	}
	if err := db.Healthy(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Healthy: %v, want ErrCorrupt", err)
	}
	db.RecordAccess(1, db.opts.Now())
	if err := db.FlushAccess(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("FlushAccess on a damaged file: %v, want ErrCorrupt", err)
	}
	if err := db.Close(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Close: %v, want it to say the file is damaged", err)
	}
	if fileSum(t, path) != sum {
		t.Fatal("the damaged file was written")
	}
}
