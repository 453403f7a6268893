package manifest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Run with: go test -run '^$' -bench . -benchtime 2s ./manifest
//
// b.TempDir is on the real disk (not tmpfs) unless TMPDIR says otherwise, so
// the commit figures include a real fsync per transaction. Each commit
// benchmark also measures the disk's fsync of a 4 KiB write in the same
// directory and reports "fsyncs/commit", the time per commit in units of
// that fsync: about 1 or more without batching (one WAL append + fsync per
// transaction), well under 1 when group commit shares the fsync.

func TestList100kEntries(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100k rows")
	}
	db := openT(t, Options{})
	const n = 100_000
	bulkInsert(t, db, "BIG", n, "i")
	bulkInsert(t, db, "OTHER", 1000, "0")

	start := time.Now()
	var slowest time.Duration
	seen, after := 0, ""
	for {
		t0 := time.Now()
		page, err := db.List(ctx, "BIG", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Key <= after || e.Symbol != "BIG" {
				t.Fatalf("%s/%s after %q", e.Symbol, e.Key, after)
			}
			after = e.Key
			seen++
		}
	}
	if seen != n {
		t.Fatalf("listed %d of %d", seen, n)
	}
	t.Logf("listed %d entries in pages of 1000 in %v, slowest page %v", n, time.Since(start), slowest)
}

// fsyncCost is the median time of appending 4 KiB to a file in dir and
// fsyncing it, as a commit appends a frame to the WAL and fsyncs it.
func fsyncCost(b *testing.B, dir string) time.Duration {
	f, err := os.CreateTemp(dir, "fsync")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const rounds = 101
	buf := make([]byte, 4096)
	times := make([]time.Duration, rounds)
	for i := range times {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(t0)
	}
	slices.Sort(times)
	return times[rounds/2]
}

func BenchmarkCommit(b *testing.B) {
	cases := []struct {
		writers int
		group   bool
		normal  bool
	}{
		{1, false, false}, {1, true, false},
		{20, false, false}, {20, true, false},
		{1, true, true}, {20, true, true},
	}
	for _, c := range cases {
		syncMode := "full"
		if c.normal {
			syncMode = "normal"
		}
		name := fmt.Sprintf("writers=%d/group=%v/sync=%s", c.writers, c.group, syncMode)
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			fsync := fsyncCost(b, dir)
			db := openAtT(b, filepath.Join(dir, "manifest.db"), Options{NoGroupCommit: !c.group, SyncNormal: c.normal})
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range c.writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, _, err := db.Commit(ctx, entry(fmt.Sprintf("W%d", w), fmt.Sprintf("k%09d", i))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			cn := db.Counters()
			perCommit := elapsed / time.Duration(b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			b.ReportMetric(float64(cn.Transactions)/float64(cn.Commits), "txns/commit")
			b.ReportMetric(float64(perCommit)/float64(fsync), "fsyncs/commit")
			b.ReportMetric(float64(fsync.Microseconds()), "fsync-µs")
		})
	}
}

// BenchmarkRead100k measures reads against one symbol of 100k entries.
func BenchmarkRead100k(b *testing.B) {
	db := openT(b, Options{})
	const n = 100_000
	bulkInsert(b, db, "BIG", n, "i")
	key := func(i int) string { return fmt.Sprintf("k%06d", i) }

	b.Run("List1000", func(b *testing.B) {
		for b.Loop() {
			after := key(rand.N(n - 1000))
			page, err := db.List(ctx, "BIG", after, 1000)
			if err != nil || len(page) != 1000 {
				b.Fatalf("List: %d, %v", len(page), err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Get(ctx, "BIG", key(rand.N(n))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.Get(ctx, "BIG", key(rand.N(n))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("GetDuringCommits", func(b *testing.B) {
		// Reads while this process commits continuously: the reader pool
		// does not queue behind the writer.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				db.Commit(ctx, entry("W", fmt.Sprint(i)))
			}
		})
		for b.Loop() {
			if _, err := db.Get(ctx, "BIG", key(rand.N(n))); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		close(stop)
		wg.Wait()
	})
	b.Run("RecordAccess", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			db.RecordAccess(int64(i%n+1), time.Now())
		}
	})
}
