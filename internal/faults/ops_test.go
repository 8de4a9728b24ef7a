//lint:file-ignore SA1019 the manager is deprecated for transfermanager, but it is what most Go programs still upload multipart with.

package faults

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// genReader streams n bytes of a fixed pattern at most rate bytes per
// second, like a client uploading over a slow link, without holding the
// body in memory. sent counts what was read so far.
type genReader struct {
	n, rate int64
	sent    atomic.Int64
	start   time.Time
}

var pattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

func (g *genReader) Read(p []byte) (int, error) {
	if g.start.IsZero() {
		g.start = time.Now()
	}
	sent := g.sent.Load()
	if sent >= g.n {
		return 0, io.EOF
	}
	// Ahead of the rate: wait until the link would have carried it.
	if due := g.start.Add(time.Duration(float64(sent) / float64(g.rate) * float64(time.Second))); time.Until(due) > 0 {
		time.Sleep(time.Until(due))
	}
	off := sent % int64(len(pattern))
	n := copy(p, pattern[off:])
	if int64(n) > g.n-sent {
		n = int(g.n - sent)
	}
	g.sent.Add(int64(n))
	return n, nil
}

// hash returns the SHA-256 of the bytes a genReader of n bytes streams.
func genHash(n int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, &genReader{n: n, rate: 1 << 50})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// putStream PUTs body (of size bytes) through the proxy with a presigned
// URL, streaming it; the result channel gets the outcome.
func putStream(t *testing.T, p *testenv.S3seal, bucket, key string, body io.Reader, size int64, onResp ...func(*http.Response)) <-chan error {
	t.Helper()
	ps, err := s3.NewPresignClient(p.S3Client()).PresignPutObject(context.Background(),
		&s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, ps.URL, body)
	req.ContentLength = size
	res := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- err
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, f := range onResp {
			f(resp)
		}
		if resp.StatusCode != http.StatusOK {
			res <- fmt.Errorf("%s: %s", resp.Status, b)
			return
		}
		res <- nil
	}()
	return res
}

// waitExit waits for the proxy process to exit and returns its error.
func waitExit(t *testing.T, p *testenv.S3seal, within time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if exited, err := p.Exited(); exited {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still runs %s after SIGTERM", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shutdownStore is a store behind the proxy in the shutdown tests: MinIO,
// or the proxy's embedded one (whose requests the proxy must cut off
// itself).
type shutdownStore struct {
	name  string
	setup func(t *testing.T, env map[string]string) (bucket string, stored func(key string) bool)
}

var shutdownStores = []shutdownStore{
	{"minio", func(t *testing.T, env map[string]string) (string, func(string) bool) {
		m := testenv.StartMinIO(t, testenv.MinIOOptions{})
		for k, v := range m.UpstreamEnv() {
			env[k] = v
		}
		bucket := newBucket(t, m)
		return bucket, func(key string) bool {
			_, err := m.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			return err == nil
		}
	}},
	{"embedded", func(t *testing.T, env map[string]string) (string, func(string) bool) {
		// The bucket is made through the proxy once it runs; the store
		// is read through a restarted proxy after the shutdown.
		return "", nil
	}},
}

const smallSize = 8 << 20

// TestShutdownCutsOffUploads: SIGTERM with a short deadline while a 1 GiB
// upload streams (from a generator at 32 MiB/s: it cannot finish) and an
// 8 MiB upload is half sent. The listener closes at once, the small upload
// completes with 200, the big one is cut off when the deadline passes and
// the process exits non-zero; the store has the small object and no big
// one.
func TestShutdownCutsOffUploads(t *testing.T) {
	for _, st := range shutdownStores {
		t.Run(st.name, func(t *testing.T) {
			env := map[string]string{"S3SEAL_SHUTDOWN_TIMEOUT": "2s"}
			bucket, stored := st.setup(t, env)
			p := testenv.StartS3seal(t, env)
			keepLog(t, "s3seal", p.Log)
			if bucket == "" {
				bucket = "shutdown-" + testenv.RandomKey(4)
				if _, err := p.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
					t.Fatal(err)
				}
			}
			big := &genReader{n: 1 << 30, rate: 32 << 20}
			bigRes := putStream(t, p, bucket, "big", big, big.n)
			for big.sent.Load() < 16<<20 {
				time.Sleep(10 * time.Millisecond)
			}
			// 8 MiB: past the 4 MiB fasthttp reads before the handler
			// runs, so that half of it puts the request in the handler,
			// where the in-flight gauge sees it. (A connection the proxy
			// has not accepted yet when SIGTERM closes the listener is
			// refused instead, and its client retries.)
			release, smallRes := stalledPut(t, p, bucket, "small", smallSize)
			for deadline := time.Now().Add(10 * time.Second); metric(t, p, "s3seal_requests_in_flight") < 2; {
				if time.Now().After(deadline) {
					t.Fatal("the two uploads are not both in flight after 10 s")
				}
				time.Sleep(10 * time.Millisecond)
			}

			if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			termAt := time.Now()
			// Stop accepting: a new connection is refused (retry later,
			// elsewhere) while the open ones are served.
			u, _ := url.Parse(p.Endpoint)
			for {
				c, err := net.DialTimeout("tcp", u.Host, time.Second)
				if err != nil {
					break
				}
				c.Close()
				if time.Since(termAt) > time.Second {
					t.Fatal("the proxy still accepts connections 1 s after SIGTERM")
				}
				time.Sleep(10 * time.Millisecond)
			}
			release()
			if err := outcome(t, smallRes, 5*time.Second); err != nil {
				t.Errorf("the small upload in flight at SIGTERM: %v, want 200", err)
			}
			if err := outcome(t, bigRes, 10*time.Second); err == nil {
				t.Error("the 1 GiB upload answered 200 although the deadline cut it off")
			} else {
				t.Logf("1 GiB upload after %d MiB sent: %v", big.sent.Load()>>20, err)
			}
			exitErr := waitExit(t, p, 10*time.Second)
			took := time.Since(termAt)
			if exitErr == nil {
				t.Error("the proxy exited 0 although it cut off an upload")
			}
			if took > 5*time.Second {
				t.Errorf("shutdown took %s with a 2 s deadline", took)
			}
			if !strings.Contains(p.Log(), "shutdown deadline passed") {
				t.Error("the log does not say that requests were cut off")
			}
			t.Logf("shutdown took %s, exit %v", took.Round(time.Millisecond), exitErr)

			if stored != nil {
				if stored("big") {
					t.Error("the store holds the upload cut off at the deadline")
				}
				if !stored("small") {
					t.Error("the store lacks the upload that completed during the shutdown")
				}
			}
			// Through the proxy started again (for the embedded store the
			// only view): the small object whole, the big one absent.
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			got, err := getAll(context.Background(), p.S3Client(), bucket, "small")
			if err != nil {
				t.Fatal(err)
			}
			testenv.AssertSame(t, "small object after the shutdown", got, body("small", smallSize))
			_, err = p.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
			if err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("HEAD big after the shutdown: %v, want 404", err)
			}
			out, err := p.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			if err != nil || len(out.Contents) != 1 {
				t.Errorf("listing after the shutdown: %v, %d objects, want only small", err, len(out.Contents))
			}
		})
	}
}

