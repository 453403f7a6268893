package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"featurefs/blobstore"
)

// gcFixture holds one entry past the default retention, one fresh entry and
// an orphan blob past the default grace.
func gcFixture(t *testing.T) (*fixture, string) {
	f := newFixture(t, blobstore.None,
		entrySpec{symbol: "AAPL", key: "old", rows: 10, age: 6 * 7 * 24 * time.Hour},
		entrySpec{symbol: "AAPL", key: "new", rows: 10},
	)
	return f, f.orphan(t, 2*time.Hour)
}

func TestGCCommand(t *testing.T) {
	type want struct {
		code          int
		dryRun        bool
		expired       float64
		orphans       float64
		oldKept       bool
		stderrContain string
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want want
	}{
		{"deletes expired and orphans", nil, nil,
			want{code: exitOK, expired: 1, orphans: 1}},
		{"dry run flag", nil, []string{"--dry-run"},
			want{code: exitOK, dryRun: true, expired: 1, orphans: 1, oldKept: true}},
		{"dry run from env", map[string]string{"FEATURE_STORE_GC_DRY_RUN": "true"}, nil,
			want{code: exitOK, dryRun: true, expired: 1, orphans: 1, oldKept: true}},
		{"dry run env overridden by flag", map[string]string{"FEATURE_STORE_GC_DRY_RUN": "1"}, []string{"--dry-run=false"},
			want{code: exitOK, expired: 1, orphans: 1}},
		{"retention weeks from env", map[string]string{"FEATURE_STORE_GC_RETENTION_WEEKS": "8"}, nil,
			want{code: exitOK, orphans: 1, oldKept: true}},
		{"retention flag beats env", map[string]string{"FEATURE_STORE_GC_RETENTION_WEEKS": "8"}, []string{"--retention", "720h"},
			want{code: exitOK, expired: 1, orphans: 1}},
		{"longer orphan grace", nil, []string{"--orphan-grace", "3h"},
			want{code: exitOK, expired: 1}},
		{"cache root from env", map[string]string{"FEATURE_STORE_PATH": "ROOT"}, []string{"--dry-run"},
			want{code: exitOK, dryRun: true, expired: 1, orphans: 1, oldKept: true}},

		{"bad dry-run env", map[string]string{"FEATURE_STORE_GC_DRY_RUN": "maybe"}, nil,
			want{code: exitUsage, oldKept: true, stderrContain: "FEATURE_STORE_GC_DRY_RUN"}},
		{"bad retention env", map[string]string{"FEATURE_STORE_GC_RETENTION_WEEKS": "four"}, nil,
			want{code: exitUsage, oldKept: true, stderrContain: "FEATURE_STORE_GC_RETENTION_WEEKS"}},
		{"zero retention weeks", nil, []string{"--retention-weeks", "0"},
			want{code: exitUsage, oldKept: true, stderrContain: "--retention-weeks"}},
		{"negative retention", nil, []string{"--retention", "-1h"},
			want{code: exitUsage, oldKept: true, stderrContain: "--retention"}},
		{"bad max size", nil, []string{"--max-size", "lots"},
			want{code: exitUsage, oldKept: true, stderrContain: "--max-size"}},
		{"zero orphan grace", nil, []string{"--orphan-grace", "0s"},
			want{code: exitUsage, oldKept: true, stderrContain: "--orphan-grace"}},
		{"unknown flag", nil, []string{"--force"},
			want{code: exitUsage, oldKept: true, stderrContain: "force"}},
		{"stray argument", nil, []string{"now"},
			want{code: exitUsage, oldKept: true, stderrContain: "no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, orphan := gcFixture(t)
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = strings.ReplaceAll(v, "ROOT", f.root)
			}
			args := []string{"gc", "--json", "--settle", "0"}
			if _, ok := env["FEATURE_STORE_PATH"]; !ok {
				args = append(args, "--cache-root", f.root)
			}
			code, stdout, stderr := fsmountT(t, env, append(args, tt.args...)...)
			if code != tt.want.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.want.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.want.stderrContain) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want.stderrContain)
			}
			if got := f.has(t, "AAPL/old"); got != tt.want.oldKept {
				t.Errorf("expired entry kept = %v, want %v", got, tt.want.oldKept)
			}
			if !f.has(t, "AAPL/new") {
				t.Errorf("fresh entry deleted")
			}
			_, err := os.Stat(f.path(orphan))
			if orphanKept := err == nil; orphanKept != (tt.want.dryRun || tt.want.orphans == 0) {
				t.Errorf("orphan kept = %v", orphanKept)
			}
			if code == exitUsage {
				if stdout != "" {
					t.Errorf("usage error printed a report: %s", stdout)
				}
				return
			}
			rep := decodeJSON(t, stdout)
			if got := field(t, rep, "dry_run"); got != tt.want.dryRun {
				t.Errorf("dry_run = %v, want %v", got, tt.want.dryRun)
			}
			if got := field(t, rep, "summary", "expired_entries"); got != tt.want.expired {
				t.Errorf("expired_entries = %v, want %v", got, tt.want.expired)
			}
			if got := field(t, rep, "summary", "orphaned_files"); got != tt.want.orphans {
				t.Errorf("orphaned_files = %v, want %v", got, tt.want.orphans)
			}
		})
	}
}

func TestGCCommandReportsIntegrityIssues(t *testing.T) {
	f, _ := gcFixture(t)
	if err := os.Remove(f.blob("AAPL/new")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := fsmountT(t, nil, "gc", "--cache-root", f.root, "--settle", "0", "--output-json", out)
	if code != exitIssues {
		t.Fatalf("exit %d, want %d (integrity issue)\n%s\n%s", code, exitIssues, stdout, stderr)
	}
	for _, s := range []string{"missing_blob", "AAPL/new", "1 issue,", "freed"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("text report lacks %q:\n%s", s, stdout)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("--output-json: %v", err)
	}
	rep := decodeJSON(t, string(data))
	issues, _ := field(t, rep, "integrity_issues").([]any)
	if len(issues) != 1 {
		t.Fatalf("integrity_issues = %v, want one", issues)
	}
	issue := issues[0].(map[string]any)
	for k, v := range map[string]any{"symbol": "AAPL", "key": "new", "problem": "missing_blob", "action": "remove_row"} {
		if issue[k] != v {
			t.Errorf("issue %s = %v, want %v", k, issue[k], v)
		}
	}
	// The same report is kept in the cache root for .control/gc.
	last, err := os.ReadFile(filepath.Join(f.root, "gc-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	json.Unmarshal(last, &a)
	json.Unmarshal(data, &b)
	if a["started"] != b["started"] {
		t.Errorf("gc-report.json is not this run's report")
	}
}

func TestGCCommandMissingCacheRoot(t *testing.T) {
	code, _, stderr := fsmountT(t, nil, "gc", "--cache-root", filepath.Join(t.TempDir(), "nope"))
	if code != exitIssues || !strings.Contains(stderr, "no cache at") {
		t.Fatalf("exit %d, stderr %q; want 1 and a clear message", code, stderr)
	}
}
