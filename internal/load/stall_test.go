package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestStalledUploadsDoNotStarve is issue #19's attack: 1,000
// authenticated PUTs each send 70 KB of a declared 1 MB and stall. With
// the default limits (but a body timeout of 10 s instead of 30 s, to keep
// the test short) they are held open, each with a store connection, while
// another client's GETs and PUTs through the same proxy succeed at their
// usual speed; after the body timeout every stalled upload is answered
// 400 RequestTimeout and disconnected, its store connection is closed,
// and nothing of it is at the store.
func TestStalledUploadsDoNotStarve(t *testing.T) {
	const (
		stalledN    = 1000
		tenants     = 4 // 250 stalled each, under the default 256 per identity
		declared    = 1 << 20
		sent        = 70 << 10
		bodyTimeout = 10 * time.Second
	)
	// Each stalled upload is a socket here and two in the proxy (client
	// and store side). Go raises the soft RLIMIT_NOFILE to the hard one
	// at start, and the proxy and MinIO (Go programs too) do the same for
	// themselves; where the hard limit is lower than the test needs, it
	// is raised here (which takes root) for this process and its children.
	const need = 4 * stalledN
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need {
		raised := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Fatalf("RLIMIT_NOFILE is %d (hard %d), the test needs %d open files: %v", lim.Cur, lim.Max, need, err)
		}
		t.Logf("raised RLIMIT_NOFILE from %d (hard %d) to %d", lim.Cur, lim.Max, need)
	}

	type identity struct {
		AccessKey   string   `json:"access_key"`
		SecretKey   string   `json:"secret_key"`
		Buckets     []string `json:"buckets"`
		Permissions []string `json:"permissions"`
	}
	var ids []identity
	for i := range tenants + 1 {
		ids = append(ids, identity{AccessKey: "tenant-" + strconv.Itoa(i), SecretKey: testenv.RandomKey(20),
			Buckets: []string{"*"}, Permissions: []string{"read", "write", "admin"}})
	}
	good := ids[tenants]
	b, _ := json.Marshal(map[string]any{"identities": ids})
	credFile := filepath.Join(t.TempDir(), "identities.json")
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := minio.UpstreamEnv()
	env["S3SEAL_ACCESS_KEY"], env["S3SEAL_SECRET_KEY"] = "", ""
	env["S3SEAL_CREDENTIALS_FILE"] = credFile
	env["S3SEAL_BODY_TIMEOUT"] = bodyTimeout.String()
	env["S3SEAL_LOG_LEVEL"] = "warn"
	p := testenv.StartS3seal(t, env)
	ctx := context.Background()
	client := func(id identity) *s3.Client {
		return testenv.NewS3Client(p.Endpoint, id.AccessKey, id.SecretKey, func(o *s3.Options) {
			o.RetryMaxAttempts = 1 // a SlowDown is a failure here
			o.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		})
	}
	gc := client(good)
	bucket := "stall-" + strings.ToLower(testenv.RandomKey(4))
	if _, err := gc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{}
	for i := range 16 {
		key := "good/" + strconv.Itoa(i)
		data[key] = []byte(strings.Repeat(key+" ", 64<<10/len(key)))
		if _, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data[key])}); err != nil {
			t.Fatal(err)
		}
	}
	lat, failures := traffic(gc, bucket, data, 8, 3*time.Second)
	if len(failures) > 0 {
		t.Fatalf("before the attack: %v", failures[0])
	}
	baseline := fmt.Sprintf("%d requests, p50 %v p99 %v max %v", len(lat), pct(lat, 50), pct(lat, 99), lat[len(lat)-1])
	fdsBefore := openFiles(t, p.PID())

	// The attack.
	urls := make([]string, stalledN)
	for i := range urls {
		pre, err := s3.NewPresignClient(client(ids[i%tenants])).PresignPutObject(ctx, &s3.PutObjectInput{
			Bucket: &bucket, Key: aws.String("stalled/" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		urls[i] = pre.URL
	}
	conns := make([]net.Conn, stalledN)
	sentAt := make([]time.Time, stalledN)
	var wg sync.WaitGroup
	errs := make(chan error, stalledN)
	sem := make(chan struct{}, 50)
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := stallPut(urls[i], declared, sent)
			if err != nil {
				errs <- err
				return
			}
			conns[i], sentAt[i] = c, time.Now()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("starting a stalled upload: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	lastSent := slices.MaxFunc(sentAt, func(a, b time.Time) int { return a.Compare(b) })
	firstSent := slices.MinFunc(sentAt, func(a, b time.Time) int { return a.Compare(b) })
	t.Logf("%d stalled uploads open in %v", stalledN, lastSent.Sub(firstSent).Round(time.Millisecond))

	// They are in service: a socket to the client and one to the store
	// each (counted in total: a stalled upload may reuse a pooled store
	// connection that was open before).
	var open int
	for end := time.Now().Add(bodyTimeout / 2); ; time.Sleep(100 * time.Millisecond) {
		open = openFiles(t, p.PID())
		if open >= 2*stalledN || time.Now().After(end) {
			break
		}
	}
	rss, _ := testenv.ProcStatusBytes(p.PID(), "VmRSS")
	t.Logf("the proxy has %d open files (%d before the attack); RSS %.1f MiB", open, fdsBefore, float64(rss)/(1<<20))
	if open < 2*stalledN {
		t.Fatalf("the proxy has %d open files: the stalled uploads do not hold a client and a store socket each", open)
	}

	// Another client meanwhile: GETs and PUTs, each must succeed at once,
	// at about the speed it had before the attack (baseline, below).
	lat, failures = traffic(gc, bucket, data, 8, 3*time.Second)
	t.Logf("another client beside them: %d requests in 3 s, %d failed, p50 %v p99 %v max %v (before the attack: %s)",
		len(lat), len(failures), pct(lat, 50), pct(lat, 99), lat[len(lat)-1], baseline)
	for i, err := range failures {
		if i < 10 {
			t.Errorf("another client's request beside the stalled uploads: %v", err)
		}
	}
	if len(lat) < 50 || lat[len(lat)-1] > 5*time.Second {
		t.Errorf("another client beside the stalled uploads: %d requests in 3 s, slowest %v", len(lat), lat[len(lat)-1])
	}
	if time.Since(lastSent) >= bodyTimeout*3/4 {
		t.Fatalf("the check ran too late: %v after the stalled uploads were sent", time.Since(lastSent))
	}

	// The body timeout cuts them off.
	type outcome struct {
		status int
		code   string
		after  time.Duration
		err    error
	}
	outcomes := make([]outcome, stalledN)
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(bodyTimeout + 30*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				outcomes[i].err = err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			outcomes[i] = outcome{status: resp.StatusCode, after: time.Since(sentAt[i])}
			if _, v, ok := strings.Cut(string(b), "<Code>"); ok {
				outcomes[i].code, _, _ = strings.Cut(v, "<")
			}
			// And the connection is closed.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				outcomes[i].err = fmt.Errorf("the connection stayed open after the answer (%v)", err)
			}
		})
	}
	wg.Wait()
	var cut int
	var earliest, latest time.Duration = time.Hour, 0
	for i, o := range outcomes {
		if o.err != nil || o.status != http.StatusBadRequest || o.code != "RequestTimeout" {
			if i-cut < 10 {
				t.Errorf("stalled upload %d: %d %s %v", i, o.status, o.code, o.err)
			}
			continue
		}
		cut++
		earliest, latest = min(earliest, o.after), max(latest, o.after)
	}
	t.Logf("%d of %d stalled uploads answered 400 RequestTimeout and disconnected, %v to %v after their last byte",
		cut, stalledN, earliest.Round(time.Millisecond), latest.Round(time.Millisecond))
	if cut == stalledN && earliest < bodyTimeout*3/4 {
		t.Errorf("a stalled upload was cut off %v after its last byte, before the body timeout (%v)", earliest, bodyTimeout)
	}

	// Their store connections are closed, and nothing of them is stored.
	var fds int
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		fds = openFiles(t, p.PID())
		if fds < fdsBefore+50 || time.Now().After(end) {
			break
		}
	}
	if fds >= fdsBefore+50 {
		t.Errorf("the proxy holds %d open files, %d before the attack", fds, fdsBefore)
	}
	listed, err := minio.S3Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("stalled/")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(listed.Contents); n != 0 {
		t.Errorf("%d stalled uploads are objects at the store, e.g. %s", n, aws.ToString(listed.Contents[0].Key))
	}
	ups, err := minio.S3Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ups.Uploads); n != 0 {
		t.Errorf("%d multipart uploads at the store", n)
	}
}

