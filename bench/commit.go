package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// spawnWriters starts one writer process per argument list at once and
// returns the wall time until the last finished, every close latency in
// seconds and how many closes a signal interrupted.
func spawnWriters(ctx context.Context, argLists [][]string) (time.Duration, sample, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, 0, err
	}
	cmds := make([]*exec.Cmd, len(argLists))
	outs := make([]*bytes.Buffer, len(argLists))
	errs := make([]*bytes.Buffer, len(argLists))
	for i, args := range argLists {
		cmds[i] = exec.CommandContext(ctx, exe, append([]string{writerCommand}, args...)...)
		outs[i], errs[i] = &bytes.Buffer{}, &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], errs[i]
		// No asynchronous preemption signals: like cp, a writer is not
		// interrupted while close(2) waits for the commit.
		cmds[i].Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	}
	start := time.Now()
	var failed []error
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			failed = append(failed, err)
			cmds[i] = nil
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if err := c.Wait(); err != nil {
			failed = append(failed, fmt.Errorf("writer %d: %w: %s", i, err, errs[i].String()))
		}
	}
	elapsed := time.Since(start)
	if len(failed) > 0 {
		return 0, nil, 0, errors.Join(failed...)
	}
	var lat sample
	eintr := 0
	for _, out := range outs {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == interrupted {
				eintr++
				continue
			}
			ns, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				return 0, nil, 0, fmt.Errorf("writer output %q: %w", sc.Text(), err)
			}
			lat = append(lat, float64(ns)/1e9)
		}
	}
	return elapsed, lat, eintr, nil
}

