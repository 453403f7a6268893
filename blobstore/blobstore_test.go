//go:build linux

package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// window is one ReadAt.
type window struct{ off, n int64 }

// windows returns ReadAt windows for a blob of size bytes: frame boundaries,
// the head, the tail, EOF and beyond, and random ones.
func windows(rng *rand.Rand, size int64, frame int64) []window {
	ws := []window{
		{0, 0}, {0, 1}, {0, size}, {0, size + 1},
		{size, 0}, {size, 1}, {size + 7, 10}, {max(size-3, 0), 10}, {max(size-1, 0), 1},
	}
	for b := frame; b <= size+1 && len(ws) < 40; b += frame {
		ws = append(ws, window{b - 1, 2}, window{b - 10, 20}, window{max(b-frame/2, 0), frame + 1})
	}
	for range 100 {
		off := rng.Int64N(size + frame)
		ws = append(ws, window{off, rng.Int64N(3*frame + 1)})
	}
	return ws
}

// checkWindows compares ReadAt on every reader with ReadAt on want, an
// *os.File holding the original bytes: same count, same bytes, same io.EOF.
func checkWindows(t *testing.T, want *os.File, ws []window, readers map[string]Reader) {
	t.Helper()
	for _, w := range ws {
		if w.off < 0 {
			continue
		}
		exp := make([]byte, w.n)
		en, eerr := want.ReadAt(exp, w.off)
		for name, r := range readers {
			got := make([]byte, w.n)
			gn, gerr := r.ReadAt(got, w.off)
			if gn != en || (gerr == io.EOF) != (eerr == io.EOF) || (gerr != nil && gerr != io.EOF) {
				t.Fatalf("%s ReadAt(%d, %d) = %d, %v; os.File gives %d, %v", name, w.n, w.off, gn, gerr, en, eerr)
			}
			if !bytes.Equal(got[:gn], exp[:en]) {
				t.Fatalf("%s ReadAt(%d, %d): bytes differ", name, w.n, w.off)
			}
		}
	}
}

func TestReadAtMatchesOriginal(t *testing.T) {
	const frame = DefaultFrameSize
	sizes := []int64{0, 1, frame - 1, frame, frame + 1, 3<<20 + 12345, 64 << 20}
	if testing.Short() {
		sizes = sizes[:6]
	}
	raw := newStore(t, Options{Compression: None})
	zst, err := Open(raw.Root(), Options{Compression: Zstd})
	if err != nil {
		t.Fatal(err)
	}
	defer zst.Close()
	for _, size := range sizes {
		for _, k := range []kind{compressible, random} {
			t.Run(fmt.Sprintf("%s/%d", k, size), func(t *testing.T) {
				data := gen(k, size, 0, size)
				orig := filepath.Join(t.TempDir(), "orig.parquet")
				if err := os.WriteFile(orig, data, 0o644); err != nil {
					t.Fatal(err)
				}
				want, err := os.Open(orig)
				if err != nil {
					t.Fatal(err)
				}
				defer want.Close()

				rb, zb := publish(t, raw, data), publish(t, zst, data)
				if rb.Compressed || !zb.Compressed {
					t.Fatalf("compressed: raw blob %v, zstd blob %v", rb.Compressed, zb.Compressed)
				}
				readers := map[string]Reader{"raw": openBlob(t, raw, rb.Path), "zstd": openBlob(t, raw, zb.Path)}
				for name, r := range readers {
					if r.Size() != size {
						t.Fatalf("%s Size = %d, want %d", name, r.Size(), size)
					}
				}
				if readers["raw"].RawFile() == nil || readers["zstd"].RawFile() != nil {
					t.Fatal("RawFile must be set for raw blobs only")
				}
				rng := rand.New(rand.NewPCG(uint64(size), uint64(k)))
				checkWindows(t, want, windows(rng, size, frame), readers)

				// The same windows from several goroutines at once.
				var wg sync.WaitGroup
				for g := range 6 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(size), uint64(g)))
						checkWindows(t, want, windows(rng, size, frame), readers)
					})
				}
				wg.Wait()
			})
		}
	}
}

func TestRandomReadDecodesAtMostTwoFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1 GiB blob")
	}
	const size = 1 << 30
	s := newStore(t, Options{Compression: Zstd, NoSync: true})
	st := stageGen(t, s, compressible, 7, size)
	p, err := s.Publish(context.Background(), st, size)
	if err != nil {
		t.Fatal(err)
	}
	p.Release()
	st.Close()
	r := openBlob(t, s, p.Blob.Path).(*zstdReader)
	t.Logf("1 GiB compressed to %d MiB in %d frames", p.Blob.StoredSize>>20, r.table.NumFrames())

	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64<<10)
	offs := []int64{0, DefaultFrameSize - 100, size - int64(len(buf)), size/2 + 12345}
	for range 30 {
		offs = append(offs, rng.Int64N(size-int64(len(buf))))
	}
	for _, off := range offs {
		before := r.decoded.Load()
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if d := r.decoded.Load() - before; d > 2 {
			t.Fatalf("64 KiB read at %d decoded %d frames", off, d)
		}
		if !bytes.Equal(buf, gen(compressible, 7, off, int64(len(buf)))) {
			t.Fatalf("64 KiB read at %d: wrong bytes", off)
		}
	}
}

func TestFlippedByteFailsOnlyItsFrame(t *testing.T) {
	const frame = 64 << 10
	tests := []struct {
		name string
		pos  func(compressedSize uint32) uint32 // position inside frame 2
	}{
		{"header", func(uint32) uint32 { return 5 }},
		{"middle", func(n uint32) uint32 { return n / 2 }},
		{"checksum", func(n uint32) uint32 { return n - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{Compression: Zstd, FrameSize: frame})
			data := gen(compressible, 3, 0, 5*frame)
			b := publish(t, s, data)
			r := openBlob(t, s, b.Path).(*zstdReader)
			e, _ := r.table.EntryByID(2)
			r.Close()

			f, err := os.OpenFile(s.abs(b.Path), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			at := int64(e.CompressedOffset) + int64(tt.pos(e.CompressedSize))
			one := []byte{0}
			f.ReadAt(one, at)
			one[0] ^= 0x10
			if _, err := f.WriteAt(one, at); err != nil {
				t.Fatal(err)
			}
			f.Close()

			r2 := openBlob(t, s, b.Path)
			buf := make([]byte, 100)
			if _, err := r2.ReadAt(buf, 2*frame+10); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read of the damaged frame: err = %v, want ErrCorrupt", err)
			}
			// A read spanning into the damaged frame fails too.
			if _, err := r2.ReadAt(make([]byte, frame), frame+frame/2); err == nil {
				t.Fatal("read spanning the damaged frame succeeded")
			}
			for _, id := range []int64{0, 1, 3, 4} {
				got := make([]byte, frame)
				if _, err := r2.ReadAt(got, id*frame); err != nil {
					t.Fatalf("frame %d: %v", id, err)
				}
				if !bytes.Equal(got, data[id*frame:(id+1)*frame]) {
					t.Fatalf("frame %d: wrong bytes", id)
				}
			}
		})
	}
}

func TestZstdCLIRestoresBlob(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zstd CLI not installed")
		}
		t.Skip("zstd CLI not installed")
	}
	s := newStore(t, Options{Compression: Zstd, FrameSize: 64 << 10})
	for _, size := range []int64{0, 1, 3<<20 + 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := gen(compressible, 11, 0, size)
			b := publish(t, s, data)
			out, err := exec.Command("zstd", "-d", "-q", "-c", s.abs(b.Path)).Output()
			if err != nil {
				t.Fatalf("zstd -d: %v", err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("zstd -d gave %d bytes, want the %d original ones", len(out), len(data))
			}
		})
	}
}

