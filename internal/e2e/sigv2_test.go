package e2e

import (
	"bytes"
	"context"
	"crypto/fips140"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Signature V2 through s3seal in front of MinIO, with the clients that send
// it by default: presigned URLs from boto3 and `aws s3 presign` (default
// settings, region us-east-1) used with curl, and s3cmd with signature_v2.

// presignScript prints, as a JSON list, the URLs boto3's
// generate_presigned_url makes (default client configuration) for the JSON
// list of {"op", "params", "expires", "virtual"} read from stdin.
const presignScript = `
import json, sys, boto3
from botocore.config import Config
endpoint, vhost = sys.argv[1], sys.argv[2]
out = []
for r in json.load(sys.stdin):
    if r.get("virtual"):
        c = boto3.client("s3", endpoint_url=vhost, config=Config(s3={"addressing_style": "virtual"}))
    else:
        c = boto3.client("s3", endpoint_url=endpoint)
    out.append(c.generate_presigned_url(r["op"], Params=r["params"], ExpiresIn=r.get("expires", 3600)))
print(json.dumps(out))
`

type presignReq struct {
	Op      string         `json:"op"`
	Params  map[string]any `json:"params"`
	Expires int            `json:"expires,omitempty"`
	Virtual bool           `json:"virtual,omitempty"`
}

// clientHome writes an aws config of defaults (region us-east-1 only) and
// returns the environment for boto3 and the aws cli.
func clientHome(t *testing.T, accessKey, secretKey string) []string {
	t.Helper()
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	creds := filepath.Join(home, "credentials")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return clientEnv(home, accessKey, secretKey, cfg, creds)
}

// boto3Presign returns boto3's presigned URLs for reqs, checking that each
// is a Signature V2 URL.
func boto3Presign(t *testing.T, env []string, endpoint, vhostEndpoint string, reqs []presignReq) []string {
	t.Helper()
	in, _ := json.Marshal(reqs)
	cmd := exec.Command("python3", "-c", presignScript, endpoint, vhostEndpoint)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3 generate_presigned_url: %v\n%s", err, stderr.String())
	}
	var urls []string
	if err := json.Unmarshal(out, &urls); err != nil || len(urls) != len(reqs) {
		t.Fatalf("boto3 generate_presigned_url: %v %q", err, out)
	}
	for _, u := range urls {
		assertV2URL(t, "boto3", u)
	}
	return urls
}

// assertV2URL checks that u carries Signature V2 query authentication.
func assertV2URL(t *testing.T, who, u string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s URL %q: %v", who, u, err)
	}
	q := pu.Query()
	if q.Get("AWSAccessKeyId") == "" || q.Get("Signature") == "" || q.Get("Expires") == "" || q.Has("X-Amz-Algorithm") {
		t.Fatalf("%s with default settings made %q, not a Signature V2 URL (AWSAccessKeyId, Signature, Expires)", who, u)
	}
}

// curlResult is what curl got.
type curlResult struct {
	status int
	header http.Header
	body   []byte
}

// curl runs curl on u (the path as is: no dot-segment removal) with args.
func curl(t *testing.T, u string, args ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	bodyFile, hdrFile := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
	all := append([]string{"-sS", "--path-as-is", "-o", bodyFile, "-D", hdrFile, "-w", "%{http_code}"}, args...)
	cmd := exec.Command("curl", append(all, u)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v %s: %v\n%s", args, u, err, stderr.String())
	}
	var r curlResult
	r.status, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	r.body, _ = os.ReadFile(bodyFile)
	hdr, _ := os.ReadFile(hdrFile)
	r.header = http.Header{}
	for _, l := range strings.Split(string(hdr), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			r.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return r
}

// v2ErrorBody is an S3 error with the elements S3 adds for V2 failures.
type v2ErrorBody struct {
	Code         string `xml:"Code"`
	Message      string `xml:"Message"`
	StringToSign string `xml:"StringToSign"`
}

func curlError(t *testing.T, what string, r curlResult, status int, code string) v2ErrorBody {
	t.Helper()
	var e v2ErrorBody
	if err := xml.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: %d, body is not an S3 error: %v\n%s", what, r.status, err, r.body)
	}
	if r.status != status || e.Code != code {
		t.Errorf("%s: %d %s (%s), want %d %s", what, r.status, e.Code, e.Message, status, code)
	}
	return e
}

