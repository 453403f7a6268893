package integration

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyLoopScript copies $SRC/<i mod 4>.parquet to $DST/$P<i>.parquet until
// $STOP exists, appending "<name> <source>" to $ACKS for every cp that
// exited 0: the acknowledged writes.
const copyLoopScript = `
i=0
while [ ! -e "$STOP" ]; do
	f=$((i % 4))
	if cp "$SRC/$f.parquet" "$DST/$P$i.parquet" 2>/dev/null; then
		echo "$P$i $f" >> "$ACKS"
	fi
	i=$((i + 1))
done
`

// TestKill9DuringCopiesKeepsEveryAcknowledgedEntry kills the daemon with
// SIGKILL while two shell loops copy files in. After a restart every cp that
// exited 0 reads back exact, every listed entry is a whole file (exact bytes
// of its source, and DuckDB reads them all), verify is clean, and what the
// dead daemon left half-done (staged files, an unreferenced blob) is
// collected by GC once past the orphan grace.
func TestKill9DuringCopiesKeepsEveryAcknowledgedEntry(t *testing.T) {
	m := mountT(t)
	src := t.TempDir()
	rows := []int{1_000, 40_000, 150_000, 300_000}
	srcSHA := make([]string, len(rows))
	wantRows := make([]int, len(rows))
	for i, n := range rows {
		p := writeFixture(t, src, fmt.Sprintf("%d.parquet", i), n, uint64(100+i))
		srcSHA[i] = sha256File(t, p)
		wantRows[i] = n
	}
	if err := os.Mkdir(m.path("CRASH"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	stop, acks := filepath.Join(tmp, "stop"), filepath.Join(tmp, "acks")
	var loops []*exec.Cmd
	for _, prefix := range []string{"a", "b"} {
		cmd := exec.Command("bash", "-c", copyLoopScript)
		cmd.Env = append(os.Environ(), "SRC="+src, "DST="+m.path("CRASH"), "P="+prefix, "STOP="+stop, "ACKS="+acks)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		loops = append(loops, cmd)
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
	}

	// Let some copies through, then kill the daemon mid-stream.
	pollUntil(t, 30*time.Second, "acknowledged copies before the kill", func() (bool, string) {
		n := len(readAcks(t, acks))
		return n >= 12, fmt.Sprintf("%d acknowledged", n)
	})
	m.kill9()
	killed := time.Now()
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range loops {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("copy loop: %v", err)
		}
	}
	acked := readAcks(t, acks)
	t.Logf("%d copies acknowledged before kill -9; loops ended %s after it", len(acked), time.Since(killed).Round(time.Millisecond))

	m.restart()
	for name, f := range acked {
		got, _, err := streamSHA(m.path("CRASH", name))
		if err != nil {
			t.Errorf("acknowledged %s (from %d.parquet) lost after kill -9: %v", name, f, err)
			continue
		}
		if got != srcSHA[f] {
			t.Errorf("acknowledged %s reads back sha256 %s, want %s (%d.parquet)", name, got, srcSHA[f], f)
		}
	}
	// Nothing partial is visible: every listed entry, acknowledged or not,
	// is exactly the file it was copied from.
	listed := listParquet(t, m.path("CRASH"))
	unacked, totalRows := 0, 0
	for _, name := range listed {
		i, err := strconv.Atoi(strings.TrimSuffix(name[1:], ".parquet"))
		if err != nil {
			t.Fatalf("unexpected entry %s", name)
		}
		f := i % len(rows)
		totalRows += wantRows[f]
		if _, ok := acked[name]; !ok {
			unacked++
		}
		got, _, err := streamSHA(m.path("CRASH", name))
		if err != nil {
			t.Errorf("listed %s cannot be read: %v", name, err)
		} else if got != srcSHA[f] {
			t.Errorf("listed %s is sha256 %s, not its source %d.parquet (%s): a partial file is visible", name, got, f, srcSHA[f])
		}
	}
	t.Logf("%d entries listed after restart, %d of them committed but not acknowledged (the copy in flight)", len(listed), unacked)
	if len(listed) < len(acked) {
		t.Errorf("%d entries listed, fewer than the %d acknowledged", len(listed), len(acked))
	}
	res := duck(t, fmt.Sprintf("SELECT count(*)::BIGINT AS n FROM read_parquet('%s')", m.path("CRASH", "*.parquet")))
	if len(res) != 1 || fmt.Sprint(res[0]["n"]) != strconv.Itoa(totalRows) {
		t.Errorf("DuckDB over all listed entries: %v, want n=%d", res, totalRows)
	}

	if out, code := runFsmount(t, "verify", "--cache-root", m.root); code != 0 {
		t.Errorf("verify after kill -9 and restart exited %d, want 0:\n%s", code, out)
	}
	// The dead daemon's staged files and any blob whose commit it never
	// finished are orphans: GC past the grace removes them and the cache
	// root is then clean even with no grace at all.
	leftovers := countFiles(t, filepath.Join(m.root, "staging"))
	gcOut, code := runFsmount(t, "gc", "--cache-root", m.root, "--orphan-grace", "1ms", "--settle", "0s")
	if code != 0 {
		t.Errorf("gc --orphan-grace 1ms exited %d:\n%s", code, gcOut)
	}
	if out, code := runFsmount(t, "verify", "--cache-root", m.root, "--orphan-grace", "1ms"); code != 0 {
		t.Errorf("verify --orphan-grace 1ms after gc exited %d, want 0:\n%s", code, out)
	}
	if n := countFiles(t, filepath.Join(m.root, "staging")); n != 0 {
		t.Errorf("%d staging files left after gc past the grace", n)
	}
	t.Logf("staging files left by the killed daemon: %d; gc:\n%s", leftovers, gcOut)
	// The entries are all still there after GC.
	if got := len(listParquet(t, m.path("CRASH"))); got != len(listed) {
		t.Errorf("after gc %d entries listed, want %d", got, len(listed))
	}
}

// readAcks parses the acknowledgement file of the copy loops: name.parquet
// -> source index.
func readAcks(t testing.TB, path string) map[string]int {
	t.Helper()
	acked := make(map[string]int)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return acked
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, src, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(src)
		if !ok || err != nil {
			// A line being appended right now; the final read sees it whole.
			continue
		}
		acked[name+".parquet"] = n
	}
	return acked
}

