package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourScript returns the first sh block under "## A two-minute tour" in
// README.md, as written.
func tourScript(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## A two-minute tour\n")
	if !ok {
		t.Fatal(`README.md has no "## A two-minute tour" section`)
	}
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatal("the tour has no ```sh block")
	}
	script, _, ok := strings.Cut(block, "\n```")
	if !ok {
		t.Fatal("the tour's sh block does not end")
	}
	return script
}

// TestReadmeTourRuns runs the README's tour line by line as a user would on
// a fresh account: a HOME of its own (so ~/features and ~/.feature_cache
// are the test's), the freshly built fsmount first on the PATH, from the
// repository's root. The Go and npm caches are the machine's, so nothing is
// downloaded or compiled again. It must exit 0 and leave nothing mounted.
func TestReadmeTourRuns(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	script := tourScript(t)
	home := t.TempDir()
	mnt := filepath.Join(home, "features")
	// The machine's environment (its certificates, its proxy settings: what
	// a user's shell has), with a HOME, PATH and TMPDIR of the test's own.
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "HOME", "PATH", "TMPDIR", "PS4":
		default:
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+home,
		"PATH="+filepath.Dir(fsmountBin)+":"+os.Getenv("PATH"),
		"TMPDIR="+t.TempDir(),
		"LANG=C.UTF-8",
		`PS4=+ $(date +%T.%N | cut -c1-12) `, // each traced line with its time
	)
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "GOPROXY"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("npm", "config", "get", "cache").Output(); err == nil {
		env = append(env, "npm_config_cache="+strings.TrimSpace(string(out)))
	}
	// Output goes to a file, not a pipe: a daemon the tour starts must not
	// keep this test waiting on its output.
	logPath := filepath.Join(t.TempDir(), "tour.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() { stopTourDaemon(t, logPath, mnt) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-x", "-c", script)
	cmd.Dir = repoRoot
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	out, _ := os.ReadFile(logPath)
	if err != nil || testing.Verbose() {
		t.Logf("the tour's output:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the README tour failed: %v", err)
	}
	if isMounted(mnt) {
		t.Errorf("the tour left %s mounted\n%s", mnt, out)
	}
	// What the tour says it shows.
	for _, want := range []string{"3f9c2be1.parquet", "user.featurefs.rows=", "k1.parquet"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the tour's output has no %q\n%s", want, out)
		}
	}
	// After the unmount the daemon writes pending access times and exits.
	if pid := tourDaemonPID(logPath); pid > 0 {
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("the tour's daemon (pid %d) still runs 10 s after its unmount", pid)
		}
	}
}

var daemonPID = regexp.MustCompile(`mounted \S+ \(pid (\d+),`)

// tourDaemonPID is the pid `fsmount mount --background` reported, or 0.
func tourDaemonPID(logPath string) int {
	f, err := os.Open(logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := daemonPID.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid
		}
	}
	return 0
}

// stopTourDaemon ends the daemon the tour started and its mount, if a failed
// tour left them.
func stopTourDaemon(t *testing.T, logPath, mnt string) {
	if pid := tourDaemonPID(logPath); pid > 0 && syscall.Kill(pid, 0) == nil {
		if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.Contains(string(cmdline), mnt) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if isMounted(mnt) {
		_ = exec.Command("umount", "-l", mnt).Run()
		_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
	}
}

// TestBackgroundMountReportsDaemonError: --background returns only once the
// daemon serves; when the daemon cannot mount, it exits non-zero with the
// daemon's reason instead of claiming success.
func TestBackgroundMountReportsDaemonError(t *testing.T) {
	m := mountT(t)
	out, err := run(fsmountBin, "mount", "--background", "--cache-root", m.root,
		"--log-file", filepath.Join(t.TempDir(), "log"), m.dir)
	if err == nil || !strings.Contains(out, "already a mount point") {
		t.Fatalf("--background over a live mount: err %v, output %q; want a failure naming the live mount", err, out)
	}
}

// TestClearTestMountsTouchesOnlyTheRunsOwn: the integration target's cleanup
// clears featurefs mounts under its run directory and nothing else, not even
// a mount in a sibling directory whose name starts the same.
func TestClearTestMountsTouchesOnlyTheRunsOwn(t *testing.T) {
	base := t.TempDir()
	runDir := filepath.Join(base, "run")
	inside := mountAt(t, filepath.Join(base, "cache-in"), filepath.Join(runDir, "t", "mnt"))
	outside := mountAt(t, filepath.Join(base, "cache-out"), filepath.Join(base, "run-other", "mnt"))
	cmd := exec.Command("make", "-s", "clear-test-mounts", "TEST_TMP="+runDir)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), inside.dir) {
		t.Errorf("clear-test-mounts with a mount left in the run: err %v, output %q; want a failure naming %s", err, out, inside.dir)
	}
	if strings.Contains(string(out), outside.dir) {
		t.Errorf("clear-test-mounts named a mount outside the run: %q", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for isMounted(inside.dir) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if isMounted(inside.dir) {
		t.Errorf("%s is still mounted", inside.dir)
	}
	if !isMounted(outside.dir) || !outside.serving() {
		t.Errorf("%s, outside the run directory, was unmounted", outside.dir)
	}
}

// TestMakeMountServesFeatureStorePath: `make mount` serves the cache root
// that fsmount's own commands read from FEATURE_STORE_PATH.
func TestMakeMountServesFeatureStorePath(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	for _, target := range []string{"mount", "mount-bg"} {
		cmd := exec.Command("make", "-n", "-s", target)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "FEATURE_STORE_PATH="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		if !strings.Contains(string(out), `--cache-root "`+root+`"`) {
			t.Errorf("make %s with FEATURE_STORE_PATH=%s runs:\n%s", target, root, out)
		}
	}
}
