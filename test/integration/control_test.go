package integration

// The control files: .control/stats, .control/errors and .control/gc, read and written
// with cat, shell redirection and rm/mv, as an operator would.

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestControlStatsCountsWhatHappened(t *testing.T) {
	// Compressed at commit, so that stored bytes differ from logical ones
	// at once (by default a cold entry is compressed later, see
	// TestColdEntryIsCompressedAndStaysReadable).
	m := mountT(t, "--compress-after", "0")
	sh(t, "mkdir", m.path("AAPL"), m.path("MSFT"))
	a, b := makeParquet(t, 1000, 200), compressibleParquet(t, 30_000)
	commitFile(t, m.path("AAPL", "a.parquet"), a)
	commitFile(t, m.path("MSFT", "b.parquet"), b)

	before := m.stats(t)
	sh(t, "cat", m.path("AAPL", "a.parquet"))        // a hit
	wantAbsent(t, m.path("AAPL", "missing.parquet")) // a miss
	mid := m.stats(t)
	if mid.CacheHits != before.CacheHits+1 || mid.CacheMisses != before.CacheMisses+1 {
		t.Errorf("one open and one lookup of an absent key: hits %d->%d, misses %d->%d; want +1 each",
			before.CacheHits, mid.CacheHits, before.CacheMisses, mid.CacheMisses)
	}
	_ = writeFile(m.path("AAPL", "bad.parquet"), []byte("x")) // a rejected write
	sh(t, "bash", "-c", "echo run > "+m.path(".control", "gc"))

	raw, err := os.ReadFile(m.path(".control", "stats"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf(".control/stats is not JSON: %v\n%s", err, raw)
	}
	for _, k := range []string{"entries", "symbols", "logical_bytes", "stored_bytes", "cache_hits", "cache_misses",
		"commits", "rejected_writes", "hashes_by_method", "gc_runs", "gc_files_cleaned", "gc_bytes_freed", "busy_retries"} {
		if _, ok := keys[k]; !ok {
			t.Errorf(".control/stats has no %q:\n%s", k, raw)
		}
	}
	st := m.stats(t)
	check := func(name string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("entries", st.Entries, 2)
	check("symbols", st.Symbols, 2)
	check("logical_bytes", st.LogicalBytes, int64(len(a)+len(b)))
	stored := xattrInt(t, m.path("AAPL", "a.parquet"), "stored_bytes") + xattrInt(t, m.path("MSFT", "b.parquet"), "stored_bytes")
	check("stored_bytes", st.StoredBytes, stored)
	if st.StoredBytes >= st.LogicalBytes {
		t.Errorf("stored_bytes %d not below logical_bytes %d with a compressible entry", st.StoredBytes, st.LogicalBytes)
	}
	check("commits", st.Commits, 2)
	check("rejected_writes", st.RejectedWrites, 1)
	check("hashes_by_method.full", st.Hashes["full"], 2)
	check("hashes_by_method.footer", st.Hashes["footer"], 0)
	check("gc_runs", st.GCRuns, 1)
	check("gc_files_cleaned", st.FilesCleaned, 0)
	check("gc_bytes_freed", st.BytesFreed, 0)
	check("busy_retries", st.BusyRetries, 0)
}

func TestControlStatsCountsFooterHashes(t *testing.T) {
	m := mountT(t, "--footer-hash-threshold", "64KiB")
	sh(t, "mkdir", m.path("AAPL"))
	commitFile(t, m.path("AAPL", "big.parquet"), bulkParquet(t, 256<<10, 7))
	commitFile(t, m.path("AAPL", "small.parquet"), makeParquet(t, 100, 201))
	st := m.stats(t)
	if st.Hashes["footer"] != 1 || st.Hashes["full"] != 1 {
		t.Fatalf("hashes_by_method %v, want one footer and one full", st.Hashes)
	}
	if got := xattrs(t, m.path("AAPL", "big.parquet"))["user.featurefs.hash_method"]; got != "footer" {
		t.Fatalf("hash_method of a file above the threshold: %q", got)
	}
}

func TestControlErrorsListsFailuresNewestLast(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	if got := m.errors(t); len(got) != 0 {
		t.Fatalf(".control/errors of a fresh mount: %v", got)
	}
	start := time.Now().Add(-time.Second)
	paths := []string{"AAPL/first.parquet", "AAPL/second.txt", "AAPL/third.parquet"}
	_ = writeFile(m.path("AAPL", "first.parquet"), []byte("not parquet"))
	_ = writeFile(m.path("AAPL", "second.txt"), []byte("x"))
	time.Sleep(1100 * time.Millisecond) // times have whole seconds
	_ = writeFile(m.path("AAPL", "third.parquet"), makeParquet(t, 10, 202)[:100])
	lines := m.errors(t)
	if len(lines) != 3 {
		t.Fatalf(".control/errors has %d lines, want 3: %v", len(lines), lines)
	}
	for i, l := range lines {
		if l.Path != paths[i] {
			t.Errorf("line %d is about %q, want %q (newest last)", i, l.Path, paths[i])
		}
		if l.Reason == "" {
			t.Errorf("line %d has no reason", i)
		}
		if l.Time.Before(start) || l.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("line %d time %v, not now", i, l.Time)
		}
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("line %d is older than line %d", i, i-1)
		}
	}
	if !lines[2].Time.After(lines[0].Time) {
		t.Errorf("the last failure (%v) is not newer than the first (%v)", lines[2].Time, lines[0].Time)
	}
	if !strings.Contains(lines[0].Reason, "parquet") {
		t.Errorf("reason %q does not say the bytes are not parquet", lines[0].Reason)
	}
}

