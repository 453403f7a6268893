package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A daemon serves one FUSE mount in the foreground; stopping it (SIGTERM)
// unmounts. Every daemon the run starts is registered so that one deferred
// call unmounts them all, whatever way the run ends.
type daemon struct {
	name    string
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	peakKiB int64 // VmHWM read just before stopping, or before a reset if higher
	// supervised: the process started supervises the one that serves
	// (JuiceFS restarts its server if it dies); memory is the server's.
	supervised bool
}

// pid is the process serving the mount.
func (d *daemon) pid() int {
	pid := d.cmd.Process.Pid
	if !d.supervised {
		return pid
	}
	// A child is listed under the thread that started it.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []string
	for _, t := range tasks {
		if data, err := os.ReadFile(t); err == nil {
			kids = append(kids, strings.Fields(string(data))...)
		}
	}
	if len(kids) == 1 {
		if child, err := strconv.Atoi(kids[0]); err == nil {
			return child
		}
	}
	return pid
}

// peak is the serving process's VmHWM in KiB, counting the peaks before
// any reset.
func (d *daemon) peak() (int64, error) {
	kib, err := peakRSS(d.pid())
	return max(kib, d.peakKiB), err
}

// resetPeak starts a new VmHWM from the current RSS (clear_refs 5), so
// the next peak read is that of what runs in between; the peak so far is
// kept for the whole-run figure.
func (d *daemon) resetPeak() error {
	kib, err := d.peak()
	if err != nil {
		return err
	}
	d.peakKiB = kib
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.pid()), []byte("5"), 0o200)
}

// peakSinceReset is VmHWM alone: the peak since the last resetPeak.
func (d *daemon) peakSinceReset() (int64, error) { return peakRSS(d.pid()) }

type daemons struct {
	logDir string
	all    []*daemon
}

// start runs argv as a mount daemon for dir and waits until dir is mounted.
func (ds *daemons) start(ctx context.Context, name, dir string, argv ...string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if mounted(dir) {
		// Left by an earlier run that was killed: nothing can use it.
		if err := forceUnmount(dir); err != nil {
			return nil, fmt.Errorf("stale mount %s: %w", dir, err)
		}
	}
	logPath := filepath.Join(ds.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Ctrl-C reaches the run, which unmounts in order; the daemon
		// still hears about it if the run itself is killed.
		Setpgid:   true,
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, dir: dir, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	ds.all = append(ds.all, d)
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !mounted(dir) {
		select {
		case <-d.done:
			return nil, fmt.Errorf("%s exited before mounting %s: %s", name, dir, tail(logPath))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not mount %s within 30s: %s", name, dir, tail(logPath))
		}
	}
	return d, nil
}

// stop unmounts: SIGTERM, then a lazy unmount and SIGKILL if the daemon
// does not finish in time.
func (d *daemon) stop() error {
	select {
	case <-d.done:
	default:
		if kib, err := d.peak(); err == nil {
			d.peakKiB = kib
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = forceUnmount(d.dir)
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	if mounted(d.dir) {
		if err := forceUnmount(d.dir); err != nil {
			return fmt.Errorf("unmount %s: %w", d.dir, err)
		}
	}
	return nil
}

// byName is the daemon started as name.
func (ds *daemons) byName(name string) *daemon {
	for _, d := range ds.all {
		if d.name == name {
			return d
		}
	}
	return nil
}

// stopAll unmounts every daemon still running, newest first.
func (ds *daemons) stopAll() error {
	var errs []error
	for i := len(ds.all) - 1; i >= 0; i-- {
		errs = append(errs, ds.all[i].stop())
	}
	return errors.Join(errs...)
}

func forceUnmount(dir string) error {
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err == nil {
		return nil
	}
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %v: %s", dir, err, out)
	}
	return nil
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	points, err := mountPoints()
	if err != nil {
		return false
	}
	for _, p := range points {
		if p == dir {
			return true
		}
	}
	return false
}

// mountsUnder lists the mount points below root: after a run, none.
func mountsUnder(root string) ([]string, error) {
	points, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var under []string
	for _, p := range points {
		if p == root || strings.HasPrefix(p, root+"/") {
			under = append(under, p)
		}
	}
	return under, nil
}

func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 {
			points = append(points, unescapeMount(fields[1]))
		}
	}
	return points, sc.Err()
}

// unescapeMount undoes the octal escapes /proc/mounts uses for spaces etc.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// peakRSS is a process's VmHWM in KiB.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(data))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
