package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cacheOut fills symbol AAPL of a fresh mount with a few entries and
// returns the mount and their contents by name.
func cacheOut(t *testing.T) (*mount, map[string][]byte) {
	t.Helper()
	m := mountT(t)
	src, files := fixtureDir(t, 4, 3_000, 7)
	sh(t, "cp", "-r", src, m.path("AAPL"))
	return m, files
}

// wantEntries checks that dir holds exactly files, committed and
// byte-identical, with the computed attributes of a committed entry.
func wantEntries(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	names := ls(t, dir)
	if len(names) != len(files) {
		t.Fatalf("%s holds %v, want the %d entries copied", dir, names, len(files))
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if got, want := sha256File(t, p), sha256Hex(data); got != want {
			t.Fatalf("%s: sha256 %s, want %s", p, got, want)
		}
		if got := xattrs(t, p)["user.featurefs.hash_method"]; got == "" {
			t.Fatalf("%s has no user.featurefs.hash_method: not a committed entry", p)
		}
	}
}

// TestCpAOutAndBackCommitsEveryEntry copies a symbol directory out of the
// mount with cp -a (which keeps the computed attributes on the copies) and
// back in, under a new name and over itself: cp carries the attributes and
// the directory's ACL (system.posix_acl_access) back in, and must exit 0.
func TestCpAOutAndBackCommitsEveryEntry(t *testing.T) {
	m, files := cacheOut(t)
	out := filepath.Join(t.TempDir(), "AAPL")
	sh(t, "cp", "-a", m.path("AAPL"), out)
	if got := xattrs(t, filepath.Join(out, "k0.parquet"))["user.featurefs.rows"]; got == "" {
		t.Fatalf("cp -a kept no user.featurefs.* on the copy out; the test would prove nothing")
	}

	sh(t, "cp", "-a", out, m.path("COPY"))
	wantEntries(t, m.path("COPY"), files)
	sh(t, "cp", "-a", out+"/.", m.path("AAPL"))
	wantEntries(t, m.path("AAPL"), files)
	// cp -a sets the directory's time last; the mount keeps it.
	if got, want := statf(t, "%.9Y", m.path("COPY")), statf(t, "%.9Y", out); got != want {
		t.Fatalf("mtime of the copied directory = %s, want the source's %s", got, want)
	}
}

// TestRsyncXOutAndBackTransfersNothingTheSecondTime: rsync -aX reports
// every setxattr that fails, on the scratch file it writes and on the
// directory; it must exit 0, commit every entry, and a second run must
// transfer nothing (entry and directory times kept). rsync opens each
// destination file before reading its attributes, which counts as an
// access, so user.featurefs.access_count always differs from the copy's:
// the second run sets attributes only (a no-op), or nothing at all when
// that attribute is filtered out.
func TestRsyncXOutAndBackTransfersNothingTheSecondTime(t *testing.T) {
	m, files := cacheOut(t)
	out := filepath.Join(t.TempDir(), "AAPL")
	sh(t, "rsync", "-aX", m.path("AAPL")+"/", out+"/")

	attrsOnly := regexp.MustCompile(`^\.f\.{8}x k\d\.parquet$`)
	for _, dst := range []string{"COPY", "AAPL"} {
		sh(t, "rsync", "-aX", out+"/", m.path(dst)+"/")
		wantEntries(t, m.path(dst), files)
		got := sh(t, "rsync", "-aXi", out+"/", m.path(dst)+"/")
		for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
			if line != "" && !attrsOnly.MatchString(line) {
				t.Fatalf("second rsync -aXi into %s transferred or retimed something:\n%s", dst, got)
			}
		}
		if got := sh(t, "rsync", "-aXi", "--filter=-x user.featurefs.access_count", out+"/", m.path(dst)+"/"); got != "" {
			t.Fatalf("rsync -aXi into %s without access_count changed something:\n%s", dst, got)
		}
	}
}

