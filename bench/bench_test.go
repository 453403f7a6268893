package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole benchmark at toy sizes: every mount, tool and
// figure works end to end and no mount is left behind. It judges no figure.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke benchmark mounts for real; skipped with -short")
	}
	if err := requireTools(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run the smoke benchmark, but FUSE or its tools are missing: %v", err)
		}
		t.Skipf("no FUSE benchmark here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "report.md")
	cmd := exec.CommandContext(ctx, bin, "--smoke", "--dir", dir, "--out", out)
	stdout, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bench --smoke: %v\n%s\n%s", err, stdout, stderr)
	}
	if left, err := mountsUnder(dir); err != nil || len(left) > 0 {
		t.Fatalf("mounts left behind: %v %v", left, err)
	}
	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, goal := range []string{"| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 6 |", "| 7 |", "| 9 |", "| 10 |"} {
		if !strings.Contains(string(report), goal) {
			t.Errorf("report has no row for goal %s:\n%s", goal, report)
		}
	}
	if strings.Contains(string(report), "FAILED") {
		t.Errorf("a part failed:\n%s", report)
	}
}
