package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// The load test's shape; S3SEAL_LOAD_DURATION and S3SEAL_LOAD_CLIENTS
// change it for longer local runs, and S3SEAL_LOAD_PROFILE_DIR names a
// directory for a heap profile of the proxy.
const (
	defaultDuration = 60 * time.Second
	defaultClients  = 200
	// maxObjects is how many objects a worker keeps at most: its listing
	// fits one page and the store stays small.
	maxObjects = 8
	partSize   = 5 << 20
)

// TestLoad: 200 concurrent clients PUT (some multipart), GET, LIST and
// DELETE objects of 1 KiB to 64 MiB, skewed to small, for 60 s through
// `s3seal serve` with its default limits in front of MinIO, on loopback.
// Every byte read back is compared with what was written (generated from
// a seed, never held), every listing with what the worker wrote; the only
// error allowed is a 503 SlowDown, which the client retries and which is
// counted. The proxy's RSS is sampled and must not grow from the first
// third of the run to the last.
func TestLoad(t *testing.T) {
	duration := defaultDuration
	if v := os.Getenv("S3SEAL_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("S3SEAL_LOAD_DURATION: %v", err)
		}
		duration = d
	}
	clients := defaultClients
	if v := os.Getenv("S3SEAL_LOAD_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("S3SEAL_LOAD_CLIENTS: %q", v)
		}
		clients = n
	}

	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := minio.UpstreamEnv()
	// One access line per request would be most of the proxy's output.
	env["S3SEAL_LOG_LEVEL"] = "warn"
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pprof := "http://127.0.0.1:" + strconv.Itoa(port)
	env["S3SEAL_PPROF"] = strings.TrimPrefix(pprof, "http://")
	p := testenv.StartS3seal(t, env)
	bucket := "load-" + strings.ToLower(testenv.RandomKey(4))
	if _, err := p.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	c := newRawClient(p.Endpoint, p.AccessKey, p.SecretKey, clients)
	// net/http logs what the proxy says out of turn ("Unsolicited
	// response received on idle HTTP channel"): there must be nothing.
	var clientLog lockedBuffer
	log.SetOutput(&clientLog)
	defer log.SetOutput(os.Stderr)

	stopRSS := make(chan struct{})
	rssDone := make(chan []rssSample)
	go sampleRSS(p.PID(), 250*time.Millisecond, stopRSS, rssDone)
	heapDone := make(chan []rssSample)
	go sampleHeap(pprof, max(duration/30, time.Second), stopRSS, heapDone)

	start := time.Now()
	deadline := start.Add(duration)
	if dir := os.Getenv("S3SEAL_LOAD_PROFILE_DIR"); dir != "" {
		// For looking into the proxy's memory: its heap two thirds in.
		time.AfterFunc(duration*2/3, func() {
			if b, err := httpGet(pprof + "/debug/pprof/heap"); err == nil {
				os.WriteFile(filepath.Join(dir, "load-heap.pprof"), b, 0o644)
			}
		})
	}
	workers := make([]*worker, clients)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{
			id: i, c: c, bucket: bucket, objs: map[string]object{},
			rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i))),
			st:  newStats(),
		}
		workers[i] = w
		wg.Go(func() { w.run(deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopRSS)
	samples := <-rssDone
	heap := <-heapDone
	if exited, err := p.Exited(); exited {
		last := time.Duration(0)
		if len(samples) > 0 {
			last = samples[len(samples)-1].at
		}
		t.Fatalf("the proxy exited during the run (%v), last seen %v in: %v", err, last.Round(time.Second), err)
	}
	peak, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}

	total := newStats()
	for _, w := range workers {
		total.merge(w.st)
	}
	var ops int
	for _, l := range total.lat {
		ops += len(l)
	}
	t.Logf("%d clients, %v (%v with the last operations finishing): %d operations, %.1f ops/s, %.1f MiB/s in, %.1f MiB/s out, %d SlowDown retried",
		clients, duration, elapsed.Round(time.Second), ops, float64(ops)/elapsed.Seconds(),
		float64(total.bytesUp)/elapsed.Seconds()/(1<<20), float64(total.bytesDown)/elapsed.Seconds()/(1<<20), total.slowdowns)
	for _, op := range []string{"PUT", "PUT multipart", "GET", "LIST", "DELETE"} {
		l := total.lat[op]
		if len(l) == 0 {
			t.Errorf("no %s in the run", op)
			continue
		}
		slices.Sort(l)
		t.Logf("%-14s %6d ops  p50 %8v  p99 %8v  max %8v", op, len(l), pct(l, 50), pct(l, 99), l[len(l)-1])
	}

	// Memory: the load is the same from start to end, so a proxy that
	// keeps nothing per finished request holds as much in the last third
	// as in the first. The margin (x1.5 + 32 MiB) is for the garbage
	// collector's timing and the large objects' luck of the draw: a leak
	// per request (the run does thousands) exceeds it.
	var first, last int64
	for _, s := range samples {
		switch {
		case s.at < duration/3:
			first = max(first, s.rss)
		case s.at >= duration*2/3 && s.at < duration:
			last = max(last, s.rss)
		}
	}
	t.Logf("proxy RSS: peak %.1f MiB (VmHWM), max %.1f MiB in the first third, %.1f MiB in the last (%d samples); by tenth of the run: %s",
		mib(peak), mib(first), mib(last), len(samples), rssByTenth(samples, duration))
	if first == 0 || last == 0 {
		t.Errorf("too few RSS samples: %d", len(samples))
	} else if last > first*3/2+32<<20 {
		t.Errorf("the proxy's memory grew under constant load: %.1f MiB in the first third, %.1f MiB in the last", mib(first), mib(last))
	}
	// The live heap (after a forced collection) is the sharper test: it
	// holds what the proxy keeps, without the allocator's slack.
	var hFirst, hLast int64
	for _, s := range heap {
		switch {
		case s.at < duration/3:
			hFirst = max(hFirst, s.rss)
		case s.at >= duration*2/3 && s.at < duration:
			hLast = max(hLast, s.rss)
		}
	}
	t.Logf("proxy live heap after GC: max %.1f MiB in the first third, %.1f MiB in the last (%d samples); by tenth: %s",
		mib(hFirst), mib(hLast), len(heap), rssByTenth(heap, duration))
	if hFirst == 0 || hLast == 0 {
		t.Errorf("too few heap samples: %d", len(heap))
	} else if hLast > hFirst*3/2+16<<20 {
		t.Errorf("the proxy's live heap grew under constant load: %.1f MiB in the first third, %.1f MiB in the last", mib(hFirst), mib(hLast))
	}
	// Absolute: per-request buffers are O(segment batch), 2 MiB at most
	// for a stream, so 200 clients stay well under this.
	if peak > 1<<30 {
		t.Errorf("the proxy's peak RSS is %.1f MiB", mib(peak))
	}

	if total.mismatched != 0 {
		t.Errorf("%d bytes read back differ from those written", total.mismatched)
	}
	if n := len(total.errs); n > 0 {
		t.Errorf("%d errors (%d listed):", total.nerr, n)
		for _, e := range total.errs {
			t.Errorf("  %v", e)
		}
	}
	// Once the clients hang up, what served them is gone: a goroutine
	// (and a connection) per open client connection, none left behind.
	// fasthttp keeps an idle worker goroutine for up to
	// MaxIdleWorkerDuration (10 s) and sweeps them every 10 s: 30 s.
	c.http.CloseIdleConnections()
	hungUp := time.Now()
	var goroutines int
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		goroutines, err = countGoroutines(pprof)
		if err != nil {
			t.Fatal(err)
		}
		if goroutines < 100 || time.Now().After(end) {
			break
		}
	}
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(p.PID()) + "/fd")
	t.Logf("%v after the clients hung up: %d goroutines, %d open files in the proxy", time.Since(hungUp).Round(time.Second), goroutines, len(fds))
	if goroutines >= 100 {
		b, _ := httpGet(pprof + "/debug/pprof/goroutine?debug=1")
		t.Errorf("%d goroutines left in the proxy after the clients hung up:\n%.6000s", goroutines, b)
	}
	if l := clientLog.String(); l != "" {
		t.Errorf("the HTTP client logged:\n%.4000s", l)
	}
	if log := p.Log(); strings.Contains(log, "panic") {
		t.Errorf("the proxy panicked:\n%s", log)
	}
}

