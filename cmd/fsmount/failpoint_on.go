//go:build failpoints

package main

import (
	"os"
	"strings"
	"syscall"
)

// failpointFromEnv returns the crash hook of a test build: when the point
// named in FEATUREFS_FAILPOINT (comma-separated for several) is reached, the
// process kills itself with SIGKILL, as a crash or an OOM kill would, with
// no deferred cleanup. Built only with -tags failpoints.
func failpointFromEnv() func(string) {
	points := strings.Split(os.Getenv("FEATUREFS_FAILPOINT"), ",")
	return func(name string) {
		for _, p := range points {
			if p == name {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // never returns: the signal is on its way
			}
		}
	}
}