// emptyDir removes the files in dir (the untimed clean-up between runs).
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// commits: goal 6. Each run, every writer process commits its files of
// 1 MiB; the native side writes the same files with fsync before close.
func (b *bench) commits(ctx context.Context) error {
	l, procs, per := b.l, b.cfg.writers, b.cfg.perWriter
	src := filepath.Join(l.src, commitSource)
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	ffsDir, natDir := filepath.Join(l.mntAuto, "commits"), filepath.Join(l.scratch, "commits")
	for _, d := range []string{ffsDir, natDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// JuiceFS: its default mount; the cache timeouts do not change a write.
	jfs := b.jfs[:min(1, len(b.jfs))]
	var jfsDirs []string
	for _, p := range jfs {
		d := filepath.Join(p.mnt, "commits")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		jfsDirs = append(jfsDirs, d)
	}
	var ffsLat, natLat sample
	jfsLat := make([]sample, len(jfs))
	eintr := map[string]int{}
	commitTrial := func(name, dir string, fsync bool, lat *sample) trial {
		return trial{name: name, run: func() (float64, error) {
			var argLists [][]string
			for p := range procs {
				args := []string{"-src", src, "-dir", dir, "-prefix", fmt.Sprintf("w%02d", p), "-n", strconv.Itoa(per)}
				if fsync {
					args = append(args, "-fsync")
				}
				argLists = append(argLists, args)
			}
			syscall.Sync() // start from a clean page cache, not another run's write-back
			d, lats, n, err := spawnWriters(ctx, argLists)
			if err != nil {
				return 0, err
			}
			*lat = append(*lat, lats...)
			eintr[name] += n
			return float64(int64(procs*per)*fi.Size()) / d.Seconds() / 1e6, emptyDir(dir)
		}}
	}
	trials := []trial{
		commitTrial("featurefs", ffsDir, false, &ffsLat),
		commitTrial("native", natDir, true, &natLat),
	}
	for i, p := range jfs {
		trials = append(trials, commitTrial("JuiceFS "+p.name, jfsDirs[i], false, &jfsLat[i]))
	}
	logf("commits: %d processes × %d files of 1 MiB", procs, per)
	s, err := b.interleave(false, trials...)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("commits: %d processes × %d files of %.1f MiB, throughput", procs, per, float64(fi.Size())/(1<<20))
	b.add(result{goal: "6", what: what, ffs: figure{s[0], "MB/s"}, baseName: "native write+fsync", base: figure{s[1], "MB/s"},
		minRatio: 0.5, goalText: "≥ 0.5× native", jfs: jfsVariants(jfs, s[2:], "MB/s")})
	for name, n := range eintr {
		if n > 0 {
			b.notes = append(b.notes, fmt.Sprintf("commits: %d close(2) calls to %s failed with EINTR (not counted as committed).", n, name))
		}
	}
	for _, pc := range []float64{50, 99} {
		var jv []variant
		for i, p := range jfs {
			jv = append(jv, variant{p.name, figure{sample{percentile(jfsLat[i], pc) * 1e3}, "ms"}})
		}
		b.add(result{what: fmt.Sprintf("↳ close latency p%.0f (featurefs close vs native fsync+close)", pc),
			ffs: figure{sample{percentile(ffsLat, pc) * 1e3}, "ms"}, baseName: "native",
			base: figure{sample{percentile(natLat, pc) * 1e3}, "ms"}, lowerBetter: true, jfs: jv})
	}
	return nil
}

// copyBig: goal 7, cp of the big snappy file into the mount against cp and
// sync FILE (fsync) to the native disk. The source is warm.
func (b *bench) copyBig(ctx context.Context) error {
	l := b.l
	src := filepath.Join(l.native, ticksEntry)
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	ffsDir, natDir := filepath.Join(l.mntAuto, "copies"), filepath.Join(l.scratch, "copies")
	for _, d := range []string{ffsDir, natDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	cpTrial := func(name, dir string, fsync bool) trial {
		dst := filepath.Join(dir, "copy.parquet")
		return trial{
			name: name,
			warm: func() error { _, _, err := readFile(ctx, src); return err },
			run: func() (float64, error) {
				syscall.Sync()
				start := time.Now()
				steps := [][]string{{"cp", src, dst}}
				if fsync {
					steps = append(steps, []string{"sync", dst})
				}
				for _, argv := range steps {
					if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
						return 0, fmt.Errorf("%v: %w: %s", argv, err, out)
					}
				}
				d := time.Since(start)
				return float64(fi.Size()) / d.Seconds() / 1e6, os.Remove(dst)
			},
		}
	}
	trials := []trial{cpTrial("featurefs", ffsDir, false), cpTrial("native", natDir, true)}
	jfs := b.jfs[:min(1, len(b.jfs))]
	for _, p := range jfs {
		d := filepath.Join(p.mnt, "copies")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		trials = append(trials, cpTrial("JuiceFS "+p.name, d, false))
	}
	logf("cp of the %.0f MiB snappy file", float64(fi.Size())/(1<<20))
	s, err := b.interleave(false, trials...)
	if err != nil {
		return err
	}
	b.add(result{goal: "7", what: fmt.Sprintf("cp of the %.0f MiB snappy file into the mount", float64(fi.Size())/(1<<20)),
		ffs: figure{s[0], "MB/s"}, baseName: "native cp+fsync", base: figure{s[1], "MB/s"},
		minRatio: 0.7, goalText: "≥ 0.7× native", jfs: jfsVariants(jfs, s[2:], "MB/s")})
	return nil
}

// hugeCommit: goal 8, close time of a sparse huge parquet against a real
// ~100 MiB one (the huge file's head), both committed through the mount.
func (b *bench) hugeCommit(ctx context.Context) error {
	l := b.l
	src := filepath.Join(l.native, headEntry)
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	dir := filepath.Join(l.mntAuto, "huge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	closeTrial := func(name, dir string, size int64) trial {
		return trial{name: name, run: func() (float64, error) {
			args := []string{"-src", src, "-dir", dir, "-prefix", name}
			if size > 0 {
				args = append(args, "-size", strconv.FormatInt(size, 10))
			}
			syscall.Sync()
			_, lat, eintr, err := spawnWriters(ctx, [][]string{args})
			if err != nil {
				return 0, err
			}
			if eintr > 0 {
				return 0, fmt.Errorf("close of the %s file: %w", name, syscall.EINTR)
			}
			path := filepath.Join(dir, name+"-0.parquet")
			st, err := os.Stat(path)
			if err != nil {
				return 0, err
			}
			if want := max(size, fi.Size()); st.Size() != want {
				return 0, fmt.Errorf("%s: committed %d bytes, wrote %d", path, st.Size(), want)
			}
			return lat[0] * 1e3, os.Remove(path)
		}}
	}
	logf("commit of a %s sparse parquet vs a %.0f MiB one", sizeName(b.cfg.huge), float64(fi.Size())/(1<<20))
	trials := []trial{closeTrial("huge", dir, b.cfg.huge), closeTrial("head", dir, 0)}
	jfs := b.jfs[:min(1, len(b.jfs))]
	for _, p := range jfs {
		d := filepath.Join(p.mnt, "huge")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		trials = append(trials, closeTrial("huge", d, b.cfg.huge))
	}
	s, err := b.interleave(false, trials...)
	if err != nil {
		return err
	}
	b.add(result{goal: "8", what: fmt.Sprintf("close() of a %s parquet commit (sparse, written through the mount)", sizeName(b.cfg.huge)),
		ffs: figure{s[0], "ms"}, baseName: fmt.Sprintf("close() of a %.0f MiB one", float64(fi.Size())/(1<<20)), base: figure{s[1], "ms"},
		lowerBetter: true, minRatio: 1 / 1.5, goalText: "≈ (within 1.5×)", jfs: jfsVariants(jfs, s[2:], "ms")})
	b.notes = append(b.notes, fmt.Sprintf("The %s parquet is the %.0f MiB file's bytes up to its footer, a hole, then the same footer at the end: "+
		"the footer's offsets still point at the column chunks in the head, so it is valid parquet (PAR1 at both ends, footer parses). "+
		"It is written through the mount by a writer process that seeks over the hole; close(2) is timed.", sizeName(b.cfg.huge), float64(fi.Size())/(1<<20)))
	return nil
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
