package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// eachFile calls op on dir/name(i) for i < n and returns operations per
// second. Raw system calls keep the loop as thin as a C tool's.
func eachFile(ctx context.Context, dir string, n int, name func(int) string, op func(path string) error) (float64, error) {
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, name(i))
	}
	start := time.Now()
	for i, p := range paths {
		if i%1024 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := op(p); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// openReadClose opens path, reads its first 4 KiB and closes it.
func openReadClose(buf []byte) func(string) error {
	return func(path string) error {
		var fd int
		err := retryEINTR(func() (err error) {
			fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			return err
		})
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		rerr := retryEINTR(func() error { _, err := unix.Read(fd, buf); return err })
		cerr := unix.Close(fd) // closed even when interrupted: never retried
		if rerr != nil {
			return fmt.Errorf("read %s: %w", path, rerr)
		}
		if cerr != nil {
			return fmt.Errorf("close %s: %w", path, cerr)
		}
		return nil
	}
}

func statPath(path string) error {
	var st unix.Stat_t
	if err := retryEINTR(func() error { return unix.Stat(path, &st) }); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	return nil
}

// retryEINTR repeats a system call the Go runtime's own signals (goroutine
// preemption) interrupted, as package os does; FUSE requests are
// interruptible, so this happens on a mount.
func retryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// fileTrial times op over the n small entries under dir; warming does one
// untimed pass.
func fileTrial(ctx context.Context, name, dir string, n int, op func(string) error) trial {
	pass := func() (float64, error) { return eachFile(ctx, dir, n, smallName, op) }
	return trial{
		name: name,
		warm: func() error { _, err := pass(); return err },
		run:  pass,
	}
}

// smallFiles: goal 4, warm.
func (b *bench) smallFiles(ctx context.Context) error {
	l, n := b.l, b.cfg.small
	dirs := []struct{ name, dir string }{
		{"featurefs", filepath.Join(l.mntAuto, smallSymbol)},
		{"loopback", filepath.Join(l.mntLoop, smallSymbol)},
		{"native", filepath.Join(l.native, smallSymbol)},
	}
	for _, p := range b.jfs {
		dirs = append(dirs, struct{ name, dir string }{"JuiceFS " + p.name, filepath.Join(p.mnt, smallSymbol)})
	}
	ops := []struct {
		what string
		op   func(string) error
	}{
		{fmt.Sprintf("open + 4 KiB read + close, %d entries, warm", n), openReadClose(make([]byte, 4096))},
		{fmt.Sprintf("stat, %d entries, warm", n), statPath},
	}
	for _, o := range ops {
		logf("%s", o.what)
		var trials []trial
		for _, d := range dirs {
			trials = append(trials, fileTrial(ctx, d.name, d.dir, n, o.op))
		}
		s, err := b.interleave(false, trials...)
		if err != nil {
			return err
		}
		b.add(result{goal: "4", what: o.what, ffs: figure{s[0], "ops/s"}, baseName: "loopback", base: figure{s[1], "ops/s"},
			minRatio: 1, goalText: "≥ 1× loopback", jfs: jfsVariants(b.jfs, s[3:], "ops/s")})
		b.add(result{what: o.what, ffs: figure{s[0], "ops/s"}, baseName: "native", base: figure{s[2], "ops/s"}})
	}
	return nil
}

// lsLong runs ls -l on dir, output discarded, and returns the seconds taken.
func lsLong(ctx context.Context, dir string) (float64, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer devNull.Close()
	cmd := exec.CommandContext(ctx, "ls", "-l", dir)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devNull, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ls -l %s: %w: %s", dir, err, stderr.String())
	}
	return time.Since(start).Seconds(), nil
}

// listing: goal 5, warm: ls -l of the small symbol and of the big one,
// and each daemon's peak memory while the big one is listed.
func (b *bench) listing(ctx context.Context) error {
	lsTrial := func(name, dir string) trial {
		return trial{
			name: name,
			warm: func() error { _, err := lsLong(ctx, dir); return err },
			run:  func() (float64, error) { return lsLong(ctx, dir) },
		}
	}
	list := func(sym string) ([]sample, error) {
		trials := []trial{
			lsTrial("featurefs", filepath.Join(b.l.mntAuto, sym)),
			lsTrial("loopback", filepath.Join(b.l.mntLoop, sym)),
			lsTrial("native", filepath.Join(b.l.native, sym)),
		}
		trials = append(trials, jfsTrials(b.jfs, func(p peer) trial { return lsTrial("JuiceFS "+p.name, filepath.Join(p.mnt, sym)) })...)
		return b.interleave(false, trials...)
	}

	logf("ls -l of %d entries", b.cfg.small)
	s, err := list(smallSymbol)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("ls -l of a %d-entry symbol, warm", b.cfg.small)
	b.add(result{what: what, ffs: figure{s[0], "s"}, baseName: "loopback", base: figure{s[1], "s"}, lowerBetter: true,
		jfs: jfsVariants(b.jfs, s[3:], "s")})
	b.add(result{what: what, ffs: figure{s[0], "s"}, baseName: "native", base: figure{s[2], "s"}, lowerBetter: true})

	n := b.cfg.listing
	if n == 0 {
		return nil
	}
	servers := append([]string{"featurefs-auto", "loopback"}, b.jfsDaemons()...)
	for _, name := range servers {
		if err := b.ds.byName(name).resetPeak(); err != nil {
			return fmt.Errorf("reset peak RSS of %s: %w", name, err)
		}
	}
	logf("ls -l of %d entries", n)
	if s, err = list(listSymbol); err != nil {
		return err
	}
	what = fmt.Sprintf("ls -l of a %d-entry symbol, warm", n)
	b.add(result{goal: "5", what: what, ffs: figure{s[0], "s"}, baseName: "loopback", base: figure{s[1], "s"}, lowerBetter: true,
		minRatio: 1 / 1.5, goalText: "time ≤ 1.5× loopback", jfs: jfsVariants(b.jfs, s[3:], "s")})
	b.add(result{what: what, ffs: figure{s[0], "s"}, baseName: "native", base: figure{s[2], "s"}, lowerBetter: true})

	peaks := make([]sample, len(servers))
	for i, name := range servers {
		kib, err := b.ds.byName(name).peakSinceReset()
		if err != nil {
			return fmt.Errorf("peak RSS of %s: %w", name, err)
		}
		peaks[i] = sample{float64(kib) / 1024}
	}
	b.add(result{what: "↳ daemon peak RSS over these ls -l runs (VmHWM, reset before)", ffs: figure{peaks[0], "MiB"},
		baseName: "loopback", base: figure{peaks[1], "MiB"}, lowerBetter: true, jfs: jfsVariants(b.jfs, peaks[2:], "MiB")})
	return nil
}
