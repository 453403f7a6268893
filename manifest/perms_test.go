//go:build unix

package manifest

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// wantMode fails unless path exists with permissions want.
func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), fi.Mode().Perm(), want)
	}
}

// Not parallel: the umask is process wide.
func TestManifestFilesArePrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	commitT(t, db, entry("AAPL", "k"))
	// The -wal and -shm files exist while the database is open.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(t, p, 0o600)
	}
}

func TestOpenClosesAManifestAnOlderVersionLeftReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.db")
	db := openAtT(t, path, Options{})
	commitT(t, db, entry("AAPL", "k"))
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A second process opening the same cache root, as gc or stats would.
	db2, err := Open(context.Background(), path, Options{Logger: quiet, AccessFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(t, p, 0o600)
	}
}
