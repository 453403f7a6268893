package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"featurefs/cache"
)

// ReportFile (cache.GCReportFile) is the file in the cache root holding the
// last run's report.
const ReportFile = cache.GCReportFile

// Report is the outcome of one run, as written to ReportFile.
type Report struct {
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	DurationSeconds float64   `json:"duration_seconds"`
	DryRun          bool      `json:"dry_run"`
	CacheRoot       string    `json:"cache_root"`
	Settings        Settings  `json:"settings"`
	Summary         Summary   `json:"summary"`
	// IntegrityIssues lists at most 1000 issues; Summary counts all.
	IntegrityIssues []Issue `json:"integrity_issues"`
	// Deleted lists the first Options.Samples deletions (of rows or files).
	Deleted []Deletion `json:"deleted,omitempty"`
	// Errors lists at most 1000 failures that did not stop the run.
	Errors []string `json:"errors"`

	samples int
}

// Settings are the options a run used.
type Settings struct {
	RetentionSeconds   float64 `json:"retention_seconds"`
	MaxSizeBytes       int64   `json:"max_size_bytes"`
	OrphanGraceSeconds float64 `json:"orphan_grace_seconds"`
}

// Summary counts what a run did (or, in a dry run, would do).
type Summary struct {
	// TotalFilesDeleted counts blob and staging files removed; rows removed
	// for integrity do not count, and quarantined files are moved, not
	// deleted.
	TotalFilesDeleted int64 `json:"total_files_deleted"`
	TotalBytesFreed   int64 `json:"total_bytes_freed"`
	ExpiredEntries    int64 `json:"expired_entries"`
	EvictedEntries    int64 `json:"evicted_entries"`
	OrphanedFiles     int64 `json:"orphaned_files"`
	QuarantinedFiles  int64 `json:"quarantined_files"`
	IntegrityIssues   int64 `json:"integrity_issues"`
	Errors            int64 `json:"errors"`
}

// Issue is a row whose blob failed the integrity check.
type Issue struct {
	Symbol  string  `json:"symbol"`
	Key     string  `json:"key"`
	Path    string  `json:"path"`
	Problem Problem `json:"problem"`
	// Action is ActionRemoveRow or ActionRemoveRowQuarantine.
	Action        string `json:"action"`
	ExpectedBytes int64  `json:"expected_bytes"`
	ActualBytes   int64  `json:"actual_bytes"`
	// QuarantinePath is where the blob was moved, relative to the cache root.
	QuarantinePath string `json:"quarantine_path,omitempty"`
}

// Phase names the step of a run that deleted something.
type Phase string

// Phases that delete.
const (
	PhaseRetention Phase = "retention"
	PhaseSizeCap   Phase = "size_cap"
	PhaseOrphan    Phase = "orphan"
)

// Deletion is one entry or file deleted.
type Deletion struct {
	Phase  Phase  `json:"phase"`
	Symbol string `json:"symbol,omitempty"`
	Key    string `json:"key,omitempty"`
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
}

func newReport(root string, opts Options) *Report {
	return &Report{
		Started:   opts.Now(),
		DryRun:    opts.DryRun,
		CacheRoot: root,
		Settings: Settings{
			RetentionSeconds:   opts.Retention.Seconds(),
			MaxSizeBytes:       opts.MaxSize,
			OrphanGraceSeconds: opts.OrphanGrace.Seconds(),
		},
		// Empty lists, not null, so consumers can iterate without checks.
		IntegrityIssues: []Issue{},
		Errors:          []string{},
		samples:         opts.Samples,
	}
}

func (r *Report) finish(now time.Time) {
	r.Finished = now
	r.DurationSeconds = now.Sub(r.Started).Seconds()
}

func (r *Report) addIssue(i Issue) {
	r.Summary.IntegrityIssues++
	if len(r.IntegrityIssues) < maxListed {
		r.IntegrityIssues = append(r.IntegrityIssues, i)
	}
}

// addDeletion records a deleted entry or file; removedFile says whether a
// file was removed (an entry whose blob another row shares frees nothing).
func (r *Report) addDeletion(d Deletion, removedFile bool) {
	if removedFile {
		r.Summary.TotalFilesDeleted++
		r.Summary.TotalBytesFreed += d.Bytes
	}
	if len(r.Deleted) < r.samples {
		r.Deleted = append(r.Deleted, d)
	}
}

func (r *Report) addError(err error) {
	r.Summary.Errors++
	if len(r.Errors) < maxListed {
		r.Errors = append(r.Errors, err.Error())
	}
}

// writeReport replaces ReportFile atomically, so a concurrent LastReport
// reads either the previous report or this one, whole. The caller holds the
// GC lock, which makes the temporary name private to it.
func writeReport(root string, rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode gc report: %w", err)
	}
	data = append(data, '\n')
	rt, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("write gc report: %w", err)
	}
	defer rt.Close()
	tmp := ReportFile + ".tmp"
	f, err := rt.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write gc report %s: %w", tmp, err)
	}
	// A leftover temporary file keeps its old mode through O_TRUNC.
	err = makePrivate(f)
	if err == nil {
		_, err = f.Write(data)
	}
	// Synced so a crash right after the rename cannot leave an empty report
	// in its place; the directory is not synced, since losing the newest
	// report to a power cut only shows the previous one.
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rt.Rename(tmp, ReportFile)
	}
	if err != nil {
		_ = rt.Remove(tmp)
		return fmt.Errorf("write gc report in %s: %w", root, err)
	}
	return nil
}

// LastReport returns the JSON report of the last run on the cache root, or
// "{}" when no run has finished there yet.
func LastReport(root string) ([]byte, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("read gc report: %w", err)
	}
	defer rt.Close()
	data, err := rt.ReadFile(ReportFile)
	if errors.Is(err, fs.ErrNotExist) {
		return []byte("{}\n"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read gc report in %s: %w", root, err)
	}
	return data, nil
}
