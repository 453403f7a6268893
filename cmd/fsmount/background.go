//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"
)

// daemonEnv marks the process mountInBackground starts: it mounts in the
// foreground of its own session and reports readiness on file descriptor 3.
const daemonEnv = "FSMOUNT_BACKGROUND_CHILD"

// readyMessage is what the daemon writes on its readiness pipe once the
// mount serves.
const readyMessage = "ready\n"

// signalReady tells the process that started this daemon with --background
// that the mount serves. It does nothing in a daemon started otherwise.
func signalReady() {
	if os.Getenv(daemonEnv) == "" {
		return
	}
	f := os.NewFile(3, "ready")
	if f == nil {
		return
	}
	_, _ = f.WriteString(readyMessage)
	f.Close()
	os.Unsetenv(daemonEnv)
}

// mountInBackground starts this command again as a detached daemon (its own
// session, stdin closed, output appended to the log file) and waits until
// it mounted, failed, or this process was interrupted. Only after "ready"
// does the caller know the mountpoint serves: a stat of the mountpoint
// would not tell a live mount from a stale one.
func mountInBackground(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("mount takes exactly one MOUNTPOINT, got %d arguments", c.NArg())
	}
	args, _ := c.App.Metadata["args"].([]string)
	if len(args) == 0 {
		return errors.New("background: command line unknown")
	}
	root, err := cacheRoot(c)
	if err != nil {
		return err
	}
	logPath := c.String("log-file")
	if logPath == "" {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return fmt.Errorf("create cache root: %w", err)
		}
		logPath = filepath.Join(root, "fsmount.log")
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, 2)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		w.Close()
		return err
	}
	cmd := exec.Command(self, args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ready <- line == readyMessage
	}()
	mnt, _ := filepath.Abs(c.Args().First())
	select {
	case ok := <-ready:
		if ok {
			fmt.Fprintf(c.App.Writer, "mounted %s (pid %d, log %s)\n", mnt, cmd.Process.Pid, logPath)
			_ = cmd.Process.Release()
			return nil
		}
	case <-c.Context.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		return cli.Exit(fmt.Sprintf("interrupted while the daemon (pid %d) was starting; it was stopped", cmd.Process.Pid), exitIssues)
	}
	// The pipe closed without "ready": the daemon ended before mounting.
	werr := cmd.Wait()
	code := exitIssues
	var exit *exec.ExitError
	if errors.As(werr, &exit) && exit.ExitCode() > 0 {
		code = exit.ExitCode()
	}
	out, _ := os.ReadFile(logPath)
	if int64(len(out)) >= start {
		out = out[start:]
	}
	return cli.Exit(fmt.Sprintf("daemon did not mount %s (%v); its log (%s):\n%s", mnt, werr, logPath, bytes.TrimSpace(out)), code)
}
