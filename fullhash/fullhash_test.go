package fullhash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"featurefs/blobstore"
	"featurefs/manifest"
)

func TestPassHashesFooterEntriesOnce(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, comp := range []blobstore.Compression{blobstore.None, blobstore.Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			store, err := blobstore.Open(root, blobstore.Options{Compression: comp, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			db, err := manifest.Open(ctx, filepath.Join(t.TempDir(), "manifest.db"),
				manifest.Options{SyncNormal: true, AccessFlushInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			commit := func(key string, data []byte, method string) manifest.Entry {
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
				e, _, err := db.Commit(ctx, manifest.Entry{Symbol: "AAPL", Key: key, Path: p.Blob.Path,
					FileSize: p.Blob.StoredSize, LogicalSize: int64(len(data)), Hash: "0", HashMethod: method})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			data := bytes.Repeat([]byte("featurefs "), 100_000)
			big := commit("big", data, "footer")
			small := commit("small", data[:100], "full")
			damaged := commit("damaged", data, "footer")
			if err := os.Truncate(filepath.Join(root, damaged.Path), 10); err != nil {
				t.Fatal(err)
			}

			h := New(db, store, nil)
			n, err := h.Pass(ctx)
			if err != nil || n != 1 {
				t.Fatalf("Pass = %d, %v; want 1 hashed", n, err)
			}
			want := sha256.Sum256(data)
			if got, _ := db.GetByID(ctx, big.ID); got.FullHash != hex.EncodeToString(want[:]) {
				t.Fatalf("FullHash = %q, want sha256 of the bytes", got.FullHash)
			}
			if got, _ := db.GetByID(ctx, small.ID); got.FullHash != "" {
				t.Fatalf("a fully hashed entry got a full hash too: %q", got.FullHash)
			}
			if got, _ := db.GetByID(ctx, damaged.ID); got.FullHash != "" {
				t.Fatalf("a damaged blob was hashed: %q", got.FullHash)
			}
			if n, err := h.Pass(ctx); err != nil || n != 0 {
				t.Fatalf("second Pass = %d, %v; want nothing left", n, err)
			}
		})
	}
}
