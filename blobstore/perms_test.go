//go:build linux

package blobstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// umaskZero clears the process umask for the test. The umask is process
// wide: tests that call this must not run in parallel.
func umaskZero(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

// wantPrivate fails for every file under root that is not 0600 and every
// directory that is not 0700, root included.
func wantPrivate(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("walked %d paths under %s", n, root)
	}
}

func TestStoreCreatesOnlyPrivateFilesWhateverTheUmask(t *testing.T) {
	umaskZero(t)
	root := filepath.Join(t.TempDir(), "cache")
	data := gen(compressible, 1, 0, 3<<20)
	for _, c := range []Compression{None, Zstd} {
		s, err := Open(root, Options{Compression: c, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		b := publish(t, s, data)
		if b.Compressed != (c == Zstd) {
			t.Fatalf("%s: compressed %v", c, b.Compressed)
		}
		if _, err := s.Quarantine(publish(t, s, data[:1<<20]).Path); err != nil {
			t.Fatal(err)
		}
		// A write in progress.
		st := stage(t, s, data[:1000])
		defer st.Close()
		defer s.Close()
	}
	wantPrivate(t, root)
}

func TestStoreClosesDirectoriesAnOlderVersionLeftOpen(t *testing.T) {
	umaskZero(t)
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{BlobsDir, StagingDir, QuarantineDir} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(root, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{BlobsDir, StagingDir, QuarantineDir} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %o after Open, want 700", d, fi.Mode().Perm())
		}
	}
	// The root's own mode is its owner's business.
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("cache root mode changed: %v %v", fi.Mode(), err)
	}
}
