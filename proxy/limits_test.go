package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// slowReader sends n bytes: the first fast of them at once, the rest in
// pieces with a pause before each.
type slowReader struct {
	sent, n, fast int
	pause         time.Duration
	slow          chan struct{} // closed when the slow part starts
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.sent == r.n {
		return 0, io.EOF
	}
	limit := r.fast - r.sent
	if limit <= 0 {
		if r.slow != nil {
			close(r.slow)
			r.slow = nil
		}
		time.Sleep(r.pause)
		limit = 64 << 10
	}
	n := min(len(p), r.n-r.sent, limit)
	for i := range n {
		p[i] = byte(r.sent + i)
	}
	r.sent += n
	return n, nil
}

// TestLimits: a request whose headers trickle in is cut off after the
// header timeout while a body may take longer; past the bound on
// concurrent requests, clients get 503 SlowDown with Retry-After.
func TestLimits(t *testing.T) {
	access, secret := "client-lim", "limits-secret"
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.HeaderTimeout = 500 * time.Millisecond
		c.MaxConcurrentRequests = 1
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret)
	bucket := newBucket(t, e)
	addr := strings.TrimPrefix(e.endpoint, "http://")

	// Slowloris: half a request line, then nothing.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /"+bucket+"/k HT"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the half-sent request was not closed: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}

	// A body slower than the header timeout, holding the only slot.
	ctx := context.Background()
	pre, err := s3.NewPresignClient(e.client).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	// Over the 4 MiB fasthttp reads before the handler runs, so that the
	// handler streams the slow part.
	const size = 4<<20 + 300<<10
	body := &slowReader{n: size, fast: 4<<20 + 16<<10, pause: 300 * time.Millisecond, slow: make(chan struct{})}
	started := body.slow
	req, _ := http.NewRequest(http.MethodPut, pre.URL, body)
	req.ContentLength = size
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = &httpStatusError{resp.StatusCode, string(b)}
			}
		}
		done <- err
	}()
	<-started
	time.Sleep(500 * time.Millisecond)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "GET /"+bucket+"/k HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "<Code>SlowDown</Code>") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the bound: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if err := <-done; err != nil {
		t.Fatalf("a body slower than the header timeout: %v", err)
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("slow")})
	if err != nil || aws.ToInt64(head.ContentLength) != size {
		t.Errorf("the slow upload: %v", err)
	}

	// A download holds its slot while its body streams, and gives it
	// back when done.
	big := pattern(24 << 20)
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big"), Body: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(got.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if code, status := testenv.APIError(err); status != 503 {
		t.Errorf("a request beside a streaming download: %v %s", err, code)
	}
	rest, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || len(rest) != len(big)-1000 {
		t.Fatalf("the download: %d bytes, %v", len(rest), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot was not given back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type httpStatusError struct {
	status int
	body   string
}

func (e *httpStatusError) Error() string { return http.StatusText(e.status) + ": " + e.body }
