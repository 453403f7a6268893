package compact

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/manifest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestColdCompressibleEntriesAreCompressedInPlace commits two entries the
// way a mount with deferred compression does (raw, marked by the trial),
// lets them turn cold and checks that only the compressible one is
// rewritten: same bytes, same times and access count, a new version id,
// the raw blob gone after the retire delay, a reader of the raw blob
// unaffected.
func TestColdCompressibleEntriesAreCompressedInPlace(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	store, err := blobstore.Open(root, blobstore.Options{Compression: blobstore.Auto, DeferCompression: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := manifest.Open(ctx, filepath.Join(root, "manifest.db"),
		manifest.Options{SyncNormal: true, AccessFlushInterval: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	commit := func(key string, data []byte) manifest.Entry {
		st, err := store.CreateStaged()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.File().WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		p, err := store.Publish(ctx, st, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		if p.Blob.Compressed {
			t.Fatalf("%s: compressed at commit despite DeferCompression", key)
		}
		e, _, err := db.Commit(ctx, manifest.Entry{Symbol: "AAPL", Key: key, Path: p.Blob.Path,
			FileSize: p.Blob.StoredSize, LogicalSize: int64(len(data)), Hash: "0", HashMethod: "full",
			Compressible: p.Blob.Compressible})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	text := bytes.Repeat([]byte("PAR1 bid 101.25 ask 101.27 "), 200_000)
	noise := make([]byte, 3<<20)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	flat := commit("flat", text)
	random := commit("random", noise)
	if !flat.Compressible || random.Compressible {
		t.Fatalf("trial marks: flat %v, random %v", flat.Compressible, random.Compressible)
	}
	db.RecordAccess(flat.ID, clk.Now())
	if err := db.FlushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	flat, _ = db.GetByID(ctx, flat.ID)

	retirer := cache.NewRetirer(db, store, 10*time.Millisecond, nil)
	c := New(db, store, retirer, time.Hour, clk.Now, nil)
	if n, err := c.Pass(ctx); err != nil || n != 0 {
		t.Fatalf("Pass while hot = %d, %v", n, err)
	}
	reader, err := store.OpenBlob(flat.Path) // open across the change
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	clk.Advance(2 * time.Hour)
	if n, err := c.Pass(ctx); err != nil || n != 1 {
		t.Fatalf("Pass when cold = %d, %v; want the compressible entry", n, err)
	}

	got, err := db.Get(ctx, "AAPL", "flat")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == flat.ID || !strings.HasSuffix(got.Path, ".parquet.zst") || got.Compressible ||
		got.FileSize >= flat.FileSize || got.LogicalSize != flat.LogicalSize ||
		got.CreatedTS != flat.CreatedTS || got.ModTimeNS != flat.ModTimeNS ||
		got.LastAccessedTS != flat.LastAccessedTS || got.AccessCount != flat.AccessCount || got.Hash != flat.Hash {
		t.Fatalf("after compaction\n %+v\nwas\n %+v", got, flat)
	}
	rd, err := store.OpenBlob(got.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	buf := make([]byte, rd.Size())
	if _, err := rd.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, text) {
		t.Fatalf("compressed blob reads back different bytes (%v)", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(root, flat.Path)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("raw blob still there long after the retire delay")
		}
	}
	if _, err := reader.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, text) {
		t.Fatalf("a reader of the raw blob lost its bytes (%v)", err)
	}
	if r, _ := db.Get(ctx, "AAPL", "random"); r.Path != random.Path {
		t.Fatalf("the incompressible entry was rewritten: %+v", r)
	}
	if n, err := c.Pass(ctx); err != nil || n != 0 {
		t.Fatalf("second Pass = %d, %v; want nothing left", n, err)
	}
}
