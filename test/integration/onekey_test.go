package integration

import (
	"errors"
	"flag"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var oneKeyFor = flag.Duration("onekey", 5*time.Second, "how long TestOneKeyWritersAndReadersInOneProcess runs")

// TestOneKeyWritersAndReadersInOneProcess hammers a single key from writer
// and reader goroutines of one process: they share OS threads, so whatever
// the daemon keys by thread id must not leak from one to the other. Every
// open succeeds and every read is a whole version.
func TestOneKeyWritersAndReadersInOneProcess(t *testing.T) {
	m := mountT(t)
	if err := os.Mkdir(m.path("K"), 0o755); err != nil {
		t.Fatal(err)
	}
	const versions = 6
	pool := make([][]byte, versions)
	known := map[string]bool{}
	for i := range pool {
		pool[i] = makeParquet(t, 200+300*i, uint64(50+i))
		known[sha256Hex(pool[i])] = true
	}
	p := m.path("K", "hot.parquet")
	commitFile(t, p, pool[0])

	var (
		wg            sync.WaitGroup
		writes, reads atomic.Int64
		failures      failureLog
	)
	fail := failures.add
	deadline := time.Now().Add(*oneKeyFor)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if o := writeFile(p, pool[(w+i)%versions]); o.Op != "" {
					fail("writer %d: %v", w, o)
					continue
				}
				writes.Add(1)
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				got, err := os.ReadFile(p)
				switch {
				case errors.Is(err, os.ErrNotExist):
					fail("reader %d: %v", r, err)
				case err != nil:
					fail("reader %d: %v", r, err)
				case !known[sha256Hex(got)]:
					fail("reader %d: %d bytes that are no whole version", r, len(got))
				default:
					reads.Add(1)
				}
			}
		}(r)
	}
	wg.Wait()
	t.Logf("%d commits, %d whole reads, %d failures", writes.Load(), reads.Load(), failures.count())
	failures.report(t)
}
