package integration

// Writers that do not write a file in one open: a close that leaves
// an empty file commits nothing and is not an error, the name becomes
// pending, an O_APPEND open continues it and the first close that leaves a
// file ending in PAR1 commits it. And shells, which never check close: a
// write that puts anything but PAR1 at offset 0 and an O_APPEND open of a
// committed entry fail where the shell reports them.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shellFails runs script with bash and fails the test unless it exits
// non-zero with a message that has want; it returns the output.
func shellFails(t *testing.T, script, want string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err == nil {
		t.Fatalf("%s: exit 0 (%q), want a failure the shell reports", script, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("%s: %v: %q, want a message with %q", script, err, out, want)
	}
	return string(out)
}

// wantNoErrors fails the test if .control/errors lists path or a write was
// counted as rejected.
func wantNoErrors(t *testing.T, m *mount, path string) {
	t.Helper()
	for _, l := range m.errors(t) {
		if l.Path == path {
			t.Fatalf(".control/errors lists a write that succeeded: %v", l)
		}
	}
	if st := m.stats(t); st.RejectedWrites != 0 {
		t.Fatalf("rejected_writes = %d after writes that succeeded", st.RejectedWrites)
	}
}

// splitFile writes data into dir as a file and as head and tail pieces cut
// at n, and returns their paths.
func splitFile(t *testing.T, dir string, data []byte, n int) (whole, head, tail string) {
	t.Helper()
	whole, head, tail = filepath.Join(dir, "whole.parquet"), filepath.Join(dir, "head.bin"), filepath.Join(dir, "tail.bin")
	for p, b := range map[string][]byte{whole: data, head: data[:n], tail: data[n:]} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return whole, head, tail
}

func TestTouchOfNewEntryIsNotAnError(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "new.parquet")
	if out, err := run("touch", p); err != nil {
		t.Fatalf("touch: %v: %s", err, out)
	}
	// Its owner sees the pending name; nobody reads it, nobody lists it.
	if size := statInt(t, "%s", p); size != 0 {
		t.Fatalf("stat of the touched name: size %d, want 0", size)
	}
	if _, err := os.ReadFile(p); errnoOf(err) != syscall.ENOENT {
		t.Fatalf("reading a pending name: %v, want ENOENT", err)
	}
	if names := ls(t, m.path("AAPL")); len(names) != 0 {
		t.Fatalf("AAPL lists %v while only a pending name exists", names)
	}
	wantNoErrors(t, m, "AAPL/new.parquet")
	if st := m.stats(t); st.Commits != 0 || st.Entries != 0 {
		t.Fatalf("commits %d, entries %d after touch: want 0 and 0", st.Commits, st.Entries)
	}
}

// appendScript is how JavaScript writers often write a file: create it
// empty, then append chunks, each in an open of its own.
const appendScript = `
const fs = require('fs');
const [path, src, n] = process.argv.slice(1);
const data = fs.readFileSync(src);
fs.writeFileSync(path, '');
const step = Math.ceil(data.length / Number(n));
for (let off = 0; off < data.length; off += step) {
  fs.appendFileSync(path, data.subarray(off, off + step));
}
`

func TestCreateEmptyThenAppendInLaterOpensCommits(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 3000, 1)
	src := filepath.Join(t.TempDir(), "src.parquet")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := m.path("AAPL", "js.parquet")
	if out, err := exec.Command("node", "-e", appendScript, p, src, "5").CombinedOutput(); err != nil {
		t.Fatalf("node writer: %v: %s", err, out)
	}
	wantBytes(t, p, data)
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"js.parquet"}) {
		t.Fatalf("AAPL lists %v", got)
	}
	wantNoErrors(t, m, "AAPL/js.parquet")
	if st := m.stats(t); st.Commits != 1 {
		t.Fatalf("commits %d, want 1: the first close ending in PAR1 commits, once", st.Commits)
	}
}

// truncReopenScript opens with O_TRUNC and closes, then reopens to write
// the whole file, as a streaming sink does; any close error fails it.
const truncReopenScript = `
import os, sys
path, src, mode = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
flags = {"trunc": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "append": os.O_WRONLY | os.O_APPEND, "write": os.O_WRONLY}[mode]
fd = os.open(path, flags)
os.write(fd, data)
os.close(fd)
`

