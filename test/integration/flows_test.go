package integration

// Namespace, reading and writing driven by the tools users point at the
// mount: cp, rsync, ls, stat, du, sha256sum, getfattr, mv, rm, mkdir,
// rmdir, and separate processes holding files open.

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCpInAndOutKeepsBytes(t *testing.T) {
	m := mountT(t)
	src := writeFixture(t, t.TempDir(), "in.parquet", 5000, 1)
	if err := os.Mkdir(m.path("AAPL"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", src, m.path("AAPL", "k1.parquet"))
	out := filepath.Join(t.TempDir(), "out.parquet")
	sh(t, "cp", m.path("AAPL", "k1.parquet"), out)
	if a, b := sha256File(t, src), sha256File(t, out); a != b {
		t.Fatalf("copied out %s, copied in %s", b, a)
	}
}

func TestCpRecursiveIntoRootCreatesSymbol(t *testing.T) {
	m := mountT(t)
	dir, files := fixtureDir(t, 3, 200, 10)
	symDir := filepath.Join(filepath.Dir(dir), "ES=F")
	if err := os.Rename(dir, symDir); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", "-r", symDir, m.dir+"/")
	if got := ls(t, m.dir); !slices.Equal(got, []string{"ES=F"}) {
		t.Fatalf("root lists %v, want [ES=F]", got)
	}
	if got, want := ls(t, m.path("ES=F")), []string{"k0.parquet", "k1.parquet", "k2.parquet"}; !slices.Equal(got, want) {
		t.Fatalf("ES=F lists %v, want %v", got, want)
	}
	for name, data := range files {
		wantBytes(t, m.path("ES=F", name), data)
	}
}

func TestSecondRsyncTransfersNothing(t *testing.T) {
	m := mountT(t)
	dir, files := fixtureDir(t, 4, 300, 20)
	// Sources with an old mtime, so "now" cannot pass for it by accident.
	old := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	for name := range files {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "rsync", "-a", dir+"/", m.path("MSFT")+"/")
	for name, data := range files {
		wantBytes(t, m.path("MSFT", name), data)
		if got := statInt(t, "%Y", m.path("MSFT", name)); got != old.Unix() {
			t.Errorf("%s: mtime %d after rsync -a, want the source's %d", name, got, old.Unix())
		}
	}
	if got := ls(t, m.path("MSFT")); len(got) != len(files) {
		t.Fatalf("MSFT lists %v after rsync: scratch files left behind?", got)
	}
	out := sh(t, "rsync", "-a", "--stats", dir+"/", m.path("MSFT")+"/")
	if !strings.Contains(out, "Number of regular files transferred: 0") {
		t.Fatalf("second rsync -a transferred files:\n%s", out)
	}
}

func TestCpPreserveKeepsMtime(t *testing.T) {
	m := mountT(t)
	src := writeFixture(t, t.TempDir(), "in.parquet", 100, 2)
	when := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(src, when, when); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkdir", m.path("IBM"))
	sh(t, "cp", "-p", src, m.path("IBM", "k.parquet"))
	if got, want := statf(t, "%Y", m.path("IBM", "k.parquet")), statf(t, "%Y", src); got != want {
		t.Fatalf("mtime after cp -p: %s, want %s", got, want)
	}
	// A daemon restart reads the mtime back from the manifest.
	m.restart()
	if got := statInt(t, "%Y", m.path("IBM", "k.parquet")); got != when.Unix() {
		t.Fatalf("mtime after remount: %d, want %d", got, when.Unix())
	}
}

func TestLsListsEntriesButNeverControl(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("EMPTY"), m.path("AAPL"))
	commitFile(t, m.path("AAPL", "b.parquet"), makeParquet(t, 100, 3))
	commitFile(t, m.path("AAPL", "a.parquet"), makeParquet(t, 100, 4))
	if got := ls(t, m.dir); !slices.Equal(got, []string{"AAPL", "EMPTY"}) {
		t.Fatalf("ls -A of the root: %v, want [AAPL EMPTY] (never .control)", got)
	}
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"a.parquet", "b.parquet"}) {
		t.Fatalf("ls AAPL: %v", got)
	}
	if got := ls(t, m.path("EMPTY")); len(got) != 0 {
		t.Fatalf("ls EMPTY: %v", got)
	}
	if got := ls(t, m.path(".control")); !slices.Equal(got, []string{"errors", "gc", "stats"}) {
		t.Fatalf("ls .control: %v, want [errors gc stats]", got)
	}
	// ls -l shows regular files of mode 0644 with the parquet's size.
	long := sh(t, "ls", "-l", m.path("AAPL"))
	if !regexp.MustCompile(`(?m)^-rw-r--r-- +1 .* a\.parquet$`).MatchString(long) {
		t.Fatalf("ls -l AAPL:\n%s", long)
	}
	// du and find walking the mount never enter .control.
	if out := sh(t, "find", m.dir); strings.Contains(out, ".control") {
		t.Fatalf("find walked into .control:\n%s", out)
	}
}

