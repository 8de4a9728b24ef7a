// Package bench is s3seal's benchmark harness: it starts a plain MinIO, a
// MinIO encrypting with its own KMS (SSE-S3), and s3seal in front of the
// plain MinIO, then runs the same workloads with the same client and the
// same data against all three in one run, and reports each measurement per
// system with the s3seal/direct and s3seal/SSE ratios.
//
// Run it with `go run ./bench/cmd/s3seal-bench`.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Sizes are a run's object sizes and counts.
type Sizes struct {
	// Large is the size of the objects of the large PUT/GET, multipart
	// and range workloads.
	Large int64 `json:"large"`
	// Streams is the number of concurrent large PUTs/GETs.
	Streams int `json:"streams"`
	// PartSize and PartConcurrency shape the multipart upload of Large.
	PartSize        int64 `json:"part_size"`
	PartConcurrency int   `json:"part_concurrency"`
	// RangeCount ranges of RangeSize at random offsets of a Large object,
	// RangeConcurrency at a time.
	RangeSize        int64 `json:"range_size"`
	RangeCount       int   `json:"range_count"`
	RangeConcurrency int   `json:"range_concurrency"`
	// SmallCount objects of each of SmallSizes are PUT, GET and HEAD by
	// SmallConcurrency clients; the first size's objects are then listed
	// ListRepeats times.
	SmallSizes       []int64 `json:"small_sizes"`
	SmallCount       int     `json:"small_count"`
	SmallConcurrency int     `json:"small_concurrency"`
	ListRepeats      int     `json:"list_repeats"`
	// LatencyCount PUTs, GETs and HEADs of the first small size are made
	// one at a time, for the latency a request sees when nothing queues.
	LatencyCount int `json:"latency_count"`
}

// FullSizes are the sizes of the full benchmark (issue 9).
func FullSizes() Sizes {
	return Sizes{
		Large: 1 << 30, Streams: 8,
		PartSize: 16 << 20, PartConcurrency: 4,
		RangeSize: 1 << 20, RangeCount: 512, RangeConcurrency: 8,
		SmallSizes: []int64{4 << 10, 256 << 10}, SmallCount: 10_000, SmallConcurrency: 32,
		ListRepeats: 3, LatencyCount: 2000,
	}
}

// QuickSizes finish in under two minutes on two cores.
func QuickSizes() Sizes {
	return Sizes{
		Large: 64 << 20, Streams: 8,
		PartSize: 16 << 20, PartConcurrency: 4,
		RangeSize: 1 << 20, RangeCount: 64, RangeConcurrency: 8,
		SmallSizes: []int64{4 << 10, 256 << 10}, SmallCount: 1000, SmallConcurrency: 32,
		ListRepeats: 3, LatencyCount: 300,
	}
}

