package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// writeBigParquet streams a compressible, uncompressed tick parquet of at
// least size bytes to path and returns its row count.
func writeBigParquet(t testing.TB, path string, size int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	w := parquet.NewGenericWriter[tick](bw,
		parquet.Compression(&parquet.Uncompressed),
		parquet.PageBufferSize(1<<20),
		parquet.DataPageStatistics(false),
	)
	const rowBytes = 24 // three plain 8-byte columns
	rows := size/rowBytes + 1
	batch := make([]tick, 1<<16)
	for done := int64(0); done < rows; {
		n := min(int64(len(batch)), rows-done)
		for i := int64(0); i < n; i++ {
			r := done + i
			batch[i] = tick{
				TS:     tickStart.Add(time.Duration(r) * time.Millisecond),
				Price:  100 + float64(r%997)/100,
				Volume: r % 5000,
			}
		}
		if _, err := w.Write(batch[:n]); err != nil {
			t.Fatal(err)
		}
		done += n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestLargeZstdEntryKeepsDaemonMemoryFlat commits a 2 GiB parquet through a
// mount that always compresses, reads it back end to end, and checks that
// the daemon's peak resident memory (VmHWM) stays below 150 MiB: neither the
// commit (hash, compress) nor the read may hold the file in memory.
func TestLargeZstdEntryKeepsDaemonMemoryFlat(t *testing.T) {
	const (
		size    = 2 << 30
		maxPeak = 150 << 10 // KiB
	)
	m := mountT(t, "--compression", "zstd")
	start := time.Now()
	src := filepath.Join(t.TempDir(), "big.parquet")
	rows := writeBigParquet(t, src, size)
	want, n, err := streamSHA(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d rows, %d MiB, in %s", rows, n>>20, time.Since(start).Round(time.Millisecond))
	pid := m.cmd.Process.Pid
	idle := procStatusKiB(t, pid, "VmHWM")

	if err := os.Mkdir(m.path("BIG"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := m.path("BIG", "k.parquet")
	start = time.Now()
	sh(t, "cp", src, dst)
	commitTook := time.Since(start)
	afterCommit := procStatusKiB(t, pid, "VmHWM")
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	stored := sqliteInt(t, m.root, "select file_size_bytes from manifest where symbol='BIG' and key='k'")
	t.Logf("cp into the mount (write, validate, footer hash, zstd, fsync, commit): %s, %.0f MiB/s; stored %d MiB (%.1fx)",
		commitTook.Round(time.Millisecond), float64(n)/(1<<20)/commitTook.Seconds(), stored>>20, float64(n)/float64(stored))

	start = time.Now()
	got, readN, err := streamSHA(dst)
	readTook := time.Since(start)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if readN != n || got != want {
		t.Errorf("read back %d bytes, sha256 %s; want %d bytes, %s", readN, got, n, want)
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("read back end to end with sha256: %s, %.0f MiB/s", readTook.Round(time.Millisecond), float64(readN)/(1<<20)/readTook.Seconds())
	t.Logf("daemon peak RSS (VmHWM): idle %d MiB, after commit %d MiB, after read %d MiB (bound %d MiB)",
		idle>>10, afterCommit>>10, peak>>10, maxPeak>>10)
	if peak > maxPeak {
		t.Errorf("daemon peak RSS %d MiB exceeds %d MiB for a %d MiB entry: memory grows with the file", peak>>10, maxPeak>>10, n>>20)
	}
}