type object struct {
	seed uint64
	size int64
}

type worker struct {
	id     int
	c      *rawClient
	bucket string
	rng    *rand.Rand
	objs   map[string]object
	next   int
	st     *stats
}

func (w *worker) prefix() string { return fmt.Sprintf("w%03d/", w.id) }

func (w *worker) run(deadline time.Time) {
	for time.Now().Before(deadline) {
		n := w.rng.IntN(100)
		switch {
		case len(w.objs) == 0 || n < 30 && len(w.objs) < maxObjects:
			w.put(pickSize(w.rng), false)
		case n < 32 && len(w.objs) < maxObjects:
			w.put(partSize+w.rng.Int64N(11<<20), true)
		case n < 67:
			w.get(w.anyKey())
		case n < 77:
			w.list()
		default:
			w.del(w.anyKey())
		}
	}
}

// pickSize draws an object size: mostly small, a few large, log-uniform
// within each band.
func pickSize(r *rand.Rand) int64 {
	logUniform := func(lo, hi float64) int64 {
		return int64(math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo))))
	}
	x := r.Float64()
	switch {
	case x < 0.75:
		return logUniform(1<<10, 64<<10)
	case x < 0.95:
		return logUniform(64<<10, 1<<20)
	case x < 0.995:
		return logUniform(1<<20, 8<<20)
	default:
		return logUniform(8<<20, 64<<20)
	}
}

