// Command s3seal-bench runs s3seal's benchmark harness (package bench)
// with s3seal built from the source tree it runs in, or with the binary
// given by --s3seal:
//
//	go run ./bench/cmd/s3seal-bench --quick
//
// It is a command of its own, not an s3seal subcommand, so that the
// product binary carries no test code (the harness needs testenv and a
// MinIO client).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/s3seal/s3seal/bench"
)

func main() {
	var opts bench.Options
	kong.Parse(&opts,
		kong.Name("s3seal-bench"),
		kong.Description("Benchmark s3seal against MinIO and MinIO with its own encryption, in one run."),
		kong.UsageOnError(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := opts.Execute(ctx, os.Stdout, os.Stderr); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "s3seal-bench:", err)
		os.Exit(1)
	}
}