// TestShutdownMultipartNotCompleted: SIGTERM with a short deadline while
// the SDK's upload manager sends a 64 MiB multipart upload slowly: parts in
// flight finish or are cut off, later ones find the listener closed, the
// upload fails, and no object appears (only Complete makes one, and it is
// never sent).
func TestShutdownMultipartNotCompleted(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := m.UpstreamEnv()
	env["S3SEAL_SHUTDOWN_TIMEOUT"] = "1s"
	p := testenv.StartS3seal(t, env)
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	src := &genReader{n: 64 << 20, rate: 16 << 20}
	up := manager.NewUploader(p.S3Client(), func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 2 })
	res := make(chan error, 1)
	go func() {
		_, err := up.Upload(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("mp"),
			Body: struct{ io.Reader }{src}})
		res <- err
	}()
	for src.sent.Load() < 12<<20 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := outcome(t, res, 30*time.Second); err == nil {
		t.Error("the multipart upload cut off by the shutdown answered success")
	} else {
		t.Logf("multipart upload after %d MiB: %v", src.sent.Load()>>20, err)
	}
	waitExit(t, p, 10*time.Second)
	notInStore(t, m, bucket, "mp")
}

// TestShutdownLetsUploadsFinish: with a deadline long enough, an upload in
// flight at SIGTERM (128 MiB at 64 MiB/s) completes, answers 200 with
// Connection: close and reads back whole, and the process exits 0.
func TestShutdownLetsUploadsFinish(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := m.UpstreamEnv()
	env["S3SEAL_SHUTDOWN_TIMEOUT"] = "60s"
	p := testenv.StartS3seal(t, env)
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	up := &genReader{n: 128 << 20, rate: 64 << 20}
	var connClose atomic.Bool
	res := putStream(t, p, bucket, "upload", up, up.n, func(r *http.Response) { connClose.Store(r.Close) })
	for up.sent.Load() < 16<<20 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	if err := outcome(t, res, 30*time.Second); err != nil {
		t.Fatalf("upload in flight at SIGTERM: %v, want 200", err)
	}
	if !connClose.Load() {
		t.Error("the answer given while shutting down lacks Connection: close")
	}
	if err := waitExit(t, p, 10*time.Second); err != nil {
		t.Errorf("the proxy exited with %v after every request finished, want 0", err)
	}
	t.Logf("upload finished and the proxy exited %s after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := p.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("upload")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil || n != up.n || [32]byte(h.Sum(nil)) != genHash(up.n) {
		t.Errorf("read back %d bytes (%v), not the %d uploaded", n, err, up.n)
	}
}