func TestStatShowsRegularFileWithParquetSize(t *testing.T) {
	m := mountT(t)
	data := makeParquet(t, 2000, 5)
	sh(t, "mkdir", m.path("AAPL"))
	before := time.Now().Add(-time.Second).Unix()
	commitFile(t, m.path("AAPL", "k.parquet"), data)
	after := time.Now().Add(time.Second).Unix()
	p := m.path("AAPL", "k.parquet")
	if got := statf(t, "%F %a", p); got != "regular file 644" {
		t.Fatalf("stat type and mode: %q, want \"regular file 644\"", got)
	}
	if got := statInt(t, "%s", p); got != int64(len(data)) {
		t.Fatalf("size %d, want the parquet's %d", got, len(data))
	}
	if mt := statInt(t, "%Y", p); mt < before || mt > after {
		t.Fatalf("mtime %d, want the commit time in [%d, %d]", mt, before, after)
	}
	ino := statf(t, "%i", p)
	m.restart()
	if got := statf(t, "%i", p); got != ino {
		t.Fatalf("inode %s after remount, was %s", got, ino)
	}
	wantBytes(t, p, data)
}

func TestDuCountsStoredBytes(t *testing.T) {
	m := mountT(t, "--compress-after", "0") // compressed at commit

	sh(t, "mkdir", m.path("SPY"))
	random := bulkParquet(t, 256<<10, 1)
	compressible := compressibleParquet(t, 50_000)
	commitFile(t, m.path("SPY", "random.parquet"), random)
	commitFile(t, m.path("SPY", "flat.parquet"), compressible)

	du := func(p string) int64 {
		out := strings.Fields(sh(t, "du", "-B1", p))
		n, err := strconv.ParseInt(out[0], 10, 64)
		if err != nil {
			t.Fatalf("du %s: %v", p, out)
		}
		return n
	}
	// An incompressible file is stored raw: du shows its size.
	randomDu := du(m.path("SPY", "random.parquet"))
	if randomStored := xattrInt(t, m.path("SPY", "random.parquet"), "stored_bytes"); randomDu < randomStored || randomDu > randomStored+4096 {
		t.Errorf("du of an incompressible %d-byte file: %d, want its stored %d bytes", len(random), randomDu, randomStored)
	}
	// A compressible one is stored compressed: du shows less than its size.
	flat := du(m.path("SPY", "flat.parquet"))
	stored := xattrInt(t, m.path("SPY", "flat.parquet"), "stored_bytes")
	if flat <= 0 || flat >= int64(len(compressible)) {
		t.Errorf("du of a compressible %d-byte file: %d, want less than its size (stored %d)", len(compressible), flat, stored)
	}
	if flat < stored || flat > stored+4096 {
		t.Errorf("du %d, want the stored bytes %d", flat, stored)
	}
	if total := du(m.dir); total < flat+randomDu {
		t.Errorf("du of the mount: %d, want at least %d", total, flat+randomDu)
	}
}

