package e2e

import (
	"bytes"
	"context"
	"crypto/fips140"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/sigv4"
)

// Browser form uploads (POST policy) through s3seal: signed by boto3,
// minio-go and by hand, sent by curl -F and net/http, each failing
// condition answered as S3 does, and what succeeds reads back bit-exact
// and is stored encrypted.

// postField is one form field, in order.
type postField struct{ name, value string }

// postForm sends fields then a file part named filename holding body.
func postForm(t *testing.T, url string, fields []postField, filename string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		w.WriteField(f.name, f.value)
	}
	fw, _ := w.CreateFormFile("file", filename)
	fw.Write(body)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, url, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// signedPolicy is a SigV4-signed form for p's credentials: the fields
// policy needs, then extra, with conditions cond.
func signedPolicy(p *testenv.S3seal, expires time.Time, cond []any, extra ...postField) []postField {
	now := time.Now().UTC()
	date := now.Format("20060102")
	cred := p.AccessKey + "/" + date + "/us-east-1/s3/aws4_request"
	amzDate := now.Format(sigv4.TimeFormat)
	cond = append(cond, map[string]string{"x-amz-algorithm": sigv4.Algorithm},
		map[string]string{"x-amz-credential": cred}, map[string]string{"x-amz-date": amzDate})
	doc, _ := json.Marshal(map[string]any{"expiration": expires.UTC().Format("2006-01-02T15:04:05.000Z"), "conditions": cond})
	pol := base64.StdEncoding.EncodeToString(doc)
	fields := append([]postField{}, extra...)
	return append(fields, postField{"x-amz-algorithm", sigv4.Algorithm}, postField{"x-amz-credential", cred},
		postField{"x-amz-date", amzDate}, postField{"policy", pol},
		postField{"x-amz-signature", sigv4.SignPostPolicy(p.SecretKey, date, "us-east-1", "s3", pol)})
}

