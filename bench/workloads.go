package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// Units of the report.
const (
	unitMBps    = "MB/s" // 10^6 bytes per second
	unitOps     = "ops/s"
	unitObjs    = "objects/s"
	unitMs      = "ms"
	unitMsAdded = "ms added"
	unitTimes   = "x floor" // a ratio of two rows of the same run
	unitCPU     = "CPU s/GiB"
	unitMiB     = "MiB"
	unitCalls   = "calls"
	unitPerGiB  = "per GiB"
	unitDollars = "$"
	higher      = "higher"
	lower       = "lower"
	copyBufLen  = 256 << 10
)

// runner runs workloads against every system and fills the report.
type runner struct {
	cfg Config
	env *env
	rep *Report
	ran bool // a workload ran since peakRSS last looked
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, format+"\n", args...)
	}
}

// each runs fn on every system in turn (so that the systems are measured
// close together in time), under a CPU profile for s3seal.
func (r *runner) each(ctx context.Context, workload string, fn func(context.Context, *system) error) error {
	if r.cfg.Filter != nil && !r.cfg.Filter.MatchString(workload) {
		return nil
	}
	r.ran = true
	for _, s := range r.env.systems {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.logf("  %-28s %s", workload, s.name)
		r.env.purgeTrash()
		err := s.proxy.profile(ctx, profileName(workload), func() error { return fn(ctx, s) })
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s on %s: %v", workload, s.name, err))
			r.logf("    error: %v", err)
		}
	}
	return nil
}

func profileName(workload string) string {
	return "s3seal-" + strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, workload) + ".pprof"
}

// seedOf is the data seed of an object key.
func seedOf(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// transfer runs fn, which moves n bytes, and records its throughput and the
// CPU the servers spent per GiB.
func (r *runner) transfer(s *system, name string, n int64, fn func() error) error {
	before, err := cpuOf(s.serverPIDs)
	if err != nil {
		return err
	}
	var proxyBefore time.Duration
	var ioBefore procIO
	if s.proxy != nil {
		if proxyBefore, err = procCPU(s.proxy.pid()); err != nil {
			return err
		}
		ioBefore = readProcIO(s.proxy.pid())
	}
	start := time.Now()
	if err := fn(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	after, err := cpuOf(s.serverPIDs)
	if err != nil {
		return err
	}
	gib := float64(n) / (1 << 30)
	r.rep.add(name, unitMBps, higher, s.name, float64(n)/1e6/elapsed.Seconds())
	r.rep.add(name+": server CPU", unitCPU, lower, s.name, (after-before).Seconds()/gib)
	if s.proxy != nil {
		proxyAfter, err := procCPU(s.proxy.pid())
		if err != nil {
			return err
		}
		r.rep.add(name+": proxy CPU", unitCPU, lower, s.name, (proxyAfter-proxyBefore).Seconds()/gib)
		// Syscall and wake-up counts do not move with the machine's load
		// as CPU seconds do: they show whether a change makes the proxy
		// read, write or sleep less often for the same bytes.
		if io := readProcIO(s.proxy.pid()); io.ok && ioBefore.ok {
			r.rep.add(name+": proxy read calls", unitPerGiB, lower, s.name, float64(io.reads-ioBefore.reads)/gib)
			r.rep.add(name+": proxy write calls", unitPerGiB, lower, s.name, float64(io.writes-ioBefore.writes)/gib)
			r.rep.add(name+": proxy context switches", unitPerGiB, lower, s.name, float64(io.switches-ioBefore.switches)/gib)
		}
	}
	return nil
}

func cpuOf(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// parallel runs fn(0..n-1) on at most workers goroutines; the first error
// cancels the rest.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := 0; i < n; i++ {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufLen); return &b }}

func (s *system) put(ctx context.Context, key string, size int64) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: newGenReader(seedOf(key), 0, size), ContentLength: aws.Int64(size),
	})
	return err
}