func TestSha256sumMatchesSourceAndHashXattr(t *testing.T) {
	m := mountT(t)
	src := writeFixture(t, t.TempDir(), "in.parquet", 3000, 6)
	sh(t, "mkdir", m.path("AAPL"))
	sh(t, "cp", src, m.path("AAPL", "k.parquet"))
	sum := strings.Fields(sh(t, "sha256sum", m.path("AAPL", "k.parquet")))[0]
	if want := sha256File(t, src); sum != want {
		t.Fatalf("sha256sum through the mount %s, source %s", sum, want)
	}
	attrs := xattrs(t, m.path("AAPL", "k.parquet"))
	if attrs["user.featurefs.hash"] != sum || attrs["user.featurefs.hash_method"] != "full" {
		t.Fatalf("hash xattrs %q/%q, want full %s", attrs["user.featurefs.hash"], attrs["user.featurefs.hash_method"], sum)
	}
}

func TestGetfattrShowsAllSevenAttributes(t *testing.T) {
	m := mountT(t)
	const rows = 1234
	data := makeParquet(t, rows, 7)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "k.parquet")
	commitFile(t, p, data)
	attrs := xattrs(t, p)
	want := map[string]string{
		"user.featurefs.hash_method":  "full",
		"user.featurefs.rows":         strconv.Itoa(rows),
		"user.featurefs.start_ts":     strconv.FormatInt(tickStart.Unix(), 10),
		"user.featurefs.end_ts":       strconv.FormatInt(tickStart.Unix()+rows-1, 10),
		"user.featurefs.access_count": "0",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if h := attrs["user.featurefs.hash"]; len(h) != 64 {
		t.Errorf("hash %q is not 64 hex digits", h)
	} else if _, err := hex.DecodeString(h); err != nil {
		t.Errorf("hash %q: %v", h, err)
	}
	if n, err := strconv.ParseInt(attrs["user.featurefs.stored_bytes"], 10, 64); err != nil || n <= 0 || n > int64(len(data))+4096 {
		t.Errorf("stored_bytes %q for a %d-byte file", attrs["user.featurefs.stored_bytes"], len(data))
	}
	var names []string
	for k := range attrs {
		names = append(names, k)
	}
	if len(names) != 7 {
		t.Errorf("getfattr -d shows %d attributes, want 7: %v", len(names), names)
	}
}

