package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
)

// fioRun is one fio job's outcome.
type fioRun struct {
	iops          float64
	meanMS, p99MS float64
}

// runFio does ios random 64 KiB reads of path with psync through the page
// cache. The offsets repeat from run to run and target to target
// (randrepeat), so every target reads the same blocks.
func runFio(ctx context.Context, path string, ios int) (fioRun, error) {
	cmd := exec.CommandContext(ctx, "fio",
		"--name=rand64k", "--filename="+path, "--readonly",
		"--rw=randread", "--bs=64k", "--ioengine=psync", "--direct=0",
		"--invalidate=0", // the run drops the page cache itself
		"--randrepeat=1", "--io_size="+strconv.Itoa(ios*64<<10),
		"--output-format=json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fioRun{}, fmt.Errorf("fio %s: %w: %s", path, err, stderr.String())
	}
	var out struct {
		Jobs []struct {
			Read struct {
				IOPS float64 `json:"iops"`
				Clat struct {
					Mean       float64            `json:"mean"`
					Percentile map[string]float64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	// fio may print notices before the JSON.
	js := stdout.Bytes()
	if i := bytes.IndexByte(js, '{'); i > 0 {
		js = js[i:]
	}
	if err := json.Unmarshal(js, &out); err != nil || len(out.Jobs) == 0 {
		return fioRun{}, fmt.Errorf("fio %s: unreadable output: %v", path, err)
	}
	r := out.Jobs[0].Read
	return fioRun{iops: r.IOPS, meanMS: r.Clat.Mean / 1e6, p99MS: r.Clat.Percentile["99.000000"] / 1e6}, nil
}

// fioTrial runs fio on path and keeps the latencies of each run.
func fioTrial(ctx context.Context, name, path string, ios int, lat *[2]sample) trial {
	return trial{
		name: name,
		run: func() (float64, error) {
			r, err := runFio(ctx, path, ios)
			lat[0] = append(lat[0], r.meanMS)
			lat[1] = append(lat[1], r.p99MS)
			return r.iops, err
		},
	}
}

// randomReads: goal 3, cold.
func (b *bench) randomReads(ctx context.Context) error {
	l, ios := b.l, b.cfg.fioIOs
	var lat [4][2]sample
	// JuiceFS: the zstd volume's cents file, then each plain mount's raw file.
	jfsPeers := append(slices.Clone(b.jfsZstd), b.jfs...)
	jfsLat := make([][2]sample, len(jfsPeers))
	trials := []trial{
		fioTrial(ctx, "featurefs zstd", filepath.Join(l.mntZstd, centsEntry), ios, &lat[0]),
		fioTrial(ctx, "squashfuse", filepath.Join(l.mntSquash, filepath.Base(centsEntry)), ios, &lat[1]),
		fioTrial(ctx, "featurefs raw", filepath.Join(l.mntAuto, ticksEntry), ios, &lat[2]),
		fioTrial(ctx, "native", filepath.Join(l.native, ticksEntry), ios, &lat[3]),
	}
	for i, p := range jfsPeers {
		entry := ticksEntry
		if i < len(b.jfsZstd) {
			entry = centsEntry
		}
		trials = append(trials, fioTrial(ctx, "JuiceFS "+p.name, filepath.Join(p.mnt, entry), ios, &jfsLat[i]))
	}
	logf("random 64 KiB reads with fio, cold")
	s, err := b.interleave(true, trials...)
	if err != nil {
		return err
	}
	nz := len(b.jfsZstd)
	iops := func(peers []peer, from int) []variant { return jfsVariants(peers, s[4+from:], "IOPS") }
	lats := func(peers []peer, from, k int) []variant {
		var v []variant
		for i, p := range peers {
			v = append(v, variant{p.name, figure{jfsLat[from+i][k], "ms"}})
		}
		return v
	}
	what := fmt.Sprintf("random 64 KiB reads (fio psync, %d ios), cold", ios)
	b.add(result{goal: "3", what: what + ", zstd entry", ffs: figure{s[0], "IOPS"}, baseName: "squashfuse", base: figure{s[1], "IOPS"},
		minRatio: 1, goalText: "≥ 1× squashfuse", jfs: iops(b.jfsZstd, 0)})
	b.add(result{what: "↳ mean latency", ffs: figure{lat[0][0], "ms"}, baseName: "squashfuse", base: figure{lat[1][0], "ms"}, lowerBetter: true,
		jfs: lats(b.jfsZstd, 0, 0)})
	b.add(result{what: "↳ p99 latency", ffs: figure{lat[0][1], "ms"}, baseName: "squashfuse", base: figure{lat[1][1], "ms"}, lowerBetter: true,
		jfs: lats(b.jfsZstd, 0, 1)})
	b.add(result{goal: "3", what: what + ", raw entry", ffs: figure{s[2], "IOPS"}, baseName: "native", base: figure{s[3], "IOPS"},
		minRatio: 0.9, goalText: "≥ 0.9× native", jfs: iops(b.jfs, nz)})
	b.add(result{what: "↳ mean latency", ffs: figure{lat[2][0], "ms"}, baseName: "native", base: figure{lat[3][0], "ms"}, lowerBetter: true,
		jfs: lats(b.jfs, nz, 0)})
	b.add(result{what: "↳ p99 latency", ffs: figure{lat[2][1], "ms"}, baseName: "native", base: figure{lat[3][1], "ms"}, lowerBetter: true,
		jfs: lats(b.jfs, nz, 1)})
	return nil
}
