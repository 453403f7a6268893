package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The second query engine is Polars (its Node.js package, from bench/scan:
// npm ci there). Its lazy scan expands the glob itself and reads the files
// with its own parquet reader, unlike DuckDB.
const polarsScanJS = `
import pl from 'nodejs-polars';
const glob = process.argv[1];
const q = () => pl.scanParquet(glob)
  .select(pl.col('price').count().alias('n'), pl.col('price').mean().alias('avg'))
  .collect();
await q();
const t0 = performance.now();
const df = await q();
const ms = performance.now() - t0;
console.log(JSON.stringify({ ms, rows: df.rows() }));
`

// polarsDir is where the Polars package is installed, "" if it is not.
func polarsDir(module string) string {
	dir := filepath.Join(module, "bench", "scan")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "nodejs-polars")); err != nil {
		return ""
	}
	return dir
}

// polarsTimed is the warm time of the scan of glob in seconds, and its
// result rows.
func polarsTimed(ctx context.Context, dir, glob string) (float64, string, error) {
	cmd := exec.CommandContext(ctx, "node", "--input-type=module", "-e", polarsScanJS, "--", glob)
	cmd.Dir = dir // bare imports resolve from the working directory's node_modules
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("polars scan %s: %w: %s", glob, err, stderr.String())
	}
	var out struct {
		MS   float64         `json:"ms"`
		Rows json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return 0, "", fmt.Errorf("polars output %q: %w", stdout.String(), err)
	}
	return out.MS / 1e3, string(out.Rows), nil
}

// scan: Polars's count and mean of price over the scan glob, warm (each
// timed scan follows an untimed one in the same process).
func (b *bench) scan(ctx context.Context) error {
	dir := polarsDir(b.cfg.featureDir)
	if dir == "" {
		b.notes = append(b.notes, "scan: skipped: Polars is not installed (npm ci in bench/scan).")
		return nil
	}
	answers := map[string]string{}
	scanTrial := func(name, root string) trial {
		return trial{name: name, run: func() (float64, error) {
			secs, rows, err := polarsTimed(ctx, dir, filepath.Join(root, scanGlob))
			answers[name] = rows
			return secs * 1e3, err
		}}
	}
	trials := []trial{scanTrial("featurefs", b.l.mntAuto), scanTrial("native", b.l.native)}
	trials = append(trials, jfsTrials(b.jfs, func(p peer) trial { return scanTrial("JuiceFS "+p.name, p.mnt) })...)
	logf("Polars scan of %s", scanGlob)
	s, err := b.interleave(false, trials...)
	if err != nil {
		return err
	}
	for name, rows := range answers {
		if !sameAnswer(rows, answers["native"]) {
			return fmt.Errorf("polars answers differ: %s %s, native %s", name, rows, answers["native"])
		}
	}
	b.add(result{what: fmt.Sprintf("Polars `scanParquet` count + mean(price) over `%s` (%d files of 1 MiB), warm", scanGlob, scanFiles),
		ffs: figure{s[0], "ms"}, baseName: "native", base: figure{s[1], "ms"}, lowerBetter: true,
		jfs: jfsVariants(b.jfs, s[2:], "ms")})
	return nil
}