// get reads key (or the range [off, off+n) of it if rng) and checks that n
// bytes arrive, and with verify that they are the bytes written.
func (s *system) get(ctx context.Context, key string, off, n int64, rng, verify bool) error {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if rng {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return err
	}
	defer out.Body.Close()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	sk := &sink{seed: seedOf(key), off: off, verify: verify}
	if _, err := io.CopyBuffer(sk, out.Body, *buf); err != nil {
		return fmt.Errorf("GET %s: %w", key, err)
	}
	if sk.n != n {
		return fmt.Errorf("GET %s: %d bytes, want %d", key, sk.n, n)
	}
	return nil
}

func (s *system) head(ctx context.Context, key string, size int64) error {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	if aws.ToInt64(out.ContentLength) != size {
		return fmt.Errorf("HEAD %s: Content-Length %d, want %d", key, aws.ToInt64(out.ContentLength), size)
	}
	return nil
}

func (s *system) putMultipart(ctx context.Context, key string, size, partSize int64, workers int) error {
	cr, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
	})
	if err != nil {
		return err
	}
	seed := seedOf(key)
	parts := make([]s3types.CompletedPart, (size+partSize-1)/partSize)
	err = parallel(ctx, workers, len(parts), func(ctx context.Context, i int) error {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: newGenReader(seed, off, n), ContentLength: aws.Int64(n),
		})
		if err != nil {
			return fmt.Errorf("part %d: %w", i+1, err)
		}
		parts[i] = s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		return nil
	})
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: cr.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		_, aerr := s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: cr.UploadId,
		})
		return errors.Join(err, aerr)
	}
	return nil
}

func (s *system) delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]s3types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("delete %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
		keys = keys[n:]
	}
	return nil
}

// largeKey is the key of the i-th large object; large/0 is the one the
// single-stream, range and check workloads use.
func largeKey(i int) string { return fmt.Sprintf("large/%d", i) }

func (r *runner) large(ctx context.Context) error {
	z := r.cfg.Sizes
	size := z.Large
	sz := formatSize(size)
	n := z.Streams
	streamKeys := make([]string, n)
	for i := range streamKeys {
		streamKeys[i] = largeKey(i + 1)
	}
	steps := []struct {
		name  string
		moved int64
		fn    func(ctx context.Context, s *system) error
	}{
		{fmt.Sprintf("PUT %s x1", sz), size, func(ctx context.Context, s *system) error {
			return s.put(ctx, largeKey(0), size)
		}},
		{fmt.Sprintf("GET %s x1", sz), size, func(ctx context.Context, s *system) error {
			return s.get(ctx, largeKey(0), 0, size, false, r.cfg.Verify)
		}},
		{fmt.Sprintf("PUT %s x%d", sz, n), size * int64(n), func(ctx context.Context, s *system) error {
			return parallel(ctx, n, n, func(ctx context.Context, i int) error { return s.put(ctx, streamKeys[i], size) })
		}},
		{fmt.Sprintf("GET %s x%d", sz, n), size * int64(n), func(ctx context.Context, s *system) error {
			return parallel(ctx, n, n, func(ctx context.Context, i int) error {
				return s.get(ctx, streamKeys[i], 0, size, false, r.cfg.Verify)
			})
		}},
	}
	for _, st := range steps {
		err := r.each(ctx, st.name, func(ctx context.Context, s *system) error {
			return r.transfer(s, st.name, st.moved, func() error { return st.fn(ctx, s) })
		})
		if err != nil {
			return err
		}
	}
	// The parallel streams' objects are not needed any more.
	for _, s := range r.env.systems {
		if err := s.delete(ctx, streamKeys...); err != nil {
			r.logf("  cleanup on %s: %v", s.name, err)
		}
	}

	name := fmt.Sprintf("multipart PUT %s (%s parts x%d)", sz, formatSize(z.PartSize), z.PartConcurrency)
	err := r.each(ctx, name, func(ctx context.Context, s *system) error {
		return r.transfer(s, name, size, func() error {
			return s.putMultipart(ctx, "multipart/0", size, z.PartSize, z.PartConcurrency)
		})
	})
	if err != nil {
		return err
	}
	name = fmt.Sprintf("GET multipart %s x1", sz)
	err = r.each(ctx, name, func(ctx context.Context, s *system) error {
		return r.transfer(s, name, size, func() error {
			return s.get(ctx, "multipart/0", 0, size, false, r.cfg.Verify)
		})
	})
	if err != nil {
		return err
	}
	for _, s := range r.env.systems {
		if err := s.delete(ctx, "multipart/0"); err != nil {
			r.logf("  cleanup on %s: %v", s.name, err)
		}
	}
	if err := r.ranges(ctx); err != nil {
		return err
	}
	return r.floor(ctx)
}

