package main

import (
	"fmt"
	"math"
	"strings"
)

// figure is a measured quantity: one value per run, in unit.
type figure struct {
	vals sample
	unit string
}

func (f figure) String() string {
	if len(f.vals) == 0 {
		return "n/a"
	}
	s := formatValue(f.vals.median(), f.unit)
	if len(f.vals) > 1 && f.vals.min() != f.vals.max() {
		s += fmt.Sprintf(" (%s–%s)", trim(f.vals.min()), trim(f.vals.max()))
	}
	return s
}

func formatValue(v float64, unit string) string { return trim(v) + " " + unit }

// trim prints three significant digits, more for large values.
func trim(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// result is one row of the table: featurefs against one baseline.
type result struct {
	goal     string // goal number from the list, "" for context rows
	what     string
	ffs      figure
	baseName string
	base     figure
	// lowerBetter marks times and sizes; the ratio is then base/ffs so that
	// every ratio in the table reads "higher is better".
	lowerBetter bool
	// minRatio is the goal as a minimum oriented ratio; 0 judges nothing.
	minRatio float64
	goalText string
	// jfs are JuiceFS's figures for the same workload, one per mount.
	jfs []variant
}

// variant is one JuiceFS mount's figure in a row.
type variant struct {
	name string
	fig  figure
}

// oriented is ffs against base so that higher is better.
func oriented(ffs, base float64, lowerBetter bool) float64 {
	if lowerBetter {
		return base / ffs
	}
	return ffs / base
}

func formatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// jfsCells are the JuiceFS figures and the featurefs/JuiceFS ratios, in
// the same order.
func (r result) jfsCells() (figs, ratios string) {
	var fs, rs []string
	for _, v := range r.jfs {
		fs = append(fs, v.name+": "+v.fig.String())
		rs = append(rs, formatRatio(oriented(r.ffs.vals.median(), v.fig.vals.median(), r.lowerBetter)))
	}
	return strings.Join(fs, "; "), strings.Join(rs, "; ")
}

func (r result) ratio() float64 {
	return oriented(r.ffs.vals.median(), r.base.vals.median(), r.lowerBetter)
}

func (r result) verdict(judge bool) string {
	switch {
	case r.minRatio == 0:
		return ""
	case !judge:
		return "not judged"
	case math.IsNaN(r.ratio()):
		return "n/a"
	case r.ratio() >= r.minRatio:
		return "met"
	default:
		return "**missed**"
	}
}

// report is everything the run prints.
type report struct {
	command string
	machine []string
	notes   []string
	results []result
	judge   bool
}

func (rep report) markdown() string {
	var b strings.Builder
	b.WriteString("## featurefs benchmark\n\n")
	fmt.Fprintf(&b, "Command: `%s`\n\n", rep.command)
	for _, m := range rep.machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\nEach figure is the median of the runs, (min–max) when they differ. " +
		"The ratio compares featurefs with the baseline so that **higher is better**: " +
		"featurefs/baseline for throughput and IOPS, baseline/featurefs for times and sizes. " +
		"Cold runs drop the page cache first; warm runs read the file once before. " +
		"The JuiceFS column gives its figure on each of its mounts that the workload applies to, " +
		"and the next column featurefs/JuiceFS for each, in the same order and the same orientation.\n\n")
	b.WriteString("| # | what | featurefs | baseline | ratio | JuiceFS | featurefs/JuiceFS | goal | |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.results {
		jfs, jfsRatio := r.jfsCells()
		fmt.Fprintf(&b, "| %s | %s | %s | %s: %s | %s | %s | %s | %s | %s |\n",
			r.goal, r.what, r.ffs, r.baseName, r.base, formatRatio(r.ratio()), jfs, jfsRatio, r.goalText, r.verdict(rep.judge))
	}
	if len(rep.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range rep.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}
