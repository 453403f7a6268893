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
	"featurefs/cache"
	"featurefs/manifest"
)

// seedEntry is one file to commit into a cache root before it is mounted.
type seedEntry struct {
	symbol, key string
	src         string // path of the parquet
}

// seed commits entries into the cache root at root through the commit
// sequence a close through the mount uses (cache.Put), without the fsyncs: building 100k
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
	c, err := cache.Open(ctx, root, cache.Options{
		Create:   true,
		Manifest: manifest.Options{SyncNormal: true},
		Blobs:    blobstore.Options{Compression: compression, NoSync: true},
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()

	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // the manifest batches concurrent commits into one transaction
	for _, e := range entries {
		g.Go(func() error { return seedOne(ctx, c, e) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(want), 0o644)
}

func seedOne(ctx context.Context, c *cache.Cache, e seedEntry) error {
	src, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := c.Blobs().CreateStaged()
	if err != nil {
		return err
	}
	defer st.Close()
	size, err := io.Copy(st.File(), src)
	if err != nil {
		return fmt.Errorf("seed %s/%s: %w", e.symbol, e.key, err)
	}
	if _, _, err := c.Put(ctx, cache.Put{Symbol: e.symbol, Key: e.key, Staged: st, Size: size}); err != nil {
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
