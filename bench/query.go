package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
)

// query: goal 9, DuckDB over a glob of the mount against the native glob,
// warm (each timed query follows an untimed one in the same process); then
// the same query over 100 small entries and over the one big file.
func (b *bench) query(ctx context.Context) error {
	const q = "SELECT count(*), avg(price) FROM read_parquet(%s)"
	smalls := min(100, b.cfg.small)
	queries := []struct {
		what, path string
		goal       bool
	}{
		{"over `" + ticksGlob + "`", ticksGlob, true},
		{fmt.Sprintf("over %d small entries (a list)", smalls), smallSymbol, false},
		{"over the one " + sizeName(b.cfg.size) + " entry `" + ticksEntry + "`", ticksEntry, false},
	}
	for _, qu := range queries {
		// source is what read_parquet reads under root.
		source := func(root string) string {
			if qu.path != smallSymbol {
				return "'" + filepath.Join(root, qu.path) + "'"
			}
			var files []string
			for i := range smalls {
				files = append(files, "'"+filepath.Join(root, smallSymbol, smallName(i))+"'")
			}
			return "[" + strings.Join(files, ", ") + "]"
		}
		answers := map[string]string{}
		duckTrial := func(name, root string) trial {
			return trial{name: name, run: func() (float64, error) {
				secs, rows, err := duckTimed(ctx, b.cfg.featureDir, fmt.Sprintf(q, source(root)))
				answers[name] = rows
				return secs * 1e3, err
			}}
		}
		trials := []trial{duckTrial("featurefs", b.l.mntAuto), duckTrial("native", b.l.native)}
		trials = append(trials, jfsTrials(b.jfs, func(p peer) trial { return duckTrial("JuiceFS "+p.name, p.mnt) })...)
		logf("DuckDB %s", qu.what)
		s, err := b.interleave(false, trials...)
		if err != nil {
			return err
		}
		for name, rows := range answers {
			if !sameAnswer(rows, answers["native"]) {
				return fmt.Errorf("DuckDB answers differ: %s %s, native %s", name, rows, answers["native"])
			}
		}
		r := result{what: "DuckDB `SELECT count(*), avg(price)` " + qu.what + ", warm",
			ffs: figure{s[0], "ms"}, baseName: "native", base: figure{s[1], "ms"}, lowerBetter: true,
			jfs: jfsVariants(b.jfs, s[2:], "ms")}
		if qu.goal {
			r.goal, r.minRatio, r.goalText = "9", 1/1.1, "time ≤ 1.1× native"
		}
		b.add(r)
	}
	return nil
}

// sameAnswer compares two [[count, avg]] results: the count exactly, the
// average to 1e-9 (DuckDB sums in parallel, in no fixed order).
func sameAnswer(a, b string) bool {
	var ra, rb [][]any
	if json.Unmarshal([]byte(a), &ra) != nil || json.Unmarshal([]byte(b), &rb) != nil ||
		len(ra) != 1 || len(rb) != 1 || len(ra[0]) != 2 || len(rb[0]) != 2 {
		return false
	}
	fa, oka := ra[0][1].(float64)
	fb, okb := rb[0][1].(float64)
	return ra[0][0] == rb[0][0] && oka && okb && math.Abs(fa-fb) <= 1e-9*math.Abs(fb)
}
