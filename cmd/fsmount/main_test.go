package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestUnknownCommandIsUsageError(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"bogus", "x"}, {"stats", "--bogus"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"fsmount"}, args...), &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("fsmount %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, exitUsage, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"fsmount", "bogus"}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), `no command "bogus"`) {
		t.Errorf("stderr %q does not name the unknown command", stderr.String())
	}
}

func TestVersionFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"fsmount", "--version"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("fsmount --version: exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "fsmount "+version+" (commit ") || !strings.Contains(out, "built with go") {
		t.Errorf("fsmount --version printed %q", out)
	}
}

func TestFormatVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		fallback string
		want     string
	}{
		{"recorded", settings("vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "", "commit 0123456789ab,"},
		{"dirty", settings("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "", "commit 0123456789ab+dirty,"},
		{"recorded wins", settings("vcs.revision", "0123456789abcdef0123"), "fedcba9", "commit 0123456789ab,"},
		{"fallback", nil, "fedcba9", "commit fedcba9,"},
		{"none", nil, "", "commit unknown,"},
	} {
		got := formatVersion(&debug.BuildInfo{GoVersion: "go1.26.8", Settings: tc.settings}, tc.fallback)
		if !strings.Contains(got, tc.want) || !strings.HasSuffix(got, "built with go1.26.8)") {
			t.Errorf("%s: %q, want it to contain %q", tc.name, got, tc.want)
		}
	}
}
