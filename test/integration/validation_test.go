package integration

// Validation (docs/design.md, commit step 1): a footer that parses is not
// enough. Files whose pages do not match their footer fail at close with
// EINVAL and leave the previous version readable; no declared footer
// length makes the daemon's memory grow.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// wantReadable checks that path still holds data, byte for byte, and that
// DuckDB scans all of its rows.
func wantReadable(t *testing.T, path string, data []byte, rows int) {
	t.Helper()
	if got, want := sha256File(t, path), sha256Hex(data); got != want {
		t.Fatalf("%s: sha256 %s, want the committed %s", path, got, want)
	}
	got := duck(t, fmt.Sprintf(`SELECT count(*) AS c FROM read_parquet('%s')`, path))
	if c := fmt.Sprint(got[0]["c"]); c != strconv.Itoa(rows) {
		t.Fatalf("DuckDB counts %s rows in %s, want %d", c, path, rows)
	}
}

func TestCloseRejectsConcatenatedParquet(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	k := m.path("AAPL", "k.parquet")
	a, b := makeParquet(t, 500, 100), makeParquet(t, 700, 101)
	commitFile(t, k, a)
	src := t.TempDir()
	pa, pb := filepath.Join(src, "a.parquet"), filepath.Join(src, "b.parquet")
	for p, data := range map[string][]byte{pa: a, pb: b} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// What a shell user types; both must fail where the shell reports it.
	for _, script := range []string{
		fmt.Sprintf("cat %q >> %q", pb, k),
		fmt.Sprintf("cat %q %q > %q", pa, pb, k),
	} {
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err == nil {
			t.Errorf("%s: succeeded, want an error", script)
		}
		t.Logf("%s: %v: %s", script, err, strings.TrimSpace(string(out)))
		wantReadable(t, k, a, 500)
	}
	// The errno a program sees at close, for a new entry and for a
	// replacement.
	for _, name := range []string{"k.parquet", "new.parquet"} {
		o := writeFile(m.path("AAPL", name), append(append([]byte(nil), a...), b...))
		if o.Op != "close" || o.errno() != syscall.EINVAL {
			t.Errorf("a and b concatenated into %s: %v, want EINVAL at close", name, o)
		}
	}
	wantAbsent(t, m.path("AAPL", "new.parquet"))
	wantReadable(t, k, a, 500)
	m.wantErrorListed(t, "AAPL/k.parquet", "close")
	if st := m.stats(t); st.Entries != 1 || st.Commits != 1 {
		t.Fatalf("entries %d, commits %d: want 1 and 1", st.Entries, st.Commits)
	}
}

// craftScript writes a sparse file of size bytes through one open: the head
// magic, a hole, then a footer length and the end magic; and reports how
// close ended and how long it took.
const craftScript = `
import os, struct, sys, time
path, size, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"PAR1")
os.pwrite(fd, struct.pack("<I", length) + b"PAR1", size - 8)
start = time.monotonic()
try:
    os.close(fd)
    print(0, time.monotonic() - start)
except OSError as e:
    print(e.errno, time.monotonic() - start)
`

func TestCraftedFooterLengthsKeepDaemonMemoryFlat(t *testing.T) {
	const (
		size      = 4500 << 20
		maxGrowth = 64 << 10 // KiB
		rounds    = 2
	)
	lengths := []int64{1 << 30, 2 << 30, 3 << 30, 3840 << 20, 1<<32 - 1}
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	good := makeParquet(t, 500, 100)
	commitFile(t, m.path("AAPL", "k.parquet"), good)
	pid := m.cmd.Process.Pid
	baseline := procStatusKiB(t, pid, "VmHWM")

	for round := range rounds {
		var wg sync.WaitGroup
		results := make([]string, len(lengths))
		for i, length := range lengths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := m.path("AAPL", fmt.Sprintf("crafted%d.parquet", i))
				out, err := exec.Command("python3", "-c", craftScript, p, strconv.Itoa(size), strconv.FormatInt(length, 10)).CombinedOutput()
				if err != nil {
					results[i] = fmt.Sprintf("error %v: %s", err, out)
					return
				}
				results[i] = strings.TrimSpace(string(out))
			}()
		}
		wg.Wait()
		for i, r := range results {
			f := strings.Fields(r)
			if len(f) != 2 || f[0] != strconv.Itoa(int(syscall.EINVAL)) {
				t.Errorf("round %d, footer length %d: close gave %q, want errno %d (EINVAL)", round, lengths[i], r, syscall.EINVAL)
				continue
			}
			took, _ := strconv.ParseFloat(f[1], 64)
			t.Logf("round %d, footer length %d: EINVAL in %.3fs", round, lengths[i], took)
			if took > 1 {
				t.Errorf("round %d, footer length %d: rejected after %.1fs, want within a second", round, lengths[i], took)
			}
		}
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("daemon VmHWM: %d MiB before, %d MiB after %d crafted closes", baseline>>10, peak>>10, rounds*len(lengths))
	if peak-baseline > maxGrowth {
		t.Errorf("daemon peak RSS grew by %d MiB, want under %d MiB", (peak-baseline)>>10, maxGrowth>>10)
	}
	m.wantErrorListed(t, "AAPL/crafted0.parquet", "cap")
	for i := range lengths {
		wantAbsent(t, m.path("AAPL", fmt.Sprintf("crafted%d.parquet", i)))
	}
	if got := sha256File(t, m.path("AAPL", "k.parquet")); got != sha256Hex(good) {
		t.Fatalf("k.parquet changed")
	}
}
