package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
)

// query: goal 9, DuckDB over a glob of the mount against the native glob,
// warm (each timed query follows an untimed one in the same process).
func (b *bench) query(ctx context.Context) error {
	const q = "SELECT count(*), avg(price) FROM read_parquet('%s')"
	answers := map[string]string{}
	duckTrial := func(name, glob string) trial {
		return trial{name: name, run: func() (float64, error) {
			secs, rows, err := duckTimed(ctx, b.cfg.featureDir, fmt.Sprintf(q, glob))
			answers[name] = rows
			return secs * 1e3, err
		}}
	}
	logf("DuckDB over a glob")
	s, err := b.interleave(false,
		duckTrial("featurefs", filepath.Join(b.l.mntAuto, ticksGlob)),
		duckTrial("native", filepath.Join(b.l.native, ticksGlob)),
	)
	if err != nil {
		return err
	}
	if !sameAnswer(answers["featurefs"], answers["native"]) {
		return fmt.Errorf("DuckDB answers differ: featurefs %s, native %s", answers["featurefs"], answers["native"])
	}
	b.add(result{goal: "9", what: "DuckDB `SELECT count(*), avg(price)` over `" + ticksGlob + "`, warm",
		ffs: figure{s[0], "ms"}, baseName: "native", base: figure{s[1], "ms"}, lowerBetter: true,
		minRatio: 1 / 1.1, goalText: "time ≤ 1.1× native"})
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
