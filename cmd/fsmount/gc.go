package main

import "github.com/urfave/cli/v2"

func gcCommand() *cli.Command { return &cli.Command{Name: "gc"} }