// flipSignature changes one bit of the Signature of a V2 URL.
func flipSignature(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(pu.RawQuery, "&") {
		name, val, _ := strings.Cut(part, "=")
		if name != "Signature" {
			continue
		}
		dec, _ := url.QueryUnescape(val)
		sig, err := base64.StdEncoding.DecodeString(dec)
		if err != nil {
			t.Fatalf("Signature %q: %v", dec, err)
		}
		sig[7] ^= 0x10
		return strings.Replace(u, "Signature="+val, "Signature="+url.QueryEscape(base64.StdEncoding.EncodeToString(sig)), 1)
	}
	t.Fatalf("no Signature in %q", u)
	return ""
}

// first returns at most n bytes of b, for messages.
func first(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// skipV2InFIPSMode skips a test of V2 through the proxy in a FIPS pass: the
// proxy then refuses V2 (TestSignatureV2Off/fips140-on, run in every pass).
func skipV2InFIPSMode(t *testing.T) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("Signature V2 is off in FIPS 140-3 mode (TestSignatureV2Off/fips140-on)")
	}
}

func TestSignatureV2(t *testing.T) {
	skipV2InFIPSMode(t)
	for _, tool := range []string{"curl", "s3cmd", "aws", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (.ci/run installs it): %v", tool, err)
		}
	}
	env := store.UpstreamEnv()
	env["S3SEAL_DOMAINS"] = "s3.test"
	p := testenv.StartS3seal(t, env)
	bucket := newBucket(t, "sigv2")
	ctx := context.Background()
	sdk := p.S3Client()
	cenv := clientHome(t, p.AccessKey, p.SecretKey)
	u, _ := url.Parse(p.Endpoint)
	port := u.Port()
	vhost := "http://s3.test:" + port

	// Objects written with SigV4, read back with V2 URLs.
	keys := map[string][]byte{
		"v2/plain.bin":           plaintext("v2/plain", 300_000), // several 64 KiB segments
		"v2/dir/a b+c~é (1).txt": plaintext("v2/special", 64<<10+1),
		"v2/empty":               {},
	}
	for k, body := range keys {
		if _, err := sdk.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body),
			ContentType: aws.String("application/x-original")}); err != nil {
			t.Fatalf("PUT %s (SigV4): %v", k, err)
		}
	}

	t.Run("boto3-presigned-get-head", func(t *testing.T) {
		var reqs []presignReq
		var names []string
		for k := range keys {
			reqs = append(reqs, presignReq{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}},
				presignReq{Op: "head_object", Params: map[string]any{"Bucket": bucket, "Key": k}})
			names = append(names, k, k)
		}
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, reqs)
		for i, pu := range urls {
			want := keys[names[i]]
			if reqs[i].Op == "get_object" {
				r := curl(t, pu)
				if r.status != 200 || !bytes.Equal(r.body, want) {
					t.Errorf("curl GET %s: %d, %d bytes, want 200 and the %d bytes written (bit-exact)\n%s", names[i], r.status, len(r.body), len(want), first(r.body, 300))
				}
				if ct := r.header.Get("Content-Type"); ct != "application/x-original" {
					t.Errorf("curl GET %s: Content-Type %q", names[i], ct)
				}
				if len(want) > 70000 {
					r := curl(t, pu, "-r", "1000-69999")
					if r.status != 206 || !bytes.Equal(r.body, want[1000:70000]) {
						t.Errorf("curl range GET %s: %d, %d bytes", names[i], r.status, len(r.body))
					}
				}
			} else {
				r := curl(t, pu, "-I")
				if r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(len(want)) {
					t.Errorf("curl HEAD %s: %d Content-Length %q, want 200 %d", names[i], r.status, r.header.Get("Content-Length"), len(want))
				}
			}
		}
	})

	t.Run("boto3-presigned-get-overrides", func(t *testing.T) {
		k := "v2/plain.bin"
		disp := `attachment; filename="résumé 1+1.pdf"`
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{
			{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k,
				"ResponseContentDisposition": disp, "ResponseContentType": "application/pdf"}},
		})
		r := curl(t, urls[0])
		if r.status != 200 || !bytes.Equal(r.body, keys[k]) {
			t.Fatalf("curl GET with overrides: %d, %d bytes\n%s", r.status, len(r.body), first(r.body, 300))
		}
		if got := r.header.Get("Content-Disposition"); got != disp {
			t.Errorf("Content-Disposition %q, want %q", got, disp)
		}
		if got := r.header.Get("Content-Type"); got != "application/pdf" {
			t.Errorf("Content-Type %q, want application/pdf", got)
		}
		// The overrides are signed: changing one breaks the URL.
		tampered := strings.Replace(urls[0], "response-content-type=application%2Fpdf", "response-content-type=text%2Fhtml", 1)
		if tampered == urls[0] {
			t.Fatalf("no response-content-type in %s", urls[0])
		}
		e := curlError(t, "tampered response-content-type", curl(t, tampered), 403, "SignatureDoesNotMatch")
		if !strings.Contains(e.StringToSign, "response-content-type=text/html") || strings.Contains(string(e.StringToSign), p.SecretKey) {
			t.Errorf("StringToSign %q", e.StringToSign)
		}
		// A sub-resource removed (the disposition) or added (?acl).
		dropped := strings.Replace(urls[0], "response-content-disposition=", "x-dropped=", 1)
		curlError(t, "missing sub-resource", curl(t, dropped), 403, "SignatureDoesNotMatch")
		curlError(t, "extra sub-resource", curl(t, urls[0]+"&acl"), 403, "SignatureDoesNotMatch")
		curlError(t, "one bit off", curl(t, flipSignature(t, urls[0])), 403, "SignatureDoesNotMatch")
	})

	t.Run("boto3-presigned-put", func(t *testing.T) {
		dir := t.TempDir()
		for _, size := range []int{0, 1, 64 << 10, 1<<20 + 17} { // 1 MiB+: curl sends Expect: 100-continue
			k := fmt.Sprintf("v2/put/%d é+.bin", size)
			plain := plaintext(k, size)
			file := writePlainFile(t, dir, strconv.Itoa(size), plain)
			urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{{Op: "put_object", Params: map[string]any{"Bucket": bucket, "Key": k}}})
			r := curl(t, urls[0], "-T", file)
			if r.status != 200 {
				t.Fatalf("curl PUT %d bytes: %d\n%s", size, r.status, first(r.body, 500))
			}
			assertCiphertextAtRest(t, bucket, k, plain)
			out, err := sdk.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			if err != nil {
				t.Fatalf("GET (SigV4) after presigned PUT: %v", err)
			}
			got, _ := readAllLimited(out.Body, 1<<30)
			out.Body.Close()
			testenv.AssertSame(t, "presigned PUT then GET", got, plain)
		}
		// Refused PUTs store nothing: one bit off, tampered key, expired.
		k := "v2/put/refused"
		file := writePlainFile(t, dir, "refused", plaintext(k, 2<<20))
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{
			{Op: "put_object", Params: map[string]any{"Bucket": bucket, "Key": k}},
			{Op: "put_object", Params: map[string]any{"Bucket": bucket, "Key": k}, Expires: -60},
		})
		curlError(t, "PUT one bit off", curl(t, flipSignature(t, urls[0]), "-T", file), 403, "SignatureDoesNotMatch")
		curlError(t, "PUT to another key", curl(t, strings.Replace(urls[0], "/refused?", "/refused2?", 1), "-T", file), 403, "SignatureDoesNotMatch")
		e := curlError(t, "PUT expired", curl(t, urls[1], "-T", file), 403, "AccessDenied")
		if e.Message != "Request has expired" {
			t.Errorf("expired: %q", e.Message)
		}
		for _, key := range []string{k, k + "2"} {
			if existsInStore(t, bucket, key) {
				t.Errorf("a refused presigned PUT reached MinIO: %s exists", key)
			}
		}
	})

	t.Run("boto3-presigned-upload-part", func(t *testing.T) {
		k := "v2/multipart"
		parts := [][]byte{plaintext("mp1", 5<<20), plaintext("mp2", 100_001)}
		up, err := sdk.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var done []s3types.CompletedPart
		for i, part := range parts {
			n := int32(i + 1)
			urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{{Op: "upload_part",
				Params: map[string]any{"Bucket": bucket, "Key": k, "UploadId": aws.ToString(up.UploadId), "PartNumber": n}}})
			file := writePlainFile(t, dir, strconv.Itoa(i), part)
			if i == 0 {
				// Without its sub-resources the URL would be a PutObject:
				// refused, and nothing stored.
				noSub := strings.Replace(strings.Replace(urls[0], "partNumber=", "x-a=", 1), "uploadId=", "x-b=", 1)
				curlError(t, "upload part without uploadId/partNumber", curl(t, noSub, "-T", file), 403, "SignatureDoesNotMatch")
				if existsInStore(t, bucket, k) {
					t.Fatal("a part URL stripped of its sub-resources wrote the object")
				}
			}
			r := curl(t, urls[0], "-T", file)
			if r.status != 200 {
				t.Fatalf("curl upload part %d: %d\n%s", n, r.status, first(r.body, 500))
			}
			done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(r.header.Get("ETag"))})
		}
		if _, err := sdk.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(k),
			UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatalf("complete: %v", err)
		}
		whole := append(append([]byte{}, parts[0]...), parts[1]...)
		assertCiphertextAtRest(t, bucket, k, whole)
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}}})
		r := curl(t, urls[0])
		if r.status != 200 || !bytes.Equal(r.body, whole) {
			t.Errorf("GET of the multipart object: %d, %d bytes, want %d", r.status, len(r.body), len(whole))
		}
	})

	t.Run("boto3-presigned-virtual-hosted", func(t *testing.T) {
		k := "v2/plain.bin"
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{
			{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}, Virtual: true},
			{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k, "ResponseContentType": "text/x-v"}, Virtual: true},
		})
		if !strings.HasPrefix(urls[0], "http://"+bucket+".s3.test:") {
			t.Fatalf("not a virtual-hosted URL: %s", urls[0])
		}
		resolve := bucket + ".s3.test:" + port + ":127.0.0.1"
		for i, pu := range urls {
			r := curl(t, pu, "--resolve", resolve)
			if r.status != 200 || !bytes.Equal(r.body, keys[k]) {
				t.Errorf("curl virtual-hosted GET %d: %d, %d bytes\n%s", i, r.status, len(r.body), first(r.body, 300))
			}
		}
		curlError(t, "virtual-hosted one bit off", curl(t, flipSignature(t, urls[0]), "--resolve", resolve), 403, "SignatureDoesNotMatch")
	})

	t.Run("aws-s3-presign", func(t *testing.T) {
		for k, want := range keys {
			cmd := exec.Command("aws", "--endpoint-url", p.Endpoint, "s3", "presign", "s3://"+bucket+"/"+k)
			cmd.Env = cenv
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("aws s3 presign: %v\n%s", err, stderr.String())
			}
			pu := strings.TrimSpace(string(out))
			assertV2URL(t, "aws s3 presign", pu)
			r := curl(t, pu)
			if r.status != 200 || !bytes.Equal(r.body, want) {
				t.Errorf("curl GET of aws s3 presign URL for %s: %d, %d bytes, want %d\n%s", k, r.status, len(r.body), len(want), first(r.body, 300))
			}
		}
	})

	t.Run("expired-and-unknown-key", func(t *testing.T) {
		k := "v2/plain.bin"
		urls := boto3Presign(t, cenv, p.Endpoint, vhost, []presignReq{{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}, Expires: -5}})
		r := curl(t, urls[0])
		e := curlError(t, "expired GET", r, 403, "AccessDenied")
		if e.Message != "Request has expired" || bytes.Contains(r.body, keys[k][:64]) {
			t.Errorf("expired GET: %q", e.Message)
		}
		other := clientHome(t, "AKNOSUCHKEY"+strings.ToUpper(testenv.RandomKey(4)), p.SecretKey)
		urls = boto3Presign(t, other, p.Endpoint, vhost, []presignReq{{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}}})
		curlError(t, "unknown key", curl(t, urls[0]), 403, "InvalidAccessKeyId")
	})

	t.Run("s3cmd-signature-v2", func(t *testing.T) {
		sc := newS3cmdV2(t, p, p.SecretKey)
		run := sc.run
		dir := t.TempDir()
		// s3cmd switches to SigV4 when V2 is refused: check that it did not.
		mark := p.LogOffset()
		if out := run(t, "--debug", "ls", "s3://"+bucket+"/"); !strings.Contains(out, "'AWS "+p.AccessKey+":") || strings.Contains(out, "AWS4-HMAC-SHA256") {
			t.Errorf("s3cmd did not sign with V2:\n%s", out)
		}
		small := plaintext("s3cmd/small", 200_000)
		big := plaintext("s3cmd/big", 11<<20) // multipart: 5 MiB chunks
		for name, plain := range map[string][]byte{"small.bin": small, "big.bin": big} {
			f := writePlainFile(t, dir, name, plain)
			run(t, "put", f, "s3://"+bucket+"/s3cmd/"+name)
			assertCiphertextAtRest(t, bucket, "s3cmd/"+name, plain)
			got := filepath.Join(dir, name+".got")
			run(t, "get", "--force", "s3://"+bucket+"/s3cmd/"+name, got)
			testenv.AssertSame(t, "s3cmd get "+name, testenv.ReadFile(t, got), plain)
		}
		out := run(t, "ls", "s3://"+bucket+"/s3cmd/")
		for name, size := range map[string]int{"small.bin": len(small), "big.bin": len(big)} {
			if !strings.Contains(out, strconv.Itoa(size)) || !strings.Contains(out, "s3://"+bucket+"/s3cmd/"+name) {
				t.Errorf("s3cmd ls does not show %s with %d bytes:\n%s", name, size, out)
			}
		}
		run(t, "del", "s3://"+bucket+"/s3cmd/small.bin")
		if existsInStore(t, bucket, "s3cmd/small.bin") {
			t.Error("s3cmd del: the object is still in MinIO")
		}
		if l := p.LogSince(mark); strings.Contains(l, "request refused") {
			t.Errorf("s3cmd had requests refused (and may have fallen back to SigV4):\n%s", l)
		}
		// A wrong secret: refused, nothing stored.
		bad := newS3cmdV2(t, p, testenv.RandomKey(20))
		f := writePlainFile(t, dir, "bad", []byte("must not be stored"))
		if out, err := bad.try("put", f, "s3://"+bucket+"/s3cmd/bad"); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
			t.Errorf("s3cmd put with a wrong secret: %v\n%s", err, out)
		}
		if existsInStore(t, bucket, "s3cmd/bad") {
			t.Error("s3cmd put with a wrong secret reached MinIO")
		}
	})
}