func TestReadRefreshesAccessCountAndAtime(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "k.parquet")
	commitFile(t, p, makeParquet(t, 100, 8))
	count := xattrInt(t, p, "access_count")
	atime := statInt(t, "%X", p)
	time.Sleep(1100 * time.Millisecond) // atime has whole seconds
	sh(t, "cat", p)
	if got := xattrInt(t, p, "access_count"); got != count+1 {
		t.Fatalf("access_count %d after one read, was %d", got, count)
	}
	deadline := time.Now().Add(2 * time.Second)
	for statInt(t, "%X", p) <= atime {
		if time.Now().After(deadline) {
			t.Fatalf("atime still %d two seconds after a read", atime)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The access survives a remount (flushed at unmount).
	m.restart()
	if got := xattrInt(t, p, "access_count"); got != count+1 {
		t.Fatalf("access_count %d after remount, want %d", got, count+1)
	}
}

func TestReaderKeepsVersionAcrossReplace(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "k.parquet")
	oldData := bulkParquet(t, 3<<20, 1) // larger than one read, so most is read after the replace
	newData := makeParquet(t, 500, 9)
	commitFile(t, p, oldData)
	h := holdOpen(t, p)
	src := filepath.Join(t.TempDir(), "new.parquet")
	if err := os.WriteFile(src, newData, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", src, p)
	wantBytes(t, p, newData)
	if got, want := h.readAll(t), sha256Hex(oldData); got != want {
		t.Fatalf("the reader that opened the old version read %s, want the old bytes %s", got, want)
	}
	if got := statInt(t, "%s", p); got != int64(len(newData)) {
		t.Fatalf("size after replace %d, want %d", got, len(newData))
	}

	// The same with open(O_CREAT|O_TRUNC) as a trainer writes, and a
	// reader of the second version.
	h2 := holdOpen(t, p)
	third := makeParquet(t, 900, 22)
	commitFile(t, p, third)
	wantBytes(t, p, third)
	if got := h2.readAll(t); got != sha256Hex(newData) {
		t.Fatalf("the reader of the second version read %s, want %s", got, sha256Hex(newData))
	}
	if got := statf(t, "%s", p); got != strconv.Itoa(len(third)) {
		t.Fatalf("size after the second replace %s, want %d", got, len(third))
	}
}

func TestMvWithinAndBetweenSymbolsKeepsInode(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"), m.path("MSFT"))
	data := makeParquet(t, 300, 10)
	commitFile(t, m.path("AAPL", "a.parquet"), data)
	ino := statf(t, "%i", m.path("AAPL", "a.parquet"))

	sh(t, "mv", m.path("AAPL", "a.parquet"), m.path("AAPL", "b.parquet"))
	wantAbsent(t, m.path("AAPL", "a.parquet"))
	if got := statf(t, "%i", m.path("AAPL", "b.parquet")); got != ino {
		t.Fatalf("inode %s after mv within a symbol, was %s", got, ino)
	}
	sh(t, "mv", m.path("AAPL", "b.parquet"), m.path("MSFT", "c.parquet"))
	wantAbsent(t, m.path("AAPL", "b.parquet"))
	if got := statf(t, "%i", m.path("MSFT", "c.parquet")); got != ino {
		t.Fatalf("inode %s after mv between symbols, was %s", got, ino)
	}
	wantBytes(t, m.path("MSFT", "c.parquet"), data)
	if got := ls(t, m.path("AAPL")); len(got) != 0 {
		t.Fatalf("AAPL still lists %v", got)
	}

	// mv over an existing entry replaces it.
	other := makeParquet(t, 50, 11)
	commitFile(t, m.path("MSFT", "d.parquet"), other)
	sh(t, "mv", m.path("MSFT", "d.parquet"), m.path("MSFT", "c.parquet"))
	wantBytes(t, m.path("MSFT", "c.parquet"), other)
	if got := ls(t, m.path("MSFT")); !slices.Equal(got, []string{"c.parquet"}) {
		t.Fatalf("MSFT lists %v after mv over an entry", got)
	}
	m.restart()
	wantBytes(t, m.path("MSFT", "c.parquet"), other)
}

func TestRmRemovesEntry(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	commitFile(t, m.path("AAPL", "a.parquet"), makeParquet(t, 10, 12))
	commitFile(t, m.path("AAPL", "b.parquet"), makeParquet(t, 10, 13))
	sh(t, "rm", m.path("AAPL", "a.parquet"))
	wantAbsent(t, m.path("AAPL", "a.parquet"))
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"b.parquet"}) {
		t.Fatalf("AAPL lists %v after rm", got)
	}
	if out, err := run("rm", m.path("AAPL", "a.parquet")); err == nil {
		t.Fatalf("rm of a removed entry succeeded: %s", out)
	}
	m.restart()
	wantAbsent(t, m.path("AAPL", "a.parquet"))
	if st := m.stats(t); st.Entries != 1 {
		t.Fatalf("entries %d after rm and remount, want 1", st.Entries)
	}
}