// traffic is a well-behaved client: workers GET the objects in data and
// PUT new ones for d; it returns the latencies, sorted, and the failures.
func traffic(c *s3.Client, bucket string, data map[string][]byte, workers int, d time.Duration) ([]time.Duration, []error) {
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	var failures []error
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := range workers {
		wg.Go(func() {
			for n := 0; time.Now().Before(end); n++ {
				key := "good/" + strconv.Itoa((w*7+n)%len(data))
				t0 := time.Now()
				var err error
				if n%4 == 3 {
					key = fmt.Sprintf("good/new-%d-%d-%d", w, n, t0.UnixNano())
					body := []byte(strings.Repeat(key, 1000))
					_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
				} else {
					var out *s3.GetObjectOutput
					out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
					if err == nil {
						got, rerr := io.ReadAll(out.Body)
						out.Body.Close()
						if rerr != nil || !bytes.Equal(got, data[key]) {
							err = fmt.Errorf("GET %s: %d bytes, %v", key, len(got), rerr)
						}
					}
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, failures
}

// stallPut starts a PUT to a presigned URL that declares declared bytes
// and sends the first sent of them; the caller keeps the connection.
func stallPut(rawURL string, declared, sent int) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	head := "PUT " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Length: " + strconv.Itoa(declared) + "\r\n\r\n"
	if _, err := c.Write(append([]byte(head), make([]byte, sent)...)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}
