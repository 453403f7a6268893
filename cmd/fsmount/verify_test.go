package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"featurefs/blobstore"
)

func TestVerifyCommand(t *testing.T) {
	tests := []struct {
		name        string
		compression blobstore.Compression
		damage      func(t *testing.T, f *fixture)
		args        []string
		code        int
		problem     string // expected in the issues, when code is 1
	}{
		{"clean", blobstore.None, nil, nil, exitOK, ""},
		{"clean deep", blobstore.None, nil, []string{"--deep"}, exitOK, ""},
		{"clean deep compressed", blobstore.Zstd, nil, []string{"--deep"}, exitOK, ""},
		{"missing blob", blobstore.None, func(t *testing.T, f *fixture) {
			os.Remove(f.blob("AAPL/a"))
		}, nil, exitIssues, "missing_blob"},
		{"size mismatch", blobstore.None, func(t *testing.T, f *fixture) {
			os.Truncate(f.blob("AAPL/a"), 10)
		}, nil, exitIssues, "size_mismatch"},
		{"old unreferenced blob", blobstore.None, func(t *testing.T, f *fixture) {
			f.orphan(t, 2*time.Hour)
		}, nil, exitIssues, "unreferenced_blob"},
		{"young unreferenced blob is a commit in flight", blobstore.None, func(t *testing.T, f *fixture) {
			f.orphan(t, time.Minute)
		}, nil, exitOK, ""},
		{"orphan grace flag", blobstore.None, func(t *testing.T, f *fixture) {
			f.orphan(t, 2*time.Hour)
		}, []string{"--orphan-grace", "3h"}, exitOK, ""},
		{"flipped byte unseen without deep", blobstore.None, flipByte, nil, exitOK, ""},
		{"flipped byte found by deep", blobstore.None, flipByte, []string{"--deep"}, exitIssues, "hash_mismatch"},
		{"flipped byte in a footer-hashed entry", blobstore.None, func(t *testing.T, f *fixture) {
			flipTail(t, f.blob("ES=F/c"))
		}, []string{"--deep"}, exitIssues, ""},
		{"corrupt compressed blob", blobstore.Zstd, flipByte, []string{"--deep"}, exitIssues, ""},

		{"bad threshold", blobstore.None, nil, []string{"--footer-hash-threshold", "big"}, exitUsage, ""},
		{"zero grace", blobstore.None, nil, []string{"--orphan-grace", "0s"}, exitUsage, ""},
		{"unknown flag", blobstore.None, nil, []string{"--fix"}, exitUsage, ""},
		{"stray argument", blobstore.None, nil, []string{"AAPL"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.compression,
				entrySpec{symbol: "AAPL", key: "a", rows: 3000},
				entrySpec{symbol: "AAPL", key: "b", rows: 10},
				entrySpec{symbol: "ES=F", key: "c", rows: 3000, footerHash: true},
			)
			if tt.damage != nil {
				tt.damage(t, f)
			}
			args := append([]string{"verify", "--json", "--cache-root", f.root}, tt.args...)
			code, stdout, stderr := fsmountT(t, nil, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if code == exitUsage {
				return
			}
			m := decodeJSON(t, stdout)
			if got := field(t, m, "clean"); got != (code == exitOK) {
				t.Errorf("clean = %v with exit %d", got, code)
			}
			if got := field(t, m, "entries_checked"); got != 3.0 {
				t.Errorf("entries_checked = %v, want 3", got)
			}
			issues := field(t, m, "issues").([]any)
			if n := field(t, m, "summary", "issues").(float64); int(n) != len(issues) {
				t.Errorf("summary counts %v issues, list has %d", n, len(issues))
			}
			if tt.problem != "" && (len(issues) != 1 || issues[0].(map[string]any)["problem"] != tt.problem) {
				t.Errorf("issues = %v, want one %s", issues, tt.problem)
			}
		})
	}
}

func TestVerifyCommandText(t *testing.T) {
	f := newFixture(t, blobstore.None, entrySpec{symbol: "AAPL", key: "a", rows: 10})
	code, stdout, _ := fsmountT(t, nil, "verify", "--cache-root", f.root)
	if code != exitOK || !strings.Contains(stdout, "verify: clean") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	os.Remove(f.blob("AAPL/a"))
	code, stdout, _ = fsmountT(t, nil, "verify", "--cache-root", f.root)
	if code != exitIssues || !strings.Contains(stdout, "AAPL/a") || !strings.Contains(stdout, "missing_blob") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	// verify only reports: the row is still there for gc to repair.
	if !f.has(t, "AAPL/a") {
		t.Errorf("verify removed a row")
	}
}