// TestTarXattrsOutAndBack archives a symbol directory with its attributes
// and extracts it back in, under a new name and over itself.
func TestTarXattrsOutAndBack(t *testing.T) {
	m, files := cacheOut(t)
	archive := filepath.Join(t.TempDir(), "aapl.tar")
	sh(t, "tar", "--xattrs", "-cf", archive, "-C", m.dir, "AAPL")
	if got := sh(t, "tar", "--xattrs", "-tvvf", archive); !strings.Contains(got, "*") {
		t.Logf("tar listing shows no attributes:\n%s", got)
	}
	sh(t, "tar", "--xattrs", "-xf", archive, "-C", m.dir, "--transform", "s,^AAPL,TAR,")
	wantEntries(t, m.path("TAR"), files)
	sh(t, "tar", "--xattrs", "-xf", archive, "-C", m.dir)
	wantEntries(t, m.path("AAPL"), files)
}

// TestUserXattrsAreAcceptedAndOtherNamespacesNotSupported: setting or
// removing a user.* attribute succeeds and stores nothing on every kind of
// node; security.* and system.* answer "Operation not supported", never
// "No data available" (which makes ls -l ask again for every entry) nor
// ENOSYS (after which the kernel would send no getxattr at all).
func TestUserXattrsAreAcceptedAndOtherNamespacesNotSupported(t *testing.T) {
	m := mountT(t)
	entry := m.path("AAPL", "k.parquet")
	if err := os.Mkdir(m.path("AAPL"), 0o755); err != nil {
		t.Fatal(err)
	}
	commitFile(t, entry, makeParquet(t, 2_000, 1))
	want := xattrs(t, entry)

	// A scratch file, written in several writes: each write is preceded by
	// the kernel's getxattr(security.capability), now "not supported".
	scratch := m.path("AAPL", ".k.parquet.tmp")
	f, err := os.Create(scratch)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 3; i++ {
		if _, err := f.Write([]byte("partial ")); err != nil {
			t.Fatalf("write %d to a scratch file: %v", i, err)
		}
	}

	for _, p := range []string{entry, m.path("AAPL"), scratch, m.dir} {
		sh(t, "setfattr", "-n", "user.foo", "-v", "bar", p)
		if out, err := run("getfattr", "--absolute-names", "-n", "user.foo", p); err == nil || !strings.Contains(out, "No such attribute") {
			t.Fatalf("getfattr user.foo of %s after setting it: %v\n%s; want nothing stored", p, err, out)
		}
		sh(t, "setfattr", "-x", "user.foo", p)
		sh(t, "setfattr", "-n", "user.featurefs.hash", "-v", "0000", p)
		sh(t, "setfattr", "-x", "user.featurefs.hash", p)
		for _, name := range []string{"security.foo", "system.posix_acl_access", "trusted.foo"} {
			// The kernel parses an ACL before sending it: give it u::rw-,g::r--,o::r--.
			out, err := run("setfattr", "-n", name, "-v", "0x0200000001000600ffffffff04000400ffffffff20000400ffffffff", p)
			if err == nil || !strings.Contains(out, "Operation not supported") {
				t.Fatalf("setfattr %s on %s: %v\n%s; want Operation not supported", name, p, err, out)
			}
		}
		for _, name := range []string{"security.selinux", "security.capability", "system.posix_acl_access"} {
			out, err := run("getfattr", "--absolute-names", "-n", name, p)
			if err == nil || !strings.Contains(out, "Operation not supported") {
				t.Fatalf("getfattr %s of %s: %v\n%s; want Operation not supported", name, p, err, out)
			}
		}
	}
	if got := xattrs(t, entry); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("attributes after setfattr = %v, want them unchanged %v", got, want)
	}
	if want["user.featurefs.hash"] == "" || want["user.featurefs.rows"] != "2000" {
		t.Fatalf("getfattr -d of an entry = %v, want user.featurefs.*", want)
	}
	if _, err := f.Write([]byte("more")); err != nil {
		t.Fatalf("write after the attribute calls: %v", err)
	}
}

