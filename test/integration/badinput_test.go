package integration

// Refusals of names and bytes: each test asserts the errno the writing process
// sees and that nothing changed: the previous version reads back byte-exact,
// no entry appears, .control/errors lists the failure with its path, and
// rejected_writes counts it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// badWriteSetup mounts and commits AAPL/k.parquet, the version every bad
// write below must leave alone.
func badWriteSetup(t *testing.T) (*mount, []byte) {
	t.Helper()
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 500, 100)
	commitFile(t, m.path("AAPL", "k.parquet"), data)
	return m, data
}

// wantUnchanged checks that AAPL holds exactly k.parquet with data.
func wantUnchanged(t *testing.T, m *mount, data []byte) {
	t.Helper()
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"k.parquet"}) {
		t.Fatalf("AAPL lists %v, want [k.parquet]", got)
	}
	if st := m.stats(t); st.Entries != 1 || st.Commits != 1 {
		t.Fatalf("entries %d, commits %d: want 1 and 1", st.Entries, st.Commits)
	}
}

func TestCloseRejectsNotParquet(t *testing.T) {
	m, data := badWriteSetup(t)
	// The head magic gets past the write (anything else fails there, see
	// TestShellRedirectOfNonParquetFailsAtWrite); the close validates.
	garbage := []byte("PAR1" + strings.Repeat("this is not parquet\n", 100))
	o := writeFile(m.path("AAPL", "k.parquet"), garbage)
	if o.Op != "close" {
		t.Fatalf("overwriting with garbage: %v, want close to fail", o)
	}
	wantErrno(t, "close", o.Err, syscall.EINVAL)
	o = writeFile(m.path("AAPL", "new.parquet"), garbage)
	if o.Op != "close" || o.errno() != syscall.EINVAL {
		t.Fatalf("a new entry of garbage: %v, want EINVAL at close", o)
	}
	wantAbsent(t, m.path("AAPL", "new.parquet"))
	wantUnchanged(t, m, data)
	m.wantErrorListed(t, "AAPL/k.parquet", "close")
	m.wantErrorListed(t, "AAPL/new.parquet", "close")
	m.wantRejected(t, 2)
}

func TestCloseRejectsTruncatedParquet(t *testing.T) {
	m, data := badWriteSetup(t)
	other := makeParquet(t, 800, 101)
	// Cut short: footer gone; cut by one byte: magic damaged; head only.
	for i, cut := range [][]byte{other[:len(other)-100], other[:len(other)-1], other[:len(other)/2]} {
		o := writeFile(m.path("AAPL", "k.parquet"), cut)
		if o.Op != "close" || o.errno() != syscall.EINVAL {
			t.Fatalf("cut %d (%d of %d bytes): %v, want EINVAL at close", i, len(cut), len(other), o)
		}
	}
	wantUnchanged(t, m, data)
	m.wantErrorListed(t, "AAPL/k.parquet", "close")
	m.wantRejected(t, 3)
}

func TestCloseOfEmptyFileCommitsNothing(t *testing.T) {
	m, data := badWriteSetup(t)
	// Truncating an entry and closing it without a write: the previous
	// version stays, and close succeeds (the name is pending, §3).
	if o := writeFile(m.path("AAPL", "k.parquet"), nil); o.Op != "" {
		t.Fatalf("empty overwrite: %v, want success and nothing committed", o)
	}
	wantUnchanged(t, m, data)
	// Creating an empty entry: nothing to read.
	if o := writeFile(m.path("AAPL", "empty.parquet"), nil); o.Op != "" {
		t.Fatalf("empty new file: %v, want success and nothing committed", o)
	}
	if _, err := os.ReadFile(m.path("AAPL", "empty.parquet")); errnoOf(err) != syscall.ENOENT {
		t.Fatalf("reading an empty new file: %v, want ENOENT", err)
	}
	wantUnchanged(t, m, data)
	if lines := m.errors(t); len(lines) != 0 {
		t.Fatalf(".control/errors lists empty closes: %v", lines)
	}
	m.wantRejected(t, 0)
}

