package main

import "github.com/urfave/cli/v2"

// Replaced by mount.go, gc.go, stats.go and verify.go.
func mountCommand() *cli.Command  { return &cli.Command{Name: "mount"} }
func gcCommand() *cli.Command     { return &cli.Command{Name: "gc"} }
func statsCommand() *cli.Command  { return &cli.Command{Name: "stats"} }
func verifyCommand() *cli.Command { return &cli.Command{Name: "verify"} }