// ranges reads RangeCount ranges of RangeSize at random offsets (the same
// for every system) of large/0.
func (r *runner) ranges(ctx context.Context) error {
	z := r.cfg.Sizes
	rng := rand.New(rand.NewPCG(1, 2))
	offsets := make([]int64, z.RangeCount)
	for i := range offsets {
		offsets[i] = rng.Int64N(z.Large - z.RangeSize + 1)
	}
	name := fmt.Sprintf("range GET %s of %s x%d", formatSize(z.RangeSize), formatSize(z.Large), z.RangeConcurrency)
	return r.each(ctx, name, func(ctx context.Context, s *system) error {
		start := time.Now()
		err := parallel(ctx, z.RangeConcurrency, len(offsets), func(ctx context.Context, i int) error {
			return s.get(ctx, largeKey(0), offsets[i], z.RangeSize, true, r.cfg.Verify)
		})
		if err != nil {
			return err
		}
		secs := time.Since(start).Seconds()
		r.rep.add(name, unitOps, higher, s.name, float64(len(offsets))/secs)
		r.rep.add(name+": throughput", unitMBps, higher, s.name, float64(int64(len(offsets))*z.RangeSize)/1e6/secs)
		return nil
	})
}

// smallOp is one operation of the small-object workloads on one key.
type smallOp struct {
	op string
	fn func(ctx context.Context, s *system, key string) error
}

// smallOps are PUT, GET and HEAD of objects of size bytes, in that order.
func (r *runner) smallOps(size int64) []smallOp {
	return []smallOp{
		{"PUT", func(ctx context.Context, s *system, key string) error { return s.put(ctx, key, size) }},
		{"GET", func(ctx context.Context, s *system, key string) error {
			return s.get(ctx, key, 0, size, false, r.cfg.Verify)
		}},
		{"HEAD", func(ctx context.Context, s *system, key string) error { return s.head(ctx, key, size) }},
	}
}

func smallKey(size int64, i int) string { return fmt.Sprintf("small-%s/%06d", formatSize(size), i) }

