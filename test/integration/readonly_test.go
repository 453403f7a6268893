package integration

// The cache root's file system turning read-only under a running daemon, as
// ext4 does on an I/O error when mounted with errors=remount-ro. The cache
// root is an ext4 image on a loop device; writing to its trigger_fs_error
// attribute makes ext4 report an error and turn read-only on the spot, while
// open files stay readable.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loopFS is an ext4 file system in an image file on a loop device.
type loopFS struct {
	t   testing.TB
	img string // the image file
	dev string // /dev/loopN
	dir string // where it is mounted
}

// newLoopFS makes, attaches and mounts a fresh ext4 image of size bytes
// with errors=remount-ro; mkfsArgs are passed to mkfs.ext4. Its unmount and detach are registered with
// t.Cleanup; registered before a daemon is started on it, they run after
// that daemon stopped. Where loop devices cannot be used the test skips,
// outside CI only.
func newLoopFS(t *testing.T, size int64, mkfsArgs ...string) *loopFS {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but an ext4 loop device is unavailable: %s", msg)
		}
		t.Skipf("ext4 loop device unavailable (%s); this test skips outside CI only", msg)
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("%s: %v", tool, err)
		}
	}
	base := t.TempDir()
	l := &loopFS{t: t, img: filepath.Join(base, "ext4.img"), dir: filepath.Join(base, "fs")}
	if err := os.Mkdir(l.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(l.img, size); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkfs.ext4", append(append([]string{"-q", "-F"}, mkfsArgs...), l.img)...)
	out, err := run("losetup", "--find", "--show", l.img)
	if err != nil {
		unavailable("losetup: %v %s", err, strings.TrimSpace(out))
	}
	l.dev = strings.TrimSpace(out)
	t.Cleanup(l.remove)
	l.mount()
	if _, err := os.Stat(l.trigger()); err != nil {
		unavailable("ext4 cannot be made to fail on demand: %v", err)
	}
	return l
}

func (l *loopFS) mount() {
	l.t.Helper()
	sh(l.t, "mount", "-t", "ext4", "-o", "errors=remount-ro", l.dev, l.dir)
}

func (l *loopFS) unmount() {
	l.t.Helper()
	sh(l.t, "umount", l.dir)
}

// remove unmounts the file system if it is mounted and detaches the loop
// device; it runs at cleanup, also after a failure.
func (l *loopFS) remove() {
	if isMounted(l.dir) {
		if out, err := run("umount", l.dir); err != nil {
			l.t.Errorf("umount %s: %v %s", l.dir, err, out)
			_, _ = run("umount", "-l", l.dir)
		}
	}
	if out, err := run("losetup", "--detach", l.dev); err != nil {
		l.t.Errorf("losetup --detach %s: %v %s", l.dev, err, out)
	}
}

// trigger is the sysfs attribute through which ext4 reports an error on
// demand: with errors=remount-ro the file system turns read-only at once.
func (l *loopFS) trigger() string {
	return filepath.Join("/sys/fs/ext4", filepath.Base(l.dev), "trigger_fs_error")
}

// failReadOnly makes the file system read-only, as a disk error would.
func (l *loopFS) failReadOnly() {
	l.t.Helper()
	if err := os.WriteFile(l.trigger(), []byte("1"), 0); err != nil {
		l.t.Fatalf("trigger an ext4 error: %v", err)
	}
	// Nothing can be created any more.
	probe := filepath.Join(l.dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); !errors.Is(err, syscall.EROFS) {
		l.t.Fatalf("%s after an ext4 error: %v, want EROFS", probe, err)
	}
}

// repair unmounts the file system, checks it with e2fsck -fy and mounts it
// again, writable.
func (l *loopFS) repair() {
	l.t.Helper()
	l.unmount()
	out, err := run("e2fsck", "-f", "-y", l.img)
	var exit *exec.ExitError
	// 1: errors were corrected (the error ext4 recorded); 4 and up: left
	// uncorrected.
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() < 4) {
		l.t.Fatalf("e2fsck -fy: %v\n%s", err, out)
	}
	l.mount()
}

