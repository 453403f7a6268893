package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/blobstore"
	"featurefs/gc"
)

func gcCommand() *cli.Command {
	flags := []cli.Flag{
		cacheRootFlag(),
		&cli.BoolFlag{
			Name:    "dry-run",
			Usage:   "report what would be deleted and delete nothing",
			EnvVars: []string{"FEATURE_STORE_GC_DRY_RUN"},
		},
		// Hidden: the default outlasts the window in which a mounted daemon
		// coalesces opens; only tests have a reason to shorten it.
		&cli.DurationFlag{
			Name:   "settle",
			Usage:  "wait this long for other processes to write pending accesses",
			Value:  gc.DefaultSettle,
			Hidden: true,
		},
	}
	flags = append(flags, retentionFlags()...)
	flags = append(flags, outputJSONFlag(), jsonFlag(), verboseFlag())
	return &cli.Command{
		Name:  "gc",
		Usage: "run one garbage collection on a cache root, mounted or not",
		Description: `Removes manifest rows whose blob is missing or damaged (damaged blobs are
moved to quarantine/), entries not accessed within the retention, the least
recently accessed entries beyond --max-size, and unreferenced blobs and
staging files older than --orphan-grace; then checkpoints and compacts the
manifest. Safe while a daemon serves the cache root: runs on one cache root
are serialised by a lock, and in-flight writes and commits are never touched.

Exit status: 0 when the run went cleanly, 1 when it found integrity issues or
hit errors, 2 on a usage error.`,
		Flags:        flags,
		OnUsageError: commandUsageError,
		Action:       runGC,
	}
}

func runGC(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("gc takes no arguments, got %q", c.Args().First())
	}
	ret, err := retention(c)
	if err != nil {
		return err
	}
	capBytes, err := maxSize(c)
	if err != nil {
		return err
	}
	grace := c.Duration("orphan-grace")
	if grace <= 0 {
		return usageError("--orphan-grace must be positive, got %s", grace)
	}
	settle := c.Duration("settle")
	if settle < 0 {
		return usageError("--settle must not be negative, got %s", settle)
	}
	if settle == 0 {
		settle = -1 // gc.Options reads zero as the default
	}

	log := newLogger(c)
	cache, err := openCache(c, false, cliManifestOptions(log), blobstore.Options{})
	if err != nil {
		return err
	}
	defer cache.Close()

	rep, runErr := gc.Run(c.Context, cache.db, cache.store, gc.Options{
		Retention:   ret,
		MaxSize:     capBytes,
		OrphanGrace: grace,
		DryRun:      c.Bool("dry-run"),
		Settle:      settle,
		Logger:      log,
		Failpoint:   failpointFromEnv(),
	})
	if rep != nil {
		if err := emit(c, rep, func(w io.Writer) { printGCReport(w, rep) }); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("gc %s: %w", cache.root, runErr)
	}
	if rep.Summary.IntegrityIssues > 0 || rep.Summary.Errors > 0 {
		// The report already says what went wrong.
		return cli.Exit("", exitIssues)
	}
	return nil
}

func printGCReport(w io.Writer, rep *gc.Report) {
	s := rep.Summary
	verb, freed := "deleted", "freed"
	if rep.DryRun {
		verb, freed = "would delete", "would free"
	}
	tw := newTable(w)
	if rep.DryRun {
		tw.row("mode", "dry run: nothing was changed")
	}
	tw.row("cache root", rep.CacheRoot)
	tw.row("expired", fmt.Sprintf("%s (not accessed for %s)", nouns(s.ExpiredEntries, "entry", "entries"),
		humanDuration(time.Duration(rep.Settings.RetentionSeconds*float64(time.Second)))))
	if rep.Settings.MaxSizeBytes > 0 {
		tw.row("evicted", fmt.Sprintf("%s (size cap %s)", nouns(s.EvictedEntries, "entry", "entries"), humanBytes(rep.Settings.MaxSizeBytes)))
	}
	quarantined := "quarantined"
	if rep.DryRun {
		quarantined = "to quarantine"
	}
	tw.row("orphans", nouns(s.OrphanedFiles, "file", "files"))
	tw.row("integrity", fmt.Sprintf("%s, %s %s", nouns(s.IntegrityIssues, "issue", "issues"),
		nouns(s.QuarantinedFiles, "blob", "blobs"), quarantined))
	tw.row("total", fmt.Sprintf("%s %s, %s %s", verb, nouns(s.TotalFilesDeleted, "file", "files"), freed, humanBytes(s.TotalBytesFreed)))
	tw.row("took", humanDuration(time.Duration(rep.DurationSeconds*float64(time.Second))))
	tw.flush()
	for _, i := range rep.IntegrityIssues {
		fmt.Fprintf(w, "issue: %s/%s (%s): %s, %s\n", i.Symbol, i.Key, i.Path, i.Problem, i.Action)
	}
	if n := s.IntegrityIssues - int64(len(rep.IntegrityIssues)); n > 0 {
		fmt.Fprintf(w, "issue: ... and %s more\n", count(n))
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
