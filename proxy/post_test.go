package proxy_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/sigv4"
)

// form posts fields and a file to url; it returns status, body and
// response.
func form(t *testing.T, url string, fields [][2]string, file []byte) (int, string, *http.Response) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		w.WriteField(f[0], f[1])
	}
	fw, _ := w.CreateFormFile("file", "f.bin")
	fw.Write(file)
	w.Close()
	resp, err := http.Post(url, w.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func policyB64(conds ...any) string {
	doc, _ := json.Marshal(map[string]any{"expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "conditions": conds})
	return base64.StdEncoding.EncodeToString(doc)
}

// v4Form signs a policy for access/secret.
func v4Form(access, secret, key string, conds []any, extra ...[2]string) [][2]string {
	now := time.Now().UTC()
	cred := access + "/" + now.Format("20060102") + "/us-east-1/s3/aws4_request"
	amz := now.Format(sigv4.TimeFormat)
	conds = append(conds, map[string]string{"x-amz-credential": cred}, map[string]string{"x-amz-algorithm": sigv4.Algorithm},
		map[string]string{"x-amz-date": amz}, []any{"starts-with", "$key", ""})
	pol := policyB64(conds...)
	return append(append([][2]string{{"key", key}}, extra...), [2]string{"x-amz-credential", cred}, [2]string{"x-amz-algorithm", sigv4.Algorithm},
		[2]string{"x-amz-date", amz}, [2]string{"policy", pol},
		[2]string{"x-amz-signature", sigv4.SignPostPolicy(secret, now.Format("20060102"), "us-east-1", "s3", pol)})
}

func TestPostObjectIdentitiesAndSSE(t *testing.T) {
	e := startProxyWith(t, func(c *proxy.Config) {
		c.AllowSigV2 = true
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{
			{AccessKey: "all", SecretKey: "all-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions},
			{AccessKey: "one", SecretKey: "one-secret", Buckets: []string{"only-this"}},
		}, nil)
	})
	e.client = testenv.NewS3Client(e.endpoint, "all", "all-secret")
	bucket := newBucket(t, e)
	url := e.endpoint + "/" + bucket
	data := pattern(200_000)

	t.Run("identity without the bucket", func(t *testing.T) {
		st, body, _ := form(t, url, v4Form("one", "one-secret", "k", []any{map[string]string{"bucket": bucket}}), data)
		if st != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("signature v2", func(t *testing.T) {
		pol := policyB64(map[string]string{"bucket": bucket}, []any{"eq", "$key", "v2"})
		st, body, _ := form(t, url, [][2]string{{"key", "v2"}, {"AWSAccessKeyId", "all"}, {"policy", pol},
			{"signature", sigv4.SignV2("all-secret", []byte(pol))}}, data)
		if fips140.Enabled() {
			// FIPS mode verifies no V2 signature, AllowSigV2 or not
			// (sigv4.Verifier.v2Allowed): refused, and nothing stored.
			if st != http.StatusBadRequest || !strings.Contains(body, "<Code>InvalidRequest</Code>") {
				t.Fatalf("V2 form in FIPS mode: %d %s, want 400 InvalidRequest", st, body)
			}
			if _, err := e.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("v2")}); err == nil {
				t.Fatal("a V2 form refused in FIPS mode stored its object")
			}
			return
		}
		if st != http.StatusNoContent {
			t.Fatalf("%d %s", st, body)
		}
		out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("v2")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		testenv.AssertSame(t, "v2 form upload", got, data)
	})
	t.Run("sse fields", func(t *testing.T) {
		conds := []any{map[string]string{"bucket": bucket}, map[string]string{"x-amz-server-side-encryption": "AES256"}}
		st, body, resp := form(t, url, v4Form("all", "all-secret", "sse", conds, [2]string{"x-amz-server-side-encryption", "AES256"}), data)
		if st != http.StatusNoContent || resp.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Fatalf("%d %s %v", st, body, resp.Header)
		}
		conds = []any{map[string]string{"bucket": bucket}, map[string]string{"x-amz-server-side-encryption-customer-algorithm": "AES256"}}
		st, body, _ = form(t, url, v4Form("all", "all-secret", "ssec", conds, [2]string{"x-amz-server-side-encryption-customer-algorithm", "AES256"}), data)
		if st != http.StatusNotImplemented {
			t.Fatalf("SSE-C form: %d %s", st, body)
		}
		conds = []any{map[string]string{"bucket": bucket}, map[string]string{"x-amz-server-side-encryption": "aws:kms"},
			map[string]string{"x-amz-server-side-encryption-aws-kms-key-id": "not-allowed"}}
		st, body, _ = form(t, url, v4Form("all", "all-secret", "kms", conds, [2]string{"x-amz-server-side-encryption", "aws:kms"},
			[2]string{"x-amz-server-side-encryption-aws-kms-key-id", "not-allowed"}), data)
		if st != http.StatusForbidden {
			t.Fatalf("a KMS key the identity may not name: %d %s", st, body)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for name, body := range map[string]string{
			"truncated":   "--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--XX\r\nContent-Disp",
			"no boundary": "garbage",
		} {
			resp, err := http.Post(url, "multipart/form-data; boundary=XX", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>MalformedPOSTRequest</Code>") {
				t.Errorf("%s: %d %s", name, resp.StatusCode, b)
			}
		}
		// The file cut short, after a valid policy.
		fields := v4Form("all", "all-secret", "cut", []any{map[string]string{"bucket": bucket}})
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, f := range fields {
			w.WriteField(f[0], f[1])
		}
		fw, _ := w.CreateFormFile("file", "f")
		fw.Write(data)
		resp, err := http.Post(url, w.FormDataContentType(), &buf) // no closing boundary
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>MalformedPOSTRequest</Code>") {
			t.Errorf("file cut short: %d %s", resp.StatusCode, b)
		}
		if _, err := e.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("cut")}); err == nil {
			t.Error("a cut-short form was stored")
		}
	})
	t.Run("dot segments", func(t *testing.T) {
		st, body, _ := form(t, url, v4Form("all", "all-secret", "a/../../other/k", []any{map[string]string{"bucket": bucket}}), data)
		if st != http.StatusBadRequest {
			t.Fatalf("%d %s", st, body)
		}
	})
}

