package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkkms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// keepLog saves what a component printed in the test's artifact directory
// (go test -artifacts keeps it) when the test fails: the cleanup of testenv
// shows only the last 8 KiB.
func keepLog(t *testing.T, name string, log func() string) {
	t.Cleanup(func() {
		if t.Failed() {
			path := filepath.Join(t.ArtifactDir(), name+".log")
			if err := os.WriteFile(path, []byte(log()), 0o600); err == nil {
				t.Logf("%s log: %s", name, path)
			}
		}
	})
}

// metric reads one series of the proxy's metrics (on its S3 listener).
func metric(t *testing.T, p *testenv.S3seal, series string) float64 {
	t.Helper()
	return scrape(t, p.Endpoint+"/metrics")[series]
}

// scrape returns the metrics at url as series -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// newBucket creates a bucket in the store directly (set-up, not under
// test).
func newBucket(t *testing.T, m *testenv.MinIO) string {
	t.Helper()
	name := "faults-" + testenv.RandomKey(4)
	if _, err := m.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return name
}

// stalledPut starts a PUT of size bytes through the proxy (presigned, so
// the body streams unbuffered) that sends half its body and then waits for
// release; it returns release and a channel with the request's outcome.
func stalledPut(t *testing.T, p *testenv.S3seal, bucket, key string, size int) (release func(), result <-chan error) {
	t.Helper()
	ps, err := s3.NewPresignClient(p.S3Client()).PresignPutObject(context.Background(),
		&s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	data := body(key, size)
	pr, pw := io.Pipe()
	gate := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		if _, err := pw.Write(data[:size/2]); err != nil {
			return
		}
		close(sent)
		<-gate
		_, _ = pw.Write(data[size/2:])
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPut, ps.URL, pr)
	req.ContentLength = int64(size)
	res := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- err
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			res <- fmt.Errorf("%s: %s", resp.Status, b)
			return
		}
		res <- nil
	}()
	select {
	case <-sent:
	case err := <-res:
		t.Fatalf("stalled PUT ended before half its body was sent: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("stalled PUT: half the body not taken in 10 s")
	}
	var once bool
	return func() {
		if !once {
			once = true
			close(gate)
		}
	}, res
}

func outcome(t *testing.T, res <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(within):
		t.Fatalf("request still open after %s", within)
		return nil
	}
}

// notInStore checks that the store itself has no object bucket/key.
func notInStore(t *testing.T, m *testenv.MinIO, bucket, key string) {
	t.Helper()
	if _, err := m.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
		t.Errorf("%s/%s is in the store: an upload that failed was stored", bucket, key)
	} else if !strings.Contains(err.Error(), "404") {
		t.Errorf("HEAD %s/%s at the store: %v", bucket, key, err)
	}
}

// sameListing checks that the store lists the same keys under prefix as
// the proxy did: nothing the proxy hides (it would hide an object it
// cannot decrypt) is in the store.
func sameListing(t *testing.T, m *testenv.MinIO, bucket, prefix string, proxied int) {
	t.Helper()
	out, err := m.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToBool(out.IsTruncated) || len(out.Contents) != proxied {
		t.Errorf("the store lists %d objects (truncated %v), the proxy %d", len(out.Contents), aws.ToBool(out.IsTruncated), proxied)
	}
}

