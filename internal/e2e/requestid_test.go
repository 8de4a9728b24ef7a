package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/sigv4"
)

// signedDo sends a request signed for p's credentials (unsigned payload).
func signedDo(t *testing.T, p *testenv.S3seal, method, rawPath string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.Endpoint+rawPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	signer := &sigv4.Signer{AccessKey: p.AccessKey, SecretKey: p.SecretKey, Region: "us-east-1", Service: "s3"}
	h := http.Header{}
	for k, v := range req.Header {
		h[k] = v
	}
	path, query, _ := strings.Cut(rawPath, "?")
	for k, v := range signer.Sign(&sigv4.Request{Method: method, RawPath: path, RawQuery: query, Host: req.URL.Host, Header: h}, sigv4.UnsignedPayload, time.Now()) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var requestIDElem = regexp.MustCompile(`<RequestId>([^<]*)</RequestId>`)

// TestErrorRequestID: every error body's RequestId is the response's
// x-amz-request-id, whether the proxy or the store found the error.
func TestErrorRequestID(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.startProxy(t)
		bucket := st.newBucket(t, "reqid")
		if _, err := p.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"),
			Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			method, path string
			header       http.Header
			code         string
		}{
			"store NoSuchKey":       {"GET", "/" + bucket + "/missing", nil, "NoSuchKey"},
			"store NoSuchBucket":    {"GET", "/no-such-bucket-" + bucket + "/", nil, "NoSuchBucket"},
			"store tagging":         {"GET", "/" + bucket + "/missing?tagging=", nil, "NoSuchKey"},
			"proxy InvalidRange":    {"GET", "/" + bucket + "/k", http.Header{"Range": {"bytes=10-20"}}, "InvalidRange"},
			"empty Content-MD5":     {"PUT", "/" + bucket + "/md5", http.Header{"Content-Md5": {""}}, "InvalidDigest"},
			"malformed Content-MD5": {"PUT", "/" + bucket + "/md5", http.Header{"Content-Md5": {"nope"}}, "InvalidDigest"},
		} {
			t.Run(name, func(t *testing.T) {
				resp, body := signedDo(t, p, tc.method, tc.path, tc.header, "abc")
				m := requestIDElem.FindStringSubmatch(body)
				if !strings.Contains(body, "<Code>"+tc.code+"</Code>") || m == nil {
					t.Fatalf("%d %s, want %s", resp.StatusCode, body, tc.code)
				}
				if id := resp.Header.Get("X-Amz-Request-Id"); id == "" || m[1] != id {
					t.Errorf("RequestId %q in the body, x-amz-request-id %q", m[1], id)
				}
			})
		}
		if st.existsInStore(t, bucket, "md5") {
			t.Error("a PUT with a bad Content-MD5 was stored")
		}
	})
}
