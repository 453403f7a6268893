package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// coherenceBound is how soon another process's change must show (two seconds: the README's Guarantees).
const coherenceBound = 2 * time.Second

// TestSecondDaemonSeesCommitOverwriteAndRemoveWithinTwoSeconds runs two
// daemons on one cache root. A commit, an overwrite and an rm through the
// first show through the second within two seconds, and a reader looping on
// the second mount meanwhile never sees a torn file: every read is the old
// or the new version whole, its size agreeing with its bytes.
func TestSecondDaemonSeesCommitOverwriteAndRemoveWithinTwoSeconds(t *testing.T) {
	a := mountT(t)
	b := mountAt(t, a.root, filepath.Join(t.TempDir(), "mnt2"))
	if err := os.Mkdir(a.path("AAPL"), 0o755); err != nil {
		t.Fatal(err)
	}
	v1 := makeParquet(t, 20_000, 1)
	v2 := makeParquet(t, 35_000, 2) // a different size, so a stale size shows
	name := "k.parquet"

	// Commit through a; b sees it whole.
	if err := os.WriteFile(a.path("AAPL", name), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	took := pollUntil(t, coherenceBound, "commit through one daemon visible through the other", func() (bool, string) {
		data, err := os.ReadFile(b.path("AAPL", name))
		return err == nil && bytes.Equal(data, v1), fmt.Sprintf("read: %d bytes, %v", len(data), err)
	})
	t.Logf("commit visible through the second daemon after %s", took.Round(time.Millisecond))

	// Overwrite through a while a reader loops on b.
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		reads atomic.Int64
		mu    sync.Mutex
		torn  []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			p := b.path("AAPL", name)
			st, serr := os.Stat(p)
			data, err := os.ReadFile(p)
			if err != nil || serr != nil {
				mu.Lock()
				torn = append(torn, fmt.Sprintf("stat %v, read %v", serr, err))
				mu.Unlock()
				continue
			}
			reads.Add(1)
			if !bytes.Equal(data, v1) && !bytes.Equal(data, v2) {
				mu.Lock()
				torn = append(torn, fmt.Sprintf("read %d bytes (stat said %d), sha256 %s: neither version, parquet magic at both ends: %v",
					len(data), st.Size(), stressSHA(data), hasParquetMagic(data)))
				mu.Unlock()
			}
		}
	}()
	if err := os.WriteFile(a.path("AAPL", name), v2, 0o644); err != nil {
		t.Fatal(err)
	}
	took = pollUntil(t, coherenceBound, "overwrite through one daemon visible through the other", func() (bool, string) {
		st, serr := os.Stat(b.path("AAPL", name))
		data, err := os.ReadFile(b.path("AAPL", name))
		ok := serr == nil && err == nil && bytes.Equal(data, v2) && st.Size() == int64(len(v2))
		return ok, fmt.Sprintf("stat %v, read %d bytes, %v, new bytes: %v", serr, len(data), err, bytes.Equal(data, v2))
	})
	t.Logf("overwrite visible through the second daemon after %s", took.Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for i, s := range torn {
		if i == 5 {
			t.Errorf("... %d failed or torn reads in all", len(torn))
			break
		}
		t.Errorf("reader on the second mount during the overwrite: %s", s)
	}
	t.Logf("%d whole reads on the second mount during the overwrite", reads.Load())

	// rm through a; b stops showing it, in listings and by name.
	if err := os.Remove(a.path("AAPL", name)); err != nil {
		t.Fatal(err)
	}
	took = pollUntil(t, coherenceBound, "rm through one daemon visible through the other", func() (bool, string) {
		_, err := os.Stat(b.path("AAPL", name))
		listed := slices.Contains(listParquet(t, b.path("AAPL")), name)
		return errors.Is(err, os.ErrNotExist) && !listed, fmt.Sprintf("stat: %v, listed: %v", err, listed)
	})
	t.Logf("rm visible through the second daemon after %s", took.Round(time.Millisecond))
}

// TestStandaloneGCWhileMountedShowsWithinTwoSeconds runs `fsmount gc` from
// another process against a mounted cache root (two daemons, even). Entries
// whose last access is past the retention disappear from both mounts within
// two seconds, the others stay readable, and --output-json writes the report.
func TestStandaloneGCWhileMountedShowsWithinTwoSeconds(t *testing.T) {
	a := mountT(t)
	b := mountAt(t, a.root, filepath.Join(t.TempDir(), "mnt2"))
	if err := os.Mkdir(a.path("MSFT"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make(map[string][]byte)
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("e%d.parquet", i)
		data[name] = makeParquet(t, 2000+i, uint64(40+i))
		if err := os.WriteFile(a.path("MSFT", name), data[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Both mounts know every entry (listed and looked up, not opened, so no
	// access is recorded that would refresh the times set below).
	for _, m := range []*mount{a, b} {
		pollUntil(t, coherenceBound, "entries visible", func() (bool, string) {
			n := len(listParquet(t, m.path("MSFT")))
			return n == len(data), fmt.Sprintf("%d listed", n)
		})
		for name := range data {
			if _, err := os.Stat(m.path("MSFT", name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// e0..e2 were last read two days ago.
	old := time.Now().Add(-48 * time.Hour).Unix()
	sqliteQuery(t, a.root, fmt.Sprintf(
		"update manifest set last_accessed_ts = %d where symbol = 'MSFT' and key in ('e0','e1','e2')", old))
	expired := []string{"e0.parquet", "e1.parquet", "e2.parquet"}
	kept := []string{"e3.parquet", "e4.parquet", "e5.parquet"}

	report := filepath.Join(t.TempDir(), "gc.json")
	out, code := runFsmount(t, "gc", "--cache-root", a.root, "--retention", "24h", "--output-json", report)
	done := time.Now()
	if code != 0 {
		t.Fatalf("fsmount gc exited %d:\n%s", code, out)
	}
	rep := loadJSON(t, report)
	if got := jsonNum(t, rep, "summary.expired_entries"); got != int64(len(expired)) {
		t.Errorf("report expired_entries = %d, want %d:\n%v", got, len(expired), rep)
	}
	for _, field := range []string{"started", "finished", "dry_run", "integrity_issues", "summary"} {
		if _, ok := rep[field]; !ok {
			t.Errorf("report has no %q field", field)
		}
	}
	for _, m := range []*mount{a, b} {
		pollUntil(t, coherenceBound, "entries removed by a standalone gc disappear from "+m.dir, func() (bool, string) {
			listed := listParquet(t, m.path("MSFT"))
			for _, name := range expired {
				if slices.Contains(listed, name) {
					return false, name + " still listed"
				}
				if _, err := os.Stat(m.path("MSFT", name)); !errors.Is(err, os.ErrNotExist) {
					return false, fmt.Sprintf("stat %s: %v", name, err)
				}
			}
			return true, ""
		})
		t.Logf("%s: expired entries gone %s after gc returned", m.dir, time.Since(done).Round(time.Millisecond))
		for _, name := range kept {
			got, err := os.ReadFile(m.path("MSFT", name))
			if err != nil || !bytes.Equal(got, data[name]) {
				t.Errorf("%s: kept entry %s: %d bytes, %v", m.dir, name, len(got), err)
			}
		}
	}
	if n := sqliteInt(t, a.root, "select count(*) from manifest"); n != int64(len(kept)) {
		t.Errorf("manifest has %d rows after gc, want %d", n, len(kept))
	}
}