func TestCreateRefusesNameWithoutParquetSuffix(t *testing.T) {
	m, data := badWriteSetup(t)
	for _, name := range []string{"notes.txt", "k.parquet.bak", "k.PARQUET", "parquet"} {
		o := writeFile(m.path("AAPL", name), makeParquet(t, 10, 102))
		if o.Op != "open" || o.errno() != syscall.EINVAL {
			t.Fatalf("create %s: %v, want EINVAL at open", name, o)
		}
		wantAbsent(t, m.path("AAPL", name))
		m.wantErrorListed(t, "AAPL/"+name, "create")
	}
	wantUnchanged(t, m, data)
	m.wantRejected(t, 4)
}

func TestDotAndDotDotAreNotEntries(t *testing.T) {
	m, data := badWriteSetup(t)
	for _, name := range []string{".", ".."} {
		o := writeFile(m.path("AAPL", name), makeParquet(t, 10, 103))
		if o.Op != "open" || o.errno() != syscall.EISDIR {
			t.Fatalf("write to AAPL/%s: %v, want EISDIR at open", name, o)
		}
		wantErrno(t, "mkdir "+name, syscall.Mkdir(m.path(name), 0o755), syscall.EEXIST)
	}
	wantUnchanged(t, m, data)
	if got := ls(t, m.dir); !slices.Equal(got, []string{"AAPL"}) {
		t.Fatalf("root lists %v", got)
	}
}

func TestCreateRefusesKeyTooLong(t *testing.T) {
	m, data := badWriteSetup(t)
	long := strings.Repeat("a", 201)
	o := writeFile(m.path("AAPL", long+".parquet"), makeParquet(t, 10, 104))
	if o.Op != "open" || o.errno() != syscall.ENAMETOOLONG {
		t.Fatalf("create of a 201-byte key: %v, want ENAMETOOLONG at open", o)
	}
	wantAbsent(t, m.path("AAPL", long+".parquet"))
	m.wantErrorListed(t, "AAPL/"+long+".parquet", "create")
	wantErrno(t, "mkdir of a 201-byte symbol", syscall.Mkdir(m.path(long), 0o755), syscall.ENAMETOOLONG)
	wantUnchanged(t, m, data)
	m.wantRejected(t, 1)

	// 200 bytes is the limit, inclusive.
	ok := strings.Repeat("b", 200)
	commitFile(t, m.path("AAPL", ok+".parquet"), makeParquet(t, 10, 105))
	wantBytes(t, m.path("AAPL", ok+".parquet"), makeParquet(t, 10, 105))
}

func TestCreateRefusesInvalidUTF8Key(t *testing.T) {
	m, data := badWriteSetup(t)
	bad := "k\xff\xfe.parquet"
	o := writeFile(m.path("AAPL", bad), makeParquet(t, 10, 106))
	if o.Op != "open" || o.errno() != syscall.EINVAL {
		t.Fatalf("create of an invalid UTF-8 key: %v, want EINVAL at open", o)
	}
	wantAbsent(t, m.path("AAPL", bad))
	m.wantErrorListed(t, "AAPL/"+bad, "create")
	wantErrno(t, "mkdir of an invalid UTF-8 symbol", syscall.Mkdir(m.path("S\xff"), 0o755), syscall.EINVAL)
	wantUnchanged(t, m, data)
	m.wantRejected(t, 1)
}

