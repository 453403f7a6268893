package main

// Helpers shared by the gc, stats and verify commands.

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/manifest"
)

// commandUsageError makes a subcommand's flag errors (unknown flag, bad
// value, unparsable environment variable) exit 2. urfave/cli applies the
// app's OnUsageError to the root command only.
func commandUsageError(_ *cli.Context, err error, _ bool) error {
	return cli.Exit(err.Error(), exitUsage)
}

// cliManifestOptions opens the manifest for a short-lived maintenance
// command: it records no accesses, so it needs no background flusher.
func cliManifestOptions(log *slog.Logger) manifest.Options {
	return manifest.Options{AccessFlushInterval: -1, Logger: log}
}

// emit writes v as JSON to the --output-json file when one is given, then
// prints v to stdout: as JSON with --json, else as text.
func emit(c *cli.Context, v any, text func(io.Writer)) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	data = append(data, '\n')
	if path := c.String("output-json"); path != "" {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("--output-json: %w", err)
		}
	}
	if c.Bool("json") {
		_, err := c.App.Writer.Write(data)
		return err
	}
	text(c.App.Writer)
	return nil
}

// table prints aligned "label  value" rows.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) table { return table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

func (t table) row(label, value string) { fmt.Fprintf(t.tw, "%s\t%s\n", label, value) }

func (t table) flush() { _ = t.tw.Flush() }

// humanBytes formats n in binary units: 512 B, 1.5 KiB, 20 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= unit
		if v < unit && v > -unit || u == "PiB" {
			if v >= 100 || v <= -100 {
				return fmt.Sprintf("%.0f %s", v, u)
			}
			return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".") + " " + u
		}
	}
	panic("unreachable")
}

// humanDuration formats d in the largest whole-ish unit: 45s, 3h, 2.5d, 4w.
func humanDuration(d time.Duration) string {
	day, week := 24*time.Hour, 7*24*time.Hour
	trim := func(v float64, unit string) string {
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".") + unit
	}
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return trim(d.Seconds(), "s")
	case d < time.Hour:
		return trim(d.Minutes(), "m")
	case d < day:
		return trim(d.Hours(), "h")
	case d < 2*week:
		return trim(float64(d)/float64(day), "d")
	default:
		return trim(float64(d)/float64(week), "w")
	}
}

// nouns formats a count and its noun: "1 entry", "2,500 entries".
func nouns(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
