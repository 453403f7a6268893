package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
)

// JuiceFS is the peer that, like featurefs, keeps metadata in a database
// and file data elsewhere: here SQLite and a local file bucket, so no
// network is involved. One volume stores blocks plain (the raw rows), one
// with zstd (the compressed rows). The plain volume is mounted twice: with
// JuiceFS's defaults, and with its kernel and open caches set to featurefs's
// own timeouts. Each mount keeps its own cache directory across runs, as a
// user's would; cold runs drop only the page cache.

// peer is one mount of another filesystem that figures read.
type peer struct {
	name string // as the report shows it
	mnt  string
}

// jfsVolume is one formatted JuiceFS volume.
type jfsVolume struct {
	name     string
	compress string // juicefs format --compress
}

var (
	jfsPlain = jfsVolume{"jfsplain", "none"}
	jfsZstd  = jfsVolume{"jfszstd", "zstd"}
)

// jfsCachedFlags are featurefs's defaults in JuiceFS's terms: names and
// directory attributes cached 60 s, file attributes 1 s (featurefs keeps
// them short so that stat shows access times as they move), and an opened
// file's metadata reused for 60 s (featurefs's versions are immutable, so
// it keeps the page cache of an entry across opens).
var jfsCachedFlags = []string{"--entry-cache", "60", "--dir-entry-cache", "60", "--attr-cache", "1", "--open-cache", "60"}

func (b *bench) jfsMeta(v jfsVolume) string {
	return "sqlite3://" + filepath.Join(b.l.jfs, v.name+".db")
}

// jfsFormat formats v once; a volume already formatted is kept with its data.
func (b *bench) jfsFormat(ctx context.Context, v jfsVolume) error {
	if _, err := os.Stat(filepath.Join(b.l.jfs, v.name+".db")); err == nil {
		return nil
	}
	if err := os.MkdirAll(b.l.jfs, 0o755); err != nil {
		return err
	}
	logf("formatting JuiceFS volume %s (compress %s)", v.name, v.compress)
	// The bucket path must end in a slash: JuiceFS keeps the volume's
	// objects under <bucket>/<name>/.
	out, err := exec.CommandContext(ctx, b.cfg.juicefs, "--no-agent", "format",
		"--storage", "file", "--bucket", filepath.Join(b.l.jfs, "bucket")+"/",
		"--compress", v.compress, b.jfsMeta(v), v.name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("juicefs format %s: %w: %s", v.name, err, out)
	}
	return nil
}

// jfsMountArgv mounts v at mnt in the foreground with its own cache
// directory. --no-usage-report and --no-agent keep it off the network
// (its usage report, its pprof port); --no-bgjob stops its periodic
// metadata backup and trash clean-up from landing inside a timed run.
func (b *bench) jfsMountArgv(v jfsVolume, name, mnt string, extra ...string) []string {
	argv := []string{b.cfg.juicefs, "--no-agent", "mount", "--no-usage-report", "--no-syslog", "--no-bgjob",
		"--cache-dir", filepath.Join(b.l.jfs, "cache-"+name)}
	argv = append(argv, extra...)
	return append(argv, b.jfsMeta(v), mnt)
}

