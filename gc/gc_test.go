package gc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"featurefs/manifest"
)

const week = 7 * 24 * time.Hour

func TestRetentionKeepsEntryOpenedJustBeforeRun(t *testing.T) {
	c := newCacheT(t)
	read := c.commit("AAPL", "read", 10)
	stale := c.commit("AAPL", "stale", 10)
	c.clock.Advance(5 * week)
	fresh := c.commit("MSFT", "fresh", 10)
	// Opened a moment ago and not yet written to the manifest: the run
	// must flush it before deciding.
	c.access(read)

	rep := c.run(c.opts())

	if !c.exists(read) || !c.fileExists(read.Path) {
		t.Errorf("entry opened just before the run was collected")
	}
	// The run wrote the pending open before deciding, so any process
	// reading the manifest sees why the entry was kept.
	if got, err := c.db.GetByID(context.Background(), read.ID); err != nil || got.LastAccessedTS != c.clock.Now().Unix() {
		t.Errorf("last_accessed_ts after the run = %d (%v), want the flushed open at %d", got.LastAccessedTS, err, c.clock.Now().Unix())
	}
	if !c.exists(fresh) || !c.fileExists(fresh.Path) {
		t.Errorf("fresh entry was collected")
	}
	if c.exists(stale) || c.fileExists(stale.Path) {
		t.Errorf("stale entry survived: row %v, blob %v", c.exists(stale), c.fileExists(stale.Path))
	}
	want := Summary{TotalFilesDeleted: 1, TotalBytesFreed: 10, ExpiredEntries: 1}
	if rep.Summary != want {
		t.Errorf("summary = %+v, want %+v", rep.Summary, want)
	}
	if got := deletedPaths(rep); !reflect.DeepEqual(got, map[string]Phase{stale.Path: PhaseRetention}) {
		t.Errorf("deleted = %v, want only %s", got, stale.Path)
	}
}

func TestRetentionBoundary(t *testing.T) {
	c := newCacheT(t)
	e := c.commit("AAPL", "k", 10)
	opts := c.opts()
	opts.Retention = time.Hour

	c.clock.Advance(time.Hour - time.Second)
	if c.run(opts); !c.exists(e) {
		t.Fatalf("entry accessed 59m59s ago expired under a 1h retention")
	}
	c.clock.Advance(2 * time.Second)
	if c.run(opts); c.exists(e) {
		t.Fatalf("entry accessed 1h1s ago survived a 1h retention")
	}
}

func TestSizeCapEvictsLeastRecentlyAccessed(t *testing.T) {
	c := newCacheT(t)
	var es []manifest.Entry
	for _, k := range []string{"k0", "k1", "k2", "k3", "k4"} {
		es = append(es, c.commit("ES=F", k, 100))
		c.clock.Advance(time.Minute)
	}
	c.access(es[0]) // k0 becomes the most recently accessed
	opts := c.opts()
	opts.MaxSize = 250

	rep := c.run(opts)

	for i, keep := range []bool{true, false, false, false, true} {
		if got := c.exists(es[i]); got != keep {
			t.Errorf("%s: exists = %v, want %v", es[i].Key, got, keep)
		}
		if got := c.fileExists(es[i].Path); got != keep {
			t.Errorf("%s: blob exists = %v, want %v", es[i].Key, got, keep)
		}
	}
	if rep.Summary.EvictedEntries != 3 || rep.Summary.TotalBytesFreed != 300 {
		t.Errorf("summary = %+v, want 3 evicted, 300 bytes freed", rep.Summary)
	}
	st, err := c.db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.StoredBytes > opts.MaxSize {
		t.Errorf("stored %d bytes after the run, cap %d", st.StoredBytes, opts.MaxSize)
	}
}

