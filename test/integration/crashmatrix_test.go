package integration

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The crash matrix: for each step of a commit and of GC, a daemon built with
// failpoints kills itself (SIGKILL) exactly there; a normal daemon then
// restarts on the same cache root and the invariants must hold: every
// acknowledged entry is exact, nothing partial is visible, the previous
// version is intact where the new one was not acknowledged, the next GC
// collects the leftovers and `fsmount verify` is clean.

var (
	failpointOnce sync.Once
	failpointBin  string
	failpointErr  error
)

// failpointDaemon builds fsmount with -tags failpoints, once per run.
func failpointDaemon(t *testing.T) string {
	t.Helper()
	failpointOnce.Do(func() {
		failpointBin = filepath.Join(filepath.Dir(fsmountBin), "fsmount-failpoints")
		build := exec.Command("go", "build", "-tags", "failpoints", "-o", failpointBin, "./cmd/fsmount")
		build.Dir = repoRoot
		out, err := build.CombinedOutput()
		if err != nil {
			failpointErr = &duckError{msg: string(out), err: err}
		}
	})
	if failpointErr != nil {
		t.Fatalf("build failpoint daemon: %v", failpointErr)
	}
	return failpointBin
}

// crashAt restarts m's daemon as a failpoint build that dies at point.
func crashAt(t *testing.T, m *mount, point string) {
	t.Helper()
	m.stop()
	m.bin, m.env = failpointDaemon(t), []string{"FEATUREFS_FAILPOINT=" + point}
	m.start()
}

// recoverNormal waits for the crashed daemon and starts a normal one.
func recoverNormal(t *testing.T, m *mount) {
	t.Helper()
	m.awaitDeath()
	m.bin, m.env = "", nil
	m.restart()
}

// blobFiles lists the files under the cache root's blobs/ and staging/.
func blobFiles(t *testing.T, root string) (blobs, staging []string) {
	t.Helper()
	for dir, list := range map[string]*[]string{"blobs": &blobs, "staging": &staging} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(root, p)
				*list = append(*list, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return blobs, staging
}

// referenced returns the blob paths the manifest names.
func referenced(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := sh(t, "sqlite3", filepath.Join(root, "manifest.db"), "select path from manifest")
	refs := map[string]bool{}
	for _, p := range strings.Fields(out) {
		refs[p] = true
	}
	return refs
}

func orphans(t *testing.T, root string) []string {
	t.Helper()
	blobs, _ := blobFiles(t, root)
	refs := referenced(t, root)
	var out []string
	for _, b := range blobs {
		if !refs[b] {
			out = append(out, b)
		}
	}
	return out
}

// collectAndVerify runs a standalone GC with no grace, then verify: the
// leftovers of the crash go and the cache is clean.
func collectAndVerify(t *testing.T, m *mount) {
	t.Helper()
	sh(t, fsmountBin, "gc", "--cache-root", m.root, "--orphan-grace", "1ms", "--settle", "0s")
	if left := orphans(t, m.root); len(left) != 0 {
		t.Errorf("orphan blobs after GC: %v", left)
	}
	if _, staging := blobFiles(t, m.root); len(staging) != 0 {
		t.Errorf("staging files after GC: %v", staging)
	}
	if out, err := run(fsmountBin, "verify", "--cache-root", m.root); err != nil {
		t.Errorf("verify after recovery: %v\n%s", err, out)
	}
}

func TestCrashAtEachCommitStepKeepsPreviousVersion(t *testing.T) {
	for _, tt := range []struct {
		point string
		// committed: the crash comes after the row, so the new version is
		// the one that survives (whole), although close never returned.
		committed bool
		// orphan: a durable blob that no row references is left behind.
		orphan bool
	}{
		{point: "commit-before-publish"},
		{point: "commit-before-row", orphan: true},
		{point: "manifest-before-commit", orphan: true},
		{point: "commit-after-row", committed: true, orphan: true},
	} {
		t.Run(tt.point, func(t *testing.T) {
			m := mountT(t, "--compression", "none")
			src := t.TempDir()
			v1 := writeFixture(t, src, "v1.parquet", 2000, 1)
			v2 := writeFixture(t, src, "v2.parquet", 3000, 2)
			if err := os.Mkdir(m.path("SYM"), 0o755); err != nil {
				t.Fatal(err)
			}
			sh(t, "cp", v1, m.path("SYM", "k.parquet"))
			sh(t, "cp", v1, m.path("SYM", "other.parquet"))

			crashAt(t, m, tt.point)
			if out, err := run("cp", v2, m.path("SYM", "k.parquet")); err == nil {
				t.Fatalf("cp succeeded although the daemon died committing it: %s", out)
			}
			m.awaitDeath()
			blobs, staging := blobFiles(t, m.root)
			if !tt.orphan && len(staging) == 0 {
				t.Errorf("a crash before publication should leave the staging file; blobs %v", blobs)
			}
			if got := len(orphans(t, m.root)); tt.orphan && got != 1 {
				t.Errorf("%d orphan blobs, want exactly 1", got)
			} else if !tt.orphan && got != 0 {
				t.Errorf("%d orphan blobs, want none", got)
			}
			recoverNormal(t, m)

			want := v1
			if tt.committed {
				want = v2
			}
			if got, exp := sha256File(t, m.path("SYM", "k.parquet")), sha256File(t, want); got != exp {
				t.Errorf("k.parquet after the crash is neither whole version expected (committed=%v)", tt.committed)
			}
			if sha256File(t, m.path("SYM", "other.parquet")) != sha256File(t, v1) {
				t.Error("an acknowledged entry changed")
			}
			if names := sh(t, "ls", "-A", m.path("SYM")); strings.Fields(names)[0] != "k.parquet" || len(strings.Fields(names)) != 2 {
				t.Errorf("listing after the crash: %q", names)
			}
			collectAndVerify(t, m)
			// The cache keeps working: the commit that was lost can be redone.
			sh(t, "cp", v2, m.path("SYM", "k.parquet"))
			if sha256File(t, m.path("SYM", "k.parquet")) != sha256File(t, v2) {
				t.Error("recommit after recovery")
			}
		})
	}
}

func TestCrashBetweenGCRowDeleteAndBlobDelete(t *testing.T) {
	m := mountT(t, "--retention", "24h")
	src := t.TempDir()
	v := writeFixture(t, src, "v.parquet", 1000, 3)
	if err := os.Mkdir(m.path("OLD"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", v, m.path("OLD", "stale.parquet"))
	sh(t, "cp", v, m.path("OLD", "fresh.parquet"))
	// Make one entry a month old, as if nobody had read it since.
	sh(t, "sqlite3", filepath.Join(m.root, "manifest.db"),
		"update manifest set last_accessed_ts = strftime('%s','now') - 30*86400 where key = 'stale'")

	crashAt(t, m, "gc-after-row-delete")
	cmd := exec.Command("bash", "-c", "echo run > "+m.path(".control", "gc"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("GC write succeeded although the daemon died in the run: %s", out.String())
	}
	m.awaitDeath()
	if got := len(orphans(t, m.root)); got != 1 {
		t.Errorf("%d orphan blobs after the crash, want the expired entry's 1", got)
	}
	recoverNormal(t, m)
	if _, err := os.Stat(m.path("OLD", "stale.parquet")); !os.IsNotExist(err) {
		t.Errorf("expired entry still visible after its row was deleted: %v", err)
	}
	if sha256File(t, m.path("OLD", "fresh.parquet")) != sha256File(t, v) {
		t.Error("the unexpired entry changed")
	}
	collectAndVerify(t, m)
}
