// Command bench measures featurefs side by side with its baselines in one
// run and prints one Markdown table of figures, ratios and goals.
//
//	go run ./bench [--dir DIR] [--size 1GiB] [--runs 5] [--juicefs PATH] [--parts seq,...] [--out FILE]
//	go run ./bench --smoke        # tiny sizes, one run, no JuiceFS, judges nothing (CI)
//
// It runs as root on a machine with /dev/fuse, fio, squashfuse, mksquashfs
// and node (DuckDB from test/client; Polars from bench/scan, whose part is
// skipped when it is not installed). JuiceFS is a peer when a juicefs
// binary is found (--juicefs, default on PATH); it is skipped, saying so,
// when absent. Every mount it makes lives under the work directory and is
// unmounted before it exits, also on error or Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == writerCommand {
		if err := runWriter(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench writer:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