// countFiles counts the regular files below dir.
func countFiles(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// TestSigtermWithHalfWrittenFileExitsAndNeverCommitsIt sends SIGTERM to the
// daemon while a writer holds an entry open, half written. The daemon must
// exit on its own (detaching the mount lazily rather than waiting for the
// writer), a restart must work, and the half-written file must never appear,
// neither right after the restart nor once the writer gives up.
func TestSigtermWithHalfWrittenFileExitsAndNeverCommitsIt(t *testing.T) {
	m := mountT(t)
	if err := os.Mkdir(m.path("SYM"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("SYM", "kept.parquet"), makeParquet(t, 1000, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	half := m.path("SYM", "half.parquet")
	h := startHelper(t, "hold", holdPlan{Path: half, ReadyFile: ready, Rows: 200_000, Seed: 9})
	pollUntil(t, 30*time.Second, "writer has half the file written", func() (bool, string) {
		_, err := os.Stat(ready)
		return err == nil, fmt.Sprint(err)
	})

	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	const exitWithin = 15 * time.Second
	select {
	case <-m.done:
		t.Logf("daemon exited %s after SIGTERM with a half-written file open", time.Since(sent).Round(time.Millisecond))
	case <-time.After(exitWithin):
		t.Errorf("daemon still running %s after SIGTERM while a writer holds a half-written file open: "+
			"it waits for the writer instead of detaching and exiting", exitWithin)
		// Release the writer so the daemon can finish, then go on.
		h.stdin.Close()
		select {
		case <-m.done:
			t.Logf("daemon exited %s after SIGTERM, once the writer closed", time.Since(sent).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatalf("daemon still running 30s after the writer closed")
		}
	}
	if isMounted(m.dir) {
		t.Errorf("%s is still mounted after the daemon exited", m.dir)
	}

	m.restart()
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half-written file after restart: stat = %v, want ENOENT", err)
	}
	h.stdin.Close()
	h.wait(t, 30*time.Second)
	res := h.writeResults(t)
	if len(res) != 1 {
		t.Fatalf("writer reported %d results, want 1; stderr:\n%s", len(res), h.stderr.String())
	}
	t.Logf("writer's late write and close after the daemon left: %q", res[0].Err)
	if res[0].Err == "" {
		// The close was acknowledged, so the whole file must be there.
		if got, _, err := streamSHA(half); err != nil || got != res[0].SHA {
			t.Errorf("writer's close succeeded but the entry reads %s, %v; want sha256 %s", got, err, res[0].SHA)
		}
	} else {
		for _, name := range listParquet(t, m.path("SYM")) {
			if name == "half.parquet" {
				t.Errorf("half.parquet is listed though its writer's close failed")
			}
		}
		if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("half-written file after the writer gave up: stat = %v, want ENOENT", err)
		}
	}
	if got, _, err := streamSHA(m.path("SYM", "kept.parquet")); err != nil || got != stressSHA(makeParquet(t, 1000, 7)) {
		t.Errorf("entry committed before SIGTERM: %s, %v", got, err)
	}
	if out, code := runFsmount(t, "verify", "--cache-root", m.root); code != 0 {
		t.Errorf("verify after SIGTERM and restart exited %d:\n%s", code, out)
	}
}

// TestRestartAfterKill9WhileRootAttributesAreCached restarts a daemon killed
// with SIGKILL right after someone stat'ed the mountpoint. The kernel keeps
// answering that stat from its attribute cache after the daemon is gone,
// so the new daemon must tell a dead mount from a live one by a lookup that
// reaches the daemon: it clears the stale mount instead of refusing to
// mount over a "live" one.
func TestRestartAfterKill9WhileRootAttributesAreCached(t *testing.T) {
	m := mountT(t)
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 500, 1)
	sh(t, "mkdir", m.path("AAPL"))
	sh(t, "cp", v, m.path("AAPL", "k.parquet"))
	sh(t, "stat", m.dir)
	m.kill9()
	if _, err := os.Stat(m.dir); err != nil {
		t.Logf("the kernel did not cache the root's attributes this time (%v); the restart is checked anyway", err)
	}
	m.restart()
	if sha256File(t, m.path("AAPL", "k.parquet")) != sha256File(t, v) {
		t.Error("entry changed across the restart")
	}
}
