package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/s3seal/s3seal/bench"
)

// BenchCmd runs the benchmark harness (package bench) against this very
// binary: s3seal in front of MinIO, next to MinIO alone and MinIO with its
// own encryption. It needs Go (to build the pinned MinIO once) and runs
// best inside the source tree.
type BenchCmd struct {
	bench.Options `embed:""`
}

func (c *BenchCmd) Run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Execute(ctx, self, os.Stdout, os.Stderr)
}