// TestStoreKilledMidTransfer: MinIO is killed with SIGKILL while the
// workload runs (and while one upload is half sent), and restarted on the
// same port and data dir. Clients get S3 errors they retry (503
// ServiceUnavailable while the store refuses connections and for a
// request it cut off), or the connection closed with a request body
// unread; no write is acknowledged that did not land.
func TestStoreKilledMidTransfer(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	p := testenv.StartS3seal(t, m.UpstreamEnv())
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	w := startWorkload(t, p, bucket, 4)
	w.waitAcked(time.Time{}, 10, 20*time.Second, "before the fault")

	release, torn := stalledPut(t, p, bucket, w.prefix+"torn", 4<<20)
	m.Kill()
	killed := time.Now()
	release()
	if err := outcome(t, torn, 20*time.Second); err == nil {
		t.Error("an upload whose store was killed mid-body answered 200")
	} else {
		t.Logf("upload cut off by the store's death: %v", err)
	}
	time.Sleep(2 * time.Second) // the store stays down: requests fail, clients retry
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("MinIO down for %s", time.Since(killed).Round(time.Millisecond))
	restarted := time.Now()
	w.waitAcked(restarted, 10, 20*time.Second, "after the restart")
	n := w.verify(p)
	w.report("store killed")
	notInStore(t, m, bucket, w.prefix+"torn")
	sameListing(t, m, bucket, w.prefix, n)
	// A request the proxy refused while its body was still coming
	// closes the connection: the client may see that before the answer.
	//
	// Seen once in a dozen runs: a CompleteMultipartUpload retried after
	// the store died in the middle of the first attempt answered 400
	// InvalidPart (MinIO had taken the parts but not finished the
	// object). The write is then not acknowledged, and verify has checked
	// that the key is either absent or whole.
	//
	// A restarted MinIO answers 503 XMinioServerNotInitialized until it has
	// loaded its disks; the proxy relays the store's own 503, which SDKs
	// retry like any other.
	//
	// When the store dies in the middle of an answer the proxy is relaying
	// (a listing, a Complete), the proxy has sent its status line already
	// and can only break the connection off: the client sees a transport
	// failure of whatever class its read got (reset, EOF, a body that does
	// not decode). Every one is retried, and verify checks the outcome.
	failed := w.checkAttempts(map[string]bool{
		"503 ServiceUnavailable": true, "503 XMinioServerNotInitialized": true, "500 InternalError": true,
		"transport: *": true,
		"CompleteMultipartUpload 400 InvalidPart": true,
	})
	if failed == 0 {
		t.Error("no attempt failed while the store was down: the fault was not exercised")
	}
}

// TestKMSKilledAndRestarted: the networked KMS (s3seal kms serve, used as
// AWS KMS) is killed with SIGKILL and restarted while the workload runs
// with data-key reuse off, so that every PUT calls it (GETs are served
// from the cache of unwrapped keys). The proxy's
// KMS client retries with backoff for up to 20 s, so an outage shorter
// than that delays requests and fails none; a longer one answers 503
// SlowDown. Either way nothing is written without a wrapped key.
//
// moto_server cannot play this part: it keeps keys in memory and draws
// their material from os.urandom, so a restarted moto has lost every key
// (recreating one gives new material, and objects wrapped before could
// never be decrypted). kms serve keeps its keyring on disk.
func TestKMSKilledAndRestarted(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	ks, env := startKMS(t, m)
	env["S3SEAL_DEK_CACHE_MAX_USES"] = "0"
	p := testenv.StartS3seal(t, env)
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	w := startWorkload(t, p, bucket, 4)
	w.waitAcked(time.Time{}, 10, 20*time.Second, "before the fault")

	ks.Kill()
	killed := time.Now()
	time.Sleep(3 * time.Second)
	if err := ks.Start(); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killed)
	t.Logf("KMS down for %s", down.Round(time.Millisecond))
	w.waitAcked(time.Now(), 10, 20*time.Second, "after the restart")
	w.verify(p)
	w.report("KMS killed")
	// Within the retry deadline the proxy absorbs the outage: clients
	// see slow answers, not errors. Past it they would see 503 SlowDown.
	w.checkAttempts(map[string]bool{"503 SlowDown": true})
	// The outage was felt: calls failed and were retried.
	if n := metric(t, p, "s3seal_kms_retries_total"); n == 0 {
		t.Error("no KMS call was retried: the outage was not exercised")
	} else {
		t.Logf("KMS attempts retried by the proxy: %v; calls that gave up: %v", n, metric(t, p, "s3seal_kms_retry_gave_up_total"))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.putErrs)+len(w.getErrs) > 0 {
		t.Errorf("requests failed after retries during a %s KMS outage: %v %v", down, w.putErrs, w.getErrs)
	}
}