func TestOrphans(t *testing.T) {
	c := newCacheT(t)
	opts := c.opts()
	opts.OrphanGrace = time.Hour
	old, young := 2*time.Hour, 10*time.Minute

	// A blob published and given up on, long ago; and a recent one.
	oldOrphan := c.publish([]byte("old orphan"))
	oldOrphan.Release()
	c.age(oldOrphan.Blob.Path, old)
	youngOrphan := c.publish([]byte("young orphan"))
	youngOrphan.Release()
	c.age(youngOrphan.Blob.Path, young)

	// Staging files a crashed writer left behind.
	writeFile(t, filepath.Join(c.root, "staging", "crashed-old.tmp"), "x")
	c.age("staging/crashed-old.tmp", old)
	writeFile(t, filepath.Join(c.root, "staging", "crashed-young.tmp"), "x")
	c.age("staging/crashed-young.tmp", young)

	// Live and old: a write still open, a commit not yet in the manifest.
	writing, err := c.store.CreateStaged()
	if err != nil {
		t.Fatal(err)
	}
	defer writing.Close()
	c.age(writing.Path(), old)
	committing := c.publish([]byte("commit in flight"))
	defer committing.Release()
	c.age(committing.Blob.Path, old)

	// Referenced, and old.
	kept := c.commit("AAPL", "k", 10)
	c.age(kept.Path, old)

	rep := c.run(opts)

	for path, want := range map[string]bool{
		oldOrphan.Blob.Path:         false,
		youngOrphan.Blob.Path:       true,
		"staging/crashed-old.tmp":   false,
		"staging/crashed-young.tmp": true,
		writing.Path():              true,
		committing.Blob.Path:        true,
		kept.Path:                   true,
	} {
		if got := c.fileExists(path); got != want {
			t.Errorf("%s: exists = %v, want %v", path, got, want)
		}
	}
	if rep.Summary.OrphanedFiles != 2 || rep.Summary.TotalFilesDeleted != 2 {
		t.Errorf("summary = %+v, want 2 orphans deleted", rep.Summary)
	}
}

func TestIntegrityMissingBlobRemovesRow(t *testing.T) {
	c := newCacheT(t)
	e := c.commit("AAPL", "gone", 10)
	ok := c.commit("AAPL", "ok", 10)
	if err := os.Remove(filepath.Join(c.root, e.Path)); err != nil {
		t.Fatal(err)
	}

	rep := c.run(c.opts())

	if c.exists(e) {
		t.Errorf("row of the missing blob is still there")
	}
	if !c.exists(ok) {
		t.Errorf("healthy row removed")
	}
	want := []Issue{{Symbol: "AAPL", Key: "gone", Path: e.Path, Problem: MissingBlob,
		Action: ActionRemoveRow, ExpectedBytes: 10}}
	if !reflect.DeepEqual(rep.IntegrityIssues, want) {
		t.Errorf("issues = %+v, want %+v", rep.IntegrityIssues, want)
	}
	if rep.Summary.IntegrityIssues != 1 || rep.Summary.TotalFilesDeleted != 0 {
		t.Errorf("summary = %+v", rep.Summary)
	}
}

func TestIntegritySizeMismatchQuarantinesBlob(t *testing.T) {
	c := newCacheT(t)
	e := c.commit("AAPL", "bad", 10)
	blob := filepath.Join(c.root, e.Path)
	f, err := os.OpenFile(blob, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("garbage")
	f.Close()

	rep := c.run(c.opts())

	if c.exists(e) {
		t.Errorf("row of the mismatched blob is still there")
	}
	if c.fileExists(e.Path) {
		t.Errorf("mismatched blob left in blobs/")
	}
	if len(rep.IntegrityIssues) != 1 {
		t.Fatalf("issues = %+v, want one", rep.IntegrityIssues)
	}
	is := rep.IntegrityIssues[0]
	if is.Problem != SizeMismatch || is.Action != ActionRemoveRowQuarantine ||
		is.ExpectedBytes != 10 || is.ActualBytes != 17 {
		t.Errorf("issue = %+v", is)
	}
	got, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(is.QuarantinePath)))
	if err != nil {
		t.Fatalf("quarantined blob: %v", err)
	}
	if want := "xxxxxxxxxxgarbage"; string(got) != want {
		t.Errorf("quarantined bytes = %q, want %q", got, want)
	}
	if rep.Summary.QuarantinedFiles != 1 || rep.Summary.TotalFilesDeleted != 0 {
		t.Errorf("summary = %+v", rep.Summary)
	}
}

