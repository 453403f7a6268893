package fusefs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/manifest"
)

// newTestFS is an FS over a fresh cache root, without a mount: enough to
// drive content and commit directly.
func newTestFS(t *testing.T) *FS {
	t.Helper()
	root := t.TempDir()
	ctx := context.Background()
	c, err := cache.Open(ctx, root, cache.Options{Create: true,
		Manifest: manifest.Options{SyncNormal: true}, Blobs: blobstore.Options{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fsys, err := New(ctx, Config{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fsys.Close)
	return fsys
}

// The hash fed by sequential writes must equal sha256sum of the committed
// bytes however the writer got there: out of order, overwriting, truncating.
func TestCommitHashMatchesBytesWhateverTheWriteOrder(t *testing.T) {
	pq, err := os.ReadFile(filepath.Join("..", "hashing", "testdata", "no_time.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	half := int64(len(pq) / 2)
	garbage := make([]byte, 100)
	type op struct {
		data     []byte
		off      int64
		truncate int64 // when data is nil
	}
	cases := []struct {
		name string
		ops  []op
		// incremental: the writes kept the prefix hash (no full re-read).
		incremental bool
	}{
		{"front to back", []op{{data: pq[:half]}, {data: pq[half:], off: half}}, true},
		{"back to front", []op{{data: pq[half:], off: half}, {data: pq[:half]}}, true},
		{"hole filled last", []op{{data: pq[:10]}, {data: pq[half:], off: half}, {data: pq[10:half], off: 10}}, true},
		{"overwrite below", []op{{data: pq}, {data: garbage, off: 20}, {data: pq[20:120], off: 20}}, false},
		{"truncate and rewrite", []op{{data: pq[:half]}, {truncate: 0}, {data: pq}}, true},
		{"truncate a longer file", []op{{data: pq}, {data: garbage, off: int64(len(pq))}, {truncate: int64(len(pq))}}, false},
		{"truncate below, then rewrite", []op{{data: pq}, {truncate: half}, {data: pq[half:], off: half}}, false},
		{"truncate up, then fill", []op{{data: pq[:half]}, {truncate: int64(len(pq))}, {data: pq[half:], off: half}}, true},
	}
	want := sha256.Sum256(pq)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := newTestFS(t)
			ctx := context.Background()
			c := newContent(fsys, nil, true)
			for _, o := range tc.ops {
				if o.data == nil {
					if err := c.truncate(ctx, o.truncate); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if _, err := c.writeAt(ctx, o.data, o.off); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.prefix != nil; got != tc.incremental {
				t.Errorf("prefix hash kept = %v, want %v", got, tc.incremental)
			}
			key := hex.EncodeToString([]byte{byte(i)})
			v, err := fsys.commit(ctx, "SYM", key, c)
			if err != nil {
				t.Fatal(err)
			}
			if v.hashHex() != hex.EncodeToString(want[:]) || v.hashMethod() != "full" {
				t.Errorf("committed hash %s (%s), want full %x", v.hashHex(), v.hashMethod(), want)
			}
		})
	}
}

func TestHeadMismatch(t *testing.T) {
	for _, tc := range []struct {
		data string
		off  int64
		want bool
	}{
		{"PAR1rest", 0, false},
		{"PA", 0, false},
		{"R1", 2, false},
		{"", 0, false},
		{"hello\n", 0, true},
		{"PAX", 0, true},
		{"X", 3, true},
		{"anything", 4, false},
		{"tail", 1 << 20, false},
	} {
		if got := headMismatch([]byte(tc.data), tc.off); got != tc.want {
			t.Errorf("headMismatch(%q, %d) = %v, want %v", tc.data, tc.off, got, tc.want)
		}
	}
}
