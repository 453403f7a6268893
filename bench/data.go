package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Bytes per row of the generated tables, measured with DuckDB: they turn a
// target size into a row count (the files come out within a few percent).
const (
	snappyBytesPerRow = 33.8
	centsBytesPerRow  = 20.7
	smallTemplates    = 16
)

// pandasMeta is the footer key-value metadata pandas writes; featurefs
// takes the time range from the index column it names.
const pandasMeta = `{"index_columns": ["__index_level_0__"], "column_indexes": [], ` +
	`"columns": [{"name": null, "field_name": "__index_level_0__", "pandas_type": "datetime", "numpy_type": "datetime64[ns]", "metadata": null}], ` +
	`"creator": {"library": "pyarrow", "version": "17.0.0"}, "pandas_version": "2.2.2"}`

// ticksSQL writes rows of tick data, snappy, as pandas would (timestamp
// column, symbol, price, size, bid/ask, trade id, the timestamp index).
// Format v2 pages (delta and byte-stream-split encodings) leave little for
// zstd to find, as with real snappy parquet: featurefs's auto mode stores
// such a file raw.
func ticksSQL(rows int64, path string) string {
	return fmt.Sprintf(`COPY (
  SELECT ts, 'AAPL' AS symbol, 100 + random() * 200 AS price,
         (1 + hash(i * 3) %% 5000)::INTEGER AS size,
         100 + random() * 200 AS bid, 100 + random() * 200 AS ask,
         hash(i * 11) AS trade_id, ts AS __index_level_0__
  FROM (SELECT i, TIMESTAMP '2024-01-02 09:30:00' + to_microseconds(i * 1000 + (hash(i) %% 1000)::BIGINT) AS ts
        FROM range(%d) t(i))
) TO '%s' (FORMAT parquet, COMPRESSION snappy, PARQUET_VERSION V2, KV_METADATA {pandas: '%s'})`,
		rows, path, pandasMeta)
}

// centsSQL writes uncompressed tick data with prices rounded to cents:
// zstd shrinks it several times.
func centsSQL(rows int64, path string) string {
	return fmt.Sprintf(`COPY (
  SELECT ts, 'MSFT' AS symbol, round(400 + random() * 5, 2) AS price,
         (1 + hash(i * 3) %% 500)::INTEGER AS size,
         round(399.9 + random() * 5, 2) AS bid, round(400.1 + random() * 5, 2) AS ask,
         ts AS __index_level_0__
  FROM (SELECT i, TIMESTAMP '2024-01-02 09:30:00' + to_microseconds(i * 1000) AS ts FROM range(%d) t(i))
) TO '%s' (FORMAT parquet, COMPRESSION uncompressed, KV_METADATA {pandas: '%s'})`,
		rows, path, pandasMeta)
}

// generate makes every input file the run needs, reusing those present.
func generate(ctx context.Context, cfg config, l layout) error {
	for _, d := range []string{l.native, l.src, l.scratch, filepath.Join(l.native, "ticks"), filepath.Join(l.native, "cents")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	headSize := min(96<<20, cfg.size/8)
	parquets := []struct {
		path string
		sql  func(rows int64, path string) string
		size int64
		rate float64
	}{
		{filepath.Join(l.native, ticksEntry), ticksSQL, cfg.size, snappyBytesPerRow},
		{filepath.Join(l.native, headEntry), ticksSQL, headSize, snappyBytesPerRow},
		{filepath.Join(l.native, centsEntry), centsSQL, cfg.size, centsBytesPerRow},
		{filepath.Join(l.src, commitSource), ticksSQL, 1 << 20, snappyBytesPerRow},
	}
	for _, p := range parquets {
		rows := max(int64(float64(p.size)/p.rate), 100)
		if err := duckFile(ctx, cfg.featureDir, p.path, func(tmp string) string { return p.sql(rows, tmp) }); err != nil {
			return err
		}
	}
	tiny := filepath.Join(l.src, tinySource)
	if err := duckFile(ctx, cfg.featureDir, tiny, func(tmp string) string {
		return fmt.Sprintf("COPY (SELECT i AS v FROM range(10) t(i)) TO '%s' (FORMAT parquet)", tmp)
	}); err != nil {
		return err
	}
	// Small entries of 4-16 KiB: a few distinct files, copied under many names.
	var templates [][]byte
	for k := range smallTemplates {
		path := filepath.Join(l.src, fmt.Sprintf("small-%02d.parquet", k))
		rows := 71 + 24*int64(k) // 4-16 KiB
		if err := duckFile(ctx, cfg.featureDir, path, func(tmp string) string { return ticksSQL(rows, tmp) }); err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		templates = append(templates, data)
	}
	if err := fillDir(filepath.Join(l.native, smallSymbol), smallName, cfg.small, func(i int) []byte { return templates[i%len(templates)] }); err != nil {
		return err
	}
	// The second engine's glob: 1 MiB tick files, the commit source's bytes.
	commit, err := os.ReadFile(filepath.Join(l.src, commitSource))
	if err != nil {
		return err
	}
	if err := fillDir(filepath.Join(l.native, scanSymbol), scanName, scanFiles, func(int) []byte { return commit }); err != nil {
		return err
	}
	if cfg.listing > 0 {
		data, err := os.ReadFile(tiny)
		if err != nil {
			return err
		}
		if err := fillDir(filepath.Join(l.native, listSymbol), listName, cfg.listing, func(int) []byte { return data }); err != nil {
			return err
		}
	}
	return squashImage(ctx, l)
}

func smallName(i int) string { return fmt.Sprintf("s%05d.parquet", i) }
func listName(i int) string  { return fmt.Sprintf("l%06d.parquet", i) }
func scanName(i int) string  { return fmt.Sprintf("f%03d.parquet", i) }

// duckFile writes path with DuckDB unless it exists; the file appears
// whole or not at all.
func duckFile(ctx context.Context, module, path string, sql func(tmp string) string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	logf("generating %s", filepath.Base(path))
	tmp := path + ".tmp"
	if err := duck(ctx, module, sql(tmp)); err != nil {
		return fmt.Errorf("generate %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// fillDir makes dir hold exactly files name(0..n-1) (extra files from a
// bigger earlier run are removed).
func fillDir(dir string, name func(int) string, n int, data func(int) []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	want := make(map[string]bool, n)
	for i := range n {
		want[name(i)] = true
	}
	have := make(map[string]bool, len(ents))
	for _, e := range ents {
		if !want[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			continue
		}
		have[e.Name()] = true
	}
	if len(have) < n {
		logf("writing %d files into %s", n-len(have), filepath.Base(dir))
	}
	for i := range n {
		if have[name(i)] {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name(i)), data(i), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// squashImage packs native/cents with zstd for squashfuse.
func squashImage(ctx context.Context, l layout) error {
	src, err := os.Stat(filepath.Join(l.native, centsEntry))
	if err != nil {
		return err
	}
	if img, err := os.Stat(l.image); err == nil && img.ModTime().After(src.ModTime()) {
		return nil
	}
	logf("building the squashfs image")
	tmp := l.image + ".tmp"
	out, err := exec.CommandContext(ctx, "mksquashfs", filepath.Join(l.native, "cents"), tmp,
		"-comp", "zstd", "-noappend", "-quiet").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mksquashfs: %w: %s", err, out)
	}
	return os.Rename(tmp, l.image)
}
