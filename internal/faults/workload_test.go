//lint:file-ignore SA1019 the manager is deprecated for transfermanager, but it is what most Go programs still upload multipart with.

package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3seal/s3seal/internal/testenv"
)

// sizes are the object sizes of the workload: empty, small, around one
// envelope segment, several segments, and one large enough for the
// multipart uploader (5 MiB parts) to split.
var sizes = []int{0, 1000, 64<<10 + 3, 1<<20 + 7, 11<<20 + 5}

// body returns the content of key: a function of the key alone, so that
// any object listed later can be checked, acknowledged or not.
func body(key string, size int) []byte {
	seed := sha256.Sum256([]byte(key))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// attempts records what every HTTP attempt of the workload's clients got,
// retries included: the status and the S3 error code, or the transport
// error of an attempt that got no response.
type attempts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (a *attempts) add(s string) {
	a.mu.Lock()
	a.counts[s]++
	a.mu.Unlock()
}

func (a *attempts) snapshot() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]int, len(a.counts))
	for k, v := range a.counts {
		m[k] = v
	}
	return m
}

// record is a deserialize-step middleware: it sits inside the retry loop,
// so it sees each attempt's answer after the operation's deserializer
// turned an error document into an API error.
func (a *attempts) record(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("recordAttempt",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			status := 0
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp != nil {
				status = resp.StatusCode
			}
			var re *smithyhttp.ResponseError
			if errors.As(err, &re) && re.Response != nil {
				status = re.Response.StatusCode
			}
			var api smithy.APIError
			switch {
			case err == nil:
				a.add(fmt.Sprint(status))
			case errors.As(err, &api) && status < 500:
				// Client errors are named with their operation: which
				// ones a fault may cause depends on it.
				a.add(fmt.Sprintf("%s %d %s", awsmiddleware.GetOperationName(ctx), status, api.ErrorCode()))
			case errors.As(err, &api):
				a.add(fmt.Sprintf("%d %s", status, api.ErrorCode()))
			default:
				a.add("transport: " + transportKind(err))
			}
			return out, md, err
		}), middleware.Before)
}

// transportKind names a transport failure by its class, not its text
// (which holds ports).
func transportKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return fmt.Sprintf("other (%T)", err)
}

// sdkClient is an S3 client that retries as SDKs do by default (standard
// retryer: 5xx, throttling codes and transport errors, with exponential
// backoff), with more attempts (12, backoff up to 2 s: about 10 s in all)
// so that a fault of a few seconds is ridden out as a patient client
// would, and no client-side retry quota (which would turn a burst of
// failures into "retry quota exceeded" instead of what the server said).
func sdkClient(p *testenv.S3seal, a *attempts) *s3.Client {
	return p.S3Client(func(o *s3.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 12
			so.MaxBackoff = 2 * time.Second
			so.RateLimiter = ratelimit.None
		})
		o.APIOptions = append(o.APIOptions, a.record)
	})
}

// workload runs concurrent PUTs (single and multipart) and GETs of mixed
// sizes through a proxy, and records which writes were acknowledged.
type workload struct {
	t      *testing.T
	client *s3.Client
	bucket string
	prefix string
	att    *attempts

	mu        sync.Mutex
	acked     map[string]int // key -> size, PUT answered with success
	attempted map[string]int
	putErrs   []error
	getErrs   []error
	wrong     []string // GETs that answered success with other bytes
	// unfinalized lists unacknowledged multipart objects left listed but
	// unreadable (a known defect, see verify).
	unfinalized []string
	gets        int
	ackTimes    []time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

func startWorkload(t *testing.T, p *testenv.S3seal, bucket string, workers int) *workload {
	w := &workload{t: t, bucket: bucket, prefix: "w-" + testenv.RandomKey(3) + "/",
		att: &attempts{counts: map[string]int{}}, acked: map[string]int{}, attempted: map[string]int{}, stop: make(chan struct{})}
	w.client = sdkClient(p, w.att)
	for i := range workers {
		w.wg.Add(1)
		go w.run(i)
	}
	t.Cleanup(w.halt)
	return w
}

func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *workload) run(worker int) {
	defer w.wg.Done()
	r := rand.New(rand.NewPCG(uint64(worker), uint64(time.Now().UnixNano())))
	up := manager.NewUploader(w.client, func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 2 })
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		default:
		}
		if n%3 == 2 {
			w.getOne(r)
			continue
		}
		// The large size is rarer: it costs as much as the rest together.
		size := sizes[r.IntN(len(sizes)-1)]
		if r.IntN(8) == 0 {
			size = sizes[len(sizes)-1]
		}
		key := fmt.Sprintf("%sk%d-%d-%d", w.prefix, worker, n, size)
		data := body(key, size)
		w.mu.Lock()
		w.attempted[key] = size
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		if size > 5<<20 {
			_, err = up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
		} else {
			_, err = w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
		}
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked[key] = size
			w.ackTimes = append(w.ackTimes, time.Now())
		} else {
			w.putErrs = append(w.putErrs, err)
		}
		w.mu.Unlock()
	}
}

