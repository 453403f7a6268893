package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/gc"
	"featurefs/hashing"
	"featurefs/manifest"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "integrity report: missing blobs, size mismatches, unreferenced blobs; --deep re-hashes every blob",
		Description: `Checks every manifest row against its blob and every blob against the
manifest, changing nothing (gc repairs what verify reports). With --deep it
also reads every blob back through the store and compares its hash with the
row's. Safe while a daemon serves the cache root.

It warns when the cache root's mode lets other users in, and when anything
featurefs keeps there is more open than 0600 (files) or 0700 (directories);
warnings leave the exit status alone.

Exit status: 0 when clean, 1 when issues were found, 2 on a usage error.`,
		Flags: []cli.Flag{
			cacheRootFlag(),
			&cli.BoolFlag{Name: "deep", Usage: "re-hash every blob and compare with the manifest"},
			&cli.StringFlag{
				Name: "footer-hash-threshold",
				Usage: "size above which a file gets a footer hash; used for rows that do not " +
					"record their hash method (a row's recorded method always wins)",
				Value: humanSize(hashing.DefaultFooterThreshold),
			},
			&cli.DurationFlag{
				Name:  "orphan-grace",
				Usage: "unreferenced blobs younger than this are commits in flight, not issues",
				Value: gc.DefaultOrphanGrace,
			},
			outputJSONFlag(), jsonFlag(), verboseFlag(),
		},
		OnUsageError: commandUsageError,
		Action:       runVerify,
	}
}

// Problems verify finds beyond those of gc.Check.
const (
	problemHashMismatch        = "hash_mismatch"
	problemLogicalSizeMismatch = "logical_size_mismatch"
	problemUnreadable          = "unreadable_blob"
	problemUnreferenced        = "unreferenced_blob"
	// Not an issue: the daemon computes the full hash after the commit.
	problemNotYetHashed = "not_yet_hashed"
)

// maxListedIssues caps the issues listed one by one; the summary counts all.
const maxListedIssues = 1000

type verifyReport struct {
	CacheRoot       string        `json:"cache_root"`
	Deep            bool          `json:"deep"`
	Started         time.Time     `json:"started"`
	DurationSeconds float64       `json:"duration_seconds"`
	EntriesChecked  int64         `json:"entries_checked"`
	FilesChecked    int64         `json:"blob_files_checked"`
	Summary         verifySummary `json:"summary"`
	// Issues lists at most 1000 issues; Summary counts all.
	Issues []verifyIssue `json:"issues"`
	// NotYetHashed lists (at most 1000) entries --deep could check by their
	// footer hash only; Summary.NotYetHashed counts all.
	NotYetHashed []verifyIssue `json:"not_yet_hashed,omitempty"`
	// Warnings are about permissions: nothing is damaged, so they leave
	// Clean and the exit status alone.
	Warnings []string `json:"warnings"`
	Clean    bool     `json:"clean"`
}

type verifySummary struct {
	Issues            int64 `json:"issues"`
	MissingBlobs      int64 `json:"missing_blobs"`
	SizeMismatches    int64 `json:"size_mismatches"`
	BadRows           int64 `json:"bad_rows"`
	HashMismatches    int64 `json:"hash_mismatches"`
	UnreadableBlobs   int64 `json:"unreadable_blobs"`
	UnreferencedBlobs int64 `json:"unreferenced_blobs"`
	UnreferencedBytes int64 `json:"unreferenced_bytes"`
	// NotYetHashed counts entries committed with a footer hash whose full
	// hash has not landed yet (--deep): their bytes between the head and
	// the footer could not be checked. Not an issue.
	NotYetHashed int64 `json:"not_yet_hashed"`
}