func TestCompressionPolicy(t *testing.T) {
	tests := []struct {
		policy Compression
		data   kind
		size   int64
		want   bool
	}{
		{Auto, random, 2 << 20, false},
		{Auto, compressible, 2 << 20, true},
		{Auto, compressible, 9 << 20, true},
		{Auto, compressible, 0, false},
		{"", compressible, 1 << 20, true},
		{None, compressible, 2 << 20, false},
		{Zstd, random, 2 << 20, true},
		{Zstd, compressible, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tt.policy, tt.data, tt.size), func(t *testing.T) {
			s := newStore(t, Options{Compression: tt.policy})
			data := gen(tt.data, 5, 0, tt.size)
			b := publish(t, s, data)
			if b.Compressed != tt.want {
				t.Fatalf("Compressed = %v, want %v", b.Compressed, tt.want)
			}
			if strings.HasSuffix(b.Path, ".zst") != tt.want {
				t.Fatalf("path %s does not match Compressed=%v", b.Path, tt.want)
			}
			if b.LogicalSize != tt.size {
				t.Fatalf("LogicalSize = %d, want %d", b.LogicalSize, tt.size)
			}
			fi, err := s.Stat(b.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != b.StoredSize {
				t.Fatalf("StoredSize = %d, file holds %d", b.StoredSize, fi.Size())
			}
		})
	}
}

// countingReaderAt records the furthest byte read.
type countingReaderAt struct {
	io.ReaderAt
	mu  sync.Mutex
	end int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.end = max(c.end, off+int64(len(p)))
	c.mu.Unlock()
	return c.ReaderAt.ReadAt(p, off)
}

func TestAutoReadsOnlyTrialAndRenamesRaw(t *testing.T) {
	s := newStore(t, Options{})
	// A 10 GiB sparse file whose head is incompressible.
	const size = 10 << 30
	st := stage(t, s, gen(random, 1, 0, trialSize))
	defer st.Close()
	if err := st.File().Truncate(size); err != nil {
		t.Fatal(err)
	}
	cr := &countingReaderAt{ReaderAt: st.File()}
	res, err := s.trial(context.Background(), cr, size)
	if err != nil || res.compress {
		t.Fatalf("trial = %+v, %v; want no compression", res, err)
	}
	if cr.end > trialSize {
		t.Fatalf("trial read up to byte %d, want at most %d", cr.end, trialSize)
	}

	var before unix.Stat_t
	if err := unix.Fstat(int(st.File().Fd()), &before); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := s.Publish(context.Background(), st, size)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	fi, err := s.Stat(p.Blob.Path)
	if err != nil {
		t.Fatal(err)
	}
	if ino := fi.Sys().(*syscall.Stat_t).Ino; ino != before.Ino || p.Blob.Compressed || fi.Size() != size {
		t.Fatalf("blob inode %d size %d compressed %v; want the staged inode %d renamed, %d bytes",
			ino, fi.Size(), p.Blob.Compressed, before.Ino, size)
	}
	t.Logf("10 GiB raw publish took %v", time.Since(start))
}