// mountJuiceFS formats and mounts the JuiceFS volumes and copies the native
// tree's files in through the mounts, the way a user would fill it.
func (b *bench) mountJuiceFS(ctx context.Context) error {
	if b.cfg.juicefs == "" {
		b.notes = append(b.notes, "JuiceFS: skipped: "+b.cfg.noJuiceFS+".")
		return nil
	}
	version, err := exec.CommandContext(ctx, b.cfg.juicefs, "--version").Output()
	if err != nil {
		return fmt.Errorf("juicefs --version: %w", err)
	}
	for _, v := range []jfsVolume{jfsPlain, jfsZstd} {
		if err := b.jfsFormat(ctx, v); err != nil {
			return err
		}
	}
	mounts := []struct {
		name, dir string
		v         jfsVolume
		extra     []string
	}{
		{"juicefs", b.l.mntJFS, jfsPlain, nil},
		{"juicefs-cached", b.l.mntJFSCached, jfsPlain, jfsCachedFlags},
		{"juicefs-zstd", b.l.mntJFSZstd, jfsZstd, nil},
	}
	for _, m := range mounts {
		logf("mounting %s", m.name)
		d, err := b.ds.start(ctx, m.name, m.dir, b.jfsMountArgv(m.v, m.name, m.dir, m.extra...)...)
		if err != nil {
			return err
		}
		// The process started is JuiceFS's supervisor; its one child serves.
		d.supervised = true
	}
	symbols := []string{"ticks", smallSymbol, scanSymbol}
	if b.cfg.listing > 0 {
		symbols = append(symbols, listSymbol)
	}
	plain, err := nativeEntries(b.l.native, symbols...)
	if err != nil {
		return err
	}
	if err := b.jfsSeed(ctx, b.l.mntJFS, jfsPlain, plain); err != nil {
		return err
	}
	cents, err := nativeEntries(b.l.native, "cents")
	if err != nil {
		return err
	}
	if err := b.jfsSeed(ctx, b.l.mntJFSZstd, jfsZstd, cents); err != nil {
		return err
	}
	b.jfs = []peer{{"default", b.l.mntJFS}, {"60 s caches", b.l.mntJFSCached}}
	b.jfsZstd = []peer{{"zstd volume", b.l.mntJFSZstd}}
	b.notes = append(b.notes, fmt.Sprintf("JuiceFS: %s, SQLite metadata, local file bucket, one volume stored plain and one with `--compress zstd`, "+
		"mounted with its defaults (plus `--no-usage-report --no-agent --no-syslog --no-bgjob` and a cache directory of its own) and, as \"60 s caches\", "+
		"with `%s` (featurefs's own: names and directory attributes 60 s, file attributes 1 s, immutable entries kept in the page cache across opens). "+
		"Its cache directories are kept across runs; cold runs drop only the page cache. Files were copied in through the mount, without fsync. "+
		"A JuiceFS close writes the blocks into the file bucket (written and renamed, no fsync) and commits metadata to SQLite in WAL mode at the driver's synchronous=NORMAL: "+
		"unlike featurefs's, it is not durable against power loss, so the write figures (6-8) compare unequal guarantees.",
		strings.TrimSpace(string(version)), strings.Join(jfsCachedFlags, " ")))
	return nil
}

// jfsSeed copies entries into the mount at mnt unless a previous run did.
func (b *bench) jfsSeed(ctx context.Context, mnt string, v jfsVolume, entries []seedEntry) error {
	marker := filepath.Join(b.l.jfs, v.name+".seeded")
	want := seedSignature("juicefs "+v.name, entries)
	if have, err := os.ReadFile(marker); err == nil && string(have) == want {
		return nil
	}
	logf("copying %d files into %s", len(entries), v.name)
	syms := map[string]bool{}
	for _, e := range entries {
		syms[e.symbol] = true
	}
	for sym := range syms {
		// A different earlier set: start the symbol again.
		if err := os.RemoveAll(filepath.Join(mnt, sym)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(mnt, sym), 0o755); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, e := range entries {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return copyFile(e.src, filepath.Join(mnt, e.symbol, e.key+".parquet"))
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(want), 0o644)
}

// copyFile copies src to dst as cp does: write, then close.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dst, err)
	}
	return nil
}

// jfsVariants names the JuiceFS figures of a row: one per peer, in order.
func jfsVariants(peers []peer, s []sample, unit string) []variant {
	var out []variant
	for i, p := range peers {
		out = append(out, variant{p.name, figure{s[i], unit}})
	}
	return out
}

// jfsDaemons names the daemons of the plain volume's mounts, as b.jfs.
func (b *bench) jfsDaemons() []string {
	if len(b.jfs) == 0 {
		return nil
	}
	return []string{"juicefs", "juicefs-cached"}
}

// jfsTrials is one trial per peer.
func jfsTrials(peers []peer, mk func(p peer) trial) []trial {
	var out []trial
	for _, p := range peers {
		out = append(out, mk(p))
	}
	return out
}
