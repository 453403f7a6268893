package integration

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soak runs the mixed-workload soak: go test ./test/integration -run Soak -soak 10m
var soak = flag.Duration("soak", 0, "run the mixed-workload soak test for this long (0 skips it)")

// TestSoakMixedWorkload writes, overwrites, reads, unlinks and renames from
// several workers for the -soak duration, with a GC every 30 s and one
// daemon restart halfway, and checks invariants throughout: every read is a
// whole version that was written, every acknowledged operation is what the
// mount shows afterwards, and verify is clean at the end.
func TestSoakMixedWorkload(t *testing.T) {
	if *soak <= 0 {
		t.Skip("soak runs only with -soak DURATION")
	}
	m := mountT(t, "--orphan-grace", "30s")
	const (
		workers  = 6
		readers  = 4
		keysEach = 12
		versions = 16
	)
	pool := make([][]byte, versions)
	known := map[string]bool{}
	for i := range pool {
		pool[i] = makeParquet(t, 500+rand.IntN(20_000), uint64(1000+i))
		known[sha256Hex(pool[i])] = true
	}
	for w := 0; w < workers; w++ {
		if err := os.Mkdir(m.path(fmt.Sprintf("S%d", w%3)), 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}

	var (
		gate                                 sync.RWMutex // held for writing while the daemon restarts
		ops, errs, reads, gcRuns             atomic.Int64
		writes, overwrites, unlinks, renames atomic.Int64
		violations                           failureLog
	)
	violate := violations.add
	deadline := time.Now().Add(*soak)
	var wg sync.WaitGroup

	// Each worker owns its keys, so the model of what they hold is exact.
	models := make([]map[string]int, workers) // path -> pool index; absent = no entry
	for w := 0; w < workers; w++ {
		models[w] = map[string]int{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			model := models[w]
			path := func(k int) string { return m.path(fmt.Sprintf("S%d", w%3), fmt.Sprintf("w%d-k%02d.parquet", w, k)) }
			for time.Now().Before(deadline) {
				gate.RLock()
				k := rng.IntN(keysEach)
				p := path(k)
				_, exists := model[p]
				ops.Add(1)
				switch op := rng.IntN(10); {
				case op < 4 || !exists: // write or overwrite
					v := rng.IntN(versions)
					if o := writeFile(p, pool[v]); o.Err != nil {
						errs.Add(1)
						violate("write %s: %v", p, o)
					} else {
						model[p] = v
						if exists {
							overwrites.Add(1)
						} else {
							writes.Add(1)
						}
					}
				case op < 7: // read back own key: exactly the last acknowledged version
					got, err := os.ReadFile(p)
					if err != nil {
						errs.Add(1)
						violate("read own %s: %v", p, err)
					} else if !bytes.Equal(got, pool[model[p]]) {
						violate("read own %s: %d bytes, not the acknowledged version", p, len(got))
					}
				case op < 8: // unlink
					if err := os.Remove(p); err != nil {
						errs.Add(1)
						violate("unlink %s: %v", p, err)
					} else {
						delete(model, p)
						unlinks.Add(1)
					}
				default: // rename onto another own key (replacing it)
					q := path(rng.IntN(keysEach))
					if q == p {
						break
					}
					if err := os.Rename(p, q); err != nil {
						errs.Add(1)
						violate("rename %s: %v", p, err)
					} else {
						model[q] = model[p]
						delete(model, p)
						renames.Add(1)
					}
				}
				gate.RUnlock()
			}
		}(w)
	}
	// Readers read anything: every read must be a whole version.
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(100+r), 9))
			for time.Now().Before(deadline) {
				gate.RLock()
				w := rng.IntN(workers)
				p := m.path(fmt.Sprintf("S%d", w%3), fmt.Sprintf("w%d-k%02d.parquet", w, rng.IntN(keysEach)))
				got, err := os.ReadFile(p)
				gate.RUnlock()
				switch {
				case errors.Is(err, os.ErrNotExist):
				case err != nil:
					errs.Add(1)
					violate("reader %s: %v", p, err)
				case !known[sha256Hex(got)]:
					violate("reader %s: %d bytes that are no whole version", p, len(got))
				default:
					reads.Add(1)
				}
			}
		}(r)
	}
	// GC every 30 s; one restart halfway.
	wg.Add(1)
	go func() {
		defer wg.Done()
		restarted := false
		for time.Now().Before(deadline) {
			time.Sleep(min(30*time.Second, time.Until(deadline)))
			if !restarted && time.Until(deadline) < *soak/2 {
				gate.Lock()
				m.restart()
				gate.Unlock()
				restarted = true
			}
			gate.RLock()
			if o := writeFile(m.path(".control", "gc"), []byte("run\n")); o.Err != nil {
				errs.Add(1)
				violate("gc: %v", o)
			} else {
				gcRuns.Add(1)
			}
			gate.RUnlock()
		}
	}()
	wg.Wait()

	// Final state equals the model of every worker.
	for _, model := range models {
		for p, v := range model {
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, pool[v]) {
				violate("final %s: %v, %d bytes, want version %d", p, err, len(got), v)
			}
		}
	}
	if out, err := run(fsmountBin, "verify", "--cache-root", m.root); err != nil {
		violate("verify: %v\n%s", err, out)
	}
	t.Logf("soak %s: %d operations (%d writes, %d overwrites, %d unlinks, %d renames), %d whole reads by readers, %d GC runs, 1 restart; errors: %d, invariant violations: %d",
		*soak, ops.Load(), writes.Load(), overwrites.Load(), unlinks.Load(), renames.Load(), reads.Load(), gcRuns.Load(), errs.Load(), violations.count())
	violations.report(t)
}
