package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// readFile reads path start to end in 1 MiB reads, as cat does, and
// returns the bytes read and the time taken.
func readFile(ctx context.Context, path string) (int64, time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, 0, err
		}
		n, err := f.Read(buf)
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, 0, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return total, time.Since(start), nil
}

// seqTrial reads path sequentially, in GB/s; warming reads it once.
func seqTrial(ctx context.Context, name, path string) trial {
	return trial{
		name: name,
		warm: func() error { _, _, err := readFile(ctx, path); return err },
		run: func() (float64, error) {
			n, d, err := readFile(ctx, path)
			return float64(n) / d.Seconds() / 1e9, err
		},
	}
}

// seqReads: goals 1 and 2.
func (b *bench) seqReads(ctx context.Context) error {
	l := b.l
	rawFFS := seqTrial(ctx, "featurefs", filepath.Join(l.mntAuto, ticksEntry))
	rawNative := seqTrial(ctx, "native", filepath.Join(l.native, ticksEntry))
	zstdFFS := seqTrial(ctx, "featurefs", filepath.Join(l.mntZstd, centsEntry))
	zstdNative := seqTrial(ctx, "native", filepath.Join(l.native, centsEntry))
	squash := seqTrial(ctx, "squashfuse", filepath.Join(l.mntSquash, filepath.Base(centsEntry)))
	const unit = "GB/s"
	// JuiceFS reads the raw file from its plain volume, the cents file
	// from its zstd one.
	jfsSeq := append(
		jfsTrials(b.jfs, func(p peer) trial { return seqTrial(ctx, "JuiceFS "+p.name, filepath.Join(p.mnt, ticksEntry)) }),
		jfsTrials(b.jfsZstd, func(p peer) trial { return seqTrial(ctx, "JuiceFS "+p.name, filepath.Join(p.mnt, centsEntry)) })...)
	nr := len(b.jfs)

	logf("sequential reads, warm")
	s, err := b.interleave(false, append([]trial{rawFFS, rawNative, zstdFFS, zstdNative}, jfsSeq...)...)
	if err != nil {
		return err
	}
	j := s[4:]
	b.add(result{goal: "1", what: "seq read raw entry (snappy), warm", ffs: figure{s[0], unit}, baseName: "native", base: figure{s[1], unit},
		minRatio: 0.9, goalText: "≥ 0.9× native", jfs: jfsVariants(b.jfs, j[:nr], unit)})
	b.add(result{goal: "2", what: "seq read zstd entry (cents), warm", ffs: figure{s[2], unit}, baseName: "native", base: figure{s[3], unit},
		minRatio: 0.8, goalText: "≥ 0.8× native", jfs: jfsVariants(b.jfsZstd, j[nr:], unit)})

	logf("sequential reads, cold")
	s, err = b.interleave(true, append([]trial{rawFFS, rawNative, zstdFFS, squash, zstdNative}, jfsSeq...)...)
	if err != nil {
		return err
	}
	j = s[5:]
	b.add(result{goal: "1", what: "seq read raw entry (snappy), cold", ffs: figure{s[0], unit}, baseName: "native", base: figure{s[1], unit},
		minRatio: 0.9, goalText: "≥ 0.9× native", jfs: jfsVariants(b.jfs, j[:nr], unit)})
	b.add(result{goal: "2", what: "seq read zstd entry (cents), cold", ffs: figure{s[2], unit}, baseName: "squashfuse", base: figure{s[3], unit},
		minRatio: 2, goalText: "≥ 2× squashfuse", jfs: jfsVariants(b.jfsZstd, j[nr:], unit)})
	b.add(result{what: "seq read zstd entry (cents), cold", ffs: figure{s[2], unit}, baseName: "native", base: figure{s[4], unit}})
	return nil
}