func TestRmdirRefusesNonEmptySymbol(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	commitFile(t, m.path("AAPL", "a.parquet"), makeParquet(t, 10, 14))
	wantErrno(t, "rmdir of a symbol with an entry", syscall.Rmdir(m.path("AAPL")), syscall.ENOTEMPTY)
	if out, err := run("rmdir", m.path("AAPL")); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("rmdir(1) of a non-empty symbol: %v %s", err, out)
	}
	wantBytes(t, m.path("AAPL", "a.parquet"), makeParquet(t, 10, 14))

	sh(t, "rm", m.path("AAPL", "a.parquet"))
	sh(t, "rmdir", m.path("AAPL"))
	wantAbsent(t, m.path("AAPL"))
	if got := ls(t, m.dir); len(got) != 0 {
		t.Fatalf("root lists %v after rmdir", got)
	}
}

func TestMkdirCreatesEmptySymbol(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("BRK.B"))
	if got := statf(t, "%F", m.path("BRK.B")); got != "directory" {
		t.Fatalf("stat of a new symbol: %s", got)
	}
	wantErrno(t, "mkdir of an existing symbol", syscall.Mkdir(m.path("BRK.B"), 0o755), syscall.EEXIST)
	m.restart()
	if got := ls(t, m.dir); !slices.Equal(got, []string{"BRK.B"}) {
		t.Fatalf("root lists %v after remount, want the empty symbol", got)
	}
	sh(t, "rmdir", m.path("BRK.B"))
	wantAbsent(t, m.path("BRK.B"))
}

func TestRemountShowsSameBytes(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"), m.path("MSFT"))
	files := map[string][]byte{
		"AAPL/a.parquet": makeParquet(t, 1000, 15),
		"AAPL/b.parquet": compressibleParquet(t, 20_000),
		"MSFT/c.parquet": bulkParquet(t, 1<<20, 2),
	}
	for p, data := range files {
		commitFile(t, m.path(p), data)
	}
	m.restart()
	for p, data := range files {
		wantBytes(t, m.path(p), data)
	}
}