// startKMS starts a networked KMS (s3seal kms serve) with a key aliased
// alias/faults, and returns it with the settings that point a proxy at it.
func startKMS(t *testing.T, m *testenv.MinIO) (*testenv.KMSServer, map[string]string) {
	t.Helper()
	ks := testenv.StartKMSServer(t, nil)
	// The key server makes no key itself: create the proxy's default key
	// through the API, as an operator would.
	api := sdkkms.New(sdkkms.Options{Region: testenv.Region, BaseEndpoint: aws.String(ks.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(ks.AccessKey, ks.SecretKey, "")})
	k, err := api.CreateKey(context.Background(), &sdkkms.CreateKeyInput{Description: aws.String("faults")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateAlias(context.Background(), &sdkkms.CreateAliasInput{AliasName: aws.String("alias/faults"), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	env := m.UpstreamEnv()
	for k, v := range testenv.KMSClientEnv(ks.Endpoint, ks.AccessKey, ks.SecretKey) {
		env[k] = v
	}
	env["S3SEAL_KMS_KEY_ID"] = "alias/faults"
	return ks, env
}

// TestKMSFrozen: moto_server, as AWS KMS, stops answering (SIGSTOP) for
// 3 s while the workload runs with data-key reuse off, then resumes. The
// KMS calls hang rather than fail (each is bounded at 10 s, then retried
// until 20 s), so clients see slow answers and no error, and nothing is
// lost. (A moto restart would lose its keys; freezing keeps them.)
func TestKMSFrozen(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	moto := testenv.StartMoto(t)
	api := sdkkms.New(sdkkms.Options{Region: testenv.Region, BaseEndpoint: aws.String(moto.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(moto.AccessKey, moto.SecretKey, "")})
	k, err := api.CreateKey(context.Background(), &sdkkms.CreateKeyInput{Description: aws.String("faults")})
	if err != nil {
		t.Fatal(err)
	}
	env := m.UpstreamEnv()
	for key, v := range testenv.KMSClientEnv(moto.Endpoint, moto.AccessKey, moto.SecretKey) {
		env[key] = v
	}
	env["S3SEAL_KMS_KEY_ID"] = aws.ToString(k.KeyMetadata.Arn)
	env["S3SEAL_DEK_CACHE_MAX_USES"] = "0"
	p := testenv.StartS3seal(t, env)
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	w := startWorkload(t, p, bucket, 4)
	w.waitAcked(time.Time{}, 10, 20*time.Second, "before the fault")

	moto.Freeze()
	time.Sleep(3 * time.Second)
	moto.Thaw()
	w.waitAcked(time.Now(), 10, 20*time.Second, "after the thaw")
	w.verify(p)
	w.report("KMS frozen")
	w.checkAttempts(nil)
	// The freeze was felt: requests waited on the KMS for most of it.
	ms := scrape(t, p.Endpoint+"/metrics")
	slow := map[string]float64{}
	for series, n := range ms {
		op, ok := strings.CutPrefix(series, `s3seal_request_duration_seconds_count{op="`)
		if !ok {
			continue
		}
		op = strings.TrimSuffix(op, `"}`)
		if d := n - ms[`s3seal_request_duration_seconds_bucket{op="`+op+`",le="2.5"}`]; d > 0 {
			slow[op] = d
		}
	}
	if len(slow) == 0 {
		t.Error("no request took over 2.5 s: the freeze was not exercised")
	}
	t.Logf("requests that took over 2.5 s, by operation: %v", slow)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.putErrs)+len(w.getErrs) > 0 {
		t.Errorf("requests failed after retries while the KMS was frozen for 3 s: %v %v", w.putErrs, w.getErrs)
	}
}

// TestKMSDownPastRetryDeadline: a KMS outage longer than the proxy's KMS
// retry deadline (20 s) reaches clients as 503 SlowDown, which SDKs
// retry: a PUT that needs a new data key and a GET that needs an unwrap
// (on a second proxy, whose cache never saw the key). Nothing is stored
// for the refused PUT, and both work once the KMS is back.
func TestKMSDownPastRetryDeadline(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	ks, env := startKMS(t, m)
	env["S3SEAL_DEK_CACHE_MAX_USES"] = "0"
	p1, p2 := testenv.StartS3seal(t, env), testenv.StartS3seal(t, env)
	keepLog(t, "s3seal", p1.Log)
	bucket := newBucket(t, m)
	ctx := context.Background()
	put := func(key string) error {
		_, err := p1.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body(key, 1000))})
		return err
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	ks.Kill()
	start := time.Now()
	errs := make(chan error, 2)
	go func() { errs <- put("during") }()
	go func() {
		_, err := getAll(ctx, p2.S3Client(), bucket, "before")
		errs <- err
	}()
	for range 2 {
		err := <-errs
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "SlowDown" || !strings.Contains(err.Error(), "StatusCode: 503") {
			t.Errorf("during a KMS outage past the retry deadline: %v, want 503 SlowDown", err)
		}
	}
	took := time.Since(start)
	t.Logf("503 SlowDown after %s", took.Round(time.Millisecond))
	if took < 15*time.Second || took > 30*time.Second {
		t.Errorf("answered after %s, want the retry deadline (20 s)", took)
	}
	notInStore(t, m, bucket, "during")
	if err := ks.Start(); err != nil {
		t.Fatal(err)
	}
	if err := put("during"); err != nil {
		t.Errorf("PUT once the KMS is back: %v", err)
	}
	got, err := getAll(ctx, p2.S3Client(), bucket, "before")
	if err != nil {
		t.Fatalf("GET once the KMS is back: %v", err)
	}
	testenv.AssertSame(t, "object read once the KMS is back", got, body("before", 1000))
}

// TestProxyKilled: the proxy is killed with SIGKILL (kill -9) while the
// workload runs and one upload is half sent, then started again on the
// same port. Clients see connections refused or cut, which SDKs retry;
// the upload cut off is not stored, and every acknowledged write reads
// back bit-exact.
func TestProxyKilled(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	p := testenv.StartS3seal(t, m.UpstreamEnv())
	keepLog(t, "s3seal", p.Log)
	bucket := newBucket(t, m)
	w := startWorkload(t, p, bucket, 4)
	w.waitAcked(time.Time{}, 10, 20*time.Second, "before the fault")

	release, torn := stalledPut(t, p, bucket, w.prefix+"torn", 4<<20)
	endpoint := p.Endpoint
	p.Kill()
	// The client notices the closed connection when it sends more.
	release()
	if err := outcome(t, torn, 10*time.Second); err == nil {
		t.Error("an upload whose proxy was killed mid-body answered 200")
	}
	time.Sleep(time.Second)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.Endpoint != endpoint {
		t.Fatalf("the proxy came back on %s, not %s (port taken meanwhile)", p.Endpoint, endpoint)
	}
	w.waitAcked(time.Now(), 10, 20*time.Second, "after the restart")
	n := w.verify(p)
	w.report("proxy killed")
	notInStore(t, m, bucket, w.prefix+"torn")
	sameListing(t, m, bucket, w.prefix, n)
	failed := w.checkAttempts(map[string]bool{
		"transport: connection refused": true, "transport: connection reset": true,
		"transport: broken pipe": true, "transport: EOF": true,
	})
	if failed == 0 {
		t.Error("no attempt failed while the proxy was down: the fault was not exercised")
	}
}
