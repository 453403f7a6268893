package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asNobody runs a shell script as an unprivileged user (uid/gid 65534) and
// returns its combined output and error.
func asNobody(t *testing.T, script string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to an unprivileged user needs root")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// openDirs lets an unprivileged user reach paths under t.TempDir (mode 0700
// by default) without opening the cache root's contents to it.
func openDirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		for p := d; p != "/" && p != "."; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestMountIsPrivateWithoutAllowOther(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	openDirs(t, filepath.Dir(m.dir))
	out, err := asNobody(t, "ls "+m.dir)
	if err == nil {
		t.Fatalf("another user listed a private mount: %s", out)
	}
	if !strings.Contains(out, "Permission denied") {
		t.Errorf("want Permission denied, got: %s", out)
	}
}

func TestAllowOtherLetsOthersReadButNotWrite(t *testing.T) {
	m := mountT(t, "--allow-other")
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 500, 7)
	sh(t, "mkdir", m.path("AAPL"))
	sh(t, "cp", v, m.path("AAPL", "k.parquet"))
	openDirs(t, filepath.Dir(m.dir), src)
	want := sha256File(t, v)

	out, err := asNobody(t, "sha256sum "+m.path("AAPL", "k.parquet"))
	if err != nil || !strings.HasPrefix(out, want) {
		t.Fatalf("another user could not read an entry with --allow-other: %v %s", err, out)
	}
	for name, script := range map[string]string{
		"overwrite entry":  "cp " + v + " " + m.path("AAPL", "k.parquet"),
		"create entry":     "cp " + v + " " + m.path("AAPL", "new.parquet"),
		"remove entry":     "rm -f " + m.path("AAPL", "k.parquet"),
		"mkdir symbol":     "mkdir " + m.path("MSFT"),
		"run gc":           "echo run > " + m.path(".control", "gc"),
		"write stats":      "echo x > " + m.path(".control", "stats"),
		"chmod setuid":     "chmod 4755 " + m.path("AAPL", "k.parquet"),
		"rename entry":     "mv " + m.path("AAPL", "k.parquet") + " " + m.path("AAPL", "x.parquet"),
		"truncate entry":   "truncate -s 0 " + m.path("AAPL", "k.parquet"),
		"scratch file":     "echo x > " + m.path("AAPL", ".tmp"),
		"symlink in mount": "ln -s /etc/passwd " + m.path("AAPL", "link.parquet"),
	} {
		if out, err := asNobody(t, script); err == nil {
			t.Errorf("%s: another user succeeded: %s", name, out)
		}
	}
	if got := sha256File(t, m.path("AAPL", "k.parquet")); got != want {
		t.Error("the entry changed after refused writes")
	}
	if names := strings.Fields(sh(t, "ls", "-A", m.dir)); len(names) != 1 || names[0] != "AAPL" {
		t.Errorf("root listing after refused writes: %v", names)
	}
}

func TestSetuidAndModeBitsAreNeverKept(t *testing.T) {
	m := mountT(t)
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 100, 8)
	sh(t, "mkdir", m.path("S"))
	sh(t, "cp", v, m.path("S", "k.parquet"))
	sh(t, "chmod", "6777", m.path("S", "k.parquet"))
	var st syscall.Stat_t
	if err := syscall.Stat(m.path("S", "k.parquet"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o644 {
		t.Errorf("mode after chmod 6777 is %o, want 644", st.Mode&0o7777)
	}
}

func TestCorruptManifestRefusesToMountAndIsKept(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	base := t.TempDir()
	root, mnt := filepath.Join(base, "cache"), filepath.Join(base, "mnt")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte("not a database, just bytes. "), 200)
	db := filepath.Join(root, "manifest.db")
	if err := os.WriteFile(db, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	out := wantMountRefused(t, root, mnt)
	if !strings.Contains(out, "manifest.db") || !strings.Contains(strings.ToLower(out), "not a valid manifest") {
		t.Errorf("the message should name the file and say what is wrong: %s", out)
	}
	after, rerr := os.ReadFile(db)
	if rerr != nil || !bytes.Equal(after, garbage) {
		t.Error("the corrupt manifest was changed; it must be kept as it was for inspection")
	}
}

// wantMountRefused runs fsmount mount on root and expects it to exit
// non-zero without mounting; it returns what fsmount said.
func wantMountRefused(t *testing.T, root, mnt string) string {
	t.Helper()
	cmd := exec.Command(fsmountBin, "mount", "--cache-root", root, mnt)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		if isMounted(mnt) {
			_ = exec.Command("umount", "-l", mnt).Run()
		}
		t.Fatal("fsmount kept running on a corrupt manifest")
	}
	if isMounted(mnt) {
		_ = exec.Command("umount", "-l", mnt).Run()
		t.Fatal("fsmount mounted a corrupt manifest")
	}
	if err == nil {
		t.Fatalf("fsmount exited 0 on a corrupt manifest: %s", out)
	}
	return string(out)
}

