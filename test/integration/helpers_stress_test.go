package integration

// Helpers for the concurrency, crash, coherence, GC and memory tests: writer
// and reader helper processes (this test binary re-executed), polling,
// manifest queries and daemon figures.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// stressHelperEnv selects a helper role when this test binary is re-executed
// as a separate process; stressPlanEnv names the JSON file with its plan.
const (
	stressHelperEnv = "FEATUREFS_STRESS_HELPER"
	stressPlanEnv   = "FEATUREFS_STRESS_PLAN"
)

// A helper process runs its role from init, before TestMain: it needs none of
// the test set-up (in particular not the fsmount build).
func init() {
	if role := os.Getenv(stressHelperEnv); role != "" {
		os.Exit(stressHelperMain(role, os.Getenv(stressPlanEnv)))
	}
}

// tickParquet is makeParquet without a testing.TB, for helper processes:
// the same seed always gives the same bytes, so the parent knows the hash of
// every version a helper may write.
func tickParquet(rows int, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[tick](&buf, parquet.Compression(&parquet.Snappy))
	batch := make([]tick, 0, 4096)
	price := 100.0
	for i := 0; i < rows; i++ {
		price += rng.NormFloat64() * 0.05
		batch = append(batch, tick{
			TS:     tickStart.Add(time.Duration(i) * time.Second),
			Price:  float64(int(price*100)) / 100,
			Volume: rng.Int64N(10_000),
		})
		if len(batch) == cap(batch) {
			if _, err := w.Write(batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	if _, err := w.Write(batch); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func stressSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// plannedWrite is one file a writer helper writes: Rows ticks from Seed.
type plannedWrite struct {
	Path string `json:"path"`
	Rows int    `json:"rows"`
	Seed uint64 `json:"seed"`
	// PauseMS, when set, pauses this long with the file half written, so the
	// staged file outlives a short orphan grace.
	PauseMS int `json:"pause_ms,omitempty"`
}

// writerPlan is the job of one writer helper process.
type writerPlan struct {
	Writes []plannedWrite `json:"writes"`
	// StopFile, when set, ends the plan early once it exists.
	StopFile string `json:"stop_file,omitempty"`
}

// writeResult is what a writer helper reports for each write: the hash of
// what it wrote and the error of the first failing call (close included).
type writeResult struct {
	Path string `json:"path"`
	SHA  string `json:"sha"`
	Err  string `json:"err,omitempty"`
}

// readerPlan is the job of one reader helper process.
type readerPlan struct {
	// Versions maps each path to every version (sha256) a writer may have
	// committed there: any complete read must match one of them.
	Versions map[string][]string `json:"versions"`
	// StopFile ends the reader once it exists; Deadline in any case.
	StopFile string    `json:"stop_file"`
	Deadline time.Time `json:"deadline"`
	// MissingOK lets a path be absent (not committed yet) until a read
	// found it; after that, absence is a failure (nothing deletes here).
	MissingOK bool `json:"missing_ok"`
	// PauseMS is a pause between reads, leaving CPU to the writers.
	PauseMS int `json:"pause_ms,omitempty"`
}

// readerReport is a reader helper's summary.
type readerReport struct {
	Reads    int      `json:"reads"`
	Misses   int      `json:"misses"`
	Bytes    int64    `json:"bytes"`
	Failed   int      `json:"failed"`
	Failures []string `json:"failures"` // the first few
}

// holdPlan is the job of a helper that writes half a file and waits.
type holdPlan struct {
	Path string `json:"path"`
	// ReadyFile is created once the first half is written.
	ReadyFile string `json:"ready_file"`
	Rows      int    `json:"rows"`
	Seed      uint64 `json:"seed"`
}

func stressHelperMain(role, planFile string) int {
	plan, err := os.ReadFile(planFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	switch role {
	case "writer":
		var p writerPlan
		if err := json.Unmarshal(plan, &p); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		return runWriter(p)
	case "reader":
		var p readerPlan
		if err := json.Unmarshal(plan, &p); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		return runReader(p)
	case "hold":
		var p holdPlan
		if err := json.Unmarshal(plan, &p); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		return runHold(p)
	}
	fmt.Fprintln(os.Stderr, "helper: unknown role", role)
	return 2
}

// runWriter writes each planned file with plain open/write/close, as a
// trainer does, and prints one writeResult line per file.
func runWriter(p writerPlan) int {
	enc := json.NewEncoder(os.Stdout)
	for _, w := range p.Writes {
		if p.StopFile != "" {
			if _, err := os.Stat(p.StopFile); err == nil {
				break
			}
		}
		data, err := tickParquet(w.Rows, w.Seed)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		res := writeResult{Path: w.Path, SHA: stressSHA(data)}
		if err := writePlanned(w, data); err != nil {
			res.Err = err.Error()
		}
		if err := enc.Encode(res); err != nil {
			return 2
		}
	}
	return 0
}

func writePlanned(w plannedWrite, data []byte) error {
	f, err := os.Create(w.Path)
	if err != nil {
		return err
	}
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if w.PauseMS > 0 {
		time.Sleep(time.Duration(w.PauseMS) * time.Millisecond)
	}
	if _, err := f.Write(data[half:]); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// runReader reads random planned paths whole until told to stop and checks
// every read against the versions that may exist there.
func runReader(p readerPlan) int {
	paths := make([]string, 0, len(p.Versions))
	for path := range p.Versions {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	var rep readerReport
	seen := make(map[string]bool)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	fail := func(format string, args ...any) {
		rep.Failed++
		if len(rep.Failures) < 5 {
			rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...))
		}
	}
	for time.Now().Before(p.Deadline) && len(paths) > 0 {
		if _, err := os.Stat(p.StopFile); err == nil {
			break
		}
		if p.PauseMS > 0 {
			time.Sleep(time.Duration(p.PauseMS) * time.Millisecond)
		}
		path := paths[rng.IntN(len(paths))]
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && p.MissingOK && !seen[path]:
			rep.Misses++
			time.Sleep(5 * time.Millisecond)
			continue
		case err != nil:
			fail("read %s: %v (seen before: %v)", path, err, seen[path])
			continue
		}
		rep.Reads++
		rep.Bytes += int64(len(data))
		seen[path] = true
		if sum := stressSHA(data); !slices.Contains(p.Versions[path], sum) {
			fail("read %s: %d bytes, sha256 %s is none of the %d versions written (parquet magic at both ends: %v)",
				path, len(data), sum, len(p.Versions[path]), hasParquetMagic(data))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 2
	}
	return 0
}

// runHold writes the first half of a parquet file, creates its ready file and
// waits for its stdin to close; then it writes the rest and closes, reporting
// the outcome as a writeResult.
func runHold(p holdPlan) int {
	data, err := tickParquet(p.Rows, p.Seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	res := writeResult{Path: p.Path, SHA: stressSHA(data)}
	f, err := os.Create(p.Path)
	if err != nil {
		res.Err = err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		res.Err = "write: " + err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	if err := os.WriteFile(p.ReadyFile, nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		res.Err = "write: " + err.Error()
	}
	if err := f.Close(); err != nil && res.Err == "" {
		res.Err = "close: " + err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func hasParquetMagic(b []byte) bool {
	return len(b) >= 12 && string(b[:4]) == "PAR1" && string(b[len(b)-4:]) == "PAR1"
}

// helperProc is a running helper process.
type helperProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	stdin  io.WriteCloser
	done   chan struct{}
	err    error
}

// startHelper re-executes this test binary as a separate process running
// role with plan. The process is killed at cleanup if it is still running.
func startHelper(t testing.TB, role string, plan any) *helperProc {
	t.Helper()
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), role+"-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h := &helperProc{done: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^$")
	h.cmd.Env = append(os.Environ(), stressHelperEnv+"="+role, stressPlanEnv+"="+f.Name())
	h.cmd.Stdout = &h.stdout
	h.cmd.Stderr = &h.stderr
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start %s helper: %v", role, err)
	}
	go func() {
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	})
	return h
}

// wait waits for the helper to exit and fails the test if it exited non-zero.
func (h *helperProc) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(timeout):
		_ = h.cmd.Process.Kill()
		<-h.done
		t.Fatalf("helper %d did not finish within %s; stderr:\n%s", h.cmd.Process.Pid, timeout, h.stderr.String())
	}
	if h.err != nil {
		t.Fatalf("helper %d: %v; stderr:\n%s", h.cmd.Process.Pid, h.err, h.stderr.String())
	}
}

// writeResults parses a finished writer's report.
func (h *helperProc) writeResults(t testing.TB) []writeResult {
	t.Helper()
	var out []writeResult
	sc := bufio.NewScanner(bytes.NewReader(h.stdout.Bytes()))
	for sc.Scan() {
		var r writeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("writer output %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// readerReport parses a finished reader's report.
func (h *helperProc) readerReport(t testing.TB) readerReport {
	t.Helper()
	var r readerReport
	if err := json.Unmarshal(bytes.TrimSpace(h.stdout.Bytes()), &r); err != nil {
		t.Fatalf("reader output %q: %v; stderr:\n%s", h.stdout.String(), err, h.stderr.String())
	}
	return r
}

// eventually polls cond every 20 ms until it holds or timeout passes, and
// returns how long it took; it fails the test with cond's last message.
func pollUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %s", what, timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// manifestQuery runs SQL on the cache root's manifest with the sqlite3 shell,
// waiting for the daemon's locks, and returns its trimmed output.
func sqliteQuery(t testing.TB, root, sql string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "sqlite3", "-cmd", ".timeout 10000", filepath.Join(root, "manifest.db"), sql))
}

func sqliteInt(t testing.TB, root, sql string) int64 {
	t.Helper()
	out := sqliteQuery(t, root, sql)
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", sql, out)
	}
	return n
}

// fsmountCmd runs an fsmount command and returns its output and exit code.
func runFsmount(t testing.TB, args ...string) (string, int) {
	t.Helper()
	out, err := run(fsmountBin, args...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &exit):
		return out, exit.ExitCode()
	}
	t.Fatalf("fsmount %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", -1
}

// readJSONFile decodes a JSON object from a file.
func loadJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return v
}

// controlJSON reads a .control file of the mount as JSON.
func controlFileJSON(t testing.TB, m *mount, name string) map[string]any {
	t.Helper()
	return loadJSON(t, m.path(".control", name))
}

// jsonNum reads a number at a dotted path ("summary.expired_entries").
func jsonNum(t testing.TB, v map[string]any, path string) int64 {
	t.Helper()
	var cur any = v
	for _, part := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v is not an object", path, cur)
		}
		if cur, ok = obj[part]; !ok {
			t.Fatalf("%s: no field %q in %v", path, part, obj)
		}
	}
	n, ok := cur.(float64)
	if !ok {
		t.Fatalf("%s: %v is not a number", path, cur)
	}
	return int64(n)
}