// Config is one run's configuration.
type Config struct {
	Sizes Sizes
	// Pin puts MinIO and the client (this process) on CPU 0 and s3seal on
	// CPU 1.
	Pin bool
	// PprofDir, if set, receives a CPU profile of s3seal per workload
	// (s3seal is then built from source with a profiling endpoint).
	PprofDir string
	// S3sealBinary is the s3seal to measure; "" builds ./cmd/s3seal of the
	// module in the working directory.
	S3sealBinary string
	// Filter, if set, runs only the workloads whose name it matches.
	Filter *regexp.Regexp
	// Verify checks every byte read against the data written.
	Verify bool
	// NoCompat starts the plain MinIO with --no-compat. MinIO computes
	// an MD5 of every PUT body for its ETag unless SSE is requested or it
	// runs with --no-compat; s3seal does not need the store's ETag to be
	// an MD5, so this is the like-for-like set-up against MinIO SSE.
	NoCompat bool
	// Repeat runs every workload this many times (at least once); the
	// report shows the median of each value.
	Repeat int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Run starts the three systems, runs every workload and stops them. A
// workload that fails on a system leaves its values missing and is listed
// in Report.Errors; Run itself fails only if the systems do not start or
// ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	z := cfg.Sizes
	if z.Large <= 0 || z.Streams <= 0 || z.PartSize <= 0 || z.PartConcurrency <= 0 ||
		z.RangeSize <= 0 || z.RangeSize > z.Large || z.RangeConcurrency <= 0 ||
		z.SmallCount <= 0 || z.SmallConcurrency <= 0 {
		return nil, fmt.Errorf("bench: invalid sizes %+v", z)
	}
	rep := &Report{
		Date:       time.Now().UTC(),
		Command:    strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " "),
		LoadBefore: loadAvg(),
		Machine:    describeMachine(testenv.MinIOVersion),
		Pinned:     cfg.Pin,
		NoCompat:   cfg.NoCompat,
		Sizes:      z,
	}
	r := &runner{cfg: cfg, rep: rep}
	bin := cfg.S3sealBinary
	var err error
	switch {
	case cfg.PprofDir != "":
		if err := os.MkdirAll(cfg.PprofDir, 0o755); err != nil {
			return nil, err
		}
		r.logf("building s3seal with a profiling endpoint")
		bin, err = buildProfilingS3seal(cfg.PprofDir)
	case bin == "":
		r.logf("building s3seal")
		bin, err = testenv.S3sealBinary()
	}
	if err != nil {
		return nil, err
	}
	if cfg.Pin {
		// Keep this process's goroutines on the one CPU it gets.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	r.env, err = startEnv(ctx, envConfig{s3sealBin: bin, pin: cfg.Pin, noCompat: cfg.NoCompat, pprofDir: cfg.PprofDir, logf: r.logf})
	if err != nil {
		return nil, err
	}
	defer r.env.close()
	if err := checkSystems(ctx, r.env); err != nil {
		return nil, err
	}

	proxyPID := r.env.proxy.pid()
	for _, g := range []struct {
		name string
		run  func(context.Context) error
	}{{"large objects", r.large}, {"small objects", r.small}} {
		r.logf("%s", g.name)
		resetPeakRSS(proxyPID)
		for range max(1, cfg.Repeat) {
			if err := g.run(ctx); err != nil {
				return nil, err
			}
		}
		r.peakRSS("proxy peak RSS, " + g.name)
	}
	rep.addFloorRatios(formatSize(z.Large))
	rep.LoadAfter = loadAvg()
	if r.env.proxy.exited() {
		return nil, fmt.Errorf("s3seal exited during the run:\n%s", r.env.proxy.out.String())
	}
	return rep, nil
}

func (r *runner) peakRSS(name string) {
	if !r.ran {
		return // --run left out every workload of the group
	}
	r.ran = false
	peak, err := testenv.ProcStatusBytes(r.env.proxy.pid(), "VmHWM")
	if err != nil {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", name, err))
		return
	}
	r.rep.add(name, unitMiB, lower, S3seal, float64(peak)/(1<<20))
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+); if the kernel
// refuses, VmHWM stays the peak since the start.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// checkSystems makes sure each column measures what its name says: every
// system reads back what it was given, MinIO SSE stores it encrypted, and what s3seal stores in the plain MinIO is not the plaintext.
func checkSystems(ctx context.Context, e *env) error {
	const key, size = "check/0", 300 << 10
	for _, s := range e.systems {
		if err := s.put(ctx, key, size); err != nil {
			return fmt.Errorf("check %s: %w", s.name, err)
		}
		if err := s.get(ctx, key, 0, size, false, true); err != nil {
			return fmt.Errorf("check %s: %w", s.name, err)
		}
		switch s.name {
		case MinIOSSE:
			h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("check %s: %w", s.name, err)
			}
			// This MinIO's auto-encryption is SSE-KMS with its built-in
			// static key (MINIO_KMS_SECRET_KEY); SSE-S3 would say AES256.
			if h.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms &&
				h.ServerSideEncryption != s3types.ServerSideEncryptionAes256 {
				return fmt.Errorf("check %s: object not encrypted by MinIO (x-amz-server-side-encryption %q)", s.name, h.ServerSideEncryption)
			}
		case S3seal:
			// Read what the store holds, with the direct client.
			raw := *e.systems[0]
			raw.bucket = s.bucket
			out, err := raw.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("check %s: read the stored object: %w", s.name, err)
			}
			stored, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				return fmt.Errorf("check %s: read the stored object: %w", s.name, err)
			}
			plain := make([]byte, size)
			fill(seedOf(key), 0, plain)
			if len(stored) <= size || bytes.Contains(stored, plain[:4096]) {
				return errors.New("check s3seal: the store holds the plaintext")
			}
		}
		if err := s.delete(ctx, key); err != nil {
			return fmt.Errorf("check %s: %w", s.name, err)
		}
	}
	return nil
}
