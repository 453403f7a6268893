package manifest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run several OS processes against one manifest.db, as several
// mount daemons and a standalone GC do. The helpers are this test binary
// re-executed with helperEnv naming their role.

const helperEnv = "FEATUREFS_MANIFEST_HELPER"

func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("runs only as a helper process")
	}
	var err error
	switch role {
	case "commit":
		err = helperCommit()
	case "hold":
		err = helperHold()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

type helperResult struct {
	Commits      int64    `json:"commits"`
	Transactions int64    `json:"transactions"`
	BusyRetries  int64    `json:"busy_retries"`
	Replaced     int      `json:"replaced"`
	Errors       []string `json:"errors"`
}

// helperCommit opens the manifest, waits for "go" on stdin so that all
// processes start together, commits its keys with two goroutines and prints
// a RESULT line.
func helperCommit() error {
	ctx := context.Background()
	proc, n := envInt("M_PROC"), envInt("M_N")
	db, err := Open(ctx, os.Getenv("M_PATH"), Options{
		BusyTimeout:         time.Duration(envInt("M_BUSY_MS")) * time.Millisecond,
		MaxRetries:          envInt("M_RETRIES"),
		AccessFlushInterval: -1,
		Logger:              quiet,
	})
	if err != nil {
		return err
	}
	fmt.Println("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}

	var (
		mu  sync.Mutex
		res helperResult
		wg  sync.WaitGroup
	)
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				e := entry(fmt.Sprintf("P%d", proc), fmt.Sprintf("k%04d", i))
				if i%5 == 0 {
					// Every process replaces the same few keys.
					e = entry("SHARED", fmt.Sprintf("k%d", i%4))
				}
				_, replaced, err := db.Commit(ctx, e)
				mu.Lock()
				if err != nil {
					res.Errors = append(res.Errors, err.Error())
				}
				if replaced != nil {
					res.Replaced++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c := db.Counters()
	res.Commits, res.Transactions, res.BusyRetries = c.Commits, c.Transactions, c.BusyRetries
	if err := db.Close(); err != nil {
		res.Errors = append(res.Errors, "close: "+err.Error())
	}
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
	return nil
}

// helperHold is a plain database/sql client in another process: it takes
// the write lock with BEGIN EXCLUSIVE, writes a row, says LOCKED, sleeps
// M_HOLD_MS and commits.
func helperHold() error {
	path := os.Getenv("M_PATH")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_txlock=exclusive&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO manifest (key, symbol, path, created_ts, mtime_ns, last_accessed_ts)
		VALUES ('held', 'HOLDER', 'blobs/held', 1, 1, 1)`)
	if err != nil {
		return err
	}
	fmt.Println("LOCKED")
	time.Sleep(time.Duration(envInt("M_HOLD_MS")) * time.Millisecond)
	if err := tx.Commit(); err != nil {
		return err
	}
	fmt.Println("RELEASED")
	return nil
}

// proc is a running helper process.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
}

func startHelper(t *testing.T, role string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+role), env...)
	p := &proc{cmd: cmd, lines: make(chan string, 16), stderr: new(bytes.Buffer)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// expect waits for a line starting with prefix and returns the rest.
func (p *proc) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("helper ended before %q: %s", prefix, p.stderr)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest)
			}
		case <-timeout:
			t.Fatalf("no %q from helper: %s", prefix, p.stderr)
		}
	}
}

func (p *proc) wait(t *testing.T) {
	t.Helper()
	for range p.lines { // drain so Wait can finish
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("helper failed: %v: %s", err, p.stderr)
	}
}

func TestMultiProcessCommits(t *testing.T) {
	const procs, perProc, sharedKeys = 8, 60, 4
	tests := []struct {
		name    string
		busyMS  int
		retries int
	}{
		// The default busy timeout absorbs most contention inside SQLite.
		{name: "default options"},
		// A 1 ms busy timeout hands nearly every collision to the retry
		// loop: retries are counted and still no error surfaces.
		{name: "short busy timeout", busyMS: 1, retries: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "manifest.db")
			var ps []*proc
			for i := range procs {
				ps = append(ps, startHelper(t, "commit",
					"M_PATH="+path, fmt.Sprintf("M_PROC=%d", i), fmt.Sprintf("M_N=%d", perProc),
					fmt.Sprintf("M_BUSY_MS=%d", tt.busyMS), fmt.Sprintf("M_RETRIES=%d", tt.retries)))
			}
			for _, p := range ps {
				p.expect(t, "READY")
			}
			start := time.Now()
			for _, p := range ps {
				io.WriteString(p.stdin, "go\n")
			}
			var total helperResult
			for i, p := range ps {
				var r helperResult
				if err := json.Unmarshal([]byte(p.expect(t, "RESULT")), &r); err != nil {
					t.Fatal(err)
				}
				p.wait(t)
				if len(r.Errors) > 0 {
					t.Errorf("process %d: %d errors, first: %s", i, len(r.Errors), r.Errors[0])
				}
				t.Logf("process %d: %d commits in %d transactions, %d busy retries",
					i, r.Commits, r.Transactions, r.BusyRetries)
				total.Commits += r.Commits
				total.Transactions += r.Transactions
				total.BusyRetries += r.BusyRetries
				total.Replaced += r.Replaced
			}
			elapsed := time.Since(start)
			t.Logf("TOTAL %s: %d processes, %d commits in %d transactions, %d busy retries, %v",
				tt.name, procs, total.Commits, total.Transactions, total.BusyRetries, elapsed.Round(time.Millisecond))

			shared := procs * perProc / 5
			if total.Commits != procs*perProc {
				t.Fatalf("%d commits succeeded, want %d", total.Commits, procs*perProc)
			}
			// Each replacement of a shared key is reported to exactly one
			// process: none lost, none doubled.
			if total.Replaced != shared-sharedKeys {
				t.Fatalf("%d replacements reported, want %d", total.Replaced, shared-sharedKeys)
			}
			db := openAtT(t, path, Options{})
			want := int64(procs*(perProc-perProc/5) + sharedKeys)
			if n := countRows(t, db, "SELECT count(*) FROM manifest"); n != want {
				t.Fatalf("%d rows, want %d", n, want)
			}
			if syms, _ := db.Symbols(ctx); len(syms) != procs+1 {
				t.Fatalf("symbols %v", syms)
			}
			if tt.busyMS == 1 && total.BusyRetries == 0 {
				t.Fatal("no busy retry counted with a 1 ms busy timeout")
			}
		})
	}
}

func TestReadersAndCommitDuringForeignExclusiveLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	for i := range 10 {
		commitT(t, db, entry("A", fmt.Sprint(i)))
	}

	const hold = 3 * time.Second
	p := startHelper(t, "hold", "M_PATH="+path, fmt.Sprintf("M_HOLD_MS=%d", hold.Milliseconds()))
	p.expect(t, "LOCKED")
	locked := time.Now()

	type result struct {
		e   Entry
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		e, _, err := db.Commit(ctx, entry("A", "during"))
		done <- result{e, err, time.Now()}
	}()

	// While the other process holds the write lock, reads answer at once.
	var slowest time.Duration
	reads := 0
	for time.Since(locked) < hold-500*time.Millisecond {
		t0 := time.Now()
		if _, err := db.Get(ctx, "A", "3"); err != nil {
			t.Fatalf("Get during foreign lock: %v", err)
		}
		if page, err := db.List(ctx, "A", "", 100); err != nil || len(page) != 10 {
			t.Fatalf("List during foreign lock: %d, %v", len(page), err)
		}
		slowest = max(slowest, time.Since(t0))
		reads++
		select {
		case r := <-done:
			t.Fatalf("Commit finished (%v) while the other process held the lock", r.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("%d Get+List pairs during the foreign lock, slowest %v", reads, slowest)
	if slowest > 250*time.Millisecond {
		t.Fatalf("a read took %v behind another process's write lock", slowest)
	}

	r := <-done
	if r.err != nil {
		t.Fatalf("Commit after waiting for the lock: %v", r.err)
	}
	p.expect(t, "RELEASED")
	p.wait(t)
	t.Logf("Commit waited %v, %d busy retries", r.at.Sub(locked).Round(time.Millisecond), db.Counters().BusyRetries)
	if _, err := db.Get(ctx, "HOLDER", "held"); err != nil {
		t.Fatalf("the other process's row: %v", err)
	}
	if got, err := db.Get(ctx, "A", "during"); err != nil || got.ID != r.e.ID {
		t.Fatalf("row committed after the wait: %+v, %v", got, err)
	}
}

func TestCommitGivesUpWithErrBusy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "manifest.db")
	const retries = 3
	db := openAtT(t, path, Options{BusyTimeout: 50 * time.Millisecond, MaxRetries: retries})
	old, _ := commitT(t, db, entry("A", "x"))

	p := startHelper(t, "hold", "M_PATH="+path, "M_HOLD_MS=1500")
	p.expect(t, "LOCKED")
	t0 := time.Now()
	_, _, err := db.Commit(ctx, entry("A", "x")) // would replace old
	waited := time.Since(t0)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "A/x") {
		t.Fatalf("Commit under a lock held past every retry: %v, want ErrBusy naming A/x", err)
	}
	t.Logf("gave up after %v: %v", waited.Round(time.Millisecond), err)
	if got := db.Counters().BusyRetries; got != retries {
		t.Fatalf("BusyRetries = %d, want %d", got, retries)
	}
	if _, err := db.Delete(ctx, "A", "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Delete under the lock: %v, want ErrBusy", err)
	}
	p.expect(t, "RELEASED")
	p.wait(t)

	// Nothing half-written: the old version is current, no new row exists.
	if got, err := db.Get(ctx, "A", "x"); err != nil || got != old {
		t.Fatalf("after the failed replace Get = %+v, %v; want %+v", got, err, old)
	}
	if n := countRows(t, db, "SELECT count(*) FROM manifest"); n != 2 { // old + the holder's row
		t.Fatalf("%d rows, want 2", n)
	}
	if _, _, err := db.Commit(ctx, entry("A", "x")); err != nil {
		t.Fatalf("Commit once the lock is gone: %v", err)
	}
}

// A commit queued while others wait for a lock another process holds shares
// their wait: it gives up when its own budget is spent, counted from when it
// was queued, not after theirs has run out and its own has started.
func TestQueuedCommitWaitsOneBudget(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "manifest.db")
	const budget = 1500 * time.Millisecond
	db := openAtT(t, path, Options{BusyTimeout: 100 * time.Millisecond, MaxRetries: 1000, RetryBudget: budget})
	p := startHelper(t, "hold", "M_PATH="+path, "M_HOLD_MS=4000")
	p.expect(t, "LOCKED")

	type result struct {
		queued, failed time.Time
		err            error
	}
	results := make(chan result, 3)
	for i := range 3 {
		go func() {
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			r := result{queued: time.Now()}
			_, _, r.err = db.Commit(ctx, entry("Q", fmt.Sprint("k", i)))
			r.failed = time.Now()
			results <- r
		}()
	}
	var waits []time.Duration
	for range 3 {
		r := <-results
		if !errors.Is(r.err, ErrBusy) {
			t.Fatalf("Commit under a held lock: %v, want ErrBusy", r.err)
		}
		waits = append(waits, r.failed.Sub(r.queued))
	}
	t.Logf("waits %v", waits)
	// Each waits one budget, give or take one attempt; the old queue made
	// the later ones wait a second budget after the first had failed.
	for _, w := range waits {
		if w < budget || w > budget+600*time.Millisecond {
			t.Fatalf("commits waited %v for a budget of %v", waits, budget)
		}
	}
	p.expect(t, "RELEASED")
	p.wait(t)
}