func TestBadRowPathTouchesNothing(t *testing.T) {
	c := newCacheT(t)
	outside := filepath.Join(t.TempDir(), "victim")
	writeFile(t, outside, "precious")
	for _, p := range []string{"../" + filepath.Base(outside), "blobs/../../victim", "/etc/passwd", "manifest.db"} {
		e, _, err := c.db.Commit(context.Background(), manifest.Entry{
			Symbol: "EVIL", Key: p, Path: p, FileSize: 8, LogicalSize: 8, Hash: "0", HashMethod: "full"})
		if err != nil {
			t.Fatalf("Commit %q: %v", p, err)
		}
		_ = e
	}
	c.clock.Advance(10 * week) // retention would take every row

	rep := c.run(c.opts())

	if rep.Summary.IntegrityIssues != 4 {
		t.Errorf("integrity issues = %d, want 4: %+v", rep.Summary.IntegrityIssues, rep.IntegrityIssues)
	}
	for _, is := range rep.IntegrityIssues {
		if is.Problem != BadPath || is.Action != ActionRemoveRow {
			t.Errorf("issue = %+v, want bad_path/remove_row", is)
		}
	}
	if got, _ := os.ReadFile(outside); string(got) != "precious" {
		t.Errorf("file outside the root changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(c.root, "manifest.db")); err != nil {
		t.Errorf("manifest.db: %v", err)
	}
}

func TestSymlinksAreNeverFollowed(t *testing.T) {
	c := newCacheT(t)
	outDir := t.TempDir()
	victim := filepath.Join(outDir, "victim.parquet")
	writeFile(t, victim, "precious")
	past := c.clock.Now().Add(-100 * week)
	os.Chtimes(victim, past, past)
	os.Chtimes(outDir, past, past)

	// A link planted as an orphan blob, a linked shard directory, a link in
	// staging, and a row whose blob was swapped for a link.
	mustSymlink(t, victim, filepath.Join(c.root, "blobs", "planted.parquet"))
	mustSymlink(t, outDir, filepath.Join(c.root, "blobs", "zz"))
	mustSymlink(t, victim, filepath.Join(c.root, "staging", "planted.tmp"))
	e := c.commit("AAPL", "swapped", len("precious"))
	if err := os.Remove(filepath.Join(c.root, e.Path)); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, victim, filepath.Join(c.root, e.Path))
	c.clock.Advance(10 * week) // every age limit is long past

	rep := c.run(c.opts())

	if got, err := os.ReadFile(victim); err != nil || string(got) != "precious" {
		t.Errorf("link target changed: %q, %v", got, err)
	}
	for _, p := range []string{"blobs/planted.parquet", "blobs/zz", "staging/planted.tmp"} {
		if !c.fileExists(p) {
			t.Errorf("%s: the link itself was removed; GC only removes regular files", p)
		}
	}
	if c.exists(e) {
		t.Errorf("row whose blob became a symlink is still there")
	}
	if len(rep.IntegrityIssues) != 1 || rep.IntegrityIssues[0].Problem != NotRegularFile {
		t.Fatalf("issues = %+v, want one not_regular_file", rep.IntegrityIssues)
	}
	// The link, not its target, went to quarantine.
	q := filepath.Join(c.root, filepath.FromSlash(rep.IntegrityIssues[0].QuarantinePath))
	if fi, err := os.Lstat(q); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("quarantined %s: %v, %v; want the link itself", q, fi, err)
	}
	if _, err := os.Stat(filepath.Join(outDir, "victim.parquet")); err != nil {
		t.Errorf("victim: %v", err)
	}
}

// A commit takes these steps: stage, publish (blob durable, locked), insert
// the row, release. A GC run between publication and insert must leave the
// blob alone even though no row names it yet and it looks old.
func TestCommitPausedBeforeInsertSurvivesGC(t *testing.T) {
	c := newCacheT(t)
	data := parquetFile(t, 100)
	opts := c.opts()
	opts.OrphanGrace = time.Hour

	st, err := c.store.CreateStaged()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.File().WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	// The write is old too: only its lock protects it now.
	c.age(st.Path(), 3*time.Hour)
	c.run(opts)
	if !c.fileExists(st.Path()) {
		t.Fatalf("GC removed a staged file that is still being written")
	}

	p, err := c.store.Publish(context.Background(), st, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Past the grace, so only the lock protects it.
	c.age(p.Blob.Path, 3*time.Hour)

	rep := c.run(opts)
	if rep.Summary.OrphanedFiles != 0 {
		t.Errorf("GC collected %d orphans; the blob of the commit in flight is one of them?", rep.Summary.OrphanedFiles)
	}
	if !c.fileExists(p.Blob.Path) {
		t.Fatalf("GC removed a published blob whose commit is in flight")
	}

	e := c.commitBlob("AAPL", "inflight", p)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	c.run(opts) // referenced now: still untouched

	got, err := c.db.Get(context.Background(), "AAPL", "inflight")
	if err != nil {
		t.Fatalf("entry lost: %v", err)
	}
	if got.ID != e.ID || got.Path != p.Blob.Path {
		t.Errorf("entry = %+v, want id %d path %s", got, e.ID, p.Blob.Path)
	}
	rd, err := c.store.OpenBlob(got.Path)
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	defer rd.Close()
	buf := make([]byte, rd.Size())
	if _, err := rd.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data) {
		t.Errorf("blob bytes differ from what was committed")
	}
}