// flipByte inverts a byte in the middle of AAPL/a's blob, keeping its size.
func flipByte(t *testing.T, f *fixture) {
	t.Helper()
	flipAt(t, f.blob("AAPL/a"), func(size int64) int64 { return size / 2 })
}

// flipTail inverts a byte inside the footer, which a footer hash covers.
func flipTail(t *testing.T, path string) {
	t.Helper()
	flipAt(t, path, func(size int64) int64 { return size - 20 })
}

func flipAt(t *testing.T, path string, at func(size int64) int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[at(int64(len(data)))] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A footer hash does not cover the middle of a large entry; the full hash
// the daemon stores after the commit does, and until it lands verify says
// the entry is not yet hashed instead of calling it clean by its footer.
func TestVerifyDeepChecksFooterHashedEntriesInFull(t *testing.T) {
	f := newFixture(t, blobstore.None, entrySpec{symbol: "ES=F", key: "c", rows: 3000, footerHash: true})
	middle := func(size int64) int64 { return size / 2 }

	code, stdout, _ := fsmountT(t, nil, "verify", "--deep", "--json", "--cache-root", f.root)
	m := decodeJSON(t, stdout)
	if code != exitOK || field(t, m, "summary", "not_yet_hashed") != 1.0 {
		t.Fatalf("before the full hash: exit %d, %s", code, stdout)
	}
	_, text, _ := fsmountT(t, nil, "verify", "--deep", "--cache-root", f.root)
	if !strings.Contains(text, "not yet hashed: ES=F/c") {
		t.Errorf("text report does not name the unhashed entry:\n%s", text)
	}

	f.fullHash(t)
	code, stdout, _ = fsmountT(t, nil, "verify", "--deep", "--json", "--cache-root", f.root)
	if m := decodeJSON(t, stdout); code != exitOK || field(t, m, "summary", "not_yet_hashed") != 0.0 {
		t.Fatalf("after the full hash: exit %d, %s", code, stdout)
	}
	flipAt(t, f.blob("ES=F/c"), middle)
	code, stdout, _ = fsmountT(t, nil, "verify", "--deep", "--json", "--cache-root", f.root)
	if code != exitIssues || !strings.Contains(stdout, "hash_mismatch") {
		t.Fatalf("a byte flipped in the middle of a footer-hashed entry: exit %d, %s", code, stdout)
	}
}

func TestVerifyWarnsAboutModesThatLetOthersIn(t *testing.T) {
	f := newFixture(t, blobstore.None, entrySpec{symbol: "AAPL", key: "a", rows: 10})
	if err := os.Chmod(f.root, 0o700); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := fsmountT(t, nil, "verify", "--json", "--cache-root", f.root)
	if w := field(t, decodeJSON(t, stdout), "warnings").([]any); code != exitOK || len(w) != 0 {
		t.Fatalf("exit %d, warnings %v for a private cache root", code, w)
	}

	// A root the user made (or an older version left) open, and a blob and
	// its shard as an older version made them.
	blob := f.blob("AAPL/a")
	for path, mode := range map[string]os.FileMode{f.root: 0o755, blob: 0o644, filepath.Dir(blob): 0o755} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, _ = fsmountT(t, nil, "verify", "--cache-root", f.root)
	if code != exitOK || !strings.Contains(stdout, "verify: clean") {
		t.Fatalf("permissions changed the verdict: exit %d\n%s", code, stdout)
	}
	rel, _ := filepath.Rel(f.root, blob)
	for _, want := range []string{
		"warning: cache root " + f.root + " is mode 0755",
		"warning: 2 paths that featurefs keeps private are open to other users",
		filepath.ToSlash(rel) + " (0644)",
		filepath.ToSlash(filepath.Dir(rel)) + " (0755)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// verify leaves the root's mode to its owner.
	if fi, err := os.Stat(f.root); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("cache root mode after verify: %v %v", fi.Mode(), err)
	}
}
