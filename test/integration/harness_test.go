// Package integration mounts featurefs for real and drives it with the
// tools its users use: cp, rsync, ls, stat, getfattr, sha256sum, shell
// redirection, separate processes, kill -9, and DuckDB.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths set up by TestMain.
var (
	fsmountBin string // the daemon, built once for the whole run
	repoRoot   string
	skipReason string // non-empty when FUSE cannot be used here (and CI is unset)
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		os.Exit(1)
	}
	if code >= 0 {
		os.Exit(code)
	}
	code = m.Run()
	if fsmountBin != "" {
		os.RemoveAll(filepath.Dir(fsmountBin))
	}
	os.Exit(code)
}

func setup() (int, error) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if reason := fuseUnavailable(); reason != "" {
		if os.Getenv("CI") != "" {
			return 0, fmt.Errorf("CI is set but FUSE is unavailable: %s", reason)
		}
		skipReason = "FUSE unavailable (" + reason + "); these tests skip outside CI only"
		fmt.Fprintln(os.Stderr, "integration:", skipReason)
		return -1, nil
	}
	dir, err := os.MkdirTemp("", "featurefs-bin-")
	if err != nil {
		return 0, err
	}
	fsmountBin = filepath.Join(dir, "fsmount")
	build := exec.Command("go", "build", "-o", fsmountBin, "./cmd/fsmount")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("build fsmount: %w", err)
	}
	return -1, nil
}

func fuseUnavailable() string {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "/dev/fuse: " + err.Error()
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return "not root and no fusermount3"
		}
	}
	return ""
}

// mount is one running daemon.
type mount struct {
	t    testing.TB
	dir  string // mountpoint
	root string // cache root
	args []string
	// bin and env override the daemon binary and add environment
	// variables for the next start (crash tests use a failpoint build).
	bin   string
	env   []string
	cmd   *exec.Cmd
	logMu sync.Mutex
	log   bytes.Buffer
	done  chan struct{}
}

// mountT starts `fsmount mount` on a fresh cache root and registers its
// unmount with t.Cleanup, which runs also when the test fails.
func mountT(t testing.TB, args ...string) *mount {
	t.Helper()
	base := t.TempDir()
	return mountAt(t, filepath.Join(base, "cache"), filepath.Join(base, "mnt"), args...)
}

// mountAt starts a daemon for a given cache root and mountpoint.
func mountAt(t testing.TB, root, dir string, args ...string) *mount {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	m := &mount{t: t, dir: dir, root: root, args: args}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mount) start() {
	m.t.Helper()
	m.launch()
	m.awaitServing()
}

// launch starts the daemon without waiting for it to serve.
func (m *mount) launch() {
	m.t.Helper()
	argv := append([]string{"mount", "--cache-root", m.root, "--gc-interval", "0", "--verbose"}, m.args...)
	argv = append(argv, m.dir)
	bin := fsmountBin
	if m.bin != "" {
		bin = m.bin
	}
	m.cmd = exec.Command(bin, argv...)
	m.cmd.Env = append(os.Environ(), m.env...)
	m.cmd.Stdout = &lockedWriter{mu: &m.logMu, w: &m.log}
	m.cmd.Stderr = m.cmd.Stdout
	m.done = make(chan struct{})
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start fsmount: %v", err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
}

// awaitServing waits until the launched daemon serves, failing the test if
// it exits first or takes over 15 s.
func (m *mount) awaitServing() {
	m.t.Helper()
	// Mounted is not enough: after kill -9 the stale mount is listed until
	// the new daemon clears it. The control directory answers only once the
	// new daemon serves.
	deadline := time.Now().Add(15 * time.Second)
	for !m.serving() {
		select {
		case <-m.done:
			m.t.Fatalf("fsmount exited before mounting:\n%s", m.logs())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("fsmount did not mount within 15s:\n%s", m.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mount) serving() bool {
	if !isMounted(m.dir) {
		return false
	}
	// A read, not a stat: the kernel answers a stat of a dead mount from
	// its cache, but every open reaches the daemon.
	_, err := os.ReadFile(m.path(".control", "stats"))
	return err == nil
}

func (m *mount) logs() string {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	return m.log.String()
}

// stop sends SIGTERM and waits; it falls back to kill and a lazy unmount so
// no test leaves a mount behind.
func (m *mount) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
	default:
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(20 * time.Second):
			m.t.Errorf("fsmount ignored SIGTERM for 20s; killing")
			_ = m.cmd.Process.Kill()
			m.awaitDeath()
		}
	}
	if isMounted(m.dir) {
		_ = exec.Command("umount", "-l", m.dir).Run()
		_ = exec.Command("fusermount3", "-u", "-z", m.dir).Run()
	}
	if m.t.Failed() {
		m.t.Logf("fsmount log:\n%s", m.logs())
	}
}

// kill9 kills the daemon without any chance to clean up; the kernel mount
// is left behind, stale, as after a crash.
func (m *mount) kill9() {
	m.t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	m.awaitDeath()
}

// awaitDeath waits for a killed daemon. One killed while one of its threads
// waited in the kernel for a directory lock (a cache notification) cannot
// finish exiting until its FUSE connection is aborted, as an operator would.
func (m *mount) awaitDeath() {
	select {
	case <-m.done:
		return
	case <-time.After(5 * time.Second):
	}
	m.t.Logf("killed daemon did not exit within 5s; aborting its FUSE connection")
	abortFUSE(m.dir)
	<-m.done
}

// abortFUSE aborts the FUSE connection mounted at dir through fusectl.
func abortFUSE(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == dir {
			_, minor, _ := strings.Cut(fields[2], ":")
			_ = exec.Command("mount", "-t", "fusectl", "fusectl", "/sys/fs/fuse/connections").Run()
			_ = os.WriteFile("/sys/fs/fuse/connections/"+minor+"/abort", []byte("1"), 0)
			return
		}
	}
}

// restart starts a new daemon on the same cache root and mountpoint.
func (m *mount) restart() {
	m.t.Helper()
	select {
	case <-m.done:
	default:
		m.stop()
	}
	m.start()
}

// path joins the mountpoint and p.
func (m *mount) path(p ...string) string { return filepath.Join(append([]string{m.dir}, p...)...) }

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isMounted reports whether dir is a mount point, from /proc/self/mountinfo.
func isMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.ReplaceAll(fields[4], `\040`, " ") == dir {
			return true
		}
	}
	return false
}

// sh runs a command and returns its combined output, failing the test when
// it exits non-zero.
func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// run runs a command with a timeout and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// bash runs a shell script.
func bash(t testing.TB, script string) string {
	t.Helper()
	return sh(t, "bash", "-euo", "pipefail", "-c", script)
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
