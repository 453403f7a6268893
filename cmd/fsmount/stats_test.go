package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"featurefs/blobstore"
)

func TestStatsCommand(t *testing.T) {
	week := 7 * 24 * time.Hour
	f := newFixture(t, blobstore.Zstd,
		entrySpec{symbol: "AAPL", key: "a", rows: 2000, age: 6 * week},
		entrySpec{symbol: "AAPL", key: "b", rows: 2000, age: time.Hour},
		entrySpec{symbol: "ES=F", key: "c", rows: 2000, footerHash: true},
	)
	var logical, stored float64
	for _, e := range f.entries {
		logical += float64(e.LogicalSize)
		stored += float64(e.FileSize)
	}

	tests := []struct {
		name          string
		env           map[string]string
		args          []string
		code          int
		pastRetention float64
	}{
		{"default retention", nil, nil, exitOK, 1},
		{"retention weeks from env", map[string]string{"FEATURE_STORE_GC_RETENTION_WEEKS": "10"}, nil, exitOK, 0},
		{"retention flag", nil, []string{"--retention", "30m"}, exitOK, 2},
		{"bad retention", nil, []string{"--retention-weeks", "-1"}, exitUsage, 0},
		{"unknown flag", nil, []string{"--max-size", "1G"}, exitUsage, 0},
		{"stray argument", nil, []string{"AAPL"}, exitUsage, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"stats", "--json", "--cache-root", f.root}, tt.args...)
			code, stdout, stderr := fsmountT(t, tt.env, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, stdout, stderr)
			}
			if code != exitOK {
				return
			}
			m := decodeJSON(t, stdout)
			for k, want := range map[string]any{
				"entries":                3.0,
				"symbols":                2.0,
				"logical_bytes":          logical,
				"stored_bytes":           stored,
				"past_retention_entries": tt.pastRetention,
				"cache_root":             f.root,
			} {
				if got := field(t, m, k); got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			if r := field(t, m, "compression_ratio").(float64); r <= 1 {
				t.Errorf("compression_ratio = %v, want > 1 for zstd blobs of repetitive data", r)
			}
			methods := field(t, m, "by_hash_method").(map[string]any)
			if methods["full"] != 2.0 || methods["footer"] != 1.0 {
				t.Errorf("by_hash_method = %v, want full 2, footer 1", methods)
			}
			for _, k := range []string{"oldest_created", "newest_created", "oldest_accessed"} {
				if _, err := time.Parse(time.RFC3339, field(t, m, k).(string)); err != nil {
					t.Errorf("%s: %v", k, err)
				}
			}
		})
	}
}

func TestStatsCommandText(t *testing.T) {
	f := newFixture(t, blobstore.None, entrySpec{symbol: "AAPL", key: "a", rows: 5000})
	out := filepath.Join(t.TempDir(), "stats.json")
	code, stdout, stderr := fsmountT(t, nil, "stats", "--cache-root", f.root, "--output-json", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{"1 entry in 1 symbol", "KiB", "past retention", "full 1", "last gc", "never"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("text lacks %q:\n%s", s, stdout)
		}
	}
	if code, _, _ := fsmountT(t, nil, "gc", "--cache-root", f.root, "--settle", "0"); code != exitOK {
		t.Fatalf("gc exit %d", code)
	}
	_, stdout, _ = fsmountT(t, nil, "stats", "--cache-root", f.root, "--json")
	if g := field(t, decodeJSON(t, stdout), "last_gc", "summary"); g == nil {
		t.Errorf("last_gc missing after a gc run")
	}
}

func TestStatsCommandEmptyCache(t *testing.T) {
	f := newFixture(t, blobstore.None)
	code, stdout, stderr := fsmountT(t, nil, "stats", "--cache-root", f.root, "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	m := decodeJSON(t, stdout)
	if field(t, m, "entries") != 0.0 || field(t, m, "compression_ratio") != 0.0 {
		t.Errorf("empty cache stats: %v", m)
	}
	if _, ok := m["oldest_created"]; ok {
		t.Errorf("oldest_created present for an empty cache")
	}
}
