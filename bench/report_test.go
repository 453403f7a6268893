package main

import (
	"strings"
	"testing"
)

func TestJuiceFSCellsReadHigherIsBetter(t *testing.T) {
	tests := []struct {
		name        string
		lowerBetter bool
		ffs         float64
		jfs         []float64
		figs        string
		ratios      string
	}{
		{"throughput", false, 2, []float64{1, 4}, "default: 1.00 MB/s; 60 s caches: 4.00 MB/s", "2.00×; 0.50×"},
		{"time", true, 2, []float64{1, 4}, "default: 1.00 MB/s; 60 s caches: 4.00 MB/s", "0.50×; 2.00×"},
		{"no JuiceFS", false, 2, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peers := []peer{{"default", ""}, {"60 s caches", ""}}[:len(tc.jfs)]
			var s []sample
			for _, v := range tc.jfs {
				s = append(s, sample{v})
			}
			r := result{ffs: figure{sample{tc.ffs}, "MB/s"}, lowerBetter: tc.lowerBetter, jfs: jfsVariants(peers, s, "MB/s")}
			figs, ratios := r.jfsCells()
			if figs != tc.figs || ratios != tc.ratios {
				t.Errorf("got %q, %q; want %q, %q", figs, ratios, tc.figs, tc.ratios)
			}
		})
	}
}

func TestJuiceFSSkippedWithReason(t *testing.T) {
	tests := []struct {
		args   []string
		reason string
	}{
		{[]string{"--smoke"}, "--smoke"},
		{[]string{"--juicefs", ""}, "--juicefs"},
		{[]string{"--juicefs", "/nonexistent/juicefs"}, "no juicefs binary"},
	}
	for _, tc := range tests {
		cfg, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if cfg.juicefs != "" || !strings.Contains(cfg.noJuiceFS, tc.reason) {
			t.Errorf("parseFlags(%q): juicefs %q, reason %q; want skipped because of %q", tc.args, cfg.juicefs, cfg.noJuiceFS, tc.reason)
		}
	}
}
