package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Presigned SigV4 URLs through s3seal in front of MinIO, made by
// aws-sdk-go-v2 (s3.PresignClient) and minio-go at their default settings
// and used with the curl binary.

// presigner makes presigned SigV4 GET and PUT URLs valid for expires.
type presigner struct {
	name string
	get  func(t *testing.T, bucket, key string, expires time.Duration) string
	put  func(t *testing.T, bucket, key string, expires time.Duration) string
}

func presigners(p *testenv.S3seal) []presigner {
	ctx := context.Background()
	pc := s3.NewPresignClient(p.S3Client())
	awsSDK := presigner{
		name: "aws-sdk-go-v2",
		get: func(t *testing.T, bucket, key string, expires time.Duration) string {
			t.Helper()
			r, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, s3.WithPresignExpires(expires))
			if err != nil {
				t.Fatalf("PresignGetObject: %v", err)
			}
			return r.URL
		},
		put: func(t *testing.T, bucket, key string, expires time.Duration) string {
			t.Helper()
			r, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, s3.WithPresignExpires(expires))
			if err != nil {
				t.Fatalf("PresignPutObject: %v", err)
			}
			return r.URL
		},
	}
	minioGo := presigner{
		name: "minio-go",
		get: func(t *testing.T, bucket, key string, expires time.Duration) string {
			t.Helper()
			mc, err := p.MinioClient()
			if err != nil {
				t.Fatal(err)
			}
			u, err := mc.PresignedGetObject(ctx, bucket, key, expires, nil)
			if err != nil {
				t.Fatalf("PresignedGetObject: %v", err)
			}
			return u.String()
		},
		put: func(t *testing.T, bucket, key string, expires time.Duration) string {
			t.Helper()
			mc, err := p.MinioClient()
			if err != nil {
				t.Fatal(err)
			}
			u, err := mc.PresignedPutObject(ctx, bucket, key, expires)
			if err != nil {
				t.Fatalf("PresignedPutObject: %v", err)
			}
			return u.String()
		},
	}
	return []presigner{awsSDK, minioGo}
}

// assertV4URL checks that u is a presigned SigV4 URL.
func assertV4URL(t *testing.T, who, u string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s made %q: %v", who, u, err)
	}
	q := pu.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-Signature") == "" || q.Get("X-Amz-Credential") == "" {
		t.Fatalf("%s made %q, not a presigned SigV4 URL", who, u)
	}
}

// changeQuery returns u with the value of query parameter name replaced by
// value, leaving the rest of the URL byte for byte as it was.
func changeQuery(t *testing.T, u, name, value string) string {
	t.Helper()
	base, query, _ := strings.Cut(u, "?")
	parts := strings.Split(query, "&")
	for i, part := range parts {
		if n, old, _ := strings.Cut(part, "="); n == name {
			if old == value {
				t.Fatalf("%s is already %q in %s", name, value, u)
			}
			parts[i] = n + "=" + value
			return base + "?" + strings.Join(parts, "&")
		}
	}
	t.Fatalf("no %s in %s", name, u)
	return ""
}

// tamperSignature flips one hex digit of X-Amz-Signature.
func tamperSignature(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(pu.Query().Get("X-Amz-Signature"))
	if len(sig) != 64 {
		t.Fatalf("X-Amz-Signature %q in %s", sig, u)
	}
	if sig[10] == '0' {
		sig[10] = '1'
	} else {
		sig[10] = '0'
	}
	return changeQuery(t, u, "X-Amz-Signature", string(sig))
}

func TestPresignedSigV4(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is required: %v", err)
	}
	p := startProxy(t)
	bucket := newBucket(t, "presign")
	dir := t.TempDir()

	for _, ps := range presigners(p) {
		t.Run(ps.name, func(t *testing.T) {
			// 0 bytes; one segment; several segments with curl's
			// Expect: 100-continue (curl sends it for uploads over 1 MiB).
			for _, size := range []int{0, 1, 1<<20 + 7} {
				t.Run("put-get/"+sizeName(size), func(t *testing.T) {
					key := ps.name + "/" + sizeName(size)
					plain := plaintext("presign/"+key, size)
					in := writePlainFile(t, dir, filepath.Join(ps.name, sizeName(size)), plain)
					pu := ps.put(t, bucket, key, 5*time.Minute)
					assertV4URL(t, ps.name+" presigned PUT", pu)
					if r := curl(t, pu, "--upload-file", in); r.status != 200 {
						t.Fatalf("curl --upload-file to presigned PUT %s: %d\n%s", key, r.status, first(r.body, 500))
					}
					pg := ps.get(t, bucket, key, 5*time.Minute)
					assertV4URL(t, ps.name+" presigned GET", pg)
					r := curl(t, pg)
					if r.status != 200 {
						t.Fatalf("curl presigned GET %s: %d\n%s", key, r.status, first(r.body, 500))
					}
					testenv.AssertSame(t, "curl presigned GET "+key, r.body, plain)
					assertCiphertextAtRest(t, bucket, key, plain)
				})
			}

			key := ps.name + "/" + sizeName(1<<20+7)
			if !existsInStore(t, bucket, key) {
				t.Fatalf("%s missing: the put-get subtests failed", key)
			}

			t.Run("expired", func(t *testing.T) {
				get := ps.get(t, bucket, key, time.Second)
				put := ps.put(t, bucket, ps.name+"/expired", time.Second)
				time.Sleep(2 * time.Second)
				curlError(t, "curl expired presigned GET", curl(t, get), 403, "AccessDenied")
				in := writePlainFile(t, dir, ps.name+"-expired", []byte("must not be stored"))
				curlError(t, "curl expired presigned PUT", curl(t, put, "--upload-file", in), 403, "AccessDenied")
				if existsInStore(t, bucket, ps.name+"/expired") {
					t.Errorf("an expired presigned PUT stored %s/expired in MinIO", ps.name)
				}
			})

			t.Run("query-changed", func(t *testing.T) {
				u := ps.get(t, bucket, key, 5*time.Minute)
				if r := curl(t, u); r.status != 200 {
					t.Fatalf("curl presigned GET %s before the change: %d\n%s", key, r.status, first(r.body, 500))
				}
				// A shorter validity than signed: the signature covers it.
				changed := changeQuery(t, u, "X-Amz-Expires", "299")
				r := curl(t, changed)
				curlError(t, "curl presigned GET with X-Amz-Expires changed", r, 403, "SignatureDoesNotMatch")
				if bytes.Contains(r.body, []byte(" s3seal end-to-end")) {
					t.Errorf("the refused GET returned plaintext")
				}
			})

			t.Run("tampered-put", func(t *testing.T) {
				tk := ps.name + "/tampered"
				u := tamperSignature(t, ps.put(t, bucket, tk, 5*time.Minute))
				in := writePlainFile(t, dir, ps.name+"-tampered", plaintext("presign/"+tk, 100_000))
				curlError(t, "curl PUT with a tampered presigned URL", curl(t, u, "--upload-file", in), 403, "SignatureDoesNotMatch")
				if existsInStore(t, bucket, tk) {
					t.Errorf("a PUT with a tampered presigned URL stored %s in MinIO", tk)
				}
			})
		})
	}
}