// damagePages overwrites whole pages of a manifest (4096-byte pages) at the
// given page offsets with garbage and returns the file's sha256 after.
func damagePages(t *testing.T, db string, offsets ...int64) string {
	t.Helper()
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x5a}, 4096/5+1)[:4096]
	for _, off := range offsets {
		if _, err := f.WriteAt(page, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return sha256File(t, db)
}

// TestDamagedManifestPagesRefuseToMount: a manifest whose pages at offsets
// 4096 and 8192 hold garbage (PRAGMA integrity_check says so) is refused at
// mount with a clear message and a non-zero exit, and left byte for byte as
// it was, nothing checkpointed into it.
func TestDamagedManifestPagesRefuseToMount(t *testing.T) {
	m := mountT(t)
	for _, sym := range []string{"A", "B"} {
		sh(t, "mkdir", m.path(sym))
		for i := 0; i < 3; i++ {
			commitFile(t, m.path(sym, fmt.Sprintf("k%d.parquet", i)), makeParquet(t, 50+i, uint64(130+i)))
		}
	}
	m.stop()
	db := filepath.Join(m.root, "manifest.db")
	if fi, err := os.Stat(db + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("the WAL holds %d bytes after a clean stop; the test wants everything in manifest.db", fi.Size())
	}
	sum := damagePages(t, db, 4096, 8192)
	check, _ := run("sqlite3", "file:"+db+"?mode=ro", "PRAGMA integrity_check")
	if strings.TrimSpace(check) == "ok" {
		t.Fatalf("integrity_check finds nothing wrong with the damaged file")
	}
	out := wantMountRefused(t, m.root, m.dir)
	t.Logf("fsmount mount: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "manifest.db") || !strings.Contains(strings.ToLower(out), "not a valid manifest") {
		t.Errorf("the message should name the file and say it is damaged: %s", out)
	}
	if got := sha256File(t, db); got != sum {
		t.Error("the damaged manifest was changed; it must be kept as it was for inspection")
	}
	if fi, err := os.Stat(db + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("the refused mount left %d bytes in the WAL", fi.Size())
	}
	// GC and stats refuse it too, and touch nothing.
	if out, code := runFsmount(t, "gc", "--cache-root", m.root); code == 0 {
		t.Errorf("fsmount gc on a damaged manifest exited 0:\n%s", out)
	}
	if got := sha256File(t, db); got != sum {
		t.Error("fsmount gc changed the damaged manifest")
	}
}

// TestDamagedManifestAtRunTimeStopsTheDaemon: pages of manifest.db damaged
// behind a serving daemon. Once a lookup, listing or commit meets the damage
// the daemon stops serving, unmounts and exits non-zero saying why, and
// writes nothing into the file: it stays as the damage left it.
func TestDamagedManifestAtRunTimeStopsTheDaemon(t *testing.T) {
	m := mountT(t)
	for _, sym := range []string{"A", "B", "C"} {
		sh(t, "mkdir", m.path(sym))
		for i := 0; i < 20; i++ {
			commitFile(t, m.path(sym, fmt.Sprintf("k%d.parquet", i)), makeParquet(t, 50+i, uint64(140+i)))
		}
	}
	db := filepath.Join(m.root, "manifest.db")
	// Everything into manifest.db, so the damage is what the daemon reads.
	sqliteQuery(t, m.root, "PRAGMA wal_checkpoint(TRUNCATE)")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for off := int64(4096); off < fi.Size(); off += 4096 {
		offsets = append(offsets, off)
	}
	sum := damagePages(t, db, offsets...)
	damagedAt := time.Now()

	// A commit changes the WAL, so every connection of the daemon drops the
	// pages it cached and reads the damaged ones; then lookups of names
	// never asked for, and listings.
	o := writeFile(m.path("A", "new.parquet"), makeParquet(t, 60, 150))
	t.Logf("commit after the damage: %v", o)
	for i := 0; i < 50; i++ {
		select {
		case <-m.done:
		default:
			_, _ = os.Stat(m.path("B", fmt.Sprintf("absent%d.parquet", i)))
			_, _ = os.ReadDir(m.path("C"))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		break
	}
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the daemon kept serving for %v after its manifest was damaged", time.Since(damagedAt).Round(time.Second))
	}
	t.Logf("daemon exited %v after the damage", time.Since(damagedAt).Round(time.Millisecond))
	if code := m.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit code 0 after the manifest was damaged")
	}
	if !strings.Contains(m.logs(), "manifest damaged") {
		t.Errorf("the log does not say the manifest is damaged:\n%s", m.logs())
	}
	if isMounted(m.dir) {
		t.Error("the mount is still there")
	}
	if got := sha256File(t, db); got != sum {
		t.Error("the daemon wrote into the damaged manifest on its way out")
	}
}

