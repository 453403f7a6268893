package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/blobstore"
	"featurefs/gc"
	"featurefs/manifest"
)

func statsCommand() *cli.Command {
	flags := []cli.Flag{cacheRootFlag()}
	// Only the retention matters here: it says which entries the next gc
	// would expire.
	for _, f := range retentionFlags() {
		if n := f.Names()[0]; n == "retention" || n == "retention-weeks" {
			flags = append(flags, f)
		}
	}
	flags = append(flags, outputJSONFlag(), jsonFlag(), verboseFlag())
	return &cli.Command{
		Name:         "stats",
		Usage:        "cache overview: entries, symbols, sizes, oldest/newest, entries past the retention",
		Flags:        flags,
		OnUsageError: commandUsageError,
		Action:       runStats,
	}
}

// statsReport is what stats prints; with --json, as is.
type statsReport struct {
	CacheRoot    string `json:"cache_root"`
	Entries      int64  `json:"entries"`
	Symbols      int64  `json:"symbols"`
	LogicalBytes int64  `json:"logical_bytes"`
	StoredBytes  int64  `json:"stored_bytes"`
	// CompressionRatio is logical over stored bytes (0 when empty).
	CompressionRatio float64    `json:"compression_ratio"`
	OldestCreated    *time.Time `json:"oldest_created,omitempty"`
	NewestCreated    *time.Time `json:"newest_created,omitempty"`
	OldestAccessed   *time.Time `json:"oldest_accessed,omitempty"`
	RetentionSeconds float64    `json:"retention_seconds"`
	// PastRetention counts the entries the next gc would expire.
	PastRetention      int64            `json:"past_retention_entries"`
	PastRetentionBytes int64            `json:"past_retention_stored_bytes"`
	ByHashMethod       map[string]int64 `json:"by_hash_method"`
	LastGC             *lastGC          `json:"last_gc,omitempty"`
}

// lastGC is the gist of the last gc report.
type lastGC struct {
	Finished time.Time  `json:"finished"`
	DryRun   bool       `json:"dry_run"`
	Summary  gc.Summary `json:"summary"`
}

func runStats(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("stats takes no arguments, got %q", c.Args().First())
	}
	ret, err := retention(c)
	if err != nil {
		return err
	}
	cache, err := openCache(c, false, cliManifestOptions(newLogger(c)), blobstore.Options{})
	if err != nil {
		return err
	}
	defer cache.Close()

	rep, err := collectStats(c, cache, ret)
	if err != nil {
		return err
	}
	return emit(c, rep, func(w io.Writer) { printStats(w, rep) })
}

func collectStats(c *cli.Context, cache *openedCache, ret time.Duration) (*statsReport, error) {
	ctx := c.Context
	st, err := cache.db.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", cache.root, err)
	}
	rep := &statsReport{
		CacheRoot:        cache.root,
		Entries:          st.Entries,
		Symbols:          st.Symbols,
		LogicalBytes:     st.LogicalBytes,
		StoredBytes:      st.StoredBytes,
		OldestCreated:    unixTime(st.OldestCreatedTS),
		NewestCreated:    unixTime(st.NewestCreatedTS),
		OldestAccessed:   unixTime(st.OldestAccessedTS),
		RetentionSeconds: ret.Seconds(),
		ByHashMethod:     st.ByMethod,
	}
	if rep.ByHashMethod == nil {
		rep.ByHashMethod = map[string]int64{}
	}
	if st.StoredBytes > 0 {
		rep.CompressionRatio = float64(st.LogicalBytes) / float64(st.StoredBytes)
	}
	// Streams the expired entries only, oldest first; the same cutoff gc
	// uses (whole seconds), so the count matches what a run would expire.
	cutoff := time.Now().Add(-ret).Truncate(time.Second)
	err = cache.db.EachAccessedBefore(ctx, cutoff, func(e manifest.Entry) error {
		rep.PastRetention++
		rep.PastRetentionBytes += e.FileSize
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("stats %s: entries past retention: %w", cache.root, err)
	}
	if data, err := gc.LastReport(cache.root); err == nil {
		var last lastGC
		if json.Unmarshal(data, &last) == nil && !last.Finished.IsZero() {
			rep.LastGC = &last
		}
	}
	return rep, nil
}

// unixTime turns the manifest's Unix seconds into a time, nil for "none".
func unixTime(sec int64) *time.Time {
	if sec == 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

func printStats(w io.Writer, rep *statsReport) {
	tw := newTable(w)
	tw.row("cache root", rep.CacheRoot)
	tw.row("entries", fmt.Sprintf("%s in %s", nouns(rep.Entries, "entry", "entries"), nouns(rep.Symbols, "symbol", "symbols")))
	tw.row("logical size", humanBytes(rep.LogicalBytes))
	stored := humanBytes(rep.StoredBytes)
	if rep.CompressionRatio > 0 {
		stored += fmt.Sprintf(" (compression ratio %.2fx)", rep.CompressionRatio)
	}
	tw.row("stored size", stored)
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), humanDuration(time.Since(*t)))
	}
	tw.row("oldest entry", when(rep.OldestCreated))
	tw.row("newest entry", when(rep.NewestCreated))
	tw.row("oldest access", when(rep.OldestAccessed))
	tw.row("past retention", fmt.Sprintf("%s, %s (not accessed for %s; the next gc deletes them)",
		nouns(rep.PastRetention, "entry", "entries"), humanBytes(rep.PastRetentionBytes),
		humanDuration(time.Duration(rep.RetentionSeconds*float64(time.Second)))))
	methods := make([]string, 0, len(rep.ByHashMethod))
	for _, m := range slices.Sorted(maps.Keys(rep.ByHashMethod)) {
		methods = append(methods, fmt.Sprintf("%s %s", m, count(rep.ByHashMethod[m])))
	}
	if len(methods) == 0 {
		methods = append(methods, "-")
	}
	tw.row("hash methods", strings.Join(methods, ", "))
	if g := rep.LastGC; g != nil {
		kind := "gc"
		if g.DryRun {
			kind = "gc dry run"
		}
		tw.row("last gc", fmt.Sprintf("%s %s: %s, %s", kind, g.Finished.Format(time.RFC3339),
			nouns(g.Summary.TotalFilesDeleted, "file", "files"), humanBytes(g.Summary.TotalBytesFreed)))
	} else {
		tw.row("last gc", "never")
	}
	tw.flush()
}