// recordingTransport keeps the headers of the requests it sends.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []http.Header
}

// last returns the headers of the last request sent.
func (rt *recordingTransport) last() http.Header {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.reqs) == 0 {
		return http.Header{}
	}
	return rt.reqs[len(rt.reqs)-1]
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	h := r.Header.Clone()
	if r.ContentLength >= 0 {
		h.Set("X-Recorded-Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	h.Set("X-Recorded-Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
	rt.reqs = append(rt.reqs, h)
	rt.mu.Unlock()
	return rt.next.RoundTrip(r)
}

// TestGoSDKUnseekableBody puts a 5 MiB body aws-sdk-go-v2 cannot seek (so
// it cannot hash it before sending) at default settings, with ContentLength
// set. The SDK then streams it aws-chunked with a trailing checksum
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER) — but only over TLS: over plain HTTP
// it refuses before sending anything ("unseekable stream is not supported
// without TLS and trailing checksum", service/internal/checksum v1.11.12).
// s3seal serves plain HTTP, so the client reaches it through a TLS
// terminator in the test (as behind a load balancer) that keeps the Host
// header the client signed.
func TestGoSDKUnseekableBody(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "unseekable")
	target, err := url.Parse(p.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
	}})
	defer front.Close()
	rt := &recordingTransport{next: front.Client().Transport}
	// testenv.NewS3Client builds s3.Options by hand, which leaves
	// RequestChecksumCalculation unset: no checksum at all. WhenSupported
	// is what config.LoadDefaultConfig gives, the SDK's default.
	c := testenv.NewS3Client(front.URL, p.AccessKey, p.SecretKey, func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: rt}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	})

	key := "unseekable/5MiB"
	size := 5 << 20
	plain := plaintext(key, size)
	body := struct{ io.Reader }{bytes.NewReader(plain)} // hides Seek
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: body, ContentLength: aws.Int64(int64(size))})
	if err != nil {
		t.Fatalf("PutObject %s with an unseekable body: %v", key, err)
	}
	h := rt.last()
	t.Logf("PutObject sent Content-Encoding %q, X-Amz-Content-Sha256 %q, X-Amz-Trailer %q, X-Amz-Decoded-Content-Length %q, Content-Length %q, Transfer-Encoding %q",
		h.Get("Content-Encoding"), h.Get("X-Amz-Content-Sha256"), h.Get("X-Amz-Trailer"), h.Get("X-Amz-Decoded-Content-Length"),
		h.Get("X-Recorded-Content-Length"), h.Get("X-Recorded-Transfer-Encoding"))
	if !strings.Contains(h.Get("Content-Encoding"), "aws-chunked") || h.Get("X-Amz-Trailer") == "" {
		t.Errorf("PutObject was not sent aws-chunked with a trailer (Content-Encoding %q, X-Amz-Trailer %q): the path under test is not exercised",
			h.Get("Content-Encoding"), h.Get("X-Amz-Trailer"))
	}
	r := getVia(t, c, bucket, key, "")
	if r.status != 0 || r.readErr != nil {
		t.Fatalf("GetObject %s: %v", key, r)
	}
	testenv.AssertSame(t, "GetObject "+key, r.body, plain)
	assertCiphertextAtRest(t, bucket, key, plain)

	// Straight to s3seal over plain HTTP the SDK sends nothing; should a
	// later SDK send it, it must read back bit for bit.
	plainRT := &recordingTransport{next: http.DefaultTransport}
	hc := testenv.NewS3Client(p.Endpoint, p.AccessKey, p.SecretKey, func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: plainRT}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	})
	key2 := "unseekable/5MiB-http"
	_, err = hc.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key2),
		Body: struct{ io.Reader }{bytes.NewReader(plain)}, ContentLength: aws.Int64(int64(size))})
	if err != nil {
		if len(plainRT.reqs) != 0 {
			t.Fatalf("PutObject %s over plain HTTP: %v (after sending %v)", key2, err, plainRT.last())
		}
		t.Logf("over plain HTTP the SDK refuses before sending: %v", err)
		return
	}
	r = getVia(t, hc, bucket, key2, "")
	if r.status != 0 || r.readErr != nil {
		t.Fatalf("GetObject %s: %v", key2, r)
	}
	testenv.AssertSame(t, "GetObject "+key2, r.body, plain)
}