func TestTruncateCloseReopenCommitsWithoutError(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	dir := t.TempDir()
	commits := int64(0)
	for i, mode := range []string{"trunc", "append", "write"} {
		for _, existing := range []bool{false, true} {
			name := fmt.Sprintf("%s-%v.parquet", mode, existing)
			p := m.path("AAPL", name)
			if existing {
				commitFile(t, p, makeParquet(t, 100, uint64(10+i)))
				commits++
			}
			data := makeParquet(t, 700, uint64(20+i))
			src := filepath.Join(dir, name)
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("python3", "-c", truncReopenScript, p, src, mode).CombinedOutput(); err != nil {
				t.Fatalf("%s (over an entry: %v): %v: %s", mode, existing, err, out)
			}
			commits++
			wantBytes(t, p, data)
			wantNoErrors(t, m, "AAPL/"+name)
		}
	}
	if st := m.stats(t); st.Commits != commits {
		t.Fatalf("commits %d, want %d", st.Commits, commits)
	}
}

func TestReadersKeepPreviousVersionWhilePending(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	k, n := m.path("AAPL", "k.parquet"), m.path("AAPL", "n.parquet")
	v1, v2 := makeParquet(t, 500, 2), makeParquet(t, 900, 3)
	commitFile(t, k, v1)
	_, head, tail := splitFile(t, t.TempDir(), v2, len(v2)/2)

	// An empty truncation, then the first half in an O_APPEND open: both
	// closes succeed and commit nothing.
	bash(t, fmt.Sprintf(": > %q && cat %q >> %q && touch %q && cat %q >> %q", k, head, k, n, head, n))
	if got, want := sha256File(t, k), sha256Hex(v1); got != want {
		t.Fatal("a reader of a pending name does not see the previous version")
	}
	if out, err := run("cat", n); err == nil || !strings.Contains(out, "No such file") {
		t.Fatalf("cat of a pending name with no previous version: %v %q, want ENOENT", err, out)
	}
	if st := m.stats(t); st.Commits != 1 || st.Entries != 1 {
		t.Fatalf("commits %d, entries %d while pending: want 1 and 1", st.Commits, st.Entries)
	}
	// The second half ends in PAR1: that close commits.
	bash(t, fmt.Sprintf("cat %q >> %q && cat %q >> %q", tail, k, tail, n))
	wantBytes(t, k, v2)
	wantBytes(t, n, v2)
	wantNoErrors(t, m, "AAPL/k.parquet")
	wantNoErrors(t, m, "AAPL/n.parquet")
	// Committed now: appending to it is refused again.
	shellFails(t, fmt.Sprintf("cat %q >> %q", tail, k), "Invalid argument")
	wantBytes(t, k, v2)
}

// footerFirstScript writes everything after the magic first, then the head.
const footerFirstScript = `
import os, sys
path, src = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, data[4:], 4)
os.pwrite(fd, data[:4], 0)
os.close(fd)
`

func TestWriterThatWritesTheHeadLastCommits(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 800, 4)
	src := filepath.Join(t.TempDir(), "src.parquet")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := m.path("AAPL", "k.parquet")
	if out, err := exec.Command("python3", "-c", footerFirstScript, p, src).CombinedOutput(); err != nil {
		t.Fatalf("footer-first writer: %v: %s", err, out)
	}
	wantBytes(t, p, data)
}

func TestShellRedirectOfNonParquetFailsAtWrite(t *testing.T) {
	m, data := badWriteSetup(t)
	for _, name := range []string{"k.parquet", "new.parquet"} {
		out := shellFails(t, fmt.Sprintf("echo hello > %q", m.path("AAPL", name)), "write error: Invalid argument")
		t.Logf("echo hello > %s: %s", name, strings.TrimSpace(out))
		m.wantErrorListed(t, "AAPL/"+name, "write", "PAR1")
		if !strings.Contains(m.logs(), "AAPL/"+name) {
			t.Fatalf("the daemon log does not mention AAPL/%s:\n%s", name, m.logs())
		}
	}
	wantAbsent(t, m.path("AAPL", "new.parquet"))
	wantUnchanged(t, m, data)
}

