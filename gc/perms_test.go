//go:build unix

package gc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Not parallel: the umask is process wide.
func TestRunWritesOnlyPrivateFilesWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	c := newCacheT(t)
	// Files an older version left open to others: a run closes them.
	for _, name := range []string{LockFile, ReportFile + ".tmp"} {
		if err := os.WriteFile(filepath.Join(c.root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := c.commit("AAPL", "k", 10)
	c.clock.Advance(5 * 7 * 24 * time.Hour)
	rep := c.run(c.opts())
	if rep.Summary.ExpiredEntries != 1 || c.exists(e) {
		t.Fatalf("the run expired %d entries", rep.Summary.ExpiredEntries)
	}
	for _, name := range []string{LockFile, ReportFile} {
		fi, err := os.Stat(filepath.Join(c.root, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, fi.Mode().Perm())
		}
	}
}
