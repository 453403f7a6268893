package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlGCRunsRetentionAndSparesJustOpenedEntries drives GC through
// .control/gc. A dry run reports what a run would delete and deletes
// nothing; a run deletes entries past the retention at once (ls no longer
// shows them), except one whose stored last access was old but that was
// opened just before the run: pending accesses are written before GC
// decides. cat .control/gc shows the last report.
func TestControlGCRunsRetentionAndSparesJustOpenedEntries(t *testing.T) {
	m := mountT(t, "--retention", "24h")
	if err := os.Mkdir(m.path("SPY"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make(map[string][]byte)
	for _, key := range []string{"old", "opened", "fresh"} {
		data[key] = makeParquet(t, 3000, uint64(len(key)))
		if err := os.WriteFile(m.path("SPY", key+".parquet"), data[key], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.TrimSpace(string(mustRead(t, m.path(".control", "gc")))); got != "{}" {
		t.Errorf("cat .control/gc before any run = %q, want {}", got)
	}
	old := time.Now().Add(-72 * time.Hour).Unix()
	sqliteQuery(t, m.root, fmt.Sprintf("update manifest set last_accessed_ts = %d where key in ('old', 'opened')", old))

	// Dry run: reports both old entries, deletes nothing.
	if err := os.WriteFile(m.path(".control", "gc"), []byte("dry-run\n"), 0o644); err != nil {
		t.Fatalf("echo dry-run > .control/gc: %v", err)
	}
	rep := controlFileJSON(t, m, "gc")
	if v, _ := rep["dry_run"].(bool); !v {
		t.Errorf("dry run report: dry_run = %v, want true", rep["dry_run"])
	}
	if got := jsonNum(t, rep, "summary.expired_entries"); got != 2 {
		t.Errorf("dry run reports %d expired entries, want 2 (old, opened)", got)
	}
	if got := listParquet(t, m.path("SPY")); len(got) != 3 {
		t.Errorf("after dry run ls shows %v, want all 3", got)
	}
	if n := sqliteInt(t, m.root, "select count(*) from manifest"); n != 3 {
		t.Errorf("after dry run the manifest has %d rows, want 3", n)
	}

	// Open and read one old entry, then run GC at once.
	if got := mustRead(t, m.path("SPY", "opened.parquet")); !bytes.Equal(got, data["opened"]) {
		t.Fatalf("opened.parquet reads %d bytes, not what was written", len(got))
	}
	if err := os.WriteFile(m.path(".control", "gc"), []byte("run\n"), 0o644); err != nil {
		t.Fatalf("echo run > .control/gc: %v", err)
	}
	if got := listParquet(t, m.path("SPY")); !slices.Equal(got, []string{"fresh.parquet", "opened.parquet"}) {
		t.Errorf("right after the run ls shows %v, want [fresh.parquet opened.parquet]", got)
	}
	if _, err := os.Stat(m.path("SPY", "old.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat old.parquet after the run: %v, want ENOENT", err)
	}
	for _, key := range []string{"opened", "fresh"} {
		if got := mustRead(t, m.path("SPY", key+".parquet")); !bytes.Equal(got, data[key]) {
			t.Errorf("%s.parquet after the run: %d bytes, not what was written", key, len(got))
		}
	}
	rep = controlFileJSON(t, m, "gc")
	if v, _ := rep["dry_run"].(bool); v {
		t.Errorf("run report: dry_run = true")
	}
	if got := jsonNum(t, rep, "summary.expired_entries"); got != 1 {
		t.Errorf("run reports %d expired entries, want 1 (old; opened was read just before)", got)
	}
	if got := jsonNum(t, rep, "summary.total_files_deleted"); got < 1 {
		t.Errorf("run reports %d files deleted, want at least 1", got)
	}
	if got := jsonNum(t, controlFileJSON(t, m, "stats"), "gc_runs"); got != 2 {
		t.Errorf(".control/stats gc_runs = %d, want 2", got)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGCEveryFewSecondsUnderLoadLosesNothing runs scheduled GC every three
// seconds with a two-second orphan grace, plus standalone `fsmount gc` runs
// from another process, while 10 writer processes commit (some pausing
// half-way for longer than the grace, so their staged files look like
// orphans by age) and 10 reader processes read. Retention is long, so
// nothing may expire: no read fails, every acknowledged commit reads back
// exact at the end, and verify is clean.
func TestGCEveryFewSecondsUnderLoadLosesNothing(t *testing.T) {
	const (
		writers   = 10
		perWriter = 40
		keys      = 8 // per writer: later writes overwrite earlier ones
		runFor    = 30 * time.Second
	)
	m := mountT(t, "--gc-interval", "3s", "--orphan-grace", "2s", "--retention", "24h")
	for w := 0; w < writers; w++ {
		if err := os.Mkdir(m.path(fmt.Sprintf("G%d", w%3)), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	stop := filepath.Join(t.TempDir(), "stop")
	versions := make(map[string][]string)
	var plans []writerPlan
	for w := 0; w < writers; w++ {
		p := writerPlan{StopFile: stop}
		for i := 0; i < perWriter; i++ {
			pw := plannedWrite{
				Path: m.path(fmt.Sprintf("G%d", w%3), fmt.Sprintf("w%d-k%d.parquet", w, i%keys)),
				Rows: 1000 + (w*perWriter+i)*131%20000,
				Seed: uint64(10_000 + w*perWriter + i),
			}
			if i%9 == 4 {
				pw.PauseMS = 2600 // the staged file outlives the orphan grace
			}
			p.Writes = append(p.Writes, pw)
			versions[pw.Path] = append(versions[pw.Path], stressSHA(makeParquet(t, pw.Rows, pw.Seed)))
		}
		plans = append(plans, p)
	}
	var readers []*helperProc
	for r := 0; r < 10; r++ {
		readers = append(readers, startHelper(t, "reader", readerPlan{
			Versions:  versions,
			StopFile:  stop,
			Deadline:  time.Now().Add(runFor + time.Minute),
			MissingOK: true,
			PauseMS:   3,
		}))
	}
	var procs []*helperProc
	for _, p := range plans {
		procs = append(procs, startHelper(t, "writer", p))
	}
	// Standalone runs from another process, between the scheduled ones.
	standalone := 0
	deadline := time.Now().Add(runFor)
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, fsmountBin, "gc", "--cache-root", m.root, "--orphan-grace", "2s", "--retention", "24h", "--settle", "0s")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if timedOut {
			t.Errorf("standalone gc did not finish within 15s next to the daemon's scheduled runs (waiting for the GC lock?):\n%s", out)
		} else if err != nil {
			t.Errorf("standalone gc under load: %v:\n%s", err, out)
		}
		standalone++
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	final := make(map[string]string) // path -> last acknowledged version
	commits := 0
	for i, h := range procs {
		h.wait(t, time.Minute)
		for _, r := range h.writeResults(t) {
			if r.Err != "" {
				t.Errorf("writer %d: %s: %s", i, r.Path, r.Err)
				continue
			}
			final[r.Path] = r.SHA // one writer per path: its last ack wins
			commits++
		}
	}
	reads := collectReaders(t, readers)
	stats := controlFileJSON(t, m, "stats")
	t.Logf("%d commits of %d entries, %d whole reads, %d scheduled and %d standalone gc runs, %d files cleaned",
		commits, len(final), reads, jsonNum(t, stats, "gc_runs"), standalone, jsonNum(t, stats, "gc_files_cleaned"))
	if jsonNum(t, stats, "gc_runs") < 3 {
		t.Errorf("only %d scheduled gc runs in %s", jsonNum(t, stats, "gc_runs"), runFor)
	}
	for path, want := range final {
		got, _, err := streamSHA(path)
		if err != nil {
			t.Errorf("acknowledged %s lost: %v", path, err)
		} else if got != want {
			t.Errorf("%s reads sha256 %s, want the last acknowledged version %s", path, got, want)
		}
	}
	if n := sqliteInt(t, m.root, "select count(*) from manifest"); n != int64(len(final)) {
		t.Errorf("manifest has %d rows, want %d", n, len(final))
	}
	if out, code := runFsmount(t, "verify", "--cache-root", m.root); code != 0 {
		t.Errorf("verify after the GC stress exited %d:\n%s", code, out)
	}
}

// TestVerifyCatchesMissingBlobAndFlippedByte damages a cache root behind the
// daemon's back. `fsmount verify` exits 0 on the intact cache; --deep
// catches a flipped byte in a raw blob (same size, so only a re-hash sees
// it); a deleted blob makes verify exit 1, and a read of that entry through
// the mount fails with EIO rather than returning any bytes.
func TestVerifyCatchesMissingBlobAndFlippedByte(t *testing.T) {
	m := mountT(t, "--compression", "none")
	if err := os.Mkdir(m.path("QQQ"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"flipped", "missing", "intact"} {
		if err := os.WriteFile(m.path("QQQ", key+".parquet"), makeParquet(t, 2000, uint64(len(key))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := runFsmount(t, "verify", "--cache-root", m.root, "--deep"); code != 0 {
		t.Fatalf("verify --deep on an intact cache exited %d:\n%s", code, out)
	}
	blob := func(key string) string {
		return filepath.Join(m.root, sqliteQuery(t, m.root, fmt.Sprintf("select path from manifest where key = '%s'", key)))
	}

	// Flip one byte in the middle of a raw blob.
	p := blob("flipped")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "verify.json")
	out, code := runFsmount(t, "verify", "--cache-root", m.root, "--deep", "--output-json", report)
	if code != 1 {
		t.Errorf("verify --deep with a flipped byte exited %d, want 1:\n%s", code, out)
	}
	if got := jsonNum(t, loadJSON(t, report), "summary.hash_mismatches"); got != 1 {
		t.Errorf("verify --deep reports %d hash mismatches, want 1:\n%s", got, out)
	}
	if !strings.Contains(out, "flipped") {
		t.Errorf("verify --deep does not name the damaged entry:\n%s", out)
	}

	// Delete another blob.
	if err := os.Remove(blob("missing")); err != nil {
		t.Fatal(err)
	}
	out, code = runFsmount(t, "verify", "--cache-root", m.root, "--output-json", report)
	if code != 1 {
		t.Errorf("verify with a deleted blob exited %d, want 1:\n%s", code, out)
	}
	if got := jsonNum(t, loadJSON(t, report), "summary.missing_blobs"); got != 1 {
		t.Errorf("verify reports %d missing blobs, want 1:\n%s", got, out)
	}
	data, err := os.ReadFile(m.path("QQQ", "missing.parquet"))
	if err == nil {
		t.Errorf("read of an entry whose blob is gone returned %d bytes and no error", len(data))
	} else if !errors.Is(err, syscall.EIO) {
		t.Errorf("read of an entry whose blob is gone: %v, want EIO", err)
	}
	if got, err := os.ReadFile(m.path("QQQ", "intact.parquet")); err != nil || !bytes.Equal(got, makeParquet(t, 2000, uint64(len("intact")))) {
		t.Errorf("intact entry: %d bytes, %v", len(got), err)
	}
}

// TestTruncatedBlobFailsReadsAndIsQuarantined cuts committed blobs short
// behind the daemon's back, one stored raw (which the kernel may read
// directly, by passthrough) and one zstd. A read of either through the mount
// fails (EIO, or ENOENT once the row is gone) and never returns short or
// wrong bytes as a success; `fsmount verify` exits 1 naming both; the next
// GC reports them and moves their blobs to quarantine/.
func TestTruncatedBlobFailsReadsAndIsQuarantined(t *testing.T) {
	t.Parallel()
	m := mountT(t)
	sh(t, "mkdir", m.path("QQQ"))
	data := map[string][]byte{
		"raw": makeParquet(t, 5000, 40), // snappy pages: stored raw
		"zst": compressibleParquet(t, 50_000),
	}
	for key, d := range data {
		commitFile(t, m.path("QQQ", key+".parquet"), d)
	}
	intact := makeParquet(t, 3000, 41)
	commitFile(t, m.path("QQQ", "intact.parquet"), intact)
	blob := func(key string) string {
		return filepath.Join(m.root, sqliteQuery(t, m.root, fmt.Sprintf("select path from manifest where key = '%s'", key)))
	}
	if p := blob("raw"); !strings.HasSuffix(p, ".parquet") {
		t.Fatalf("raw entry stored as %s, want a raw blob", p)
	}
	if p := blob("zst"); !strings.HasSuffix(p, ".parquet.zst") {
		t.Fatalf("zst entry stored as %s, want a zstd blob", p)
	}
	// Nothing has read the entries through the mount yet, so no page cache
	// holds their bytes: every read below reaches the damaged blobs.
	for key := range data {
		p := blob(key)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}

	// A read either fails with EIO (ENOENT once the row is gone) or returns
	// the entry's exact bytes (something kept them whole); short bytes, or
	// an early end of file, are wrong data presented as a success.
	wantFailed := func(what string, got, want []byte, err error) {
		t.Helper()
		switch {
		case err == nil && bytes.Equal(got, want):
		case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENOENT):
		default:
			t.Errorf("%s with its blob cut in half: %d of %d bytes (equal: %v), error %v; want EIO or ENOENT",
				what, len(got), len(want), bytes.Equal(got, want[:min(len(got), len(want))]), err)
		}
	}
	for key, want := range data {
		path := m.path("QQQ", key+".parquet")
		// A parquet reader starts at the footer, past the cut.
		tail := make([]byte, 8)
		f, err := os.Open(path)
		if err == nil {
			var n int
			n, err = f.ReadAt(tail, int64(len(want)-len(tail)))
			tail = tail[:n]
			f.Close()
		}
		wantFailed("pread of "+key+"'s last 8 bytes", tail, want[len(want)-8:], err)
		got, err := os.ReadFile(path)
		wantFailed("read of "+key, got, want, err)
	}
	wantBytes(t, m.path("QQQ", "intact.parquet"), intact)

	report := filepath.Join(t.TempDir(), "verify.json")
	out, code := runFsmount(t, "verify", "--cache-root", m.root, "--output-json", report)
	if code != 1 {
		t.Errorf("verify with two truncated blobs exited %d, want 1:\n%s", code, out)
	}
	if got := jsonNum(t, loadJSON(t, report), "summary.size_mismatches"); got != 2 {
		t.Errorf("verify reports %d size mismatches, want 2:\n%s", got, out)
	}

	sh(t, "bash", "-c", "echo run > "+m.path(".control", "gc"))
	rep := controlFileJSON(t, m, "gc")
	if got := jsonNum(t, rep, "summary.integrity_issues"); got != 2 {
		t.Errorf("gc reports %d integrity issues, want 2: %v", got, rep["integrity_issues"])
	}
	if got := jsonNum(t, rep, "summary.quarantined_files"); got != 2 {
		t.Errorf("gc quarantined %d files, want 2", got)
	}
	quarantined, err := os.ReadDir(filepath.Join(m.root, "quarantine"))
	if err != nil || len(quarantined) != 2 {
		t.Errorf("quarantine/ holds %d files (%v), want the 2 truncated blobs", len(quarantined), err)
	}
	for key := range data {
		wantAbsent(t, m.path("QQQ", key+".parquet"))
	}
	wantBytes(t, m.path("QQQ", "intact.parquet"), intact)
	if out, code := runFsmount(t, "verify", "--cache-root", m.root); code != 0 {
		t.Errorf("verify after GC quarantined the damage exited %d:\n%s", code, out)
	}
}

// TestGCWithShortGraceBesideLockedManifestLosesNoAcknowledgedCommit is the
// orphan phase's check-then-remove race under load: writers commit while
// another process holds the manifest locked for seconds at a time, so
// commits wait between publishing their blob and inserting its row, and
// standalone GC runs with a 1 ms orphan grace judge those blobs the moment
// the lock is released. A commit may fail (its blob was claimed first:
// close reports EIO), but every commit that close acknowledged reads back
// exact, and verify is clean.
func TestGCWithShortGraceBesideLockedManifestLosesNoAcknowledgedCommit(t *testing.T) {
	const (
		writers   = 6
		perWriter = 30
		keys      = 5
		rounds    = 6
	)
	m := mountT(t, "--gc-interval", "0", "--retention", "24h")
	if err := os.Mkdir(m.path("RACE"), 0o755); err != nil {
		t.Fatal(err)
	}
	stop := filepath.Join(t.TempDir(), "stop")
	var procs []*helperProc
	for w := 0; w < writers; w++ {
		p := writerPlan{StopFile: stop}
		for i := 0; i < perWriter; i++ {
			p.Writes = append(p.Writes, plannedWrite{
				Path: m.path("RACE", fmt.Sprintf("w%d-k%d.parquet", w, i%keys)),
				Rows: 500 + (w*perWriter+i)*97%5000,
				Seed: uint64(50_000 + w*perWriter + i),
			})
		}
		procs = append(procs, startHelper(t, "writer", p))
	}
	gcs := make(chan error, 1)
	go func() {
		var errs []error
		for len(errs) == 0 {
			select {
			case <-gcs:
				gcs <- nil
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			out, err := exec.CommandContext(ctx, fsmountBin, "gc", "--cache-root", m.root,
				"--orphan-grace", "1ms", "--retention", "24h", "--settle", "0s").CombinedOutput()
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("standalone gc: %v:\n%s", err, out))
			}
		}
		<-gcs
		gcs <- errors.Join(errs...)
	}()
	for range rounds {
		release := lockManifest(t, m.root)
		time.Sleep(2 * time.Second)
		release()
		time.Sleep(500 * time.Millisecond)
	}
	gcs <- nil
	if err := <-gcs; err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	final := make(map[string]string)
	acked, failed := 0, 0
	for i, h := range procs {
		h.wait(t, 2*time.Minute)
		for _, r := range h.writeResults(t) {
			if r.Err != "" {
				// Told the truth: a failed close committed nothing, so the
				// path keeps whatever was acknowledged before.
				if !strings.Contains(r.Err, "input/output error") {
					t.Errorf("writer %d: %s: %s (want EIO if anything)", i, r.Path, r.Err)
				}
				failed++
				continue
			}
			final[r.Path] = r.SHA
			acked++
		}
	}
	t.Logf("%d acknowledged commits, %d failed closes, %d entries", acked, failed, len(final))
	for path, want := range final {
		if got, _, err := streamSHA(path); err != nil {
			t.Errorf("acknowledged %s lost: %v", path, err)
		} else if got != want {
			t.Errorf("%s reads sha256 %s, want the last acknowledged version %s", path, got, want)
		}
	}
	// Blobs of replaced versions outlive their rows by a few seconds (for
	// opens racing the replace); the grace here only has to cover that.
	if out, code := runFsmount(t, "verify", "--cache-root", m.root, "--orphan-grace", "1m"); code != 0 {
		t.Errorf("verify exited %d:\n%s", code, out)
	}
}