func TestLinksAndDeviceNodesRefusedInSymbol(t *testing.T) {
	m, data := badWriteSetup(t)
	target := m.path("AAPL", "k.parquet")
	wantErrno(t, "symlink", os.Symlink(target, m.path("AAPL", "s.parquet")), syscall.EPERM)
	wantErrno(t, "hard link", os.Link(target, m.path("AAPL", "h.parquet")), syscall.EPERM)
	wantErrno(t, "mkfifo", syscall.Mkfifo(m.path("AAPL", "f.parquet"), 0o644), syscall.EPERM)
	wantErrno(t, "mkdir in a symbol", syscall.Mkdir(m.path("AAPL", "sub"), 0o755), syscall.EPERM)
	// The tools agree.
	if out, err := run("ln", "-s", target, m.path("AAPL", "s2.parquet")); err == nil {
		t.Fatalf("ln -s succeeded: %s", out)
	}
	for _, name := range []string{"s.parquet", "h.parquet", "f.parquet", "sub", "s2.parquet"} {
		wantAbsent(t, m.path("AAPL", name))
		m.wantErrorListed(t, "AAPL/"+name)
	}
	wantUnchanged(t, m, data)
	m.wantRejected(t, 5)
}

func TestCommitFailsWithENOSPCWhenDiskFull(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	base := t.TempDir()
	root := filepath.Join(base, "small")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", root)
	// Registered before the mount, so it runs after the daemon stopped.
	t.Cleanup(func() {
		if out, err := run("umount", root); err != nil {
			t.Errorf("umount tmpfs: %v %s", err, out)
			_, _ = run("umount", "-l", root)
		}
	})
	// zstd always: a staged file that fits may still not fit twice, once
	// staged and once compressed, so the store step fails too.
	m := mountAt(t, filepath.Join(root, "cache"), filepath.Join(base, "mnt"), "--compression", "zstd")
	sh(t, "mkdir", m.path("AAPL"))
	small := makeParquet(t, 200, 107)
	commitFile(t, m.path("AAPL", "k.parquet"), small)

	big := bulkParquet(t, 12<<20, 5)
	o := writeFile(m.path("AAPL", "k.parquet"), big)
	if o.Op == "" || o.errno() != syscall.ENOSPC {
		t.Fatalf("writing %d bytes to an 8 MiB cache root: %v, want ENOSPC at write or close", len(big), o)
	}
	if o.Op == "write" && errnoOf(o.CloseErr) != syscall.ENOSPC {
		t.Fatalf("close after a write failed with ENOSPC: %v, want ENOSPC (the file is not committed)", o.CloseErr)
	}
	t.Logf("too large a file: %v", o)
	wantBytes(t, m.path("AAPL", "k.parquet"), small)
	m.wantErrorListed(t, "AAPL/k.parquet")
	m.wantRejected(t, 1)

	// 5 MiB stage fine; their compressed copy does not fit beside them.
	o = writeFile(m.path("AAPL", "k.parquet"), bulkParquet(t, 5<<20, 6))
	if o.Op != "close" || o.errno() != syscall.ENOSPC {
		t.Fatalf("a file that fits staged but not stored: %v, want ENOSPC at close", o)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), small)
	m.wantRejected(t, 2)
	// The failed writes leave no staged bytes behind (they are dropped when
	// the kernel releases the handle, just after close).
	staging := filepath.Join(m.root, "staging")
	deadline := time.Now().Add(2 * time.Second)
	for {
		left, err := os.ReadDir(staging)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d staging files left after the failed commits", len(left))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The daemon serves on: reads, and a commit that fits.
	smaller := makeParquet(t, 100, 108)
	commitFile(t, m.path("AAPL", "k2.parquet"), smaller)
	wantBytes(t, m.path("AAPL", "k2.parquet"), smaller)
	wantBytes(t, m.path("AAPL", "k.parquet"), small)
	m.restart()
	wantBytes(t, m.path("AAPL", "k.parquet"), small)
	wantBytes(t, m.path("AAPL", "k2.parquet"), smaller)
}

// lockManifest holds the manifest's write lock from another process (the
// sqlite3 shell) until the returned function is called.
func lockManifest(t *testing.T, root string) (release func()) {
	t.Helper()
	cmd := exec.Command("sqlite3", filepath.Join(root, "manifest.db"))
	stdin, stdout := startPiped(t, cmd)
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		_, _ = io.WriteString(stdin, "COMMIT;\n.quit\n")
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("sqlite3 holding the lock: %v", err)
		}
	}
	t.Cleanup(release)
	if _, err := io.WriteString(stdin, ".timeout 5000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n"); err != nil {
		t.Fatal(err)
	}
	line, err := stdout.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("sqlite3 did not take the lock: %q %v", line, err)
	}
	return release
}

