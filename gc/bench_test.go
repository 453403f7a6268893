package gc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"featurefs/blobstore"
	"featurefs/manifest"
)

// The GC benchmark builds a synthetic cache root of -gc.scale entries with
// tiny blobs, then measures GC runs on it, each in a fresh process so that
// the peak RSS (VmHWM) is the run's own:
//
//	go test ./gc -run '^$' -bench GC -benchtime 1x -gc.scale 100000
//
// baseline opens the cache and does nothing; dry is a dry run; real is a
// real run (with -benchtime above 1x, later real runs find nothing left to
// delete). The cache holds: entries last accessed uniformly over the past
// 30 days (a fifteenth past the 4 week retention), a size cap at 90% of the
// stored bytes (evicting about as many again), one orphan blob per 100
// entries, one missing blob per 10000 entries: about a tenth of the entries
// go, a heavy day for a cache whose GC runs daily.
var benchScale = flag.Int("gc.scale", 0, "entries in the GC benchmark's synthetic cache (0 skips it)")

// Environment of the child process that performs one measured run.
const (
	childEnvRoot    = "FEATUREFS_GC_BENCH_ROOT"
	childEnvMode    = "FEATUREFS_GC_BENCH_MODE"
	childEnvMaxSize = "FEATUREFS_GC_BENCH_MAX_SIZE"
	childPrefix     = "GCBENCH "
)

// phaseLog passes on only the run's per-phase timings.
type phaseLog struct{ slog.Handler }

func (h phaseLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "gc phase done" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// childResult is what the child prints.
type childResult struct {
	Seconds   float64 `json:"seconds"`
	PeakRSSKB int64   `json:"peak_rss_kb"`
	Summary   Summary `json:"summary"`
}

func BenchmarkGC(b *testing.B) {
	if *benchScale <= 0 {
		b.Skip("set -gc.scale=N (for example 100000) to run")
	}
	n := *benchScale
	root := b.TempDir()
	t0 := time.Now()
	stored := buildBenchCache(b, root, n)
	b.Logf("built %d entries (%d stored bytes) in %v", n, stored, time.Since(t0).Round(time.Millisecond))
	maxSize := stored * 9 / 10

	var baseline int64
	for _, mode := range []string{"baseline", "dry", "real"} {
		b.Run(fmt.Sprintf("mode=%s/entries=%d", mode, n), func(b *testing.B) {
			var last childResult
			for range b.N {
				last = runBenchChild(b, root, mode, maxSize)
			}
			if mode == "baseline" {
				baseline = last.PeakRSSKB
			}
			b.ReportMetric(last.Seconds, "s/run")
			b.ReportMetric(float64(last.PeakRSSKB)/1024, "peakRSS-MiB")
			if baseline > 0 {
				b.ReportMetric(float64(last.PeakRSSKB)/float64(baseline), "x-baseline-RSS")
			}
			s := last.Summary
			b.ReportMetric(float64(s.ExpiredEntries+s.EvictedEntries+s.OrphanedFiles+s.IntegrityIssues), "decisions")
			if mode != "baseline" {
				b.Logf("%s: %.2fs, peak RSS %.1f MiB (baseline %.1f MiB): expired %d, evicted %d, orphans %d, integrity %d, files %d, bytes %d",
					mode, last.Seconds, float64(last.PeakRSSKB)/1024, float64(baseline)/1024,
					s.ExpiredEntries, s.EvictedEntries, s.OrphanedFiles, s.IntegrityIssues, s.TotalFilesDeleted, s.TotalBytesFreed)
				if d := s.ExpiredEntries + s.EvictedEntries; d > 0 {
					b.ReportMetric(last.Seconds/float64(d)*1e3, "ms/entry-deleted")
				}
			}
		})
	}
}

// runBenchChild re-runs this test binary to perform one run in a fresh
// process.
func runBenchChild(b *testing.B, root, mode string, maxSize int64) childResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGCBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		childEnvRoot+"="+root, childEnvMode+"="+mode, childEnvMaxSize+"="+strconv.FormatInt(maxSize, 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("child %s: %v\n%s", mode, err, out.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "phase done") {
			b.Logf("%s: %s", mode, sc.Text())
		}
		if line, ok := strings.CutPrefix(sc.Text(), childPrefix); ok {
			var r childResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				b.Fatal(err)
			}
			return r
		}
	}
	b.Fatalf("child %s printed no result:\n%s", mode, out.String())
	return childResult{}
}