// s3cmdV2 is s3cmd with a config of its own: path style to the proxy,
// plain HTTP, signature_v2 = True.
type s3cmdV2 struct {
	cfg string
	env []string
}

func newS3cmdV2(t *testing.T, p *testenv.S3seal, secret string) *s3cmdV2 {
	t.Helper()
	u, _ := url.Parse(p.Endpoint)
	home := t.TempDir()
	cfg := filepath.Join(home, "s3cfg")
	conf := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\n"+
		"signature_v2 = True\nbucket_location = us-east-1\nmultipart_chunk_size_mb = 5\nprogress_meter = False\n",
		p.AccessKey, secret, u.Host, u.Host)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || name == "HOME" || name == "S3CMD_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return &s3cmdV2{cfg: cfg, env: append(env, "HOME="+home)}
}

func (s *s3cmdV2) try(args ...string) (string, error) {
	cmd := exec.Command("s3cmd", append([]string{"-c", s.cfg}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *s3cmdV2) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.try(args...)
	if err != nil {
		t.Fatalf("s3cmd %v: %v\n%s", args, err, out)
	}
	return out
}

// TestSignatureV2Off: with S3SEAL_ALLOW_SIGV2=false, and in FIPS 140-3
// mode (where V2's HMAC-SHA1 is not approved and V2 is off by default), a V2
// request gets the error S3 gives in V4-only regions, and nothing reaches
// the store.
func TestSignatureV2Off(t *testing.T) {
	for _, c := range []struct{ name, envName, envValue string }{
		{"allow-sigv2-false", "S3SEAL_ALLOW_SIGV2", "false"},
		// The proxy's default in FIPS mode; a FIPS pass has it anyway.
		{"fips140-on", "GODEBUG", "fips140=on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := store.UpstreamEnv()
			env[c.envName] = c.envValue
			checkV2Off(t, env)
		})
	}
}

