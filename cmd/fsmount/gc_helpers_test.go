package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"featurefs/blobstore"
	"featurefs/fullhash"
	"featurefs/hashing"
	"featurefs/manifest"
)

// Helpers shared by the gc, stats and verify command tests.

// fsmountT runs the command line in-process and returns its exit code and
// output. The variables the commands read are cleared first so the caller's
// environment cannot leak in; env sets some for this call.
func fsmountT(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for _, k := range []string{"FEATURE_STORE_PATH", "FEATURE_STORE_GC_RETENTION_WEEKS", "FEATURE_STORE_GC_DRY_RUN"} {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"fsmount"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// decodeJSON decodes a command's --json output into a generic map.
func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, s)
	}
	return m
}

// field walks a decoded JSON object along keys.
func field(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var v any = m
	for _, k := range keys {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q", strings.Join(keys, "."), k)
		}
		if v, ok = obj[k]; !ok {
			t.Fatalf("JSON lacks %s", strings.Join(keys, "."))
		}
	}
	return v
}

// entrySpec describes an entry a fixture commits.
type entrySpec struct {
	symbol, key string
	rows        int
	// age is how long ago the entry was committed and last accessed.
	age time.Duration
	// footerHash commits it with a footer hash, as a file above the
	// threshold would be.
	footerHash bool
}

// fixture is a cache root populated for a command test. Its manifest is
// closed again, so the command under test is its only user.
type fixture struct {
	root    string
	entries map[string]manifest.Entry // by symbol/key
	data    map[string][]byte         // parquet bytes by symbol/key
}

func newFixture(t *testing.T, compression blobstore.Compression, specs ...entrySpec) *fixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	store, err := blobstore.Open(root, blobstore.Options{Compression: compression, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var now time.Time
	db, err := manifest.Open(ctx, filepath.Join(root, "manifest.db"), manifest.Options{
		SyncNormal: true, AccessFlushInterval: -1, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &fixture{root: root, entries: map[string]manifest.Entry{}, data: map[string][]byte{}}
	for _, s := range specs {
		now = time.Now().Add(-s.age)
		data := parquetBytes(t, s.rows)
		threshold := int64(hashing.DefaultFooterThreshold)
		if s.footerHash {
			threshold = 0
		}
		sum, err := hashing.Hash(ctx, bytes.NewReader(data), int64(len(data)), threshold)
		if err != nil {
			t.Fatal(err)
		}
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
		e, _, err := db.Commit(ctx, manifest.Entry{
			Symbol: s.symbol, Key: s.key, Path: p.Blob.Path,
			FileSize: p.Blob.StoredSize, LogicalSize: p.Blob.LogicalSize,
			Rows: int64(s.rows), Hash: sum.Hex, HashMethod: string(sum.Method),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Release(); err != nil {
			t.Fatal(err)
		}
		f.entries[s.symbol+"/"+s.key] = e
		f.data[s.symbol+"/"+s.key] = data
	}
	return f
}

// path is the absolute path of a cache-root-relative path.
func (f *fixture) path(rel string) string { return filepath.Join(f.root, filepath.FromSlash(rel)) }

// blob is the absolute path of an entry's blob.
func (f *fixture) blob(name string) string { return f.path(f.entries[name].Path) }

// orphan writes an unreferenced blob of the given age.
func (f *fixture) orphan(t *testing.T, age time.Duration) string {
	t.Helper()
	rel := "blobs/00/00/0123456789abcdef0123456789abcdef.parquet"
	if err := os.MkdirAll(filepath.Dir(f.path(rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path(rel), []byte("PAR1 orphan PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(f.path(rel), old, old); err != nil {
		t.Fatal(err)
	}
	return rel
}

// has reports whether the manifest still holds symbol/key.
func (f *fixture) has(t *testing.T, name string) bool {
	t.Helper()
	db, err := manifest.Open(context.Background(), filepath.Join(f.root, "manifest.db"), manifest.Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sym, key, _ := strings.Cut(name, "/")
	_, err = db.Get(context.Background(), sym, key)
	return err == nil
}

// parquetBytes is a valid parquet file with a timestamp column.
func parquetBytes(t *testing.T, rows int) []byte {
	t.Helper()
	type row struct {
		TS    time.Time `parquet:"ts,timestamp(millisecond)"`
		Price float64   `parquet:"price"`
	}
	rs := make([]row, rows)
	for i := range rs {
		// Cent-rounded prices repeat, so the zstd fixtures do compress.
		rs[i] = row{TS: time.Unix(1_700_000_000+int64(i), 0), Price: float64(100_00+i%50) / 100}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf)
	if _, err := w.Write(rs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fullHash stores the full hash of every footer-hashed entry, as a mounted
// daemon does after the commit.
func (f *fixture) fullHash(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	store, err := blobstore.Open(f.root, blobstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := manifest.Open(ctx, filepath.Join(f.root, "manifest.db"), manifest.Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := fullhash.New(db, store, nil).Pass(ctx); err != nil {
		t.Fatal(err)
	}
}