// TestReadOnlyCacheRootFailsWritesKeepsReadsAndLosesNothing: when the cache
// root's file system turns read-only under the daemon, every write fails
// with EROFS (at write or at close, never a silent success), nothing
// half-written becomes visible, committed entries keep reading exact bytes,
// the daemon keeps serving, and once the file system is repaired every
// entry acknowledged before is exact and verify is clean.
func TestReadOnlyCacheRootFailsWritesKeepsReadsAndLosesNothing(t *testing.T) {
	t.Parallel()
	l := newLoopFS(t, 256<<20)
	// Compressed at commit, so both kinds of blob exist from the start.
	m := mountAt(t, filepath.Join(l.dir, "cache"), filepath.Join(t.TempDir(), "mnt"), "--compress-after", "0")
	sh(t, "mkdir", m.path("S"))

	// Raw (snappy pages do not shrink) and zstd (repetitive uncompressed
	// pages) blobs, so both read paths are covered.
	acked := map[string][]byte{}
	commit := func(name string, data []byte) {
		t.Helper()
		commitFile(t, m.path("S", name), data)
		acked[name] = data
	}
	for i := 0; i < 4; i++ {
		commit(fmt.Sprintf("raw%d.parquet", i), makeParquet(t, 1000+i*100, uint64(300+i)))
		commit(fmt.Sprintf("zst%d.parquet", i), compressibleParquet(t, 20_000+i*1000))
	}
	if n := sqliteInt(t, m.root, "select count(*) from manifest where path like '%.zst'"); n != 4 {
		t.Fatalf("%d zstd blobs, want 4: the test needs both kinds", n)
	}

	// A writer that wrote everything before the file system failed and
	// closes after: its commit must fail at close.
	late, err := os.OpenFile(m.path("S", "late.parquet"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lateClosed := false
	t.Cleanup(func() {
		if !lateClosed {
			_ = late.Close()
		}
	})
	if _, err := late.Write(makeParquet(t, 700, 310)); err != nil {
		t.Fatal(err)
	}

	// A writer committing one new entry after another while the file
	// system fails under it: each of its writes is acknowledged and then
	// stays exact, or fails and never appears.
	type liveWrite struct {
		name    string
		data    []byte
		started time.Time
		o       writeOutcome
	}
	liveData := make([][]byte, 64)
	for i := range liveData {
		liveData[i] = makeParquet(t, 200+i, uint64(400+i))
	}
	live := make(chan liveWrite)
	stopLive := make(chan struct{})
	go func() {
		defer close(live)
		for i, data := range liveData {
			w := liveWrite{name: fmt.Sprintf("live%d.parquet", i), data: data, started: time.Now()}
			w.o = writeFile(m.path("S", w.name), w.data)
			select {
			case live <- w:
			case <-stopLive:
				return
			}
		}
	}()
	var liveWrites []liveWrite
	nextLive := func() liveWrite {
		t.Helper()
		select {
		case w, ok := <-live:
			if !ok {
				t.Fatalf("the live writer ran out of %d files", len(liveData))
			}
			liveWrites = append(liveWrites, w)
			return w
		case <-time.After(time.Minute):
			t.Fatal("a live write did not finish within a minute")
		}
		return liveWrite{}
	}
	for acks := 0; acks < 3; {
		if w := nextLive(); w.o.Op == "" {
			acks++
		}
	}

	l.failReadOnly()
	failedAt := time.Now()
	for failures := 0; failures < 3; {
		if w := nextLive(); w.o.Op != "" {
			failures++
		}
	}
	close(stopLive)
	for range live {
	}
	var refused []string
	for _, w := range liveWrites {
		if w.o.Op == "" {
			acked[w.name] = w.data
			continue
		}
		refused = append(refused, w.name)
		errno := w.o.errno()
		if w.started.After(failedAt) {
			if errno != syscall.EROFS || (w.o.Op == "write" && errnoOf(w.o.CloseErr) != syscall.EROFS) {
				t.Errorf("%s, begun after the file system turned read-only: %v, want EROFS", w.name, w.o)
			}
		} else if errno != syscall.EROFS && errno != syscall.EIO {
			// Caught by the failure half-way: an fsync may report EIO.
			t.Errorf("%s, under way when the file system turned read-only: %v, want EROFS or EIO", w.name, w.o)
		}
		wantAbsent(t, m.path("S", w.name))
	}
	t.Logf("live writer: %d writes, %d refused", len(liveWrites), len(refused))

	// Each kind of write fails with EROFS: a new entry, a replace, a
	// close of a file written before, a removal and a rename.
	wantEROFS := func(what string, o writeOutcome) {
		t.Helper()
		if o.Op == "" || o.errno() != syscall.EROFS {
			t.Fatalf("%s on a read-only cache root: %v, want EROFS", what, o)
		}
		if o.Op == "write" && errnoOf(o.CloseErr) != syscall.EROFS {
			t.Errorf("%s: close after a write failed with EROFS: %v, want EROFS too (nothing is committed)", what, o.CloseErr)
		}
		t.Logf("%s: %v", what, o)
	}
	wantEROFS("a new entry", writeFile(m.path("S", "new.parquet"), makeParquet(t, 500, 311)))
	wantEROFS("a replace", writeFile(m.path("S", "raw0.parquet"), makeParquet(t, 500, 312)))
	wantEROFS("a replace of a zstd entry", writeFile(m.path("S", "zst0.parquet"), compressibleParquet(t, 5000)))
	lateClosed = true
	if err := late.Close(); err != nil {
		wantEROFS("close of a file written before", writeOutcome{Op: "close", Err: err})
	} else {
		t.Fatal("close of a file written before the cache root turned read-only succeeded")
	}
	wantErrno(t, "rm of an entry", os.Remove(m.path("S", "raw1.parquet")), syscall.EROFS)
	wantErrno(t, "mv of an entry", os.Rename(m.path("S", "raw2.parquet"), m.path("S", "moved.parquet")), syscall.EROFS)
	m.wantErrorListed(t, "S/new.parquet", "read-only")
	for _, name := range []string{"new.parquet", "late.parquet", "moved.parquet"} {
		wantAbsent(t, m.path("S", name))
	}

	// Reads go on, byte-exact, through several of the daemon's health
	// checks: a read-only manifest is not a lost one.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for name, data := range acked {
			wantBytes(t, m.path("S", name), data)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case <-m.done:
		t.Fatalf("the daemon exited on a read-only cache root:\n%s", m.logs())
	default:
	}
	if st := m.stats(t); st.Entries != int64(len(acked)) {
		t.Errorf("stats show %d entries, want %d", st.Entries, len(acked))
	}
	// The state lasts until an operator acts: said once, not every second.
	if n := strings.Count(m.logs(), "manifest is read-only"); n > 1 {
		t.Errorf("the daemon logged the read-only manifest %d times, want once", n)
	}

	// The operator's repair: stop the daemon, check the file system, mount
	// it writable, start again.
	m.stop()
	l.repair()
	m.start()
	for name, data := range acked {
		wantBytes(t, m.path("S", name), data)
	}
	for _, name := range append(refused, "new.parquet", "late.parquet", "moved.parquet") {
		wantAbsent(t, m.path("S", name))
	}
	if got := ls(t, m.path("S")); len(got) != len(acked) {
		t.Errorf("S lists %v after the repair, want the %d acknowledged entries", got, len(acked))
	}
	if out, code := runFsmount(t, "verify", "--cache-root", m.root); code != 0 {
		t.Errorf("verify after the repair exited %d:\n%s", code, out)
	}
	// Writable again: commits work.
	commit("after.parquet", makeParquet(t, 300, 313))
	wantBytes(t, m.path("S", "after.parquet"), acked["after.parquet"])
}