// manifestLockHold is how long another process holds the manifest's write
// lock below: longer than a writer's whole retry budget (about 15-20 s of
// waiting), as a stuck `sqlite3` session or a long standalone GC would.
const manifestLockHold = 30 * time.Second

// TestCommitFailsWithEIOWhileManifestLocked holds the manifest's write lock
// from another process for manifestLockHold while two writers close, one a
// new entry, one a replace. Writers wait, then fail cleanly: close returns
// EIO, the previous version is intact, no entry or blob of the failed commit
// is left. A writer queued behind another's retries may still be waiting
// when the lock goes; it must then commit, exactly. Readers are served
// throughout: reads of a committed entry return its bytes and lookups of
// absent names answer ENOENT (each a manifest query), before and after the
// first writer gave up. Once the lock is released, writes commit again.
func TestCommitFailsWithEIOWhileManifestLocked(t *testing.T) {
	t.Parallel()
	m, data := badWriteSetup(t)
	// A replace that commits retires this blob a few seconds later.
	oldBlob := sqliteQuery(t, m.root, "select path from manifest where key = 'k'")
	release := lockManifest(t, m.root)
	lockedAt := time.Now()
	retries := m.stats(t).BusyRetries

	type outcome struct {
		name string
		data []byte
		o    writeOutcome
		end  time.Time
	}
	writes := map[string][]byte{"new.parquet": makeParquet(t, 300, 109), "k.parquet": makeParquet(t, 400, 110)}
	results := make(chan outcome, len(writes))
	for name, d := range writes {
		go func() {
			o := writeFile(m.path("AAPL", name), d)
			results <- outcome{name, d, o, time.Now()}
		}()
	}

	// Read until the lock is released, counting reads that succeed before
	// and after the first writer gave up; any failure or wrong byte fails.
	var done []outcome
	var readsWhileWaiting, readsAfterFailure int
	for i := 0; time.Since(lockedAt) < manifestLockHold; i++ {
		got, err := os.ReadFile(m.path("AAPL", "k.parquet"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d of a committed entry while the manifest is locked (%v in): %d bytes, %v",
				i, time.Since(lockedAt).Round(time.Millisecond), len(got), err)
		}
		// A name never looked up before is not in the kernel's cache: the
		// daemon asks the manifest.
		absent := m.path("AAPL", fmt.Sprintf("absent%d.parquet", i))
		if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("lookup of %s while the manifest is locked: %v, want ENOENT", absent, err)
		}
		if len(done) == 0 {
			readsWhileWaiting++
		} else {
			readsAfterFailure++
		}
		select {
		case r := <-results:
			if r.o.Op != "close" || r.o.errno() != syscall.EIO {
				t.Fatalf("%s while another process holds the manifest lock: %v, want EIO at close", r.name, r.o)
			}
			t.Logf("%s: close failed with EIO after %v", r.name, r.end.Sub(lockedAt).Round(time.Millisecond))
			done = append(done, r)
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(done) == 0 {
		t.Fatalf("no writer gave up while the manifest was locked for %v", manifestLockHold)
	}
	t.Logf("reads served while writers waited: %d, after one failed: %d (lock held %v)",
		readsWhileWaiting, readsAfterFailure, time.Since(lockedAt).Round(time.Millisecond))
	if readsWhileWaiting == 0 || readsAfterFailure == 0 {
		t.Fatalf("reads while writers waited: %d, after one failed: %d; want some of each", readsWhileWaiting, readsAfterFailure)
	}
	if st := m.stats(t); st.BusyRetries <= retries {
		t.Errorf("busy_retries %d, was %d: the waits are not counted", st.BusyRetries, retries)
	}
	release()
	releasedAt := time.Now()

	for len(done) < len(writes) {
		select {
		case r := <-results:
			// It joined the next transaction after the first writer's gave
			// up, and was still retrying when the lock went.
			if r.o.Op != "" && !(r.o.Op == "close" && r.o.errno() == syscall.EIO) {
				t.Fatalf("%s: %v, want EIO at close or a commit", r.name, r.o)
			}
			t.Logf("%s: %v after %v, the lock released after %v", r.name, r.o, r.end.Sub(lockedAt).Round(time.Millisecond),
				releasedAt.Sub(lockedAt).Round(time.Millisecond))
			done = append(done, r)
		case <-time.After(2 * time.Minute):
			t.Fatalf("a writer was still blocked 2 minutes after the lock was released")
		}
	}
	rejected := 0
	for _, r := range done {
		path := m.path("AAPL", r.name)
		switch {
		case r.o.Op == "":
			wantBytes(t, path, r.data)
		case r.name == "k.parquet":
			rejected++
			wantBytes(t, path, data)
			m.wantErrorListed(t, "AAPL/"+r.name, "busy")
		default:
			rejected++
			wantAbsent(t, path)
			m.wantErrorListed(t, "AAPL/"+r.name, "busy")
		}
	}
	m.wantRejected(t, int64(rejected))
	if left := slices.DeleteFunc(orphans(t, m.root), func(p string) bool { return p == oldBlob }); len(left) != 0 {
		t.Errorf("blobs of the failed commits left behind: %v", left)
	}
	// Staging files go when the kernel releases the handles, after close.
	pollUntil(t, 2*time.Second, "staging files of the failed commits removed", func() (bool, string) {
		_, staging := blobFiles(t, m.root)
		return len(staging) == 0, fmt.Sprint(staging)
	})
	// The lock is gone: commits work again.
	for name, d := range writes {
		commitFile(t, m.path("AAPL", name), d)
		wantBytes(t, m.path("AAPL", name), d)
	}
}

// fillDisk appends to a file outside featurefs, on the cache root's file
// system, until the file system refuses another byte (to root too: the
// file system is made with no blocks reserved for root). Space freed just
// after (a failed commit's staging file going) is filled too.
func fillDisk(t *testing.T, l *loopFS) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(l.dir, "filler"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Statfs_t
	for round := 0; ; round++ {
		for _, chunk := range []int{1 << 20, 4 << 10, 1} {
			buf := make([]byte, chunk)
			for {
				if _, err := f.Write(buf); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("filling the disk: %v", err)
					}
					break
				}
			}
		}
		// Written, so that no space is merely promised.
		if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := syscall.Statfs(l.dir, &st); err != nil {
			t.Fatal(err)
		}
		// ext4 keeps a few blocks (Bfree) for its own metadata; none may
		// be available to files.
		if st.Bavail == 0 {
			return
		}
		if round == 10 {
			t.Fatalf("%d blocks still available after filling the disk", st.Bavail)
		}
	}
}