func TestDupSecondCloseIsNoop(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 100, 16)
	f, err := os.OpenFile(m.path("AAPL", "k.parquet"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	before := m.stats(t).Commits
	if err := syscall.Close(dup); err != nil {
		t.Fatalf("first close (commit): %v", err)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
	if err := f.Close(); err != nil {
		t.Fatalf("second close of the dup'd descriptor: %v", err)
	}
	if got := m.stats(t).Commits; got != before+1 {
		t.Fatalf("commits went from %d to %d: want exactly one", before, got)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
}

func TestFstatAndFtruncateWhileWriting(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 2000, 17)
	f, err := os.OpenFile(m.path("AAPL", "k.parquet"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(half) {
		t.Fatalf("fstat after writing %d bytes: %v %v", half, st.Size(), err)
	}
	// Extend first (as preallocating writers do), then fill in.
	if err := f.Truncate(int64(len(data) + 100)); err != nil {
		t.Fatalf("ftruncate up: %v", err)
	}
	if st, _ := f.Stat(); st.Size() != int64(len(data)+100) {
		t.Fatalf("fstat after ftruncate to %d: %d", len(data)+100, st.Size())
	}
	if _, err := f.WriteAt(data[half:], int64(half)); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatalf("ftruncate down: %v", err)
	}
	if st, _ := f.Stat(); st.Size() != int64(len(data)) {
		t.Fatalf("fstat after ftruncate to %d: %d", len(data), st.Size())
	}
	// The writer reads back what it wrote.
	back := make([]byte, len(data))
	if _, err := f.ReadAt(back, 0); err != nil || string(back) != string(data) {
		t.Fatalf("writer's read-back differs (%v)", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
}

func TestRandomOffsetWritesCommitFinalBytes(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := bulkParquet(t, 2<<20, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	// Chunks of odd sizes, written in shuffled order, some twice with
	// garbage first and the right bytes after; never the head, where
	// anything but PAR1 is refused at once.
	type span struct{ off, end int }
	var spans []span
	for off := 0; off < len(data); {
		end := min(len(data), off+1+rng.IntN(200_000))
		spans = append(spans, span{off, end})
		off = end
	}
	rng.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
	f, err := os.OpenFile(m.path("AAPL", "k.parquet"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, s := range spans {
		if i%3 == 0 && s.off != 0 {
			junk := make([]byte, s.end-s.off)
			if _, err := f.WriteAt(junk, int64(s.off)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.WriteAt(data[s.off:s.end], int64(s.off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantBytes(t, m.path("AAPL", "k.parquet"), data)
	if got := xattrs(t, m.path("AAPL", "k.parquet"))["user.featurefs.hash"]; got != sha256Hex(data) {
		t.Fatalf("hash xattr %s, want %s", got, sha256Hex(data))
	}
}

func TestReadWriteOpenModifiesACopy(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "k.parquet")
	oldData := bulkParquet(t, 1<<20, 4)
	commitFile(t, p, oldData)
	h := holdOpen(t, p)

	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	if _, err := f.ReadAt(head, 0); err != nil || string(head) != string(oldData[:4096]) {
		t.Fatalf("O_RDWR read of the current version differs (%v)", err)
	}
	// Overwrite with a shorter valid file: write it at 0, cut the rest.
	newData := makeParquet(t, 700, 18)
	if _, err := f.WriteAt(newData, 0); err != nil {
		t.Fatal(err)
	}
	// Until the close nobody else sees the change.
	wantBytes(t, p, oldData)
	if err := f.Truncate(int64(len(newData))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantBytes(t, p, newData)
	if got := h.readAll(t); got != sha256Hex(oldData) {
		t.Fatalf("a reader of the old version read %s, want %s", got, sha256Hex(oldData))
	}
}

func TestRenameScratchOntoKeyCommits(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	data := makeParquet(t, 400, 19)
	scratch := m.path("AAPL", ".x.parquet.tmp")
	commitFile(t, scratch, data) // closing a scratch file commits nothing
	wantAbsent(t, m.path("AAPL", "x.parquet"))
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{".x.parquet.tmp"}) {
		t.Fatalf("AAPL lists %v, want the scratch file only", got)
	}
	if st := m.stats(t); st.Entries != 0 || st.Commits != 0 {
		t.Fatalf("a closed scratch file was committed: %+v", st)
	}
	sh(t, "mv", scratch, m.path("AAPL", "x.parquet"))
	wantAbsent(t, scratch)
	wantBytes(t, m.path("AAPL", "x.parquet"), data)
	if got := xattrInt(t, m.path("AAPL", "x.parquet"), "rows"); got != 400 {
		t.Fatalf("rows xattr %d after rename-commit, want 400", got)
	}
	m.restart()
	wantBytes(t, m.path("AAPL", "x.parquet"), data)
}

func TestShellRedirectionCommits(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	src := writeFixture(t, t.TempDir(), "in.parquet", 1500, 20)
	p := m.path("AAPL", "k.parquet")
	// The shell opens the file, dup2s it onto stdout and closes the first
	// descriptor before cat writes a byte: that empty close must not stick.
	bash(t, "cat '"+src+"' > '"+p+"'")
	if got, want := sha256File(t, p), sha256File(t, src); got != want {
		t.Fatalf("after cat > entry: %s, want %s", got, want)
	}
	// And again over the existing entry.
	src2 := writeFixture(t, t.TempDir(), "in2.parquet", 300, 21)
	bash(t, "cat '"+src2+"' > '"+p+"'")
	if got, want := sha256File(t, p), sha256File(t, src2); got != want {
		t.Fatalf("after a second cat >: %s, want %s", got, want)
	}
	if st := m.stats(t); st.Commits != 2 || st.RejectedWrites != 0 {
		t.Fatalf("commits %d, rejected %d: want 2 and 0", st.Commits, st.RejectedWrites)
	}
	if lines := m.errors(t); len(lines) != 0 {
		t.Fatalf(".control/errors lists %v for two good redirections", lines)
	}
}
