package manifest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestClaimBlobRefusesReferencedAndBlocksLaterCommits(t *testing.T) {
	db := openT(t, Options{})
	live, _ := commitT(t, db, entry("AAPL", "live"))
	ctx := context.Background()

	if ok, err := db.ClaimBlob(ctx, live.Path); err != nil || ok {
		t.Fatalf("ClaimBlob(referenced) = %v, %v; want false", ok, err)
	}
	orphan := entry("AAPL", "late")
	if ok, err := db.ClaimBlob(ctx, orphan.Path); err != nil || !ok {
		t.Fatalf("ClaimBlob(unreferenced) = %v, %v; want true", ok, err)
	}
	if _, _, err := db.Commit(ctx, orphan); !errors.Is(err, ErrBlobClaimed) {
		t.Fatalf("Commit of a claimed blob: %v, want ErrBlobClaimed", err)
	}
	if _, err := db.Get(ctx, "AAPL", "late"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claimed commit left a row: %v", err)
	}
	// A commit of the claimed blob in a batch with others fails alone.
	errs := make(chan error, 2)
	go func() { _, _, err := db.Commit(ctx, orphan); errs <- err }()
	go func() { _, _, err := db.Commit(ctx, entry("AAPL", "other")); errs <- err }()
	var failed int
	for range 2 {
		if err := <-errs; errors.Is(err, ErrBlobClaimed) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if failed != 1 {
		t.Fatalf("%d commits failed, want the claimed one only", failed)
	}
}

func TestPruneClaimsForgetsOnlyOldClaims(t *testing.T) {
	clk := newClock()
	db := openT(t, Options{Now: clk.Now})
	ctx := context.Background()
	old, young := entry("A", "old"), entry("A", "young")
	if _, err := db.ClaimBlob(ctx, old.Path); err != nil {
		t.Fatal(err)
	}
	clk.Advance(ClaimRetention)
	if _, err := db.ClaimBlob(ctx, young.Path); err != nil {
		t.Fatal(err)
	}
	n, err := db.PruneClaims(ctx, clk.Now().Add(-ClaimRetention/2))
	if err != nil || n != 1 {
		t.Fatalf("PruneClaims = %d, %v; want 1", n, err)
	}
	if _, _, err := db.Commit(ctx, young); !errors.Is(err, ErrBlobClaimed) {
		t.Fatalf("young claim was pruned: %v", err)
	}
	commitT(t, db, old)
}

func TestCommitRefusesBlobPublishedTooLongAgo(t *testing.T) {
	db := openT(t, Options{})
	e := entry("AAPL", "stalled")
	e.PublishedAt = time.Now().Add(-MaxCommitDelay - time.Second)
	if _, _, err := db.Commit(context.Background(), e); !errors.Is(err, ErrBlobClaimed) {
		t.Fatalf("Commit after MaxCommitDelay: %v, want ErrBlobClaimed", err)
	}
	e.PublishedAt = time.Now()
	commitT(t, db, e)
}

func TestSetFullHashAndMigrationFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	e := entry("AAPL", "big")
	e.HashMethod = "footer"
	c, _ := commitT(t, db, e)
	ctx := context.Background()
	if err := db.SetFullHash(ctx, c.ID, "ff"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetByID(ctx, c.ID); got.FullHash != "ff" {
		t.Fatalf("FullHash = %q", got.FullHash)
	}
	if err := db.SetFullHash(ctx, c.ID+100, "ff"); err != nil {
		t.Fatalf("SetFullHash of a gone version: %v", err)
	}

	downgradeToV1(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openAtT(t, path, Options{})
	got, err := db2.GetByID(ctx, c.ID)
	if err != nil || got.FullHash != "" || got.Key != "big" {
		t.Fatalf("after migration: %+v, %v", got, err)
	}
	if ok, err := db2.ClaimBlob(ctx, "blobs/x.parquet"); err != nil || !ok {
		t.Fatalf("ClaimBlob after migration: %v, %v", ok, err)
	}
	var n int
	if err := db2.r.QueryRowContext(ctx, "SELECT count(*) FROM manifest INDEXED BY manifest_unhashed WHERE hash_method = 'footer' AND full_hash = ''").Scan(&n); err != nil || n != 1 {
		t.Fatalf("unhashed index: %d, %v", n, err)
	}
}
