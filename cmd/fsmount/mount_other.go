//go:build !linux

package main

import (
	"runtime"

	"github.com/urfave/cli/v2"
)

// mountCommand stands in for the FUSE mount, which needs Linux: here only
// gc, stats and verify work, on a cache root a Linux mount wrote.
func mountCommand() *cli.Command {
	return &cli.Command{
		Name:            "mount",
		Usage:           "(Linux only) serve the cache at MOUNTPOINT",
		ArgsUsage:       "MOUNTPOINT",
		SkipFlagParsing: true,
		Action: func(*cli.Context) error {
			return usageError("mount needs Linux (FUSE); on %s only gc, stats and verify work", runtime.GOOS)
		},
	}
}
