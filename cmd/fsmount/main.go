// Command fsmount mounts a featurefs cache and maintains it.
//
//	fsmount mount  [flags] MOUNTPOINT   serve the cache until unmounted or signalled
//	fsmount gc     [flags]              one GC run on a cache root, mounted or not
//	fsmount stats  [flags]              cache overview
//	fsmount verify [flags] [--deep]     integrity report; exit 1 on issues
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/gc"
	"featurefs/manifest"
)

// Exit codes shared by every command.
const (
	exitOK     = 0
	exitIssues = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{"args": args}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "fsmount:", msg)
		}
		return exit.ExitCode()
	}
	fmt.Fprintln(stderr, "fsmount:", err)
	return exitIssues
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "fsmount",
		Usage:     "a feature cache as a FUSE filesystem",
		Writer:    stdout,
		ErrWriter: stderr,
		// The library's version flag prints only a string; ours says what
		// the binary was built from.
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the version and the commit fsmount was built from"},
		},
		Action: rootAction,
		Commands: []*cli.Command{
			mountCommand(),
			gcCommand(),
			statsCommand(),
			verifyCommand(),
		},
		// Usage errors exit 2, distinct from 1 (issues found) and 0.
		OnUsageError: commandUsageError,
		// Errors are printed once, by run.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// rootAction runs when no command is named: --version, help, or (with
// arguments) an unknown command, which is a usage error like any other
// rather than the library's exit 3 for a missing help topic.
func rootAction(c *cli.Context) error {
	if c.Bool("version") {
		fmt.Fprintln(c.App.Writer, versionString())
		return nil
	}
	if c.NArg() > 0 {
		_ = cli.ShowAppHelp(c)
		return usageError("no command %q (want mount, gc, stats or verify)", c.Args().First())
	}
	return cli.ShowAppHelp(c)
}

// usageError reports a bad flag value or argument with exit code 2.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

// Flags shared by several commands.

func cacheRootFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "cache-root",
		Usage:   "directory holding manifest.db and the blobs",
		EnvVars: []string{"FEATURE_STORE_PATH"},
		Value:   "~/.feature_cache",
	}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Usage: "log debug detail"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON instead of text (logs too)"}
}

func outputJSONFlag() cli.Flag {
	return &cli.StringFlag{Name: "output-json", Usage: "also write the report as JSON to `FILE`"}
}

func retentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "retention", Usage: "delete entries not accessed for this long (overrides --retention-weeks)"},
		&cli.Float64Flag{
			Name:    "retention-weeks",
			Usage:   "retention in weeks",
			EnvVars: []string{"FEATURE_STORE_GC_RETENTION_WEEKS"},
			Value:   float64(gc.DefaultRetention / week),
		},
		&cli.StringFlag{Name: "max-size", Usage: "evict least recently accessed entries until the stored bytes fit (K/M/G/T suffixes; 0 = no cap)", Value: "0"},
		&cli.DurationFlag{Name: "orphan-grace", Usage: "leave unreferenced blobs and staging files younger than this", Value: gc.DefaultOrphanGrace},
	}
}

// retention resolves --retention and --retention-weeks.
func retention(c *cli.Context) (time.Duration, error) {
	if c.IsSet("retention") {
		d := c.Duration("retention")
		if d <= 0 {
			return 0, usageError("--retention must be positive, got %s", d)
		}
		return d, nil
	}
	w := c.Float64("retention-weeks")
	if w <= 0 {
		return 0, usageError("--retention-weeks must be positive, got %v", w)
	}
	return time.Duration(w * float64(week)), nil
}

const week = 7 * 24 * time.Hour

// maxSize parses --max-size.
func maxSize(c *cli.Context) (int64, error) {
	n, err := parseSize(c.String("max-size"))
	if err != nil {
		return 0, usageError("--max-size: %v", err)
	}
	return n, nil
}

// parseSize parses a byte count with an optional K, M, G or T suffix (powers
// of 1024, an optional trailing "B" or "iB").
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want a byte count like 500M or 2G)", s)
	}
	return int64(n * float64(mult)), nil
}

// humanSize writes n as parseSize reads it, exactly (100MiB, 4GiB), so a
// flag's shown default is the package's constant.
func humanSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// cacheRoot resolves --cache-root, expanding a leading ~.
func cacheRoot(c *cli.Context) (string, error) {
	root := c.String("cache-root")
	if root == "~" || strings.HasPrefix(root, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", root, err)
		}
		root = filepath.Join(home, root[1:])
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", root, err)
	}
	return abs, nil
}

// newLogger logs to stderr, as JSON with --json, at debug level with --verbose.
func newLogger(c *cli.Context) *slog.Logger {
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Bool("json") {
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts))
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts))
}

// cache is an opened cache root.
type openedCache struct {
	*cache.Cache
	root  string
	db    *manifest.DB
	store *blobstore.Store
}

// openCache opens the cache root the flags name (cache.Open), creating it
// when create is set (mount) and refusing a missing one otherwise.
func openCache(c *cli.Context, create bool, mopts manifest.Options, bopts blobstore.Options) (*openedCache, error) {
	return openCacheWith(c, cache.Options{Create: create, Manifest: mopts, Blobs: bopts})
}

func openCacheWith(c *cli.Context, opts cache.Options) (*openedCache, error) {
	root, err := cacheRoot(c)
	if err != nil {
		return nil, err
	}
	oc, err := cache.Open(c.Context, root, opts)
	if err != nil {
		return nil, err
	}
	return &openedCache{Cache: oc, root: oc.Root(), db: oc.DB(), store: oc.Blobs()}, nil
}