// TestRootIsInodeOne: ls -i of the mountpoint prints 1 (it printed "?"
// for 0), and no entry shares it.
func TestRootIsInodeOne(t *testing.T) {
	m := mountT(t)
	if err := os.Mkdir(m.path("AAPL"), 0o755); err != nil {
		t.Fatal(err)
	}
	commitFile(t, m.path("AAPL", "k.parquet"), makeParquet(t, 1_000, 1))
	if got := strings.Fields(sh(t, "ls", "-id", m.dir)); len(got) == 0 || got[0] != "1" {
		t.Fatalf("ls -id of the mountpoint = %q, want inode 1", got)
	}
	for _, p := range []string{m.path("AAPL"), m.path("AAPL", "k.parquet"), m.path(".control")} {
		if ino := statInt(t, "%i", p); ino == 1 || ino == 0 {
			t.Fatalf("%s has inode %d", p, ino)
		}
	}
	// find walks by device and inode: with the root at 0 it stops early
	// on some versions, with a clash it loops.
	if got := strings.Fields(sh(t, "find", m.dir, "-name", "*.parquet")); len(got) != 1 {
		t.Fatalf("find found %v", got)
	}
}

// mtimeNS is a path's mtime in nanoseconds, as stat shows it.
func mtimeNS(t *testing.T, p string) int64 {
	t.Helper()
	s := strings.Replace(statf(t, "%.9Y", p), ".", "", 1)
	ns, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return ns
}

// wantMoved checks that dir's mtime moved forward from before.
func wantMoved(t *testing.T, dir string, before int64, what string) int64 {
	t.Helper()
	got := mtimeNS(t, dir)
	if got <= before {
		t.Fatalf("%s: mtime of %s stayed at %d (now %d)", what, filepath.Base(dir), before, got)
	}
	return got
}