// TestPutMultipartContentType: a PUT whose body is a multipart/form-data
// document, and says so, is an object like any other: the server must not
// parse (and buffer, and re-encode) it as a form.
func TestPutMultipartContentType(t *testing.T) {
	e := startProxy(t)
	bucket := newBucket(t, e)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("a", "b")
	fw, _ := w.CreateFormFile("file", "x")
	fw.Write(pattern(100_000))
	w.Close()
	// A preamble, which a form parser drops.
	body := append([]byte("preamble\r\n"), buf.Bytes()...)
	ctx := context.Background()
	// Presigned, so that the body goes as it is (the SDK would send it
	// aws-chunked, which fasthttp never parses).
	ps, err := s3.NewPresignClient(e.client).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("form"),
		ContentType: aws.String(w.FormDataContentType())})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, ps.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}
	out, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("form")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	testenv.AssertSame(t, "multipart/form-data object", got, body)
}

// TestPostSpoolBudget: the bytes form uploads spool at once are bounded; a
// form over the budget gets 503 SlowDown with Retry-After and stores
// nothing, and its bytes are given back (the next form fits again).
func TestPostSpoolBudget(t *testing.T) {
	e := startProxyWith(t, func(c *proxy.Config) {
		c.PostSpoolBytes = 1 << 20
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{
			{AccessKey: "all", SecretKey: "all-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
	})
	e.client = testenv.NewS3Client(e.endpoint, "all", "all-secret")
	bucket := newBucket(t, e)
	url := e.endpoint + "/" + bucket
	conds := []any{map[string]string{"bucket": bucket}}
	small, large := pattern(600_000), pattern(3<<20)
	for i, tc := range []struct {
		key    string
		data   []byte
		status int
	}{{"small1", small, http.StatusNoContent}, {"large", large, http.StatusServiceUnavailable}, {"small2", small, http.StatusNoContent}} {
		st, body, resp := form(t, url, v4Form("all", "all-secret", tc.key, conds), tc.data)
		if st != tc.status {
			t.Fatalf("form %d (%s, %d bytes): %d %s", i, tc.key, len(tc.data), st, body)
		}
		if st == http.StatusServiceUnavailable && (!strings.Contains(body, "<Code>SlowDown</Code>") || resp.Header.Get("Retry-After") == "") {
			t.Errorf("over the budget: %d %s %v", st, body, resp.Header)
		}
	}
	notStored(t, e, bucket, "large")
	for _, key := range []string{"small1", "small2"} {
		out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		testenv.AssertSame(t, key, got, small)
	}
}