func TestDryRunDecidesLikeRealRun(t *testing.T) {
	c := newCacheT(t)
	var all []manifest.Entry
	// Ten entries a week apart: with a 4 week retention the 6 oldest expire
	// once the clock is moved past the last one.
	for i := range 10 {
		all = append(all, c.commit("SYM", "k"+string(rune('a'+i)), 100+i))
		c.clock.Advance(week)
	}
	// Integrity issues among both the expired and the kept entries.
	os.Remove(filepath.Join(c.root, all[0].Path))
	os.Remove(filepath.Join(c.root, all[8].Path))
	appendFile(t, filepath.Join(c.root, all[9].Path), "junk")
	// Orphans.
	for range 3 {
		p := c.publish([]byte("orphan"))
		p.Release()
		c.age(p.Blob.Path, 2*time.Hour)
	}
	writeFile(t, filepath.Join(c.root, "staging", "old.tmp"), "x")
	c.age("staging/old.tmp", 2*time.Hour)

	opts := c.opts()
	opts.MaxSize = 200 // of the two healthy survivors (106 and 107 bytes) only the newer fits
	dry := opts
	dry.DryRun = true

	before := snapshot(t, c.root)
	drep := c.run(dry)
	if after := snapshot(t, c.root); !reflect.DeepEqual(before, after) {
		t.Fatalf("dry run changed files:\nbefore %v\nafter  %v", before, after)
	}
	for _, e := range all {
		if !c.exists(e) {
			t.Fatalf("dry run deleted row %s", e.Key)
		}
	}
	rep := c.run(opts)

	if !drep.DryRun || rep.DryRun {
		t.Errorf("dry_run flags: %v, %v", drep.DryRun, rep.DryRun)
	}
	if !reflect.DeepEqual(deletedPaths(drep), deletedPaths(rep)) {
		t.Errorf("dry run would delete %v\nreal run deleted    %v", deletedPaths(drep), deletedPaths(rep))
	}
	if drep.Summary != rep.Summary {
		t.Errorf("dry summary %+v\nreal summary %+v", drep.Summary, rep.Summary)
	}
	for i := range drep.IntegrityIssues {
		drep.IntegrityIssues[i].QuarantinePath = ""
	}
	for i := range rep.IntegrityIssues {
		rep.IntegrityIssues[i].QuarantinePath = ""
	}
	if !reflect.DeepEqual(drep.IntegrityIssues, rep.IntegrityIssues) {
		t.Errorf("dry issues %+v\nreal issues %+v", drep.IntegrityIssues, rep.IntegrityIssues)
	}
	want := Summary{
		ExpiredEntries: 5, EvictedEntries: 1, OrphanedFiles: 4,
		IntegrityIssues: 3, QuarantinedFiles: 1,
		TotalFilesDeleted: 10,
		TotalBytesFreed:   (101 + 102 + 103 + 104 + 105) + 106 + 3*6 + 1,
	}
	if rep.Summary != want {
		t.Errorf("summary = %+v, want %+v", rep.Summary, want)
	}
	if !c.exists(all[7]) {
		t.Errorf("most recent healthy entry evicted")
	}
}

func TestSecondRunWaitsForFirst(t *testing.T) {
	c := newCacheT(t)
	holding, release := make(chan struct{}), make(chan struct{})
	first := c.opts()
	first.hooks.locked = func() {
		close(holding)
		<-release
	}
	firstDone := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), c.db, c.store, first)
		firstDone <- err
	}()
	<-holding

	// A run whose context ends while it waits gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, c.db, c.store, c.opts()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting run with expiring context: err = %v, want deadline exceeded", err)
	}

	secondDone := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), c.db, c.store, c.opts())
		secondDone <- err
	}()
	select {
	case err := <-secondDone:
		t.Fatalf("second run finished (%v) while the first held the lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for name, ch := range map[string]chan error{"first": firstDone, "second": secondDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s run: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s run did not finish", name)
		}
	}
}