// TestSymbolDirectoryMTimeFollowsItsEntries: a symbol directory's mtime
// moves when an entry is committed, removed or renamed into or out of it,
// through this daemon or another on the same cache root, and is kept
// across a remount (find -newer, make and rsync go by it).
func TestSymbolDirectoryMTimeFollowsItsEntries(t *testing.T) {
	a := mountT(t)
	b := mountAt(t, a.root, filepath.Join(t.TempDir(), "mnt2"))
	for _, s := range []string{"AAPL", "MSFT"} {
		if err := os.Mkdir(a.path(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := makeParquet(t, 1_000, 1)
	aapl, msft := a.path("AAPL"), a.path("MSFT")
	made := mtimeNS(t, aapl)
	if d := time.Since(time.Unix(0, made)); d < 0 || d > time.Minute {
		t.Fatalf("mtime of a new symbol is %s ago", d)
	}
	// The mount shows nanoseconds, but SQLite's clock moves by milliseconds
	// and the kernel may round; a little time between steps keeps each
	// step's change clear of that.
	step := func() { time.Sleep(20 * time.Millisecond) }

	step()
	commitFile(t, filepath.Join(aapl, "a.parquet"), data)
	m := wantMoved(t, aapl, made, "commit")
	marker := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	step()
	commitFile(t, filepath.Join(aapl, "b.parquet"), data)
	m = wantMoved(t, aapl, m, "second commit")
	if got := sh(t, "find", a.dir, "-maxdepth", "1", "-newer", marker); !strings.Contains(got, "AAPL") || strings.Contains(got, "MSFT") {
		t.Fatalf("find -newer the marker = %q, want AAPL only", got)
	}
	step()
	commitFile(t, filepath.Join(aapl, "b.parquet"), makeParquet(t, 1_500, 2))
	m = wantMoved(t, aapl, m, "replace")
	step()
	if err := os.Remove(filepath.Join(aapl, "a.parquet")); err != nil {
		t.Fatal(err)
	}
	m = wantMoved(t, aapl, m, "unlink")

	// Renamed out of AAPL into MSFT: both move.
	ms := mtimeNS(t, msft)
	step()
	if err := os.Rename(filepath.Join(aapl, "b.parquet"), filepath.Join(msft, "b.parquet")); err != nil {
		t.Fatal(err)
	}
	m = wantMoved(t, aapl, m, "rename out")
	ms = wantMoved(t, msft, ms, "rename in")
	step()
	if err := os.Rename(filepath.Join(msft, "b.parquet"), filepath.Join(msft, "c.parquet")); err != nil {
		t.Fatal(err)
	}
	wantMoved(t, msft, ms, "rename within")

	// The second daemon shows the same time, and a commit through it shows
	// through the first within two seconds.
	if got := mtimeNS(t, b.path("AAPL")); got != m {
		t.Fatalf("second daemon shows AAPL's mtime %d, first %d", got, m)
	}
	step()
	commitFile(t, b.path("AAPL", "d.parquet"), data)
	theirs := mtimeNS(t, b.path("AAPL"))
	took := pollUntil(t, coherenceBound, "commit by the second daemon moves the mtime seen through the first", func() (bool, string) {
		got := mtimeNS(t, aapl)
		return got == theirs, fmt.Sprintf("first shows %d, second %d", got, theirs)
	})
	t.Logf("seen through the first daemon after %s", took.Round(time.Millisecond))

	// touch sets it; a remount keeps it.
	sh(t, "touch", "-m", "-d", "2024-01-02 03:04:05.123456789", msft)
	if got := statf(t, "%y", msft); !strings.HasPrefix(got, "2024-01-02 03:04:05.123456789") {
		t.Fatalf("mtime of MSFT after touch -d = %s", got)
	}
	ms = mtimeNS(t, msft)
	before := mtimeNS(t, aapl)
	a.restart()
	if got := mtimeNS(t, aapl); got != before {
		t.Fatalf("mtime of AAPL after a remount = %d, want %d", got, before)
	}
	if got := mtimeNS(t, msft); got != ms {
		t.Fatalf("mtime of MSFT after a remount = %d, want %d", got, ms)
	}
}

// TestLsLongSendsNoGetxattrPerEntry: ls -l asks for security.selinux and
// system.posix_acl_access; answered "not supported" once, it asks no more
// on this device, where "no data" costs a daemon round trip per entry.
func TestLsLongSendsNoGetxattrPerEntry(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	m := mountT(t)
	dir := m.path("AAPL")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	data := makeParquet(t, 200, 1)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if o := writeFile(filepath.Join(dir, fmt.Sprintf("k%04d.parquet", i)), data); o.Err != nil {
					errs <- o.Err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	trace := filepath.Join(t.TempDir(), "trace")
	sh(t, "strace", "-f", "-o", trace, "-e", "trace=getxattr,lgetxattr,fgetxattr", "ls", "-l", dir)
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var calls, unsupported int
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "getxattr(") {
			continue
		}
		calls++
		if strings.Contains(line, "EOPNOTSUPP") {
			unsupported++
		}
	}
	t.Logf("ls -l of %d entries: %d getxattr calls, %d answered EOPNOTSUPP", n, calls, unsupported)
	if calls > 4 || calls != unsupported {
		t.Fatalf("ls -l of %d entries made %d getxattr calls (%d EOPNOTSUPP), want a few, all EOPNOTSUPP:\n%.2000s",
			n, calls, unsupported, raw)
	}
}

// TestMknodThenWriteCommitsAtClose: tar --xattrs makes each file with
// mknod, sets its attributes, then opens it for writing. The name commits
// at the close of that descriptor; content that is not parquet is refused
// there and leaves no name behind.
func TestMknodThenWriteCommitsAtClose(t *testing.T) {
	m := mountT(t)
	if err := os.Mkdir(m.path("AAPL"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := makeParquet(t, 1_000, 3)
	for _, c := range []struct {
		name string
		data []byte
		want syscall.Errno
	}{{"good.parquet", data, 0}, {"junk.parquet", []byte("not parquet"), syscall.EINVAL}} {
		p := m.path("AAPL", c.name)
		if err := syscall.Mknod(p, syscall.S_IFREG|0o644, 0); err != nil {
			t.Fatalf("mknod %s: %v", c.name, err)
		}
		sh(t, "setfattr", "-n", "user.featurefs.hash", "-v", "00", p)
		if err := syscall.Mknod(p, syscall.S_IFREG|0o644, 0); err != syscall.EEXIST {
			t.Fatalf("second mknod %s: %v, want EEXIST", c.name, err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("open %s after mknod: %v", c.name, err)
		}
		if _, err := f.Write(c.data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); c.want == 0 && err != nil {
			t.Fatalf("close of %s: %v", c.name, err)
		} else if c.want != 0 {
			wantErrno(t, "close of "+c.name, err, c.want)
		}
	}
	wantBytes(t, m.path("AAPL", "good.parquet"), data)
	wantAbsent(t, m.path("AAPL", "junk.parquet"))
	if got := ls(t, m.path("AAPL")); fmt.Sprint(got) != "[good.parquet]" {
		t.Fatalf("AAPL holds %v", got)
	}
}
