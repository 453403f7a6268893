package main

import (
	"fmt"
	"runtime/debug"
)

// version is the release this source is; the commit comes from the build.
const version = "v0.9.0"

// commit is set by the Makefile's build (-ldflags -X main.commit=...) for
// builds where the go command records no VCS information (-buildvcs=false,
// git worktrees); the recorded revision wins when there is one.
var commit string

// versionString describes the binary: release, the commit it was built from
// (with "+dirty" when the tree had changes) and the Go that built it. The
// go command records the commit when it builds inside a git checkout.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{GoVersion: "an unknown Go"}
	}
	return formatVersion(info, commit)
}

// formatVersion renders the version line from the build information, using
// fallback as the commit when the build recorded none.
func formatVersion(info *debug.BuildInfo, fallback string) string {
	commit, dirty := fallback, false
	if commit == "" {
		commit = "unknown"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
			if len(commit) > 12 {
				commit = commit[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		commit += "+dirty"
	}
	return fmt.Sprintf("fsmount %s (commit %s, built with %s)", version, commit, info.GoVersion)
}