// TestGCBenchChild is the measured process of BenchmarkGC; it does nothing
// unless started by it.
func TestGCBenchChild(t *testing.T) {
	root := os.Getenv(childEnvRoot)
	if root == "" {
		t.Skip("run by BenchmarkGC")
	}
	mode := os.Getenv(childEnvMode)
	maxSize, _ := strconv.ParseInt(os.Getenv(childEnvMaxSize), 10, 64)
	ctx := context.Background()
	t0 := time.Now()
	store, err := blobstore.Open(root, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := manifest.Open(ctx, filepath.Join(root, "manifest.db"), manifest.Options{AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res childResult
	if mode != "baseline" {
		log := slog.New(phaseLog{slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})})
		rep, err := Run(ctx, db, store, Options{MaxSize: maxSize, DryRun: mode == "dry", Settle: -1, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		res.Summary = rep.Summary
	}
	res.Seconds = time.Since(t0).Seconds()
	res.PeakRSSKB = peakRSSKB(t)
	line, _ := json.Marshal(res)
	fmt.Printf("%s%s\n", childPrefix, line)
}

// peakRSSKB reads the process's peak resident set size.
func peakRSSKB(t testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// buildBenchCache commits n entries of 64..127 bytes through the store and
// the manifest, as mounts would, plus orphans and missing blobs. It returns
// the stored bytes.
func buildBenchCache(b *testing.B, root string, n int) int64 {
	b.Helper()
	ctx := context.Background()
	store, err := blobstore.Open(root, blobstore.Options{Compression: blobstore.None, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	const span = 30 * 24 * 3600 // seconds
	var calls atomic.Int64
	db, err := manifest.Open(ctx, filepath.Join(root, "manifest.db"), manifest.Options{
		SyncNormal: true, AccessFlushInterval: -1,
		// Spread commit (and so access) times over the span.
		Now: func() time.Time {
			i := calls.Add(1)
			return now.Add(-time.Duration((i*7919)%span) * time.Second)
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	payload := bytes.Repeat([]byte("0123456789abcdef"), 8)
	publish := func(i int) *blobstore.Published {
		st, err := store.CreateStaged()
		if err != nil {
			b.Fatal(err)
		}
		size := 64 + i%64
		if _, err := st.File().WriteAt(payload[:size], 0); err != nil {
			b.Fatal(err)
		}
		p, err := store.Publish(ctx, st, int64(size))
		if err != nil {
			b.Fatal(err)
		}
		return p
	}

	var stored atomic.Int64
	var missing sync.Map
	work := make(chan int, 1024)
	var wg sync.WaitGroup
	// Many concurrent commits let the manifest batch them into few
	// transactions, as it does under a busy mount.
	for range 32 {
		wg.Go(func() {
			for i := range work {
				p := publish(i)
				_, _, err := db.Commit(ctx, manifest.Entry{
					Symbol: fmt.Sprintf("SYM%03d", i%100), Key: fmt.Sprintf("%064x", i),
					Path: p.Blob.Path, FileSize: p.Blob.StoredSize, LogicalSize: p.Blob.LogicalSize,
					Hash: "0", HashMethod: "full",
				})
				if err != nil {
					b.Error(err)
				}
				if err := p.Release(); err != nil {
					b.Error(err)
				}
				stored.Add(p.Blob.StoredSize)
				if i%10000 == 9999 {
					missing.Store(p.Blob.Path, true)
				}
				if i%100 == 99 {
					o := publish(i)
					o.Release()
					old := now.Add(-2 * time.Hour)
					os.Chtimes(filepath.Join(root, filepath.FromSlash(o.Blob.Path)), old, old)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	missing.Range(func(k, _ any) bool {
		os.Remove(filepath.Join(root, filepath.FromSlash(k.(string))))
		return true
	})
	if err := db.Maintain(ctx); err != nil {
		b.Fatal(err)
	}
	return stored.Load()
}
