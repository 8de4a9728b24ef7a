package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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
	// fasthttp reads the first 8 KiB before the handler runs; the
	// handler streams the rest, the slow part included.
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

// stallPut starts a PUT to a presigned URL that declares declared bytes,
// sends the first sent of them and then nothing: the connection is
// returned for the caller to read the answer from or close.
func stallPut(t *testing.T, url string, declared, sent int) net.Conn {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "PUT " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Length: " + strconv.Itoa(declared) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), pattern(sent)...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestIdentityCap: an identity at its cap of concurrent requests gets 503
// SlowDown with Retry-After, while another identity is served as usual;
// once its requests end, the first is served again.
func TestIdentityCap(t *testing.T) {
	ids := proxy.NewStaticIdentities([]proxy.Identity{
		{AccessKey: "tenant-busy", SecretKey: "busy-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions},
		{AccessKey: "tenant-calm", SecretKey: "calm-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions},
	}, nil)
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = ids
		c.MaxRequestsPerIdentity = 2
	})
	busy := testenv.NewS3Client(e.endpoint, "tenant-busy", "busy-secret", func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	calm := testenv.NewS3Client(e.endpoint, "tenant-calm", "calm-secret", func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	e.client = busy
	bucket := newBucket(t, e)
	ctx := context.Background()
	if _, err := busy.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}

	// Two uploads that stall after 70 KB of a declared 1 MB (past the
	// 8 KiB fasthttp reads before the handler runs) hold both of
	// tenant-busy's slots.
	stalled := make([]net.Conn, 2)
	for i := range stalled {
		pre, err := s3.NewPresignClient(busy).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("stalled-" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		// Opened one after the other, each admitted (no answer yet)
		// before the next: two at once may race for the last slot.
		for attempt := 0; ; attempt++ {
			stalled[i] = stallPut(t, pre.URL, 1<<20, 70<<10)
			time.Sleep(200 * time.Millisecond)
			stalled[i].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := stalled[i].Read(make([]byte, 1)); isTimeout(err) {
				stalled[i].SetReadDeadline(time.Time{})
				break
			}
			if attempt == 5 {
				t.Fatalf("stalled upload %d: answered before its body was sent", i)
			}
		}
	}
	var err error
	// GET, not HEAD: the error's code is in the body.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var got *s3.GetObjectOutput
		got, err = busy.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
		if err != nil || time.Now().After(deadline) {
			break
		}
		got.Body.Close()
	}
	var re *awshttp.ResponseError
	if code, status := testenv.APIError(err); status != 503 || code != "SlowDown" || !errors.As(err, &re) || re.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("tenant-busy past its cap: %v", err)
	}
	// tenant-calm is served meanwhile.
	for i := range 5 {
		key := "calm-" + strconv.Itoa(i)
		if _, err := calm.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(key)}); err != nil {
			t.Fatalf("tenant-calm PUT beside a tenant at its cap: %v", err)
		}
		got, err := calm.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("tenant-calm GET beside a tenant at its cap: %v", err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(b) != key {
			t.Fatalf("tenant-calm GET %q: %q", key, b)
		}
	}
	// The stalled uploads end (their clients go away): the slots return.
	for _, c := range stalled {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := busy.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant-busy's slots were not given back: %v", err)
		}
	}
}

