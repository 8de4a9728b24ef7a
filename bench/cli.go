package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
)

// Options are bench/cmd/s3seal-bench's command-line flags (kong tags).
type Options struct {
	S3seal   string `name:"s3seal" placeholder:"FILE" type:"existingfile" xor:"binary" help:"Measure this s3seal binary (e.g. a release build) instead of building ./cmd/s3seal from the source tree."`
	Quick    bool   `help:"Small sizes (64 MiB objects, 1000 small objects): about two minutes on two cores."`
	Pin      bool   `help:"Pin MinIO and the client to CPU 0 and s3seal to CPU 1 (taskset, sched_setaffinity)."`
	JSON     string `name:"json" placeholder:"FILE" type:"path" help:"Also write the results to FILE as JSON."`
	Markdown bool   `help:"Print the table as Markdown."`
	Pprof    string `name:"pprof" placeholder:"DIR" type:"path" xor:"binary" help:"Write a CPU profile of s3seal per workload to DIR (builds s3seal from source with a profiling endpoint)."`
	Run      string `placeholder:"REGEXP" help:"Run only the workloads whose name matches REGEXP."`
	Verify   bool   `help:"Check every byte read against the data written (costs client CPU)."`
	NoCompat bool   `name:"no-compat" help:"Start the plain MinIO (direct, and behind s3seal) with --no-compat: its ETags become random ids, as MinIO SSE's are, so no system hashes bodies for ETags."`
	Repeat   int    `default:"1" placeholder:"N" help:"Run every workload N times and report the median of each value (this machine's noise moves single runs a lot)."`
	Show     string `placeholder:"FILE" type:"existingfile" help:"Print the report saved in FILE (by --json) instead of running."`
}

// Execute runs the benchmark as the options say, printing progress to
// progress and the table to out.
func (o *Options) Execute(ctx context.Context, out, progress io.Writer) error {
	cfg := Config{Sizes: FullSizes(), Pin: o.Pin, S3sealBinary: o.S3seal, Verify: o.Verify, Repeat: o.Repeat, NoCompat: o.NoCompat, Log: progress}
	if o.Quick {
		cfg.Sizes = QuickSizes()
	}
	if o.Pprof != "" {
		dir, err := filepath.Abs(o.Pprof)
		if err != nil {
			return err
		}
		cfg.PprofDir = dir
	}
	if o.Run != "" {
		re, err := regexp.Compile(o.Run)
		if err != nil {
			return fmt.Errorf("--run: %w", err)
		}
		cfg.Filter = re
	}
	var rep *Report
	var err error
	if o.Show != "" {
		rep, err = ReadReport(o.Show)
	} else {
		rep, err = Run(ctx, cfg)
	}
	if err != nil {
		return err
	}
	m := rep.Machine
	store := m.MinIO
	if rep.NoCompat {
		store += " (plain MinIO with --no-compat)"
	}
	fmt.Fprintf(out, "%s, %d CPUs (%s), %s, MinIO %s, pinned: %v, load average %s before, %s after\n\n",
		rep.Date.Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPUModel, m.GoVersion, store, rep.Pinned,
		rep.LoadBefore, rep.LoadAfter)
	if o.Markdown {
		err = rep.WriteMarkdown(out)
	} else {
		err = rep.WriteTable(out)
	}
	if err != nil {
		return err
	}
	if o.JSON != "" && o.Show == "" {
		if err := rep.WriteJSON(o.JSON); err != nil {
			return err
		}
	}
	if cfg.PprofDir != "" {
		fmt.Fprintf(out, "\nCPU profiles of s3seal in %s (go tool pprof -top FILE)\n", cfg.PprofDir)
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d workload(s) failed", len(rep.Errors))
	}
	return nil
}
