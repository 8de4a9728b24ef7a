// Command s3seal-bench runs s3seal's benchmark harness (package bench)
// with s3seal built from the source tree it runs in:
//
//	go run ./bench/cmd/s3seal-bench --quick
//
// `s3seal bench` does the same with the s3seal binary it is.
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
	if err := opts.Execute(ctx, "", os.Stdout, os.Stderr); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "s3seal-bench:", err)
		os.Exit(1)
	}
}
