package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// writeOutcome says which system call of a write failed, and how.
type writeOutcome struct {
	Op  string // "open", "write" or "close"; "" when everything succeeded
	Err error
	// CloseErr is close's error after a failed write.
	CloseErr error
}

func (o writeOutcome) errno() syscall.Errno { return errnoOf(o.Err) }

func (o writeOutcome) String() string {
	if o.Op == "" {
		return "success"
	}
	s := o.Op + ": " + o.Err.Error()
	if o.Op == "write" {
		s += fmt.Sprintf(" (then close: %v)", o.CloseErr)
	}
	return s
}

// writeFile writes data to path the way a trainer does (open with
// O_CREAT|O_TRUNC, write, close) and reports the first call that failed.
// Unlike a shell's `>`, it sees close(2)'s error, which is where a commit
// failure arrives.
func writeFile(path string, data []byte) writeOutcome {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return writeOutcome{Op: "open", Err: err}
	}
	if _, err := f.Write(data); err != nil {
		return writeOutcome{"write", err, f.Close()}
	}
	if err := f.Close(); err != nil {
		return writeOutcome{Op: "close", Err: err}
	}
	return writeOutcome{}
}

// commitFile writes data to path and fails the test unless the commit
// succeeds.
func commitFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if o := writeFile(path, data); o.Op != "" {
		t.Fatalf("commit %s: %v", path, o)
	}
}

// errnoOf digs the errno out of an *os.PathError or *os.SyscallError.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// wantErrno fails the test unless err carries want.
func wantErrno(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want %v (%s)", what, want, errnoName(want))
		return
	}
	if got := errnoOf(err); got != want {
		t.Fatalf("%s: got %v (%s), want %v (%s)", what, err, errnoName(got), want, errnoName(want))
	}
}

func errnoName(e syscall.Errno) string {
	names := map[syscall.Errno]string{
		syscall.EINVAL: "EINVAL", syscall.EACCES: "EACCES", syscall.EPERM: "EPERM",
		syscall.ENOSPC: "ENOSPC", syscall.EIO: "EIO", syscall.ENOENT: "ENOENT",
		syscall.ENAMETOOLONG: "ENAMETOOLONG", syscall.ENOTEMPTY: "ENOTEMPTY",
		syscall.EISDIR: "EISDIR", syscall.EEXIST: "EEXIST", syscall.EXDEV: "EXDEV",
	}
	if n, ok := names[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// wantBytes fails the test unless path reads back exactly want.
func wantBytes(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes that differ from the %d expected", path, len(got), len(want))
	}
}

// wantAbsent fails the test if path exists.
func wantAbsent(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: want ENOENT, got %v", path, err)
	}
}

// ls lists a directory with ls(1), one name a line, sorted; -A includes
// dot-files but not . and ..
func ls(t testing.TB, dir string) []string {
	t.Helper()
	out := sh(t, "ls", "-1A", dir)
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// statf runs stat -c FORMAT path.
func statf(t testing.TB, format, path string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "stat", "-c", format, path))
}

func statInt(t testing.TB, format, path string) int64 {
	t.Helper()
	s := statf(t, format, path)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("stat -c %s %s: %q is not a number", format, path, s)
	}
	return n
}

// xattrs returns an entry's user.* attributes as getfattr -d shows them.
func xattrs(t testing.TB, path string) map[string]string {
	t.Helper()
	out := sh(t, "getfattr", "-d", "--absolute-names", path)
	attrs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		attrs[name] = strings.Trim(value, `"`)
	}
	return attrs
}

func xattrInt(t testing.TB, path, name string) int64 {
	t.Helper()
	v := xattrs(t, path)["user.featurefs."+name]
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s: xattr %s = %q is not a number", path, name, v)
	}
	return n
}

// fsStats is .control/stats.
type fsStats struct {
	Entries        int64            `json:"entries"`
	Symbols        int64            `json:"symbols"`
	LogicalBytes   int64            `json:"logical_bytes"`
	StoredBytes    int64            `json:"stored_bytes"`
	CacheHits      int64            `json:"cache_hits"`
	CacheMisses    int64            `json:"cache_misses"`
	Commits        int64            `json:"commits"`
	RejectedWrites int64            `json:"rejected_writes"`
	Hashes         map[string]int64 `json:"hashes_by_method"`
	GCRuns         int64            `json:"gc_runs"`
	FilesCleaned   int64            `json:"gc_files_cleaned"`
	BytesFreed     int64            `json:"gc_bytes_freed"`
	BusyRetries    int64            `json:"busy_retries"`
}

func (m *mount) stats(t testing.TB) fsStats {
	t.Helper()
	data, err := os.ReadFile(m.path(".control", "stats"))
	if err != nil {
		t.Fatalf("read .control/stats: %v", err)
	}
	var st fsStats
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf(".control/stats is not JSON: %v\n%s", err, data)
	}
	return st
}

// errorLine is one line of .control/errors.
type errorLine struct {
	Time   time.Time
	Path   string
	Reason string
}