// gcReport is the part of a GC report that the README names.
type gcReport struct {
	Started         *time.Time `json:"started"`
	Finished        *time.Time `json:"finished"`
	DryRun          *bool      `json:"dry_run"`
	IntegrityIssues []any      `json:"integrity_issues"`
	Summary         *struct {
		TotalFilesDeleted *int64 `json:"total_files_deleted"`
		TotalBytesFreed   *int64 `json:"total_bytes_freed"`
		ExpiredEntries    *int64 `json:"expired_entries"`
		EvictedEntries    *int64 `json:"evicted_entries"`
		OrphanedFiles     *int64 `json:"orphaned_files"`
	} `json:"summary"`
}

// lastGC reads .control/gc with cat and checks it has every key of §4.
func lastGC(t *testing.T, m *mount) gcReport {
	t.Helper()
	out := sh(t, "cat", m.path(".control", "gc"))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("cat .control/gc is not JSON: %v\n%s", err, out)
	}
	if _, ok := raw["integrity_issues"]; !ok {
		t.Fatalf(".control/gc has no integrity_issues:\n%s", out)
	}
	var r gcReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf(".control/gc: %v\n%s", err, out)
	}
	s := r.Summary
	if r.Started == nil || r.Finished == nil || r.DryRun == nil || s == nil || s.TotalFilesDeleted == nil ||
		s.TotalBytesFreed == nil || s.ExpiredEntries == nil || s.EvictedEntries == nil || s.OrphanedFiles == nil {
		t.Fatalf(".control/gc lacks keys a report must have:\n%s", out)
	}
	if r.Finished.Before(*r.Started) {
		t.Fatalf("finished %v before started %v", r.Finished, r.Started)
	}
	return r
}