func TestReportFile(t *testing.T) {
	c := newCacheT(t)
	got, err := LastReport(c.root)
	if err != nil || string(bytes.TrimSpace(got)) != "{}" {
		t.Fatalf("LastReport before any run = %q, %v; want {}", got, err)
	}
	c.commit("AAPL", "k", 10)
	opts := c.opts()
	opts.DryRun = true
	rep := c.run(opts)

	data, err := LastReport(c.root)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	for _, k := range []string{"started", "finished", "dry_run", "cache_root", "integrity_issues", "summary", "duration_seconds", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	sum, _ := m["summary"].(map[string]any)
	for _, k := range []string{"total_files_deleted", "total_bytes_freed", "expired_entries",
		"evicted_entries", "orphaned_files", "quarantined_files", "integrity_issues"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	if m["dry_run"] != true {
		t.Errorf("dry_run = %v", m["dry_run"])
	}
	for _, k := range []string{"started", "finished"} {
		if _, err := time.Parse(time.RFC3339, m[k].(string)); err != nil {
			t.Errorf("%s is not RFC 3339: %v", k, err)
		}
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || !back.Started.Equal(rep.Started) {
		t.Errorf("report round trip: %v, started %v vs %v", err, back.Started, rep.Started)
	}
	if _, err := os.Stat(filepath.Join(c.root, ReportFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary report left behind: %v", err)
	}
}

func TestCanceledRunStops(t *testing.T) {
	c := newCacheT(t)
	c.commit("AAPL", "k", 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, c.db, c.store, c.opts()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

func TestSettleWaits(t *testing.T) {
	c := newCacheT(t)
	opts := c.opts()
	opts.Settle = 200 * time.Millisecond
	t0 := time.Now()
	c.run(opts)
	if d := time.Since(t0); d < opts.Settle {
		t.Errorf("run took %v, less than the settle time %v", d, opts.Settle)
	}
}

// snapshot lists every path under root with its size, for "nothing changed"
// checks; the report and lock files are the only ones a dry run may write.
func snapshot(t *testing.T, root string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ReportFile || rel == LockFile || rel == "manifest.db" ||
			rel == "manifest.db-wal" || rel == "manifest.db-shm" {
			return nil
		}
		m[rel] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// The orphan phase checks that no row names a blob, then takes the blob's
// lock and removes it. A commit that inserts its row and releases the blob
// between the two must keep its blob: the check is made again, under the
// manifest's write lock, once the file lock is held.
func TestCommitBetweenOrphanCheckAndRemovalKeepsBlob(t *testing.T) {
	c := newCacheT(t)
	data := parquetFile(t, 100)
	p := c.publish(data)
	c.age(p.Blob.Path, 3*time.Hour) // past the grace: only the re-check protects it

	var committed manifest.Entry
	opts := c.opts()
	opts.OrphanGrace = time.Hour
	opts.hooks.orphanChecked = func(path string) {
		if path != p.Blob.Path || committed.ID != 0 {
			return
		}
		// The commit finishes inside the window: row in, lock released.
		committed = c.commitBlob("AAPL", "racing", p)
		if err := p.Release(); err != nil {
			t.Error(err)
		}
	}
	rep := c.run(opts)
	if committed.ID == 0 {
		t.Fatal("the orphan phase never checked the blob of the commit in flight")
	}
	if rep.Summary.OrphanedFiles != 0 || !c.fileExists(p.Blob.Path) {
		t.Fatalf("GC removed the blob of an acknowledged commit (orphans %d)", rep.Summary.OrphanedFiles)
	}
	got, err := c.db.Get(context.Background(), "AAPL", "racing")
	if err != nil || got.Path != p.Blob.Path {
		t.Fatalf("entry = %+v, %v; want its row naming %s", got, err, p.Blob.Path)
	}
}

// The other order: once GC has claimed an old unreferenced blob, a commit
// that names it fails and nothing is committed, instead of a row whose blob
// GC removes. Nothing here holds a file lock, as on a store that has none.
func TestCommitOfClaimedBlobFails(t *testing.T) {
	c := newCacheT(t)
	p := c.publish(parquetFile(t, 10))
	if err := p.Release(); err != nil { // no lock: a stalled commit on another host
		t.Fatal(err)
	}
	c.age(p.Blob.Path, 3*time.Hour)
	opts := c.opts()
	opts.OrphanGrace = time.Hour
	if rep := c.run(opts); rep.Summary.OrphanedFiles != 1 {
		t.Fatalf("orphans = %d, want the unreferenced blob", rep.Summary.OrphanedFiles)
	}
	_, _, err := c.db.Commit(context.Background(), manifest.Entry{
		Symbol: "AAPL", Key: "late", Path: p.Blob.Path,
		FileSize: p.Blob.StoredSize, LogicalSize: p.Blob.LogicalSize, Hash: "0", HashMethod: "full",
	})
	if !errors.Is(err, manifest.ErrBlobClaimed) {
		t.Fatalf("Commit of a removed blob: %v, want ErrBlobClaimed", err)
	}
	if _, err := c.db.Get(context.Background(), "AAPL", "late"); !errors.Is(err, manifest.ErrNotFound) {
		t.Fatalf("a row names the removed blob: %v", err)
	}
}