func (m *mount) errors(t testing.TB) []errorLine {
	t.Helper()
	data, err := os.ReadFile(m.path(".control", "errors"))
	if err != nil {
		t.Fatalf("read .control/errors: %v", err)
	}
	var lines []errorLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			t.Fatalf(".control/errors line %q: want time<TAB>path<TAB>reason", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339, parts[0])
		if err != nil {
			t.Fatalf(".control/errors line %q: bad time: %v", sc.Text(), err)
		}
		// Path and reason are escaped as in a Go string literal.
		var fields [2]string
		for i, f := range parts[1:] {
			if fields[i], err = strconv.Unquote(`"` + f + `"`); err != nil {
				t.Fatalf(".control/errors line %q: field %q is not escaped: %v", sc.Text(), f, err)
			}
		}
		lines = append(lines, errorLine{ts, fields[0], fields[1]})
	}
	return lines
}

// wantErrorListed waits briefly (some failures are noticed when the kernel
// releases a handle, after close returned) for .control/errors to end with a
// line about path whose reason mentions every word in reasonHas.
func (m *mount) wantErrorListed(t testing.TB, path string, reasonHas ...string) errorLine {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		lines := m.errors(t)
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i].Path != path {
				continue
			}
			ok := true
			for _, w := range reasonHas {
				ok = ok && strings.Contains(lines[i].Reason, w)
			}
			if ok {
				return lines[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf(".control/errors does not list %q (reason with %q):\n%v", path, reasonHas, lines)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantRejected waits briefly for rejected_writes to reach want.
func (m *mount) wantRejected(t testing.TB, want int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := m.stats(t)
		if st.RejectedWrites == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected_writes = %d, want %d", st.RejectedWrites, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// compressibleParquet is a valid parquet file with uncompressed pages of
// repetitive values: the kind of file the blob store stores compressed.
func compressibleParquet(t testing.TB, rows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[tick](&buf, parquet.Compression(&parquet.Uncompressed))
	batch := make([]tick, rows)
	for i := range batch {
		batch[i] = tick{TS: tickStart.Add(time.Duration(i) * time.Second), Price: 100 + float64(i%7), Volume: int64(i % 3)}
	}
	if _, err := w.Write(batch); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bulkRow carries incompressible bytes, for parquet files of a given size.
type bulkRow struct {
	TS      time.Time `parquet:"ts,timestamp(microsecond)"`
	Payload []byte    `parquet:"payload"`
}

// bulkParquet is a valid parquet file of about size bytes of random data.
func bulkParquet(t testing.TB, size int, seed byte) []byte {
	t.Helper()
	const chunk = 1 << 10
	rows := make([]bulkRow, 0, size/chunk+1)
	state := uint64(seed) + 1
	for i := 0; i*chunk < size; i++ {
		p := make([]byte, chunk)
		for j := 0; j < len(p); j += 8 {
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			for k := 0; k < 8; k++ {
				p[j+k] = byte(state >> (8 * k))
			}
		}
		rows = append(rows, bulkRow{TS: tickStart.Add(time.Duration(i) * time.Millisecond), Payload: p})
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[bulkRow](&buf, parquet.Compression(&parquet.Uncompressed))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// holder is a helper process that holds a file open: it opens path, reads
// the first bytes, then waits for a line on stdin before reading the whole
// file from offset 0 through the same descriptor and printing its SHA-256.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

const holderScript = `
import hashlib, sys
f = open(sys.argv[1], "rb")
f.read(16)
print("open", flush=True)
sys.stdin.readline()
f.seek(0)
print(hashlib.sha256(f.read()).hexdigest(), flush=True)
`

func holdOpen(t testing.TB, path string) *holder {
	t.Helper()
	cmd := exec.Command("python3", "-c", holderScript, path)
	stdin, stdout := startPiped(t, cmd)
	h := &holder{cmd: cmd, stdin: stdin, out: stdout}
	t.Cleanup(func() {
		_ = h.stdin.Close()
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
	})
	if line := h.line(t); line != "open" {
		t.Fatalf("holder: %q", line)
	}
	return h
}

func (h *holder) line(t testing.TB) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("holder process: %v", err)
	}
	return strings.TrimSpace(s)
}

// readAll makes the holder read its open file whole and returns the SHA-256.
func (h *holder) readAll(t testing.TB) string {
	t.Helper()
	if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	return h.line(t)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// fixtureDir makes a directory of n parquet files named k0.parquet ... and
// returns it with the files' contents by name.
func fixtureDir(t testing.TB, n, rows int, seed uint64) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := 0; i < n; i++ {
		name := "k" + strconv.Itoa(i) + ".parquet"
		p := writeFixture(t, dir, name, rows+i, seed+uint64(i))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	return dir, files
}

// startPiped starts cmd with pipes to its standard input and from its
// standard output, its errors going to the test's.
func startPiped(t testing.TB, cmd *exec.Cmd) (io.WriteCloser, *bufio.Reader) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, bufio.NewReader(stdout)
}
