package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestConcurrentWritersAndReadersLoseNothing runs 20 writer processes of 10
// entries each (several writers share a symbol) and 3 processes overwriting
// one hot key over and over, while 4 reader processes read the same paths.
// Every close succeeds, every read is one whole version that was written,
// and at the end all 200 entries read back exact, the manifest has 200 rows
// and .control/stats counts every commit.
func TestConcurrentWritersAndReadersLoseNothing(t *testing.T) {
	m := mountT(t)
	const (
		writers     = 20
		perWriter   = 10
		overwriters = 3
		overwrites  = 10
		symbols     = 5
	)
	for s := 0; s < symbols; s++ {
		if err := os.Mkdir(m.path(fmt.Sprintf("S%d", s)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(m.path("HOT"), 0o755); err != nil {
		t.Fatal(err)
	}
	hot := m.path("HOT", "shared.parquet")

	// Plans, and every version each path may hold.
	versions := make(map[string][]string)
	var plans []writerPlan
	for w := 0; w < writers; w++ {
		var p writerPlan
		for j := 0; j < perWriter; j++ {
			path := m.path(fmt.Sprintf("S%d", w%symbols), fmt.Sprintf("w%02d-%02d.parquet", w, j))
			if w == 0 && j == 0 {
				path = hot // one of the 200 is also the overwriters' key
			}
			pw := plannedWrite{Path: path, Rows: 2000 + (w*perWriter+j)*97%18000, Seed: uint64(1000 + w*perWriter + j)}
			p.Writes = append(p.Writes, pw)
			versions[path] = append(versions[path], stressSHA(makeParquet(t, pw.Rows, pw.Seed)))
		}
		plans = append(plans, p)
	}
	for o := 0; o < overwriters; o++ {
		var p writerPlan
		for r := 0; r < overwrites; r++ {
			pw := plannedWrite{Path: hot, Rows: 3000 + o*1000 + r*100, Seed: uint64(5000 + o*overwrites + r)}
			p.Writes = append(p.Writes, pw)
			versions[hot] = append(versions[hot], stressSHA(makeParquet(t, pw.Rows, pw.Seed)))
		}
		plans = append(plans, p)
	}
	if len(versions) != writers*perWriter {
		t.Fatalf("plan has %d distinct paths, want %d", len(versions), writers*perWriter)
	}

	stop := filepath.Join(t.TempDir(), "stop")
	var readers []*helperProc
	for r := 0; r < 4; r++ {
		readers = append(readers, startHelper(t, "reader", readerPlan{
			Versions:  versions,
			StopFile:  stop,
			Deadline:  time.Now().Add(2 * time.Minute),
			MissingOK: true,
		}))
	}
	start := time.Now()
	var procs []*helperProc
	for _, p := range plans {
		procs = append(procs, startHelper(t, "writer", p))
	}

	acked := make(map[string][]string) // path -> versions whose close succeeded
	total := 0
	for i, h := range procs {
		h.wait(t, 2*time.Minute)
		results := h.writeResults(t)
		if len(results) != len(plans[i].Writes) {
			t.Errorf("writer %d reported %d writes, want %d; stderr:\n%s", i, len(results), len(plans[i].Writes), h.stderr.String())
		}
		for _, r := range results {
			if r.Err != "" {
				t.Errorf("writer %d: %s: %s", i, r.Path, r.Err)
				continue
			}
			acked[r.Path] = append(acked[r.Path], r.SHA)
			total++
		}
	}
	t.Logf("%d processes committed %d versions of %d entries in %s", len(procs), total, len(acked), time.Since(start).Round(time.Millisecond))
	// Let the readers go on briefly over the finished set.
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reads := collectReaders(t, readers)
	if reads == 0 {
		t.Errorf("the readers read nothing")
	}

	// Every entry reads back exact: the writer's bytes, or for the hot key
	// one of the versions whose close succeeded.
	for path, shas := range acked {
		got, _, err := streamSHA(path)
		if err != nil {
			t.Errorf("read back %s: %v", path, err)
			continue
		}
		if !slices.Contains(shas, got) {
			t.Errorf("%s: sha256 %s is not a version whose close succeeded (%d of them)", path, got, len(shas))
		}
	}
	if n := sqliteInt(t, m.root, "select count(*) from manifest"); n != writers*perWriter {
		t.Errorf("manifest has %d rows, want %d", n, writers*perWriter)
	}
	stats := controlFileJSON(t, m, "stats")
	if got := jsonNum(t, stats, "commits"); got != int64(total) {
		t.Errorf(".control/stats commits = %d, want %d (successful closes)", got, total)
	}
	if got := jsonNum(t, stats, "entries"); got != writers*perWriter {
		t.Errorf(".control/stats entries = %d, want %d", got, writers*perWriter)
	}
	if got := jsonNum(t, stats, "rejected_writes"); got != 0 {
		t.Errorf(".control/stats rejected_writes = %d, want 0", got)
	}
}
