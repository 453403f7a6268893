package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonServedReadsAtEveryRequestSize reads entries the daemon serves
// itself (raw blobs with passthrough off, zstd blobs) with dd at block sizes
// from 4 KiB to 4 MiB, each from a cold page cache (a fresh entry per read),
// so the kernel's requests range up to its 1 MiB maximum. Every read must
// give the source's exact bytes, and the daemon must never have logged a
// failed splice (a 1 MiB reply does not fit the largest pipe it may use).
func TestDaemonServedReadsAtEveryRequestSize(t *testing.T) {
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 400_000, 9)
	if fi, err := os.Stat(v); err != nil || fi.Size() < 4<<20 {
		t.Fatalf("fixture should span several 1 MiB requests: %v, %v", fi, err)
	}
	want := sha256File(t, v)
	for _, mode := range [][]string{
		{"--compression", "none", "--passthrough=false"},
		{"--compression", "zstd"},
	} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			m := mountT(t, mode...)
			sh(t, "mkdir", m.path("S"))
			for _, bs := range []string{"4k", "128k", "1M", "4M"} {
				entry := m.path("S", "bs"+bs+".parquet")
				sh(t, "cp", v, entry)
				out := filepath.Join(t.TempDir(), "out")
				sh(t, "dd", "if="+entry, "of="+out, "bs="+bs, "status=none")
				if got := sha256File(t, out); got != want {
					t.Errorf("dd bs=%s read back %s, want %s", bs, got, want)
				}
			}
			if logs := m.logs(); strings.Contains(logs, "splice") {
				t.Errorf("the daemon logged a failed splice:\n%s", grepLines(logs, "splice"))
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			fmt.Fprintln(&b, l)
		}
	}
	return b.String()
}