// TestStalledBodyAndStoreConnWait: uploads that stop sending mid-body hold
// the only store connections; a request that needs one waits
// UpstreamConnWait and gets 503 SlowDown with Retry-After, never 500.
// After BodyTimeout without a byte, the stalled uploads are answered 400
// RequestTimeout and disconnected, their store connections are freed,
// and nothing of them is stored.
func TestStalledBodyAndStoreConnWait(t *testing.T) {
	access, secret := "client-stall", "stall-secret"
	const bodyTimeout = 3 * time.Second
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.BodyTimeout = bodyTimeout
		c.UpstreamMaxConns = 2
		c.UpstreamConnWait = 300 * time.Millisecond
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	bucket := newBucket(t, e)
	ctx := context.Background()
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	var stalled []net.Conn
	for i := range 2 {
		pre, err := s3.NewPresignClient(e.client).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("stalled-" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, stallPut(t, pre.URL, 1<<20, 70<<10))
	}
	started := time.Now()

	var err error
	var took time.Duration
	// GET, not HEAD: the error's code is in the body.
	for time.Since(started) < bodyTimeout/2 {
		t0 := time.Now()
		var got *s3.GetObjectOutput
		got, err = e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
		took = time.Since(t0)
		if err != nil {
			break
		}
		got.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	var re *awshttp.ResponseError
	if code, status := testenv.APIError(err); status != 503 || code != "SlowDown" || !errors.As(err, &re) || re.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("with every store connection held by a stalled upload: %v", err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("answered after %v, want about UpstreamConnWait (300ms)", took)
	}

	for i, c := range stalled {
		c.SetReadDeadline(time.Now().Add(bodyTimeout + 10*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled upload %d: no answer: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(started); resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>RequestTimeout</Code>") || d < bodyTimeout*3/4 {
			t.Errorf("stalled upload %d after %v: %d %s", i, d, resp.StatusCode, b)
		}
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("stalled upload %d: the connection stays open (read %d)", i, n)
		}
		_, err = e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("stalled-" + strconv.Itoa(i))})
		if _, status := testenv.APIError(err); status != 404 {
			t.Errorf("stalled upload %d is at the store: %v", i, err)
		}
	}
	// The store connections are free again.
	for i := range 3 {
		if _, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")}); err != nil {
			t.Fatalf("HEAD %d after the stalled uploads were cut off: %v", i, err)
		}
	}
	if log := e.log.String(); strings.Contains(log, "no free connections") && strings.Contains(log, "status=500") {
		t.Error("a busy store connection pool was answered 500")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestStalledDownload: a client that stops reading a download is cut off
// after BodyTimeout without progress, and its request slot is given back.
func TestStalledDownload(t *testing.T) {
	access, secret := "client-dl", "dl-secret"
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.BodyTimeout = time.Second
		c.MaxConcurrentRequests = 1
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	bucket := newBucket(t, e)
	ctx := context.Background()
	// More than loopback's socket buffers hold, so that the proxy's
	// writes block.
	const size = 48 << 20
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big"), Body: bytes.NewReader(pattern(size))}); err != nil {
		t.Fatal(err)
	}
	pre, err := s3.NewPresignClient(e.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := neturl.Parse(pre.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A small receive buffer, so that the proxy's writes block soon.
	conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	io.WriteString(conn, "GET "+u.RequestURI()+" HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	// The download holds the only slot ...
	_, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big")})
	if _, status := testenv.APIError(err); status != 503 {
		t.Fatalf("beside a download: %v", err)
	}
	// ... until it is cut off.
	for {
		_, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big")})
		if err == nil {
			break
		}
		if time.Since(started) > 15*time.Second {
			t.Fatalf("the stalled download still holds its slot: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(started); d < 700*time.Millisecond {
		t.Errorf("the slot came back %v after the client stopped reading, before BodyTimeout", d)
	}
	// The client gets less than the object: the connection was closed.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n == size-1000 {
		t.Errorf("the stalled download was sent whole")
	}
}

// TestProtocolErrorsAreS3XML: a request whose headers exceed what the
// proxy reads is answered with S3's error document, not fasthttp's text.
func TestProtocolErrorsAreS3XML(t *testing.T) {
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities(nil, nil)
		c.HeaderTimeout = 500 * time.Millisecond
	})
	addr := strings.TrimPrefix(e.endpoint, "http://")
	for name, req := range map[string]string{
		"oversized headers": "GET /b/k HTTP/1.1\r\nHost: " + addr + "\r\nX-Amz-Meta-Big: " + strings.Repeat("x", 100<<10) + "\r\n\r\n",
		"malformed":         "GET /b/k HTTP/1.1\r\nHost: " + addr + "\r\nno colon here\r\n\r\n",
		// 408: clients drop an idle connection answered so silently.
		"nothing sent": "",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, req)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		want := 400
		if req == "" {
			want = 408
		}
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/xml" || !strings.Contains(string(b), "<Error><Code>") {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if name == "oversized headers" && !strings.Contains(string(b), "<Code>RequestHeaderSectionTooLarge</Code>") {
			t.Errorf("%s: %s", name, b)
		}
	}
}