// procStatusKiB reads a field such as VmHWM or VmRSS (in KiB) of a process.
func procStatusKiB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// listEntries lists the .parquet names of a symbol directory; a missing
// directory lists nothing.
func listParquet(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".parquet") {
			names = append(names, e.Name())
		}
	}
	return names
}

// fileSHA hashes a file by streaming it (large entries must not be loaded).
func streamSHA(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// collectReaders waits for reader helpers, reports every failed read they
// saw as a test error, and returns how many whole reads they made.
func collectReaders(t testing.TB, readers []*helperProc) int {
	t.Helper()
	reads := 0
	for i, h := range readers {
		h.wait(t, 30*time.Second)
		rep := h.readerReport(t)
		reads += rep.Reads
		for _, f := range rep.Failures {
			t.Errorf("reader %d: %s", i, f)
		}
		if rep.Failed > len(rep.Failures) {
			t.Errorf("reader %d: ... %d failed reads in all", i, rep.Failed)
		}
		t.Logf("reader %d: %d whole reads (%d MiB), %d not yet committed", i, rep.Reads, rep.Bytes>>20, rep.Misses)
	}
	return reads
}

// failureLog counts failures reported from many goroutines and keeps the
// first few for the test's report.
type failureLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func (l *failureLog) add(format string, args ...any) {
	l.n.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < 20 {
		l.first = append(l.first, fmt.Sprintf(format, args...))
	}
}

func (l *failureLog) count() int64 { return l.n.Load() }

// report fails t with each failure kept.
func (l *failureLog) report(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.first {
		t.Error(f)
	}
}