func TestShellAppendToCommittedEntryFailsAtOpen(t *testing.T) {
	m, data := badWriteSetup(t)
	k := m.path("AAPL", "k.parquet")
	good := filepath.Join(t.TempDir(), "good.parquet")
	if err := os.WriteFile(good, makeParquet(t, 300, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{fmt.Sprintf("echo hello >> %q", k), fmt.Sprintf("cat %q >> %q", good, k)} {
		out := shellFails(t, script, "Invalid argument")
		if strings.Contains(out, "write error") {
			t.Fatalf("%s: %q: want the open to fail, not a write", script, out)
		}
	}
	m.wantErrorListed(t, "AAPL/k.parquet", "open", "O_APPEND")
	if !strings.Contains(m.logs(), "AAPL/k.parquet") {
		t.Fatalf("the daemon log does not mention AAPL/k.parquet:\n%s", m.logs())
	}
	wantUnchanged(t, m, data)
}

func TestTruncatedCopyStillFailsAtClose(t *testing.T) {
	m, data := badWriteSetup(t)
	other := makeParquet(t, 900, 6)
	whole, _, _ := splitFile(t, t.TempDir(), other, 10)
	cut := filepath.Join(filepath.Dir(whole), "cut.parquet")
	if err := os.WriteFile(cut, other[:len(other)-50], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"k.parquet", "new.parquet"} {
		p := m.path("AAPL", name)
		// A tool that checks close, and a shell redirect whose command
		// does (head closes its output and reports the error).
		shellFails(t, fmt.Sprintf("cp %q %q", cut, p), "Invalid argument")
		shellFails(t, fmt.Sprintf("head -c %d %q > %q", len(other)-50, whole, p), "Invalid argument")
		m.wantErrorListed(t, "AAPL/"+name, "close")
	}
	wantAbsent(t, m.path("AAPL", "new.parquet"))
	wantUnchanged(t, m, data)
}

// wantFreshStart checks that a pending name is gone: appending its tail is
// a new file, which cannot start with the tail's bytes.
func wantFreshStart(t *testing.T, m *mount, tail, p string) {
	t.Helper()
	shellFails(t, fmt.Sprintf("cat %q >> %q", tail, p), "Invalid argument")
	wantAbsent(t, p)
	if st := m.stats(t); st.Entries != 0 {
		t.Fatalf("entries %d, want 0", st.Entries)
	}
}

func wantStagingEmpty(t *testing.T, m *mount) {
	t.Helper()
	pollUntil(t, 5*time.Second, "staging area empty", func() (bool, string) {
		names, err := os.ReadDir(filepath.Join(m.root, "staging"))
		if err != nil {
			return false, err.Error()
		}
		return len(names) == 0, fmt.Sprint(names)
	})
}

func TestPendingNameIsDroppedAtUnmount(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	_, head, tail := splitFile(t, t.TempDir(), makeParquet(t, 600, 7), 1000)
	p := m.path("AAPL", "k.parquet")
	bash(t, fmt.Sprintf("touch %q && cat %q >> %q", p, head, p))
	m.restart()
	wantStagingEmpty(t, m)
	wantFreshStart(t, m, tail, p)
}

func TestPendingNameIsDroppedAfterOrphanGrace(t *testing.T) {
	m := mountT(t, "--orphan-grace", "2s")
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 600, 8)
	_, head, tail := splitFile(t, t.TempDir(), data, 1000)
	stale, fresh := m.path("AAPL", "stale.parquet"), m.path("AAPL", "fresh.parquet")
	bash(t, fmt.Sprintf("touch %q && cat %q >> %q", stale, head, stale))
	time.Sleep(2500 * time.Millisecond)
	bash(t, fmt.Sprintf("touch %q && cat %q >> %q", fresh, head, fresh))
	bash(t, "echo run > "+m.path(".control", "gc"))
	wantFreshStart(t, m, tail, stale)
	// A pending name younger than the grace is kept.
	bash(t, fmt.Sprintf("cat %q >> %q", tail, fresh))
	wantBytes(t, fresh, data)
}

func TestPendingNameBelongsToItsCreator(t *testing.T) {
	m := mountT(t, "--allow-other")
	sh(t, "mkdir", m.path("AAPL"))
	dir := t.TempDir()
	data := makeParquet(t, 600, 9)
	_, head, tail := splitFile(t, dir, data, 1000)
	openDirs(t, filepath.Dir(m.dir), dir)
	p := m.path("AAPL", "k.parquet")
	bash(t, fmt.Sprintf("touch %q && cat %q >> %q", p, head, p))
	for _, script := range []string{"cat " + tail + " >> " + p, "cat " + p, "stat " + p} {
		if out, err := asNobody(t, script); err == nil {
			t.Fatalf("another user: %s succeeded on a pending name: %s", script, out)
		}
	}
	bash(t, fmt.Sprintf("cat %q >> %q", tail, p))
	wantBytes(t, p, data)
}