func TestControlGCRunsAndReports(t *testing.T) {
	m := mountT(t, "--retention", "1s")
	if out := strings.TrimSpace(sh(t, "cat", m.path(".control", "gc"))); out != "{}" {
		t.Fatalf("cat .control/gc before any run: %q, want {}", out)
	}
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 300, 203)
	commitFile(t, m.path("AAPL", "old.parquet"), data)
	time.Sleep(2100 * time.Millisecond) // older than the retention

	sh(t, "bash", "-c", "echo dry-run > "+m.path(".control", "gc"))
	r := lastGC(t, m)
	if !*r.DryRun || *r.Summary.ExpiredEntries != 1 {
		t.Fatalf("dry run: dry_run %v, expired_entries %d; want true, 1", *r.DryRun, *r.Summary.ExpiredEntries)
	}
	// A dry run deletes nothing (checked without opening, which would
	// refresh the entry's access time).
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"old.parquet"}) {
		t.Fatalf("AAPL lists %v after a dry run", got)
	}
	if st := m.stats(t); st.GCRuns != 1 || st.FilesCleaned != 0 || st.Entries != 1 {
		t.Fatalf("after a dry run: gc_runs %d, gc_files_cleaned %d, entries %d", st.GCRuns, st.FilesCleaned, st.Entries)
	}

	sh(t, "bash", "-c", "echo run > "+m.path(".control", "gc"))
	r = lastGC(t, m)
	if *r.DryRun || *r.Summary.ExpiredEntries != 1 || *r.Summary.TotalFilesDeleted < 1 || *r.Summary.TotalBytesFreed <= 0 {
		t.Fatalf("run: dry_run %v, expired %d, deleted %d, freed %d", *r.DryRun, *r.Summary.ExpiredEntries,
			*r.Summary.TotalFilesDeleted, *r.Summary.TotalBytesFreed)
	}
	// The write returned when the run had finished: the entry is gone now.
	wantAbsent(t, m.path("AAPL", "old.parquet"))
	st := m.stats(t)
	if st.GCRuns != 2 || st.FilesCleaned != *r.Summary.TotalFilesDeleted || st.BytesFreed != *r.Summary.TotalBytesFreed {
		t.Fatalf("stats after a run: gc_runs %d, files %d, bytes %d; report says %d, %d", st.GCRuns, st.FilesCleaned,
			st.BytesFreed, *r.Summary.TotalFilesDeleted, *r.Summary.TotalBytesFreed)
	}

	// An empty line runs GC too.
	sh(t, "bash", "-c", "echo > "+m.path(".control", "gc"))
	if r := lastGC(t, m); *r.DryRun {
		t.Fatal("an empty line ran a dry run")
	}
	if st := m.stats(t); st.GCRuns != 3 {
		t.Fatalf("gc_runs %d after three runs", st.GCRuns)
	}
}