// TestDeleteAndGCWorkOnFullDisk: with the cache root's file system full
// (entries until a commit fails with ENOSPC, then a file outside featurefs),
// rm of an entry succeeds, .control/gc runs, entries keep reading; after the
// daemon stopped, fsmount gc frees space on the still full disk so that the
// mount starts again, also when SQLite has to create its -wal and -shm files
// on a full disk.
func TestDeleteAndGCWorkOnFullDisk(t *testing.T) {
	l := newLoopFS(t, 64<<20, "-m", "0")
	m := mountAt(t, filepath.Join(l.dir, "cache"), filepath.Join(t.TempDir(), "mnt"), "--compression", "none")
	reserve := filepath.Join(m.root, "manifest.reserve")
	reserveSize := func() int64 {
		fi, err := os.Stat(reserve)
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	if n := reserveSize(); n != 4<<20 {
		t.Errorf("manifest.reserve is %d bytes after the mount started, want 4 MiB", n)
	}
	sh(t, "mkdir", m.path("S"))
	entries := map[string][]byte{}
	for i := 0; ; i++ {
		name := fmt.Sprintf("e%d.parquet", i)
		data := bulkParquet(t, 10<<20, byte(i))
		o := writeFile(m.path("S", name), data)
		if o.Op != "" {
			if o.errno() != syscall.ENOSPC {
				t.Fatalf("commit %s on a filling disk: %v, want ENOSPC", name, o)
			}
			break
		}
		entries[name] = data
	}
	if len(entries) < 3 {
		t.Fatalf("only %d entries fit on the disk; the test needs 3", len(entries))
	}
	fillDisk(t, l)
	t.Logf("disk full with %d entries of 10 MiB", len(entries))
	for name, data := range entries {
		wantBytes(t, m.path("S", name), data)
	}

	// rm: the row delete needs WAL space, the blob gives space back.
	if err := os.Remove(m.path("S", "e0.parquet")); err != nil {
		t.Errorf("rm of an entry on a full disk: %v (errno %v), want success", err, errnoOf(err))
	} else {
		delete(entries, "e0.parquet")
		wantAbsent(t, m.path("S", "e0.parquet"))
		// The blob goes a few seconds after its row; the freed space
		// refills the reserve at the next write (the access times of
		// these reads).
		for deadline := time.Now().Add(30 * time.Second); reserveSize() != 4<<20; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("manifest.reserve is %d bytes 30s after rm freed space, want 4 MiB", reserveSize())
				break
			}
			wantBytes(t, m.path("S", "e1.parquet"), entries["e1.parquet"])
		}
	}
	fillDisk(t, l)

	// GC must flush the access times of these reads before it decides.
	for name, data := range entries {
		wantBytes(t, m.path("S", name), data)
	}
	if err := os.WriteFile(m.path(".control", "gc"), []byte("run\n"), 0); err != nil {
		t.Errorf("echo run > .control/gc on a full disk: %v (errno %v)", err, errnoOf(err))
	}
	for name, data := range entries {
		wantBytes(t, m.path("S", name), data)
	}
	m.stop()
	fillDisk(t, l)

	// The daemon is gone and the disk still full: fsmount gc with a short
	// retention frees space.
	time.Sleep(2 * time.Second) // past the retention since the last read
	out, code := runFsmount(t, "gc", "--cache-root", m.root, "--retention", "1s", "--settle", "0s", "--verbose")
	if code != 0 {
		t.Fatalf("fsmount gc on a full disk exited %d:\n%s", code, out)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < 10<<20 {
		t.Fatalf("fsmount gc freed only %d bytes:\n%s", free, out)
	}
	if n := sqliteInt(t, m.root, "select count(*) from manifest"); n != 0 {
		t.Fatalf("%d entries left after a GC with a 1s retention", n)
	}
	if n := reserveSize(); n != 4<<20 {
		t.Errorf("manifest.reserve is %d bytes after GC freed space, want 4 MiB", n)
	}

	// The mount starts again, on a full disk too, and serves.
	fillDisk(t, l)
	m.start()
	data := makeParquet(t, 100, 120)
	sh(t, "mkdir", "-p", m.path("S"))
	if o := writeFile(m.path("S", "small.parquet"), data); o.Op != "" && o.errno() != syscall.ENOSPC {
		t.Fatalf("a commit on a full disk: %v, want success or ENOSPC", o)
	}

	// A first open: SQLite creates -wal and -shm on a full disk.
	m.stop()
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(filepath.Join(m.root, "manifest.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	_ = os.Remove(filepath.Join(l.dir, "filler"))
	m.start()
	commitFile(t, m.path("S", "a.parquet"), bulkParquet(t, 10<<20, 50))
	m.stop()
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(filepath.Join(m.root, "manifest.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if n := reserveSize(); n != 4<<20 {
		t.Fatalf("manifest.reserve is %d bytes before the disk filled again, want 4 MiB", n)
	}
	fillDisk(t, l)
	m.start()
	if err := os.Remove(m.path("S", "a.parquet")); err != nil {
		t.Fatalf("rm after a first open on a full disk: %v (errno %v)", err, errnoOf(err))
	}
}