// TestMetricsListener: with S3SEAL_METRICS_LISTEN the metrics are served
// there and not on the S3 listener; the in-flight gauge counts an upload
// in progress, and the byte counters what clients sent and received.
func TestMetricsListener(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	p := testenv.StartS3seal(t, map[string]string{"S3SEAL_METRICS_LISTEN": "127.0.0.1:" + strconv.Itoa(port)})
	keepLog(t, "s3seal", p.Log)

	resp, err := http.Get(p.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "s3seal_requests_total") {
		t.Errorf("GET /metrics on the S3 listener: %s %.200s, want an S3 error (metrics are on their own listener)", resp.Status, b)
	}

	bucket := "metrics-" + testenv.RandomKey(4)
	c := p.S3Client()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, metricsURL)
	if v := before["s3seal_requests_in_flight"]; v != 0 {
		t.Errorf("in flight with nothing running: %v", v)
	}
	const size = 4 << 20
	release, res := stalledPut(t, p, bucket, "obj", size)
	// The proxy reads the half sent as it streams it to the store: wait
	// for it to arrive, then the gauge must show the upload.
	var during map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		during = scrape(t, metricsURL)
		if during["s3seal_client_bytes_received_total"]-before["s3seal_client_bytes_received_total"] >= size/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bytes received 10 s after half of %d was sent: %v", size,
				during["s3seal_client_bytes_received_total"]-before["s3seal_client_bytes_received_total"])
		}
	}
	if v := during["s3seal_requests_in_flight"]; v != 1 {
		t.Errorf("in flight during one upload: %v, want 1", v)
	}
	release()
	if err := outcome(t, res, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := getAll(context.Background(), c, bucket, "obj")
	if err != nil {
		t.Fatal(err)
	}
	testenv.AssertSame(t, "object", data, body("obj", size))
	after := scrape(t, metricsURL)
	if v := after["s3seal_requests_in_flight"]; v != 0 {
		t.Errorf("in flight after the requests: %v, want 0", v)
	}
	in := after["s3seal_client_bytes_received_total"] - before["s3seal_client_bytes_received_total"]
	out := after["s3seal_client_bytes_sent_total"] - before["s3seal_client_bytes_sent_total"]
	// Bodies plus headers: a few KiB more than the bodies, never less.
	if in < size || in > size+64<<10 || out < size || out > size+64<<10 {
		t.Errorf("bytes received %v, sent %v for a %d-byte PUT and GET", in, out, size)
	}
	if after[`s3seal_requests_total{op="PutObject",status="200"}`] < 1 {
		t.Error("the PUT is not counted")
	}

	// --metrics-listen with metrics turned off is a contradiction, refused
	// at start.
	cmd := exec.Command(testenv.BuildS3seal(t), "serve")
	cmd.Env = []string{"S3SEAL_METRICS=false", "S3SEAL_METRICS_LISTEN=127.0.0.1:0", "S3SEAL_DATA_DIR=" + t.TempDir(),
		"S3SEAL_MASTER_KEY_FILE=" + t.TempDir() + "/master.key", "S3SEAL_LISTEN=127.0.0.1:0", "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "contradicts --no-metrics") {
		t.Errorf("serve with metrics off and a metrics listener: %v %s", err, out)
	}
}

// TestHealthCommand: `s3seal health`, the container's health check, exits 0
// while the proxy serves (with --ready: while its store and KMS answer)
// and 1 when nothing answers.
func TestHealthCommand(t *testing.T) {
	// As in the image: a wildcard listen address, which the probe reaches
	// on loopback.
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "0.0.0.0:" + strconv.Itoa(port)
	p := testenv.StartS3seal(t, map[string]string{"S3SEAL_LISTEN": listen})
	bin := testenv.BuildS3seal(t)
	health := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"health"}, args...)...)
		cmd.Env = []string{"S3SEAL_LISTEN=" + listen, "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := health(); err != nil || !strings.Contains(out, "ok") {
		t.Errorf("health: %v %s", err, out)
	}
	if out, err := health("--ready"); err != nil || !strings.Contains(out, "/readyz") {
		t.Errorf("health --ready: %v %s", err, out)
	}
	p.Kill()
	out, err := health("--timeout", "2s")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("health with the proxy down: %v %s, want exit 1", err, out)
	}
}