type verifyIssue struct {
	Symbol  string `json:"symbol,omitempty"`
	Key     string `json:"key,omitempty"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Detail  string `json:"detail,omitempty"`
}

func (r *verifyReport) add(i verifyIssue) {
	s := &r.Summary
	s.Issues++
	switch i.Problem {
	case string(gc.MissingBlob):
		s.MissingBlobs++
	case string(gc.SizeMismatch):
		s.SizeMismatches++
	case string(gc.NotRegularFile), string(gc.BadPath):
		s.BadRows++
	case problemHashMismatch, problemLogicalSizeMismatch:
		s.HashMismatches++
	case problemUnreadable:
		s.UnreadableBlobs++
	case problemUnreferenced:
		s.UnreferencedBlobs++
	}
	if len(r.Issues) < maxListedIssues {
		r.Issues = append(r.Issues, i)
	}
}

func runVerify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("verify takes no arguments, got %q", c.Args().First())
	}
	threshold, err := parseSize(c.String("footer-hash-threshold"))
	if err != nil {
		return usageError("--footer-hash-threshold: %v", err)
	}
	grace := c.Duration("orphan-grace")
	if grace <= 0 {
		return usageError("--orphan-grace must be positive, got %s", grace)
	}
	log := newLogger(c)
	cache, err := openCache(c, false, cliManifestOptions(log), blobstore.Options{})
	if err != nil {
		return err
	}
	defer cache.Close()

	v := &verifier{
		ctx: c.Context, db: cache.db, store: cache.store,
		deep: c.Bool("deep"), threshold: threshold,
		rep: &verifyReport{CacheRoot: cache.root, Deep: c.Bool("deep"), Started: time.Now(), Issues: []verifyIssue{}, Warnings: []string{}},
	}
	if err := v.modes(cache.root); err != nil {
		return fmt.Errorf("verify %s: %w", cache.root, err)
	}
	if err := v.rows(); err != nil {
		return fmt.Errorf("verify %s: %w", cache.root, err)
	}
	if err := v.files(time.Now().Add(-grace)); err != nil {
		return fmt.Errorf("verify %s: %w", cache.root, err)
	}
	rep := v.rep
	rep.DurationSeconds = time.Since(rep.Started).Seconds()
	rep.Clean = rep.Summary.Issues == 0
	if err := emit(c, rep, func(w io.Writer) { printVerify(w, rep) }); err != nil {
		return err
	}
	if !rep.Clean {
		return cli.Exit("", exitIssues)
	}
	return nil
}

// verifier checks one cache root; it only reads.
type verifier struct {
	ctx       context.Context
	db        *manifest.DB
	store     *blobstore.Store
	deep      bool
	threshold int64
	rep       *verifyReport
}

// rows checks every row against its blob, streaming.
func (v *verifier) rows() error {
	return v.db.Each(v.ctx, func(e manifest.Entry) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		v.rep.EntriesChecked++
		problem, detail, err := v.checkRow(e)
		if err != nil || problem == "" {
			return err
		}
		// The iteration reads a snapshot; a row unlinked or replaced since
		// (row first, then blob) is not an issue.
		if _, err := v.db.GetByID(v.ctx, e.ID); errors.Is(err, manifest.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("re-read %s/%s: %w", e.Symbol, e.Key, err)
		}
		v.rep.add(verifyIssue{Symbol: e.Symbol, Key: e.Key, Path: e.Path, Problem: problem, Detail: detail})
		return nil
	})
}

func (v *verifier) checkRow(e manifest.Entry) (problem, detail string, err error) {
	f, err := gc.Check(v.store, e)
	if err != nil {
		return "", "", err
	}
	switch f.Problem {
	case gc.Healthy:
	case gc.SizeMismatch:
		return string(f.Problem), fmt.Sprintf("manifest says %d bytes, blob has %d", e.FileSize, f.ActualSize), nil
	default:
		return string(f.Problem), "", nil
	}
	if !v.deep {
		return "", "", nil
	}
	return v.rehash(e)
}

// rehash reads the blob back through the store, as a reader of the mount
// would, and compares its hash with the row's.
func (v *verifier) rehash(e manifest.Entry) (problem, detail string, err error) {
	rd, err := v.store.OpenBlob(e.Path)
	if err != nil {
		return problemUnreadable, err.Error(), nil
	}
	defer rd.Close()
	size := rd.Size()
	if size != e.LogicalSize {
		return problemLogicalSizeMismatch, fmt.Sprintf("manifest says %d bytes, blob holds %d", e.LogicalSize, size), nil
	}
	// Hash by the method the row was committed with, whatever threshold
	// the committing daemon ran with.
	threshold := v.threshold
	switch hashing.Method(e.HashMethod) {
	case hashing.Full:
		threshold = size
	case hashing.Footer:
		threshold = size - 1
	}
	sum, err := hashing.Hash(v.ctx, rd, size, threshold)
	if err != nil {
		if v.ctx.Err() != nil {
			return "", "", v.ctx.Err()
		}
		return problemUnreadable, err.Error(), nil
	}
	if sum.Hex != e.Hash || string(sum.Method) != e.HashMethod {
		return problemHashMismatch, fmt.Sprintf("manifest says %s %s, blob hashes to %s %s", e.HashMethod, e.Hash, sum.Method, sum.Hex), nil
	}
	if sum.Method != hashing.Footer {
		return "", "", nil
	}
	// A footer hash covers the size and the footer only: every other byte
	// is checked against the full hash the daemon stores after the commit.
	if e.FullHash == "" {
		v.rep.Summary.NotYetHashed++
		if len(v.rep.NotYetHashed) < maxListedIssues {
			v.rep.NotYetHashed = append(v.rep.NotYetHashed, verifyIssue{Symbol: e.Symbol, Key: e.Key, Path: e.Path,
				Problem: problemNotYetHashed, Detail: "only its size and footer were checked"})
		}
		return "", "", nil
	}
	full, err := hashing.FullHash(v.ctx, rd, size)
	if err != nil {
		if v.ctx.Err() != nil {
			return "", "", v.ctx.Err()
		}
		return problemUnreadable, err.Error(), nil
	}
	if full.Hex != e.FullHash {
		return problemHashMismatch, fmt.Sprintf("manifest's full hash is %s, blob hashes to %s", e.FullHash, full.Hex), nil
	}
	return "", "", nil
}

// ownedNames are what featurefs keeps at the top of a cache root.
var ownedNames = []string{
	cache.ManifestFile, cache.ManifestFile + "-wal", cache.ManifestFile + "-shm", gc.LockFile, gc.ReportFile,
	blobstore.BlobsDir, blobstore.StagingDir, blobstore.QuarantineDir,
}

// maxListedModes caps the paths a permissions warning names.
const maxListedModes = 5

// modes warns when the cache root lets other users in, and about anything
// featurefs keeps there that is more open than 0600 (files) or 0700
// (directories). Opening the cache already closed the top-level ones;
// what is left is beneath them, made by an older version.
func (v *verifier) modes(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf(
			"cache root %s is mode %04o: other users can reach it; featurefs keeps its own files private, but `chmod 700 %s` closes the root itself",
			root, perm, root))
	}
	var open []string
	n := 0
	for _, name := range ownedNames {
		err := filepath.WalkDir(filepath.Join(root, name), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := v.ctx.Err(); err != nil {
				return err
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o077 != 0 {
				n++
				if len(open) < maxListedModes {
					rel, _ := filepath.Rel(root, path)
					open = append(open, fmt.Sprintf("%s (%04o)", filepath.ToSlash(rel), fi.Mode().Perm()))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if n > 0 {
		more := ""
		if n > len(open) {
			more = fmt.Sprintf(" and %s more", count(int64(n-len(open))))
		}
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf(
			"%s that featurefs keeps private are open to other users: %s%s; `find %s -mindepth 1 -perm /077 -exec chmod go-rwx {} +` closes them",
			nouns(int64(n), "path", "paths"), strings.Join(open, ", "), more, root))
	}
	return nil
}

// files reports blobs that no row references. Blobs younger than cutoff may
// be commits between publication and manifest insert, and staging files are
// writes in progress: neither is an issue.
func (v *verifier) files(cutoff time.Time) error {
	return v.store.Walk(v.ctx, func(f blobstore.File) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if f.Staging {
			return nil
		}
		v.rep.FilesChecked++
		if !f.ModTime.Before(cutoff) {
			return nil
		}
		ref, err := v.db.References(v.ctx, f.Path)
		if err != nil {
			return fmt.Errorf("check references of %s: %w", f.Path, err)
		}
		if !ref {
			v.rep.Summary.UnreferencedBytes += f.Size
			v.rep.add(verifyIssue{Path: f.Path, Problem: problemUnreferenced,
				Detail: fmt.Sprintf("%s, modified %s", humanBytes(f.Size), f.ModTime.UTC().Format(time.RFC3339))})
		}
		return nil
	})
}

func printVerify(w io.Writer, rep *verifyReport) {
	s := rep.Summary
	tw := newTable(w)
	tw.row("cache root", rep.CacheRoot)
	checked := fmt.Sprintf("%s, %s", nouns(rep.EntriesChecked, "entry", "entries"), nouns(rep.FilesChecked, "blob file", "blob files"))
	if rep.Deep {
		checked += " (deep: every blob re-hashed)"
	}
	tw.row("checked", checked)
	tw.row("missing blobs", count(s.MissingBlobs))
	tw.row("size mismatches", count(s.SizeMismatches))
	tw.row("bad rows", count(s.BadRows))
	if rep.Deep {
		tw.row("hash mismatches", count(s.HashMismatches))
		tw.row("unreadable blobs", count(s.UnreadableBlobs))
		tw.row("not yet hashed", count(s.NotYetHashed))
	}
	tw.row("unreferenced blobs", fmt.Sprintf("%s (%s)", count(s.UnreferencedBlobs), humanBytes(s.UnreferencedBytes)))
	tw.row("took", humanDuration(time.Duration(rep.DurationSeconds*float64(time.Second))))
	tw.flush()
	for _, i := range rep.Issues {
		name := i.Path
		if i.Symbol != "" {
			name = fmt.Sprintf("%s/%s (%s)", i.Symbol, i.Key, i.Path)
		}
		if i.Detail != "" {
			fmt.Fprintf(w, "issue: %s: %s: %s\n", name, i.Problem, i.Detail)
		} else {
			fmt.Fprintf(w, "issue: %s: %s\n", name, i.Problem)
		}
	}
	if n := s.Issues - int64(len(rep.Issues)); n > 0 {
		fmt.Fprintf(w, "issue: ... and %s more\n", count(n))
	}
	for _, i := range rep.NotYetHashed {
		fmt.Fprintf(w, "not yet hashed: %s/%s (%s): %s\n", i.Symbol, i.Key, i.Path, i.Detail)
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	if rep.Clean {
		fmt.Fprintln(w, "verify: clean")
	} else {
		fmt.Fprintf(w, "verify: %s; `fsmount gc` removes damaged rows and unreferenced blobs\n", nouns(s.Issues, "issue", "issues"))
	}
}
