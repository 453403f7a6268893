package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"featurefs/blobstore"
	"featurefs/hashing"
	"featurefs/manifest"
)

func openT(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(context.Background(), filepath.Join(t.TempDir(), "root"), Options{
		Create:   true,
		Manifest: manifest.Options{SyncNormal: true, AccessFlushInterval: -1},
		Blobs:    blobstore.Options{NoSync: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.retirer.delay = 10 * time.Millisecond
	return c
}

func stage(t *testing.T, c *Cache, data []byte) *blobstore.Staged {
	t.Helper()
	st, err := c.Blobs().CreateStaged()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.File().WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPutCommitsThenRetiresTheReplacedBlob(t *testing.T) {
	ctx := context.Background()
	c := openT(t)
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "none"), Options{}); err == nil {
		t.Fatal("Open without Create of a root that has no manifest succeeded")
	}
	if fi, err := os.Stat(c.Root()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new cache root: %v, %v; want 0700", fi.Mode(), err)
	}
	data, err := os.ReadFile(filepath.Join("..", "hashing", "testdata", "no_time.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	first, replaced, err := c.Put(ctx, Put{Symbol: "AAPL", Key: "k", Staged: stage(t, c, data), Size: int64(len(data))})
	if err != nil || replaced != nil || first.HashMethod != string(hashing.Full) || first.LogicalSize != int64(len(data)) {
		t.Fatalf("Put = %+v, %v, %v", first, replaced, err)
	}
	second, replaced, err := c.Put(ctx, Put{Symbol: "AAPL", Key: "k", Staged: stage(t, c, data), Size: int64(len(data))})
	if err != nil || replaced == nil || replaced.ID != first.ID || second.ID <= first.ID {
		t.Fatalf("replacing Put = %+v, %+v, %v", second, replaced, err)
	}
	rd, err := c.Blobs().OpenBlob(second.Path)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, rd.Size())
	rd.ReadAt(got, 0)
	rd.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("blob bytes differ from what was put")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(c.Root(), first.Path)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced version's blob was never retired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailedPutChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := openT(t)
	junk := []byte("PAR1 not a parquet file at all PAR1")
	st := stage(t, c, junk)
	if _, _, err := c.Put(ctx, Put{Symbol: "AAPL", Key: "bad", Staged: st, Size: int64(len(junk))}); !errors.Is(err, hashing.ErrBadFooter) && !errors.Is(err, hashing.ErrTruncated) && !errors.Is(err, hashing.ErrNotParquet) {
		t.Fatalf("Put of junk: %v, want a hashing sentinel", err)
	}
	if st.File() == nil {
		t.Fatal("a Put that failed before publishing consumed the staged file")
	}
	st.Close()
	if _, err := c.DB().Get(ctx, "AAPL", "bad"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("failed Put left a row: %v", err)
	}

	// Published, then the row refused: the blob goes too.
	data, _ := os.ReadFile(filepath.Join("..", "hashing", "testdata", "no_time.parquet"))
	st = stage(t, c, data)
	var published string
	_, _, err := c.Put(ctx, Put{Symbol: "AAPL", Key: "late", Staged: st, Size: int64(len(data)),
		Failpoint: func(name string) {
			if name == "commit-before-row" {
				// GC judges the blob an orphan first.
				c.Blobs().Walk(ctx, func(f blobstore.File) error {
					if !f.Staging {
						published = f.Path
						c.DB().ClaimBlob(ctx, f.Path)
					}
					return nil
				})
			}
		}})
	if !errors.Is(err, manifest.ErrBlobClaimed) || st.File() != nil {
		t.Fatalf("Put of a claimed blob: %v (staged consumed: %v)", err, st.File() == nil)
	}
	if _, err := os.Stat(filepath.Join(c.Root(), published)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused commit's blob is still there: %v", err)
	}
}
