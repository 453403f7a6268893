package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A daemon whose manifest disappears must not keep serving what it no
// longer knows: it unmounts and exits non-zero, saying why.
func TestDaemonExitsLoudlyWhenManifestIsLost(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("S"))
	if err := os.Remove(filepath.Join(m.root, "manifest.db")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon kept serving for 20s after its manifest was removed")
	}
	if code := m.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit code 0 after losing the manifest")
	}
	if !strings.Contains(m.logs(), "manifest lost") {
		t.Errorf("the log does not say the manifest was lost:\n%s", m.logs())
	}
	if isMounted(m.dir) {
		t.Error("the mount is still there")
	}
}

// SIGTERM unmounts cleanly and writes pending access times first.
func TestSigtermFlushesAccessTimes(t *testing.T) {
	m := mountT(t)
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 100, 5)
	sh(t, "mkdir", m.path("S"))
	sh(t, "cp", v, m.path("S", "k.parquet"))
	for i := 0; i < 3; i++ {
		sh(t, "cat", m.path("S", "k.parquet"))
	}
	m.stop()
	if isMounted(m.dir) {
		t.Fatal("still mounted after SIGTERM")
	}
	got := strings.TrimSpace(sh(t, "sqlite3", filepath.Join(m.root, "manifest.db"), "select access_count from manifest where key = 'k'"))
	if got != "3" {
		t.Errorf("access_count after SIGTERM is %q, want 3 (pending opens must be written at shutdown)", got)
	}
	if _, staging := blobFiles(t, m.root); len(staging) != 0 {
		t.Errorf("staging files left after a clean shutdown: %v", staging)
	}
}