func TestPublish(t *testing.T) {
	for _, policy := range []Compression{None, Zstd} {
		t.Run(string(policy), func(t *testing.T) {
			s := newStore(t, Options{Compression: policy})
			data := gen(compressible, 9, 0, 1<<20+17)
			st := stage(t, s, append(bytes.Clone(data), "junk past size"...))
			defer st.Close()
			// The writer created its file long ago; the grace must count from now.
			old := time.Now().Add(-3 * time.Hour)
			if err := os.Chtimes(s.abs(st.Path()), old, old); err != nil {
				t.Fatal(err)
			}
			if removed, err := s.RemoveUnlocked(st.Path()); err != nil || removed {
				t.Fatalf("RemoveUnlocked(open staged file) = %v, %v", removed, err)
			}

			p, err := s.Publish(context.Background(), st, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if st.File() != nil {
				t.Fatal("staged file still open after Publish")
			}
			if _, err := s.Publish(context.Background(), st, 1); !errors.Is(err, ErrConsumed) {
				t.Fatalf("second Publish: %v, want ErrConsumed", err)
			}
			var staging []File
			if err := s.Walk(context.Background(), func(f File) error {
				if f.Staging {
					staging = append(staging, f)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(staging) != 0 {
				t.Fatalf("staging/ after Publish: %v", staging)
			}
			fi, err := s.Stat(p.Blob.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != p.Blob.StoredSize || p.Blob.LogicalSize != int64(len(data)) || !fi.Mode().IsRegular() {
				t.Fatalf("blob %+v, file size %d mode %v", p.Blob, fi.Size(), fi.Mode())
			}
			if age := time.Since(fi.ModTime()); age < -time.Second || age > time.Minute {
				t.Fatalf("blob mtime %v is not fresh", fi.ModTime())
			}
			if got, _ := io.ReadAll(io.NewSectionReader(openBlob(t, s, p.Blob.Path), 0, int64(len(data)))); !bytes.Equal(got, data) {
				t.Fatal("blob bytes differ from the staged ones")
			}

			if removed, err := s.RemoveUnlocked(p.Blob.Path); err != nil || removed {
				t.Fatalf("RemoveUnlocked(unreleased blob) = %v, %v", removed, err)
			}
			if err := p.Release(); err != nil {
				t.Fatal(err)
			}
			if removed, err := s.RemoveUnlocked(p.Blob.Path); err != nil || !removed {
				t.Fatalf("RemoveUnlocked(released blob) = %v, %v", removed, err)
			}
			if exists(t, s, p.Blob.Path) {
				t.Fatal("blob still there")
			}
			if removed, err := s.RemoveUnlocked(p.Blob.Path); err != nil || removed {
				t.Fatalf("RemoveUnlocked(gone blob) = %v, %v", removed, err)
			}
		})
	}
}

func TestStagedLockedUntilClosed(t *testing.T) {
	s := newStore(t, Options{})
	st, err := s.CreateStaged()
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveUnlocked(st.Path()); err != nil || removed {
		t.Fatalf("RemoveUnlocked(open staged file) = %v, %v", removed, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, st.Path()) {
		t.Fatal("Close left the staged file")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A writer that died left its file unlocked: GC may take it.
	left := StagingDir + "/deadbeef.tmp"
	if err := os.WriteFile(s.abs(left), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveUnlocked(left); err != nil || !removed {
		t.Fatalf("RemoveUnlocked(abandoned staged file) = %v, %v", removed, err)
	}
}

func TestPublishRejectsBadSize(t *testing.T) {
	s := newStore(t, Options{})
	st := stage(t, s, []byte("PAR1"))
	defer st.Close()
	for _, size := range []int64{-1, 5} {
		if _, err := s.Publish(context.Background(), st, size); err == nil {
			t.Fatalf("Publish(size %d of a 4-byte file) succeeded", size)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Publish(ctx, st, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a canceled context: %v", err)
	}
	if !exists(t, s, st.Path()) {
		t.Fatal("failed Publish consumed the staged file")
	}
}

func TestPathsConfinedToRoot(t *testing.T) {
	s := newStore(t, Options{})
	bad := []string{
		"../x", "/etc/passwd", "blobs/../../x", "blobs/../manifest.db", "", ".", "blobs",
		"blobs/", "blobs//x", "blobs/./x", "manifest.db", "quarantine/x", `blobs\..\x`,
	}
	ops := map[string]func(string) error{
		"Remove":         s.Remove,
		"Stat":           func(p string) error { _, err := s.Stat(p); return err },
		"OpenBlob":       func(p string) error { _, err := s.OpenBlob(p); return err },
		"Quarantine":     func(p string) error { _, err := s.Quarantine(p); return err },
		"RemoveUnlocked": func(p string) error { _, err := s.RemoveUnlocked(p); return err },
	}
	for name, op := range ops {
		for _, p := range bad {
			if err := op(p); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("%s(%q) = %v, want ErrInvalidPath", name, p, err)
			}
		}
	}
}

func TestSymlinksNeverFollowed(t *testing.T) {
	s := newStore(t, Options{})
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.parquet")
	if err := os.WriteFile(secret, []byte("PAR1 outside PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A shard directory that is a link out of the root, a blob that is a
	// link to a file outside, a FIFO, and one real blob.
	if err := os.Symlink(outside, s.abs("blobs/zz")); err != nil {
		t.Fatal(err)
	}
	real := publish(t, s, []byte("PAR1 real PAR1"))
	dir := filepath.Dir(s.abs(real.Path))
	if err := os.Symlink(secret, filepath.Join(dir, "link.parquet")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	shard := filepath.ToSlash(filepath.Dir(real.Path))

	var seen []string
	if err := s.Walk(context.Background(), func(f File) error {
		seen = append(seen, f.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != real.Path {
		t.Fatalf("Walk saw %v, want only %s", seen, real.Path)
	}

	for _, p := range []string{"blobs/zz/secret.parquet", shard + "/link.parquet", shard + "/fifo.parquet"} {
		if r, err := s.OpenBlob(p); err == nil {
			r.Close()
			t.Errorf("OpenBlob(%s) succeeded", p)
		}
		if removed, err := s.RemoveUnlocked(p); removed {
			t.Errorf("RemoveUnlocked(%s) removed it (err %v)", p, err)
		}
	}
	if _, err := s.Stat("blobs/zz/secret.parquet"); err == nil {
		t.Error("Stat through a linked directory succeeded")
	}
	if fi, err := s.Stat(shard + "/link.parquet"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Stat(link) = %v, %v; want the link itself", fi, err)
	}
	if err := s.Remove("blobs/zz/secret.parquet"); err == nil {
		t.Error("Remove through a linked directory succeeded")
	}
	if _, err := s.Quarantine("blobs/zz/secret.parquet"); err == nil {
		t.Error("Quarantine through a linked directory succeeded")
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatalf("file outside the root was touched: %v", err)
	}
}

func TestOpenBlobMissing(t *testing.T) {
	s := newStore(t, Options{})
	_, err := s.OpenBlob("blobs/00/00/00000000000000000000000000000000.parquet")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenBlob(missing) = %v, want fs.ErrNotExist", err)
	}
	if err := s.Remove("blobs/00/00/00000000000000000000000000000000.parquet"); err != nil {
		t.Fatalf("Remove(missing) = %v", err)
	}
	if _, err := s.Stat("blobs/00/00/x.parquet"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestQuarantine(t *testing.T) {
	s := newStore(t, Options{Compression: None})
	data := []byte("PAR1 bad PAR1")
	b := publish(t, s, data)
	dst, err := s.Quarantine(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dst, QuarantineDir+"/") || exists(t, s, b.Path) {
		t.Fatalf("Quarantine moved %s to %s", b.Path, dst)
	}
	if got, err := os.ReadFile(s.abs(dst)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("quarantined bytes: %q, %v", got, err)
	}
	// The same name again gets its own file.
	if err := os.MkdirAll(filepath.Dir(s.abs(b.Path)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.abs(b.Path), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst2, err := s.Quarantine(b.Path)
	if err != nil || dst2 == dst {
		t.Fatalf("second Quarantine = %s, %v (first %s)", dst2, err, dst)
	}
}

func TestCorruptSeekTable(t *testing.T) {
	s := newStore(t, Options{Compression: Zstd})
	b := publish(t, s, gen(compressible, 1, 0, 1<<20))
	tests := []struct {
		name   string
		mangle func(path string) error
	}{
		{"truncated", func(p string) error { return os.Truncate(p, b.StoredSize-1) }},
		{"empty", func(p string) error { return os.Truncate(p, 0) }},
		{"frame cut", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(data[:100:100], data[200:]...), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := fmt.Sprintf("blobs/00/00/%s.parquet.zst", strings.ReplaceAll(tt.name, " ", ""))
			os.MkdirAll(s.abs("blobs/00/00"), 0o755)
			orig, _ := os.ReadFile(s.abs(b.Path))
			if err := os.WriteFile(s.abs(rel), orig, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tt.mangle(s.abs(rel)); err != nil {
				t.Fatal(err)
			}
			if r, err := s.OpenBlob(rel); !errors.Is(err, ErrCorrupt) {
				if r != nil {
					r.Close()
				}
				t.Fatalf("OpenBlob = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestReaderClose(t *testing.T) {
	s := newStore(t, Options{Compression: Zstd})
	b := publish(t, s, gen(compressible, 1, 0, 1<<20))
	r, err := s.OpenBlob(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for i := int64(0); ; i++ {
				_, err := r.ReadAt(buf, (i*7919*4096)%(1<<20-4096))
				if errors.Is(err, os.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// mountTmpfs mounts a tmpfs of the given size and unmounts it at cleanup.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("mount tmpfs: %v (needs root)", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

func TestPublishENOSPC(t *testing.T) {
	for _, policy := range []Compression{Zstd, Auto} {
		t.Run(string(policy), func(t *testing.T) {
			s, err := Open(mountTmpfs(t, "1m"), Options{Compression: policy, FrameSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Fits once, not twice: the compressed copy runs out of space.
			k := random
			if policy == Auto {
				k = compressible
			}
			data := gen(k, 1, 0, 700<<10)
			if policy == Auto {
				// Compressible head, incompressible rest: Auto compresses and
				// the copy needs more room than is left.
				copy(data[200<<10:], gen(random, 2, 0, 500<<10))
			}
			st := stage(t, s, data)
			defer st.Close()
			_, err = s.Publish(context.Background(), st, int64(len(data)))
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Publish on a full disk: %v, want ENOSPC", err)
			}
			t.Logf("error: %v", err)
			var left []string
			filepath.WalkDir(s.abs(BlobsDir), func(p string, d fs.DirEntry, err error) error {
				if p != s.abs(BlobsDir) {
					left = append(left, p)
				}
				return nil
			})
			if len(left) != 0 {
				t.Fatalf("left under blobs/: %v", left)
			}
			entries, _ := os.ReadDir(s.abs(StagingDir))
			if len(entries) != 1 {
				t.Fatalf("staging/ holds %d files, want just the staged one", len(entries))
			}
		})
	}
}

func TestWalk(t *testing.T) {
	s := newStore(t, Options{})
	want := map[string]File{}
	for i := range 3 {
		b := publish(t, s, gen(random, int64(i), 0, int64(1000*(i+1))))
		want[b.Path] = File{Path: b.Path, Size: b.StoredSize}
	}
	st := stage(t, s, []byte("partial"))
	defer st.Close()
	want[st.Path()] = File{Path: st.Path(), Size: 7, Staging: true}

	got := map[string]File{}
	if err := s.Walk(context.Background(), func(f File) error {
		if time.Since(f.ModTime) > time.Minute {
			t.Errorf("%s: mtime %v", f.Path, f.ModTime)
		}
		f.ModTime = time.Time{}
		got[f.Path] = f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Walk found %v, want %v", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(context.Background(), func(File) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Walk with a failing fn = %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Walk(ctx, func(File) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk with a canceled context = %v", err)
	}
}

// TestSweeperNeverTakesLockedFiles runs a GC with no grace at all against
// writers: every staged file and every unreleased blob must survive it.
func TestSweeperNeverTakesLockedFiles(t *testing.T) {
	for _, policy := range []Compression{None, Zstd} {
		t.Run(string(policy), func(t *testing.T) {
			s := newStore(t, Options{Compression: policy, FrameSize: MinFrameSize, NoSync: true})
			gc, err := Open(s.Root(), Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				for ctx.Err() == nil {
					gc.Walk(ctx, func(f File) error {
						_, err := gc.RemoveUnlocked(f.Path)
						return err
					})
				}
			})
			data := gen(compressible, 1, 0, 50_000)
			for range 200 {
				st := stage(t, s, data)
				p, err := s.Publish(context.Background(), st, int64(len(data)))
				if err != nil {
					t.Fatal(err)
				}
				r, err := s.OpenBlob(p.Blob.Path)
				if err != nil {
					t.Fatalf("unreleased blob swept: %v", err)
				}
				r.Close()
				p.Release()
				st.Close()
			}
			cancel()
			wg.Wait()
		})
	}
}

// When the trial covered the whole file, Auto writes the frames it already
// compressed: the blob must be byte for byte what Zstd, compressing afresh,
// writes, including frames the trial did not keep.
func TestAutoReusesWholeFileTrial(t *testing.T) {
	const frame = 64 << 10
	mixed := gen(compressible, 3, 0, 10*frame+123)
	// Two frames that do not shrink: the trial compresses them again.
	copy(mixed[2*frame:], gen(random, 4, 0, frame))
	copy(mixed[7*frame+5:], gen(random, 5, 0, frame))
	for _, tc := range []struct {
		name    string
		data    []byte
		dropped int // frames the trial does not keep
	}{
		{"compressible", gen(compressible, 1, 0, 5*frame), 0},
		{"one short frame", gen(compressible, 2, 0, frame/3), 0},
		{"mixed", mixed, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auto := newStore(t, Options{Compression: Auto, FrameSize: frame, NoSync: true})
			st := stage(t, auto, tc.data)
			defer st.Close()
			res, err := auto.trial(context.Background(), st.File(), int64(len(tc.data)))
			if err != nil || !res.compress || res.kept == nil {
				t.Fatalf("trial = compress %v, kept %d frames, %v; want its frames kept", res.compress, len(res.kept), err)
			}
			dropped := 0
			for _, f := range res.kept {
				if f == nil {
					dropped++
				}
			}
			if dropped != tc.dropped {
				t.Errorf("trial dropped %d frames, want %d", dropped, tc.dropped)
			}
			zstd := newStore(t, Options{Compression: Zstd, FrameSize: frame, NoSync: true})
			got, want := publish(t, auto, tc.data), publish(t, zstd, tc.data)
			if !got.Compressed {
				t.Fatalf("Auto stored %+v raw", got)
			}
			gotBytes, err := os.ReadFile(auto.abs(got.Path))
			if err != nil {
				t.Fatal(err)
			}
			wantBytes, err := os.ReadFile(zstd.abs(want.Path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotBytes, wantBytes) {
				t.Fatalf("Auto blob (%d bytes) differs from Zstd's (%d bytes)", len(gotBytes), len(wantBytes))
			}
			back := make([]byte, len(tc.data))
			if _, err := openBlob(t, auto, got.Path).ReadAt(back, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(back, tc.data) {
				t.Fatal("Auto blob does not read back as the data")
			}
		})
	}
}

// Wrote sends a long sequential write to disk as it goes, unless the file is
// bound for compression; either way the blob reads back as written.
func TestWroteWritesOutOnlyWhatStaysRaw(t *testing.T) {
	const size = 3*writeoutChunk + 100
	for _, tc := range []struct {
		policy  Compression
		kind    kind
		written bool
	}{
		{None, compressible, true},
		{Auto, random, true},
		{Auto, compressible, false},
		{Zstd, random, false},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.policy, tc.kind), func(t *testing.T) {
			s := newStore(t, Options{Compression: tc.policy, NoSync: true})
			st, err := s.CreateStaged()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for off := int64(0); off < size; off += genBlock {
				blk := genBlockAt(tc.kind, 1, off/genBlock)[:min(genBlock, size-off)]
				if _, err := st.File().WriteAt(blk, off); err != nil {
					t.Fatal(err)
				}
				st.Wrote(context.Background(), off, int64(len(blk)))
			}
			if got := st.writtenOut > 0; got != tc.written {
				t.Errorf("written out up to %d (skipped: %v), want written out: %v", st.writtenOut, st.noWriteout, tc.written)
			}
			p, err := s.Publish(context.Background(), st, size)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Release()
			r := openBlob(t, s, p.Blob.Path)
			got := make([]byte, genBlock)
			for _, off := range []int64{0, size - genBlock} {
				if _, err := r.ReadAt(got, off); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(got, gen(tc.kind, 1, off, genBlock)) {
					t.Fatalf("blob differs at %d", off)
				}
			}
		})
	}
}

// exists reports whether rel exists under the store's root (no following).
func exists(t testing.TB, s *Store, rel string) bool {
	t.Helper()
	_, err := os.Lstat(s.abs(rel))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}