func (w *worker) anyKey() string {
	keys := make([]string, 0, len(w.objs))
	for k := range w.objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[w.rng.IntN(len(keys))]
}

// timed runs op, retrying a 503 SlowDown with backoff as SDKs do, and
// records its latency (retries included) or its error.
func (w *worker) timed(name string, op func(ctx context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			w.st.lat[name] = append(w.st.lat[name], time.Since(t0))
			return true
		}
		if retriable(err) && attempt < 10 {
			w.st.slowdowns++
			time.Sleep(time.Duration(attempt)*100*time.Millisecond + time.Duration(w.rng.Int64N(int64(100*time.Millisecond))))
			continue
		}
		w.st.fail(fmt.Errorf("worker %d: %w", w.id, err))
		return false
	}
}

func (w *worker) put(size int64, multipart bool) {
	key := w.prefix() + strconv.Itoa(w.next)
	w.next++
	o := object{seed: w.rng.Uint64(), size: size}
	name := "PUT"
	if multipart {
		name = "PUT multipart"
	}
	ok := w.timed(name, func(ctx context.Context) error {
		if multipart {
			return w.c.multipartPut(ctx, w.bucket, key, o.seed, size, partSize)
		}
		_, _, err := w.c.call(ctx, "PUT", http.MethodPut, objectPath(w.bucket, key), "", io.LimitReader(stream(o.seed), size), size, http.StatusOK)
		return err
	})
	if !ok {
		// Whether it exists is unknown: make sure it does not.
		w.c.call(context.Background(), "DELETE", http.MethodDelete, objectPath(w.bucket, key), "", nil, 0, http.StatusNoContent)
		return
	}
	w.st.bytesUp += size
	w.objs[key] = o
}

