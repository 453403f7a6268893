package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

var errUsage = errors.New("usage")

// config is what one run measures and where.
type config struct {
	dir        string // work directory; "" means a temporary one, removed at the end
	size       int64  // target size of each of the two big parquet files
	small      int    // small entries for open/stat
	listing    int    // entries in the ls -l symbol; 0 skips that part
	huge       int64  // size of the sparse commit; 0 skips that part
	runs       int
	writers    int // concurrent writer processes for commits
	perWriter  int // files each writer commits per run
	fioIOs     int // random reads per fio run
	out        string
	smoke      bool
	juicefs    string          // the juicefs binary; "" skips JuiceFS
	noJuiceFS  string          // why JuiceFS is skipped, for the report
	parts      map[string]bool // parts to run by name; empty runs all
	args       []string        // as given, for the report
	featureDir string          // set by run: the module root
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		cfg     = config{args: args}
		size    = fs.String("size", "1GiB", "size of each big parquet file (snappy ticks, uncompressed cents)")
		huge    = fs.String("huge", "10GiB", "size of the sparse parquet whose commit is timed (0 skips)")
		listing = fs.Int("listing", 100000, "entries in the symbol listed with ls -l (0 skips; slow to build once)")
		parts   = fs.String("parts", "", "comma-separated parts to run ("+strings.Join(partNames, ", ")+"); default all")
	)
	fs.StringVar(&cfg.dir, "dir", "", "work directory; data files found there are reused (default: a temporary directory, removed afterwards)")
	fs.IntVar(&cfg.small, "small", 10000, "small entries (4-16 KiB) for open+read+close and stat")
	fs.IntVar(&cfg.runs, "runs", 5, "runs per figure (median shown with min-max)")
	fs.IntVar(&cfg.writers, "writers", 20, "concurrent writer processes in the commit test")
	fs.IntVar(&cfg.perWriter, "per-writer", 10, "1 MiB files each writer commits per run")
	fs.IntVar(&cfg.fioIOs, "fio-ios", 4096, "random 64 KiB reads per fio run")
	fs.StringVar(&cfg.out, "out", "", "also write the report to this file")
	fs.StringVar(&cfg.juicefs, "juicefs", "juicefs", "the juicefs binary, a path or a name on PATH; \"\" skips JuiceFS (skipped when absent, and in --smoke unless given)")
	fs.BoolVar(&cfg.smoke, "smoke", false, "CI mode: tiny sizes, one run, skip the huge commit and the big listing, judge nothing")
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errUsage
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.size, err = parseSize(*size); err != nil || cfg.size <= 0 {
		return cfg, fmt.Errorf("--size: want a positive size like 64MiB, got %q", *size)
	}
	if cfg.huge, err = parseSize(*huge); err != nil || cfg.huge < 0 {
		return cfg, fmt.Errorf("--huge: want a size like 10GiB or 0, got %q", *huge)
	}
	cfg.listing = *listing
	if *parts != "" {
		cfg.parts = map[string]bool{}
		for _, p := range strings.Split(*parts, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(partNames, p) {
				return cfg, fmt.Errorf("--parts: unknown part %q (known: %s)", p, strings.Join(partNames, ", "))
			}
			cfg.parts[p] = true
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.smoke {
		defaults := map[string]func(){
			"size":       func() { cfg.size = 8 << 20 },
			"small":      func() { cfg.small = 200 },
			"runs":       func() { cfg.runs = 1 },
			"listing":    func() { cfg.listing = 0 },
			"huge":       func() { cfg.huge = 0 },
			"per-writer": func() { cfg.perWriter = 1 },
			"fio-ios":    func() { cfg.fioIOs = 64 },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	switch {
	case cfg.juicefs == "":
		cfg.noJuiceFS = "--juicefs \"\" was given"
	case cfg.smoke && !set["juicefs"]:
		cfg.juicefs, cfg.noJuiceFS = "", "--smoke runs without it unless --juicefs is given"
	default:
		path, err := exec.LookPath(cfg.juicefs)
		if err == nil {
			path, err = filepath.Abs(path)
		}
		if err != nil {
			cfg.juicefs, cfg.noJuiceFS = "", fmt.Sprintf("no juicefs binary (%v); build one from its tagged source release with go build and pass --juicefs PATH", err)
		} else {
			cfg.juicefs = path
		}
	}
	if cfg.runs < 1 || cfg.small < 1 || cfg.writers < 1 || cfg.perWriter < 1 || cfg.fioIOs < 1 || cfg.listing < 0 {
		return cfg, fmt.Errorf("--runs, --small, --writers, --per-writer and --fio-ios must be positive, --listing not negative")
	}
	return cfg, nil
}

// command is how to rerun this configuration.
func (c config) command() string {
	parts := []string{"go", "run", "./bench"}
	for _, a := range c.args {
		if strings.ContainsAny(a, " \t'\"$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// parseSize reads sizes like 64MiB, 1GiB, 10G or 4096 (binary units).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// logf narrates the run on stderr; the report goes to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// partNames are the parts of a run, in the order they run (see run).
var partNames = []string{"seq", "random", "small", "listing", "commits", "cp", "huge", "duckdb", "scan"}