// Everything featurefs creates under the cache root is its owner's alone,
// whatever the umask; other users read entries through the daemon, raw
// (passthrough) and compressed alike.
func TestCacheRootIsPrivateWhileOthersReadThroughTheMount(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	old := syscall.Umask(0) // the daemons inherit it
	defer syscall.Umask(old)
	base := t.TempDir()
	m := mountAt(t, filepath.Join(base, "cache"), filepath.Join(base, "mnt"), "--allow-other", "--compression", "zstd")
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 3000, 11)
	sh(t, "mkdir", m.path("S"))
	sh(t, "cp", v, m.path("S", "zstd.parquet"))
	m.args = []string{"--allow-other", "--compression", "none"}
	m.restart()
	sh(t, "cp", v, m.path("S", "raw.parquet"))
	sh(t, "cp", v, m.path("S", "damaged.parquet"))
	openDirs(t, filepath.Dir(m.dir), src)
	want := sha256File(t, v)
	for _, k := range []string{"zstd", "raw"} {
		out, err := asNobody(t, "sha256sum "+m.path("S", k+".parquet"))
		if err != nil || !strings.HasPrefix(out, want) {
			t.Fatalf("another user could not read %s.parquet through the mount: %v %s", k, err, out)
		}
	}
	if got := sqliteQuery(t, m.root, "select count(*) from manifest where path like '%.zst'"); strings.TrimSpace(got) != "1" {
		t.Fatalf("%s compressed entries, want 1", got)
	}
	// A blob whose size disagrees with its row goes to quarantine/.
	damaged := strings.TrimSpace(sqliteQuery(t, m.root, "select path from manifest where key = 'damaged'"))
	if err := os.Truncate(filepath.Join(m.root, damaged), 100); err != nil {
		t.Fatal(err)
	}
	sh(t, "bash", "-c", "echo run > "+m.path(".control", "gc"))
	if q, _ := os.ReadDir(filepath.Join(m.root, "quarantine")); len(q) != 1 {
		t.Fatalf("quarantine holds %d files after gc, want 1", len(q))
	}
	if out, code := runFsmount(t, "gc", "--cache-root", m.root); code != 0 {
		t.Fatalf("fsmount gc: exit %d\n%s", code, out)
	}
	if out, code := runFsmount(t, "stats", "--cache-root", m.root); code != 0 {
		t.Fatalf("fsmount stats: exit %d\n%s", code, out)
	}

	n := 0
	err := filepath.WalkDir(m.root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("walked only %d paths of the cache root", n)
	}
	if out, err := asNobody(t, "ls "+m.root); err == nil {
		t.Errorf("another user listed the cache root: %s", out)
	}

	// A root whose owner opened it keeps its mode; verify warns.
	m.stop()
	if err := os.Chmod(m.root, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := runFsmount(t, "verify", "--cache-root", m.root)
	if code != 0 || !strings.Contains(out, "warning: cache root "+m.root+" is mode 0755") {
		t.Errorf("verify of a 0755 cache root: exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(m.root); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("cache root mode after verify: %v %v", fi.Mode(), err)
	}
}