func getThrough(t *testing.T, p *testenv.S3seal, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := p.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s through s3seal: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func errorCode(body []byte) string {
	var e struct{ Code string }
	xml.Unmarshal(body, &e)
	return e.Code
}

func TestPostPolicy(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.startProxy(t)
		bucket := st.newBucket(t, "post")
		url := p.Endpoint + "/" + bucket
		data := randomBytes(300_000)
		exp := time.Now().Add(time.Hour)
		base := []any{map[string]string{"bucket": bucket}, []any{"starts-with", "$key", "up/"},
			[]any{"content-length-range", 10, 1 << 20}, []any{"starts-with", "$Content-Type", "image/"},
			map[string]string{"x-amz-meta-who": "alice"}, []any{"starts-with", "$success_action_status", ""}}
		ok := []postField{{"key", "up/${filename}"}, {"Content-Type", "image/png"}, {"x-amz-meta-who", "alice"},
			{"success_action_status", "201"}}

		t.Run("accepted", func(t *testing.T) {
			resp, body := postForm(t, url, signedPolicy(p, exp, base, ok...), "a b&c.png", data)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var pr struct{ Bucket, Key, ETag string }
			if err := xml.Unmarshal(body, &pr); err != nil || pr.Key != "up/a b&c.png" || pr.Bucket != bucket {
				t.Fatalf("PostResponse %s (%v)", body, err)
			}
			got, out := getThrough(t, p, bucket, "up/a b&c.png")
			testenv.AssertSame(t, "POSTed object", got, data)
			if aws.ToString(out.ContentType) != "image/png" || out.Metadata["who"] != "alice" {
				t.Errorf("content type %q, metadata %v", aws.ToString(out.ContentType), out.Metadata)
			}
			if aws.ToString(out.ETag) != pr.ETag || resp.Header.Get("ETag") != pr.ETag {
				t.Errorf("ETag: GET %s, POST %s / %s", aws.ToString(out.ETag), pr.ETag, resp.Header.Get("ETag"))
			}
			st.assertCiphertextAtRest(t, bucket, "up/a b&c.png", data)
		})
		t.Run("status", func(t *testing.T) {
			for want, f := range map[int][]postField{
				http.StatusNoContent: {{"key", "up/204"}, {"Content-Type", "image/png"}, {"x-amz-meta-who", "alice"}},
				http.StatusOK:        {{"key", "up/200"}, {"Content-Type", "image/png"}, {"x-amz-meta-who", "alice"}, {"success_action_status", "200"}},
			} {
				resp, body := postForm(t, url, signedPolicy(p, exp, base, f...), "x", data[:100])
				if resp.StatusCode != want || len(body) != 0 {
					t.Errorf("want %d, got %d: %s", want, resp.StatusCode, body)
				}
			}
			cond := append(append([]any{}, base...), []any{"starts-with", "$success_action_redirect", "http://example.com/"})
			resp, body := postForm(t, url, signedPolicy(p, exp, cond, append(ok[:3:3], postField{"success_action_redirect", "http://example.com/done"})...), "r", data[:100])
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "http://example.com/done?") || !strings.Contains(loc, "key=up%2Fr") {
				t.Errorf("redirect: %d %q %s", resp.StatusCode, loc, body)
			}
		})
		t.Run("refused", func(t *testing.T) {
			for name, tc := range map[string]struct {
				fields []postField
				size   int
				status int
				code   string
			}{
				"key prefix":   {signedPolicy(p, exp, base, append([]postField{{"key", "other/k"}}, ok[1:]...)...), 100, 403, "AccessDenied"},
				"content type": {signedPolicy(p, exp, base, ok[0], postField{"Content-Type", "text/html"}, ok[2], ok[3]), 100, 403, "AccessDenied"},
				"meta":         {signedPolicy(p, exp, base, ok[0], ok[1], postField{"x-amz-meta-who", "mallory"}, ok[3]), 100, 403, "AccessDenied"},
				"extra field":  {signedPolicy(p, exp, base, append(ok[:4:4], postField{"x-amz-meta-more", "1"})...), 100, 403, "AccessDenied"},
				"expired":      {signedPolicy(p, time.Now().Add(-time.Minute), base, ok...), 100, 403, "AccessDenied"},
				"too small":    {signedPolicy(p, exp, base, ok...), 5, 400, "EntityTooSmall"},
				"too large":    {signedPolicy(p, exp, base, ok...), 1<<20 + 1, 400, "EntityTooLarge"},
				"no key":       {signedPolicy(p, exp, base, ok[1:]...), 100, 400, "InvalidArgument"},
				"signature": {func() []postField {
					f := signedPolicy(p, exp, base, ok...)
					f[len(f)-1].value = strings.Repeat("0", 64)
					return f
				}(), 100, 403, "SignatureDoesNotMatch"},
				"other bucket": {signedPolicy(p, exp, append([]any{map[string]string{"bucket": "elsewhere"}}, base[1:]...), ok...), 100, 403, "AccessDenied"},
			} {
				t.Run(name, func(t *testing.T) {
					key := "up/" + strings.ReplaceAll(name, " ", "-")
					tc.fields[0] = postField{"key", strings.Replace(tc.fields[0].value, "${filename}", key[3:], 1)}
					if name == "no key" {
						tc.fields = tc.fields[1:]
					}
					resp, body := postForm(t, url, tc.fields, key[3:], randomBytes(tc.size))
					if resp.StatusCode != tc.status || errorCode(body) != tc.code {
						t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
					}
					if rid := resp.Header.Get("X-Amz-Request-Id"); !bytes.Contains(body, []byte("<RequestId>"+rid+"</RequestId>")) {
						t.Errorf("RequestId in body differs from x-amz-request-id %q: %s", rid, body)
					}
					if st.existsInStore(t, bucket, key) {
						t.Errorf("%s stored", key)
					}
				})
			}
			resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPreconditionFailed {
				t.Errorf("non-form POST: %d", resp.StatusCode)
			}
		})
	})
}