func (w *worker) get(key string) {
	o := w.objs[key]
	w.timed("GET", func(ctx context.Context) error {
		resp, err := w.c.do(ctx, http.MethodGet, objectPath(w.bucket, key), "", nil, 0)
		if err != nil {
			return fmt.Errorf("GET %s: %w", key, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			return statusErr("GET "+key, resp.StatusCode, b)
		}
		if resp.ContentLength != o.size {
			return fmt.Errorf("GET %s: Content-Length %d, want %d", key, resp.ContentLength, o.size)
		}
		n, bad, err := compareStream(resp.Body, o.seed)
		w.st.bytesDown += n
		w.st.mismatched += bad
		if err != nil {
			return fmt.Errorf("GET %s: after %d of %d bytes: %w", key, n, o.size, err)
		}
		if n != o.size || bad != 0 {
			return fmt.Errorf("GET %s: %d bytes, %d of them wrong, want %d", key, n, bad, o.size)
		}
		return nil
	})
}

func (w *worker) list() {
	w.timed("LIST", func(ctx context.Context) error {
		got, err := w.c.list(ctx, w.bucket, w.prefix())
		if err != nil {
			return err
		}
		if len(got) != len(w.objs) {
			return fmt.Errorf("LIST %s: %d objects, want %d", w.prefix(), len(got), len(w.objs))
		}
		for k, o := range w.objs {
			if size, ok := got[k]; !ok || size != o.size {
				return fmt.Errorf("LIST %s: %s has size %d (listed: %v), want %d", w.prefix(), k, size, ok, o.size)
			}
		}
		return nil
	})
}

func (w *worker) del(key string) {
	ok := w.timed("DELETE", func(ctx context.Context) error {
		_, _, err := w.c.call(ctx, "DELETE "+key, http.MethodDelete, objectPath(w.bucket, key), "", nil, 0, http.StatusNoContent)
		return err
	})
	delete(w.objs, key)
	if !ok {
		return
	}
	// Gone for the next reader (checked untimed).
	resp, err := w.c.do(context.Background(), http.MethodHead, objectPath(w.bucket, key), "", nil, 0)
	if err != nil {
		w.st.fail(fmt.Errorf("worker %d: HEAD after DELETE %s: %w", w.id, key, err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusServiceUnavailable {
		w.st.fail(fmt.Errorf("worker %d: HEAD after DELETE %s: %d", w.id, key, resp.StatusCode))
	}
}

type stats struct {
	lat                map[string][]time.Duration
	bytesUp, bytesDown int64
	mismatched         int64
	slowdowns          int
	nerr               int
	errs               []error // the first few
}

func newStats() *stats { return &stats{lat: map[string][]time.Duration{}} }

func (s *stats) fail(err error) {
	s.nerr++
	if len(s.errs) < 20 {
		s.errs = append(s.errs, err)
	}
}

func (s *stats) merge(o *stats) {
	for k, l := range o.lat {
		s.lat[k] = append(s.lat[k], l...)
	}
	s.bytesUp += o.bytesUp
	s.bytesDown += o.bytesDown
	s.mismatched += o.mismatched
	s.slowdowns += o.slowdowns
	s.nerr += o.nerr
	for _, e := range o.errs {
		if len(s.errs) < 20 {
			s.errs = append(s.errs, e)
		}
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))].Round(100 * time.Microsecond)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

type rssSample struct {
	at  time.Duration
	rss int64
}

// errStopSampling ends a sampling loop early (the process is gone).
var errStopSampling = errors.New("stop sampling")

// sample calls read every period until stop and sends what it read: a
// reading that fails is skipped, errStopSampling ends the loop.
func sample(period time.Duration, stop <-chan struct{}, done chan<- []rssSample, read func() (int64, error)) {
	var out []rssSample
	start := time.Now()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			done <- out
			return
		case <-tick.C:
			n, err := read()
			if errors.Is(err, errStopSampling) {
				done <- out
				return
			}
			if err == nil {
				out = append(out, rssSample{at: time.Since(start), rss: n})
			}
		}
	}
}

// sampleRSS reads the process's VmRSS every period until stop.
func sampleRSS(pid int, period time.Duration, stop <-chan struct{}, done chan<- []rssSample) {
	sample(period, stop, done, func() (int64, error) {
		n, err := testenv.ProcStatusBytes(pid, "VmRSS")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, errStopSampling
		}
		return n, err
	})
}

// sampleHeap reads the proxy's live heap after a forced collection (pprof's
// heap profile, gc=1, HeapInuse) every period until stop.
func sampleHeap(pprof string, period time.Duration, stop <-chan struct{}, done chan<- []rssSample) {
	sample(period, stop, done, func() (int64, error) {
		b, err := httpGet(pprof + "/debug/pprof/heap?debug=1&gc=1")
		if err != nil {
			return 0, err
		}
		_, v, ok := strings.Cut(string(b), "# HeapInuse = ")
		if !ok {
			return 0, errors.New("no HeapInuse in the heap profile")
		}
		v, _, _ = strings.Cut(v, "\n")
		return strconv.ParseInt(v, 10, 64)
	})
}

func countGoroutines(pprof string) (int, error) {
	b, err := httpGet(pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	_, v, ok := strings.Cut(string(b), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile: %.100s", b)
	}
	v, _, _ = strings.Cut(v, "\n")
	return strconv.Atoi(v)
}

func httpGet(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// rssByTenth is the highest RSS in each tenth of the run, in MiB.
func rssByTenth(samples []rssSample, d time.Duration) string {
	var tenth [10]int64
	for _, s := range samples {
		if i := int(s.at * 10 / d); i < 10 {
			tenth[i] = max(tenth[i], s.rss)
		}
	}
	parts := make([]string, 10)
	for i, n := range tenth {
		parts[i] = strconv.Itoa(int(mib(n) + 0.5))
	}
	return strings.Join(parts, " ")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