// small runs PUT, GET and HEAD of SmallCount objects of each small size
// with SmallConcurrency clients, then lists the first size's objects.
func (r *runner) small(ctx context.Context) error {
	z := r.cfg.Sizes
	// The same shuffled order for every system.
	order := rand.New(rand.NewPCG(3, 4)).Perm(z.SmallCount)
	for _, size := range z.SmallSizes {
		sz := formatSize(size)
		putCalls := -1 // KMS calls of this size's PUTs, for the cost row
		for _, o := range r.smallOps(size) {
			name := fmt.Sprintf("%s %s x%d", o.op, sz, z.SmallConcurrency)
			err := r.each(ctx, name, func(ctx context.Context, s *system) error {
				var calls0 int
				metered := (o.op == "PUT" || o.op == "GET") && s.proxy != nil
				if metered {
					var err error
					if calls0, err = s.proxy.kmsCalls(); err != nil {
						return err
					}
				}
				lat := make([]time.Duration, z.SmallCount)
				start := time.Now()
				err := parallel(ctx, z.SmallConcurrency, z.SmallCount, func(ctx context.Context, i int) error {
					t := time.Now()
					err := o.fn(ctx, s, smallKey(size, order[i]))
					lat[i] = time.Since(t)
					return err
				})
				if err != nil {
					return err
				}
				elapsed := time.Since(start)
				r.rep.add(name, unitOps, higher, s.name, float64(z.SmallCount)/elapsed.Seconds())
				slices.Sort(lat)
				r.rep.add(name+": p50", unitMs, lower, s.name, ms(percentile(lat, 0.50)))
				r.rep.add(name+": p99", unitMs, lower, s.name, ms(percentile(lat, 0.99)))
				if metered {
					calls1, err := s.proxy.kmsCalls()
					if err != nil {
						return err
					}
					calls := calls1 - calls0
					r.rep.add(fmt.Sprintf("KMS calls per 1000 %ss of %s", o.op, sz), unitCalls, lower, s.name,
						float64(calls)*1000/float64(z.SmallCount))
					if o.op == "PUT" {
						putCalls = calls
					} else if putCalls >= 0 {
						// What the KMS requests of a million objects written
						// and read cost at AWS's published $0.03 per 10,000
						// requests (the proxy's metrics say the same live).
						r.rep.add(fmt.Sprintf("KMS cost per million objects of %s written and read", sz), unitDollars, lower, s.name,
							float64(putCalls+calls)/float64(2*z.SmallCount)*1e6*0.03/1e4)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	if err := r.list(ctx); err != nil {
		return err
	}
	return r.latency(ctx)
}

// latency makes LatencyCount PUTs, GETs and HEADs of the first small size
// one at a time: with 32 clients on two cores the percentiles above are
// mostly queueing, while here they are what each request costs. The
// "added" rows are the difference from direct MinIO.
func (r *runner) latency(ctx context.Context) error {
	z := r.cfg.Sizes
	if len(z.SmallSizes) == 0 || z.LatencyCount <= 0 {
		return nil
	}
	size := z.SmallSizes[0]
	sz := formatSize(size)
	key := func(i int) string { return fmt.Sprintf("latency/%06d", i) }
	for _, o := range r.smallOps(size) {
		name := fmt.Sprintf("%s %s x1", o.op, sz)
		p := map[string][2]float64{} // system: p50, p99
		err := r.each(ctx, name, func(ctx context.Context, s *system) error {
			lat := make([]time.Duration, z.LatencyCount)
			for i := range lat {
				t := time.Now()
				if err := o.fn(ctx, s, key(i)); err != nil {
					return err
				}
				lat[i] = time.Since(t)
			}
			slices.Sort(lat)
			p[s.name] = [2]float64{ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99))}
			r.rep.add(name+": p50", unitMs, lower, s.name, p[s.name][0])
			r.rep.add(name+": p99", unitMs, lower, s.name, p[s.name][1])
			return nil
		})
		if err != nil {
			return err
		}
		d, ok := p[Direct]
		for sys, v := range p {
			if ok && sys != Direct {
				r.rep.add(name+": p50 added to direct", unitMsAdded, lower, sys, v[0]-d[0])
				r.rep.add(name+": p99 added to direct", unitMsAdded, lower, sys, v[1]-d[1])
			}
		}
	}
	keys := make([]string, z.LatencyCount)
	for i := range keys {
		keys[i] = key(i)
	}
	for _, s := range r.env.systems {
		if err := s.delete(ctx, keys...); err != nil {
			r.logf("  cleanup on %s: %v", s.name, err)
		}
	}
	return nil
}

// list lists the objects of the first small size, ListRepeats times, with
// ListObjectsV2 pages of 1000.
func (r *runner) list(ctx context.Context) error {
	z := r.cfg.Sizes
	if len(z.SmallSizes) == 0 {
		return nil
	}
	prefix := strings.TrimSuffix(smallKey(z.SmallSizes[0], 0), "000000")
	name := fmt.Sprintf("LIST %d objects (pages of 1000)", z.SmallCount)
	return r.each(ctx, name, func(ctx context.Context, s *system) error {
		start := time.Now()
		for range z.ListRepeats {
			n := 0
			p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
				Bucket: aws.String(s.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1000),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, o := range page.Contents {
					if aws.ToInt64(o.Size) != z.SmallSizes[0] {
						return fmt.Errorf("LIST: %s has size %d, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), z.SmallSizes[0])
					}
				}
				n += len(page.Contents)
			}
			if n != z.SmallCount {
				return fmt.Errorf("LIST: %d objects, want %d", n, z.SmallCount)
			}
		}
		r.rep.add(name, unitObjs, higher, s.name, float64(z.ListRepeats*z.SmallCount)/time.Since(start).Seconds())
		return nil
	})
}

// percentile returns the nearest-rank p-quantile of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// formatSize prints a size as "1 GiB", "16 MiB", "4 KiB" or bytes.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