func checkV2Off(t *testing.T, env map[string]string) {
	p := testenv.StartS3seal(t, env)
	if env["GODEBUG"] != "" && !strings.Contains(p.Log(), `msg="FIPS 140-3 mode" fips140=on`) {
		t.Fatalf("s3seal started with GODEBUG=%s does not say it runs in FIPS mode:\n%s", env["GODEBUG"], p.Log())
	}
	bucket := newBucket(t, "sigv2off")
	ctx := context.Background()
	k := "off/existing"
	plain := plaintext(k, 100_000)
	if _, err := p.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatalf("PUT (SigV4): %v", err)
	}
	cenv := clientHome(t, p.AccessKey, p.SecretKey)
	urls := boto3Presign(t, cenv, p.Endpoint, p.Endpoint, []presignReq{
		{Op: "get_object", Params: map[string]any{"Bucket": bucket, "Key": k}},
		{Op: "put_object", Params: map[string]any{"Bucket": bucket, "Key": "off/new"}},
	})
	r := curl(t, urls[0])
	curlError(t, "presigned GET with V2 off", r, 400, "InvalidRequest")
	if bytes.Contains(r.body, plain[:64]) {
		t.Error("V2 GET returned plaintext")
	}
	file := writePlainFile(t, t.TempDir(), "new", plaintext("off/new", 2<<20))
	curlError(t, "presigned PUT with V2 off", curl(t, urls[1], "-T", file), 400, "InvalidRequest")
	// s3cmd answers this error as S3 meant it: it switches to SigV4 and
	// retries, so its upload succeeds, encrypted.
	sc := newS3cmdV2(t, p, p.SecretKey)
	sc.run(t, "put", file, "s3://"+bucket+"/off/s3cmd")
	assertCiphertextAtRest(t, bucket, "off/s3cmd", plaintext("off/new", 2<<20))
	if !strings.Contains(p.Log(), "key=off/s3cmd cause=\"sigv4: InvalidRequest") {
		t.Errorf("s3cmd's first (V2) attempt was not refused:\n%s", p.Log())
	}
	if existsInStore(t, bucket, "off/new") {
		t.Error("a V2 presigned PUT reached MinIO with V2 off")
	}
	// SigV4 still works.
	if _, err := p.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
		t.Errorf("SigV4 HEAD with V2 off: %v", err)
	}
}
