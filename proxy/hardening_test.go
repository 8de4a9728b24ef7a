package proxy_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestAccessLog: one info line per request with what was asked, by whom
// and how it ended; never a signature, a secret or object data.
func TestAccessLog(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	secretData := "plaintext-" + rand.Text()
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("dir/k"), Body: strings.NewReader(secretData)}); err != nil {
		t.Fatal(err)
	}
	presigned, err := s3.NewPresignClient(e.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dir/k")})
	if err != nil {
		t.Fatal(err)
	}
	if st, body := get(t, presigned.URL); st != 200 || body != secretData {
		t.Fatalf("presigned GET: %d %q", st, body)
	}
	creds, _ := e.client.Options().Credentials.Retrieve(ctx)
	sig := presigned.URL[strings.Index(presigned.URL, "X-Amz-Signature=")+len("X-Amz-Signature="):]
	if i := strings.IndexByte(sig, '&'); i >= 0 {
		sig = sig[:i]
	}
	log := e.log.String()
	for _, leak := range []string{sig, creds.SecretAccessKey, secretData} {
		if strings.Contains(log, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	var line string
	for l := range strings.SplitSeq(log, "\n") {
		if strings.Contains(l, "msg=access") && strings.Contains(l, "op=GetObject") {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "bucket=" + bucket, "key=dir/k", "status=200", "bytes_out=" + strconv.Itoa(len(secretData)),
		"access_key=" + creds.AccessKeyID, "X-Amz-Signature=REDACTED", "X-Amz-Credential=REDACTED", "id=", "dur="} {
		if !strings.Contains(line, want) {
			t.Errorf("access line lacks %q: %s", want, line)
		}
	}
	if !strings.Contains(log, "op=PutObject") || !strings.Contains(log, "bytes_in="+strconv.Itoa(len(secretData))) {
		t.Error("no access line for the PUT with its size")
	}
}

// TestReadinessTellsTheTruth: wrong store credentials are not ready, with
// the reason in the body and the log; an unreachable store is 503 to
// clients, not 500.
func TestReadinessTellsTheTruth(t *testing.T) {
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	ids := proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
	good := startProxyWith(t, func(c *proxy.Config) { c.Identities = ids })
	if st, body := get(t, good.endpoint+"/readyz"); st != 200 {
		t.Errorf("ready: %d %s", st, body)
	}
	// A clock that stands still: however slow the machine, every probe
	// below falls in one caching period.
	frozen := time.Now()
	wrong := startProxyWith(t, func(c *proxy.Config) {
		c.Identities, c.UpstreamSecretKey = ids, "wrong-secret"
		c.Now = func() time.Time { return frozen }
	})
	st, body := get(t, wrong.endpoint+"/readyz")
	if st != 503 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("wrong store secret: %d %q", st, body)
	}
	if !strings.Contains(wrong.log.String(), "not ready") || !strings.Contains(wrong.log.String(), "SignatureDoesNotMatch") {
		t.Error("the reason is not logged")
	}
	// A flood of probes costs one check per period: one log line.
	for range 20 {
		get(t, wrong.endpoint+"/readyz")
	}
	if n := strings.Count(wrong.log.String(), "msg=\"not ready\""); n != 1 {
		t.Errorf("%d checks for 21 probes", n)
	}

	// A store that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	gone := startProxyWith(t, func(c *proxy.Config) { c.Identities, c.UpstreamURL = ids, dead })
	if st, body := get(t, gone.endpoint+"/readyz"); st != 503 || !strings.Contains(body, "store unreachable") {
		t.Errorf("unreachable store: %d %q", st, body)
	}
	c := testenv.NewS3Client(gone.endpoint, access, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.GetObject(cctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if code, status := testenv.APIError(err); status != 503 || code != "ServiceUnavailable" {
		t.Errorf("GET with the store down: %v", err)
	}
	_, err = c.PutObject(cctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if _, status := testenv.APIError(err); status != 503 {
		t.Errorf("PUT with the store down: %v", err)
	}
}

// TestStoreErrorsRelayedAreLogged: a store's server error reaches the
// client as the store sent it, and the log says so. (MinIO does not fail
// on demand: the store here is a stub that always answers 500.)
func TestStoreErrorsRelayedAreLogged(t *testing.T) {
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(500)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>disk on fire</Message></Error>`)
	}))
	defer stub.Close()
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.UpstreamURL = stub.URL
	})
	c := testenv.NewS3Client(e.endpoint, access, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if code, status := testenv.APIError(err); status != 500 || code != "InternalError" {
		t.Errorf("PUT: %v", err)
	}
	log := e.log.String()
	if !strings.Contains(log, "store error relayed") || !strings.Contains(log, "disk on fire") || !strings.Contains(log, "op=PutObject") {
		t.Errorf("the store's error is not logged:\n%s", log)
	}
}

// TestUpstreamTLSVerified: an https store is verified against the
// system's roots by default, so a store whose certificate another CA
// signed is refused (503, not ready); given its CA, it is used. (The
// store is a stub: what is tested is the handshake.)
func TestUpstreamTLSVerified(t *testing.T) {
	stub := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>`)
	}))
	defer stub.Close()
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	ids := proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
	untrusted := startProxyWith(t, func(c *proxy.Config) { c.Identities, c.UpstreamURL = ids, stub.URL })
	if st, body := get(t, untrusted.endpoint+"/readyz"); st != 503 || !strings.Contains(body, "store unreachable") {
		t.Errorf("untrusted store: %d %q", st, body)
	}
	if !strings.Contains(untrusted.log.String(), "certificate") {
		t.Error("the log does not say the certificate was refused")
	}
	c := testenv.NewS3Client(untrusted.endpoint, access, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if _, err := c.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err == nil {
		t.Error("ListBuckets through an untrusted store")
	}

	pool := x509.NewCertPool()
	pool.AddCert(stub.Certificate())
	trusted := startProxyWith(t, func(c *proxy.Config) {
		c.Identities, c.UpstreamURL = ids, stub.URL
		c.UpstreamTLS = &tls.Config{RootCAs: pool}
	})
	if st, body := get(t, trusted.endpoint+"/readyz"); st != 200 {
		t.Errorf("trusted store: %d %q", st, body)
	}
}

// TestRefusedBodyDrained: a PUT refused before its body is read (here a
// signature from an unknown access key, sent without Expect:
// 100-continue) gets its S3 error after the proxy has read and dropped a
// body of up to 4 MiB, on a connection that stays usable, so a client still
// writing its body never sees a broken pipe in place of the error. A
// larger body gets the error with Connection: close, as before.
func TestRefusedBodyDrained(t *testing.T) {
	e := startProxy(t)
	bucket := newBucket(t, e)
	addr := strings.TrimPrefix(e.endpoint, "http://")
	auth := "AWS4-HMAC-SHA256 Credential=S3SEAL-NO-SUCH-CLIENT/20261205/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("0", 64)
	put := func(conn net.Conn, size, send int) *http.Response {
		t.Helper()
		head := "PUT /" + bucket + "/refused HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: " + auth +
			"\r\nX-Amz-Date: 20261205T080000Z\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\nContent-Length: " +
			strconv.Itoa(size) + "\r\n\r\n"
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		// The body (all of it but for the last case) is written before the
		// answer is read, as a client without 100-continue does: a reset
		// connection fails this write.
		if _, err := conn.Write(make([]byte, send)); err != nil {
			t.Fatalf("writing a %d-byte body: %v", size, err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer to a refused %d-byte PUT: %v", size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "<Code>InvalidAccessKeyId</Code>") {
			t.Fatalf("refused %d-byte PUT: %d %s", size, resp.StatusCode, b)
		}
		return resp
	}
	for _, size := range []int{70_000, 4 << 20} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if resp := put(conn, size, size); resp.Close {
				t.Fatalf("refused %d-byte PUT #%d: Connection: close, want the body drained and the connection kept", size, i)
			}
		}
		conn.Close()
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// fasthttp reads a body's first 8 KiB before the handler runs.
	if resp := put(conn, 4<<20+1, 64<<10); !resp.Close {
		t.Error("refused PUT of a body over 4 MiB: connection kept open, want Connection: close")
	}
}