// TestPostPolicyClients: the forms boto3 and minio-go sign, sent by curl
// -F and net/http.
func TestPostPolicyClients(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "postcl")
	dir := t.TempDir()
	data := randomBytes(2<<20 + 17)
	file := filepath.Join(dir, "photo.jpg")
	os.WriteFile(file, data, 0o600)

	t.Run("boto3+curl", func(t *testing.T) {
		// boto3 signs its form with V2 by default; in FIPS mode, where
		// the proxy refuses V2, it is configured for V4 as the README
		// says to (the V2 refusal: sigv4.TestV2RefusedInFIPSMode and
		// proxy.TestPostObjectIdentitiesAndSSE).
		sigVersion := ""
		if fips140.Enabled() {
			sigVersion = "s3v4"
		}
		script := `
import boto3, json, sys
from botocore.config import Config
cfg = Config(signature_version=sys.argv[5]) if sys.argv[5] else None
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name="us-east-1", config=cfg)
print(json.dumps(s3.generate_presigned_post(sys.argv[4], "boto/${filename}", Fields={"x-amz-meta-src": "boto3"},
    Conditions=[["content-length-range", 1, 10485760], {"x-amz-meta-src": "boto3"}], ExpiresIn=600)))
`
		out, err := exec.Command("python3", "-c", script, p.Endpoint, p.AccessKey, p.SecretKey, bucket, sigVersion).Output()
		if err != nil {
			t.Fatalf("boto3: %v", err)
		}
		var post struct {
			URL    string            `json:"url"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal(out, &post); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if _, v4 := post.Fields["x-amz-signature"]; v4 != (sigVersion == "s3v4") {
			t.Fatalf("boto3 (signature_version %q) made the form fields %v", sigVersion, post.Fields)
		}
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}
		for k, v := range post.Fields {
			args = append(args, "-F", k+"="+v)
		}
		args = append(args, "-F", "file=@"+file, post.URL)
		code, err := exec.Command("curl", args...).Output()
		if err != nil || string(code) != "204" {
			t.Fatalf("curl: %s %v", code, err)
		}
		got, out2 := getThrough(t, p, bucket, "boto/photo.jpg")
		testenv.AssertSame(t, "boto3 form upload", got, data)
		if out2.Metadata["src"] != "boto3" {
			t.Errorf("metadata %v", out2.Metadata)
		}
		assertCiphertextAtRest(t, bucket, "boto/photo.jpg", data)

		// The same form for a file over its content-length-range.
		big := filepath.Join(dir, "big")
		os.WriteFile(big, make([]byte, 10485761), 0o600)
		args[len(args)-2] = "file=@" + big
		args[2] = filepath.Join(dir, "err.xml")
		code, _ = exec.Command("curl", args...).Output()
		body, _ := os.ReadFile(args[2])
		if string(code) != "400" || errorCode(body) != "EntityTooLarge" {
			t.Errorf("too large: %s %s", code, body)
		}
	})
	t.Run("minio-go", func(t *testing.T) {
		mc, err := p.MinioClient()
		if err != nil {
			t.Fatal(err)
		}
		pp := minio.NewPostPolicy()
		pp.SetBucket(bucket)
		pp.SetKey("mc/obj")
		pp.SetExpires(time.Now().Add(10 * time.Minute))
		pp.SetContentType("application/octet-stream")
		pp.SetContentLengthRange(1, 10<<20)
		pp.SetUserMetadata("src", "minio-go")
		u, form, err := mc.PresignedPostPolicy(context.Background(), pp)
		if err != nil {
			t.Fatal(err)
		}
		var fields []postField
		for k, v := range form {
			fields = append(fields, postField{k, v})
		}
		resp, body := postForm(t, u.String(), fields, "obj", data)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		got, out := getThrough(t, p, bucket, "mc/obj")
		testenv.AssertSame(t, "minio-go form upload", got, data)
		if out.Metadata["src"] != "minio-go" {
			t.Errorf("metadata %v", out.Metadata)
		}
		assertCiphertextAtRest(t, bucket, "mc/obj", data)
	})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
