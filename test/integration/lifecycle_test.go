package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// Two daemons started at once on a dead mountpoint must not both mount,
// stacked: the second refuses, and the first stops cleanly on SIGTERM.
func TestConcurrentMountsOnADeadMountpointServeOnce(t *testing.T) {
	dead := mountT(t)
	base := t.TempDir()
	for round := range 4 {
		// A mountpoint whose daemon was killed: its mount is stale.
		dead.restart()
		dead.kill9()
		a := &mount{t: t, dir: dead.dir, root: filepath.Join(base, fmt.Sprintf("a%d", round))}
		b := &mount{t: t, dir: dead.dir, root: filepath.Join(base, fmt.Sprintf("b%d", round))}
		a.launch()
		t.Cleanup(a.stop)
		b.launch()
		t.Cleanup(b.stop)
		var loser, winner *mount
		select {
		case <-a.done:
			loser, winner = a, b
		case <-b.done:
			loser, winner = b, a
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: both daemons still run after 20s (stacked mounts?)\nA:\n%s\nB:\n%s", round, a.logs(), b.logs())
		}
		if code := loser.cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("round %d: the refused daemon exited %d, want 1", round, code)
		}
		if !strings.Contains(loser.logs(), "already a mount point") {
			t.Errorf("round %d: the refused daemon does not say why:\n%s", round, loser.logs())
		}
		winner.awaitServing()
		if n := mountsAt(t, dead.dir); n != 1 {
			t.Errorf("round %d: %d mounts at the mountpoint, want 1", round, n)
		}
		start := time.Now()
		_ = winner.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-winner.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the serving daemon did not exit within 5s of SIGTERM:\n%s", round, winner.logs())
		}
		if isMounted(dead.dir) {
			t.Fatalf("round %d: a mount is left after SIGTERM (%s)", round, time.Since(start))
		}
	}
}

// A daemon unmounts only its own mount: one someone stacked on top of it
// stays, and the daemon still exits promptly.
func TestSigtermLeavesAMountStackedOnTopAlone(t *testing.T) {
	m := mountT(t)
	sh(t, "mount", "-t", "tmpfs", "-o", "size=1m", "featurefs-test-cover", m.dir)
	covered := true
	t.Cleanup(func() {
		if covered {
			_ = exec.Command("umount", m.dir).Run()
		}
	})
	if err := os.WriteFile(filepath.Join(m.dir, "cover"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the daemon did not exit within 5s of SIGTERM:\n%s", m.logs())
	}
	if _, err := os.Stat(filepath.Join(m.dir, "cover")); err != nil {
		t.Errorf("the mount stacked on top is gone after SIGTERM to the daemon below: %v\n%s", err, m.logs())
	}
	if !strings.Contains(m.logs(), "another mount covers") {
		t.Errorf("the daemon does not say why it left its mount:\n%s", m.logs())
	}
	sh(t, "umount", m.dir)
	covered = false
	// What is left is the daemon's own, disconnected mount; m.stop clears it.
}

// mountsAt counts the mounts stacked at dir.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}