// getOne reads back an acknowledged object: a success must carry exactly
// its bytes; an error (during a fault) is counted.
func (w *workload) getOne(r *rand.Rand) {
	w.mu.Lock()
	keys := make([]string, 0, len(w.acked))
	for k := range w.acked {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	if len(keys) == 0 {
		time.Sleep(10 * time.Millisecond)
		return
	}
	sort.Strings(keys)
	key := keys[r.IntN(len(keys))]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := getAll(ctx, w.client, w.bucket, key)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gets++
	switch {
	case err != nil:
		w.getErrs = append(w.getErrs, err)
	case !bytes.Equal(got, body(key, w.acked[key])):
		w.wrong = append(w.wrong, key)
	}
}

func getAll(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// ackedSince counts the writes acknowledged after t.
func (w *workload) ackedSince(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, at := range w.ackTimes {
		if at.After(t) {
			n++
		}
	}
	return n
}

// waitAcked waits until n more writes than now were acknowledged after
// since, failing the test after timeout.
func (w *workload) waitAcked(since time.Time, n int, timeout time.Duration, what string) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for w.ackedSince(since) < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: %d writes acknowledged in %s, want %d; attempts %v", what, w.ackedSince(since), timeout, n, w.att.snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify stops the workload and checks the bucket as clients see it
// through p: every acknowledged object is listed and reads back
// bit-exact, and every listed object (acknowledged or not: a write whose
// answer was lost may have landed) is one the workload wrote and decrypts
// fully to its bytes. Nothing half-written is visible.
func (w *workload) verify(p *testenv.S3seal) (listed int) {
	w.t.Helper()
	w.halt()
	c := p.S3Client() // no retries: after recovery every request must work
	ctx := context.Background()
	seen := map[string]int64{}
	pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket), Prefix: aws.String(w.prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			w.t.Fatalf("list %s after recovery: %v", w.bucket, err)
		}
		for _, o := range page.Contents {
			seen[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, size := range w.acked {
		if _, ok := seen[key]; !ok {
			w.t.Errorf("acknowledged %s (%d bytes) is not listed after recovery", key, size)
		}
	}
	for key, lsize := range seen {
		size, ok := w.attempted[key]
		if !ok {
			w.t.Errorf("listed %s was never written", key)
			continue
		}
		if lsize != int64(size) {
			w.t.Errorf("%s listed with %d bytes, written with %d", key, lsize, size)
		}
		got, err := getAll(ctx, c, w.bucket, key)
		if _, acked := w.acked[key]; err != nil && !acked && notFinalized(p, w.bucket, key) {
			// Known defect (README, Shutdown and faults): the store
			// completed the upload, the store died before s3seal
			// finalized it, and the client's Complete retries ran out
			// (or it aborted): the object stays listed and every GET
			// is refused. Counted and shown, not hidden.
			w.unfinalized = append(w.unfinalized, key)
			continue
		}
		if err != nil {
			w.t.Errorf("GET %s after recovery: %v", key, err)
			continue
		}
		if !bytes.Equal(got, body(key, size)) {
			w.t.Errorf("%s after recovery: %d bytes that are not what was written (%d bytes)", key, len(got), size)
		}
	}
	if len(w.wrong) > 0 {
		w.t.Errorf("GETs answered success with wrong bytes: %v", w.wrong)
	}
	if len(w.unfinalized) > 0 {
		w.t.Logf("KNOWN DEFECT: %d unacknowledged multipart objects listed but not finalized (every GET refused): %v", len(w.unfinalized), w.unfinalized)
	}
	return len(seen)
}

// notFinalized reports whether the proxy refused bucket/key as a multipart
// object the store completed but s3seal never finalized (FORMAT.md 11.5).
func notFinalized(p *testenv.S3seal, bucket, key string) bool {
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "multipart object not finalized") && strings.Contains(line, bucket+"/"+key) {
			return true
		}
	}
	return false
}

// checkAttempts fails the test if any attempt got something other than a
// success or one of the retriable answers allowed (status and S3 code, or
// a transport failure class), and returns the failed attempts' count.
func (w *workload) checkAttempts(allowed map[string]bool) (failed int) {
	w.t.Helper()
	for what, n := range w.att.snapshot() {
		if what == "200" || what == "204" || what == "206" {
			continue
		}
		failed += n
		// "transport: *" allows every transport failure class.
		if !allowed[what] && !(allowed["transport: *"] && strings.HasPrefix(what, "transport: ")) {
			w.t.Errorf("%d attempts got %q, which is not an answer this fault may give", n, what)
		}
	}
	return failed
}

// report logs what the workload saw.
func (w *workload) report(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("%s: %d writes attempted, %d acknowledged, %d failed after retries; %d GETs, %d failed after retries; attempts %v",
		what, len(w.attempted), len(w.acked), len(w.putErrs), w.gets, len(w.getErrs), w.att.snapshot())
}
