package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"featurefs/blobstore"
	"featurefs/hashing"
	"featurefs/manifest"
)

// seedEntry is one file to commit into a cache root before it is mounted.
type seedEntry struct {
	symbol, key string
	src         string // path of the parquet
}

// seed commits entries into the cache root at root through featurefs's own
// packages, in the order a close through the mount uses (validate, hash,
// describe, publish, manifest row) but without the fsyncs: building 100k
// entries through the mount would take many minutes of fsync, and only
// reads of these entries are timed. The commit path itself is timed by the
// write tests, through the mount.
func seed(ctx context.Context, root string, compression blobstore.Compression, entries []seedEntry) (err error) {
	marker := root + ".seeded"
	want := seedSignature(fmt.Sprintf("compression=%s frame=%d", compression, blobstore.DefaultFrameSize), entries)
	if have, err := os.ReadFile(marker); err == nil && string(have) == want {
		return nil
	}
	logf("seeding %d entries into %s", len(entries), filepath.Base(root))
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	store, err := blobstore.Open(root, blobstore.Options{Compression: compression, NoSync: true})
	if err != nil {
		return err
	}
	defer store.Close()
	db, err := manifest.Open(ctx, filepath.Join(root, "manifest.db"), manifest.Options{SyncNormal: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()

	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // the manifest batches concurrent commits into one transaction
	for _, e := range entries {
		g.Go(func() error { return seedOne(ctx, store, db, e) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(want), 0o644)
}

func seedOne(ctx context.Context, store *blobstore.Store, db *manifest.DB, e seedEntry) error {
	src, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := store.CreateStaged()
	if err != nil {
		return err
	}
	defer st.Close()
	f := st.File()
	size, err := io.Copy(f, src)
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	info, err := hashing.Inspect(f, size)
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	sum, err := hashing.Hash(ctx, f, size, hashing.DefaultFooterThreshold)
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	pub, err := store.Publish(ctx, st, size)
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	defer pub.Release()
	_, _, err = db.Commit(ctx, manifest.Entry{
		Symbol:      e.symbol,
		Key:         e.key,
		Path:        pub.Blob.Path,
		StartTS:     info.StartTS,
		EndTS:       info.EndTS,
		Rows:        info.Rows,
		FileSize:    pub.Blob.StoredSize,
		LogicalSize: size,
		Hash:        sum.Hex,
		HashMethod:  string(sum.Method),
	})
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	return nil
}

// seedSignature names what a seeded root holds, so a rerun with the same
// inputs reuses it and any change rebuilds it: what holds them (for
// featurefs, the compression and the frame size zstd blobs are cut in),
// entries and bytes per symbol, and the identity of every big file.
func seedSignature(holder string, entries []seedEntry) string {
	type tally struct{ n, bytes int64 }
	per := map[string]*tally{}
	var b strings.Builder
	b.WriteString(holder + "\n")
	for _, e := range entries {
		fi, err := os.Stat(e.src)
		if err != nil {
			continue
		}
		t := per[e.symbol]
		if t == nil {
			t = &tally{}
			per[e.symbol] = t
		}
		t.n++
		t.bytes += fi.Size()
		if fi.Size() > 1<<20 {
			fmt.Fprintf(&b, "%s/%s %d %d\n", e.symbol, e.key, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	syms := slices.Sorted(maps.Keys(per))
	for _, sym := range syms {
		fmt.Fprintf(&b, "%s: %d entries, %d bytes\n", sym, per[sym].n, per[sym].bytes)
	}
	return b.String()
}

// nativeEntries lists the files under the native tree's symbols as entries.
func nativeEntries(native string, symbols ...string) ([]seedEntry, error) {
	var out []seedEntry
	for _, sym := range symbols {
		ents, err := os.ReadDir(filepath.Join(native, sym))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			key, ok := strings.CutSuffix(e.Name(), ".parquet")
			if !ok || e.IsDir() {
				continue
			}
			out = append(out, seedEntry{symbol: sym, key: key, src: filepath.Join(native, sym, e.Name())})
		}
	}
	return out, nil
}
