package main

import "github.com/urfave/cli/v2"

func statsCommand() *cli.Command { return &cli.Command{Name: "stats"} }