func TestControlGCRefusesBogusCommand(t *testing.T) {
	m := mountT(t)
	out, err := run("bash", "-c", "echo bogus > "+m.path(".control", "gc"))
	if err == nil {
		t.Fatalf("echo bogus > .control/gc succeeded: %s", out)
	}
	if !strings.Contains(out, "Invalid argument") {
		t.Fatalf("bash reports %q, want the write's EINVAL", out)
	}
	// The errno itself, from write(2).
	f, err := os.OpenFile(m.path(".control", "gc"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write([]byte("collect everything\n"))
	f.Close()
	wantErrno(t, "write of a bogus gc command", err, syscall.EINVAL)
	m.wantErrorListed(t, ".control/gc", "bogus")
	if st := m.stats(t); st.GCRuns != 0 {
		t.Fatalf("gc_runs %d after bogus commands", st.GCRuns)
	}
	if out := strings.TrimSpace(sh(t, "cat", m.path(".control", "gc"))); out != "{}" {
		t.Fatalf(".control/gc after bogus commands: %q, want {}", out)
	}
}

func TestControlReadOnlyFilesRefuseWrites(t *testing.T) {
	m := mountT(t)
	for _, name := range []string{"stats", "errors"} {
		p := m.path(".control", name)
		_, err := os.OpenFile(p, os.O_WRONLY, 0)
		wantErrno(t, "open "+name+" for writing", err, syscall.EACCES)
		_, err = os.OpenFile(p, os.O_RDWR, 0)
		wantErrno(t, "open "+name+" O_RDWR", err, syscall.EACCES)
		wantErrno(t, "truncate "+name, os.Truncate(p, 0), syscall.EACCES)
		if out, err := run("bash", "-c", "echo x > "+p); err == nil || !strings.Contains(out, "Permission denied") {
			t.Fatalf("echo x > .control/%s: %v %s", name, err, out)
		}
		m.wantErrorListed(t, ".control/"+name)
	}
	// Still readable, still what they were.
	m.stats(t)
	if lines := m.errors(t); len(lines) == 0 {
		t.Fatal(".control/errors lists none of the refused writes")
	}
}

func TestControlFilesCannotBeCreatedRemovedOrRenamed(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 50, 204)
	commitFile(t, m.path("AAPL", "k.parquet"), data)
	ctl := m.path(".control")

	o := writeFile(m.path(".control", "new"), []byte("x"))
	if o.Op != "open" || o.errno() != syscall.EACCES {
		t.Fatalf("create in .control: %v, want EACCES at open", o)
	}
	wantErrno(t, "rm .control/stats", os.Remove(m.path(".control", "stats")), syscall.EACCES)
	wantErrno(t, "rename .control/stats", os.Rename(m.path(".control", "stats"), m.path(".control", "s")), syscall.EACCES)
	wantErrno(t, "rename .control/gc out", os.Rename(m.path(".control", "gc"), m.path("AAPL", "gc.parquet")), syscall.EACCES)
	wantErrno(t, "rename an entry into .control", os.Rename(m.path("AAPL", "k.parquet"), m.path(".control", "k.parquet")), syscall.EACCES)
	wantErrno(t, "mkdir in .control", syscall.Mkdir(m.path(".control", "d"), 0o755), syscall.EACCES)
	wantErrno(t, "rmdir .control", syscall.Rmdir(ctl), syscall.EACCES)
	wantErrno(t, "rename .control", os.Rename(ctl, m.path("CTL")), syscall.EACCES)
	wantErrno(t, "symlink in .control", os.Symlink("stats", m.path(".control", "l")), syscall.EACCES)
	wantErrno(t, "mkdir .control", syscall.Mkdir(ctl, 0o755), syscall.EEXIST)
	if out, err := run("rm", "-f", m.path(".control", "errors")); err == nil {
		t.Fatalf("rm -f .control/errors succeeded: %s", out)
	}

	if got := ls(t, ctl); !slices.Equal(got, []string{"errors", "gc", "stats"}) {
		t.Fatalf(".control lists %v after the refused changes", got)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
	if got := ls(t, m.dir); !slices.Equal(got, []string{"AAPL"}) {
		t.Fatalf("root lists %v", got)
	}
	m.wantErrorListed(t, ".control/stats", "unlink")
	m.wantErrorListed(t, ".control/new", "create")
}

func TestControlErrorsEscapesNamesSoNoLineCanBeForged(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("S"))
	names := []string{
		// A name cannot hold a slash, so the forged line's path has none.
		"a\n2026-01-01T00:00:00Z\tFAKE.line.parquet\tforged.parquet",
		"tab\there.parquet",
		"esc\x1b[2J\r.parquet",
	}
	for _, n := range names {
		if out := writeFile(m.path("S", n), []byte("not parquet")); out.Err == nil {
			t.Fatalf("%q: a non-parquet write succeeded", n)
		}
	}
	data, err := os.ReadFile(m.path(".control", "errors"))
	if err != nil {
		t.Fatal(err)
	}
	raw := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(raw) != len(names) {
		t.Fatalf(".control/errors has %d lines for %d failures:\n%s", len(raw), len(names), data)
	}
	for _, l := range raw {
		if strings.HasPrefix(l, "2026-01-01T00:00:00Z") || strings.ContainsAny(l, "\r\x1b") {
			t.Errorf("a name's bytes reached .control/errors unescaped: %q", l)
		}
	}
	lines := m.errors(t)
	for i, n := range names {
		if lines[i].Path != "S/"+n {
			t.Errorf("line %d reads back as path %q, want %q", i, lines[i].Path, "S/"+n)
		}
	}
	if want := `S/a\n2026-01-01T00:00:00Z\tFAKE.line.parquet\tforged.parquet`; !strings.Contains(raw[0], "\t"+want+"\t") {
		t.Errorf("line %q does not hold the escaped name %s", raw[0], want)
	}
}
