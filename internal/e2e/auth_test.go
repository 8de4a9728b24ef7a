package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// s3ErrorBody is the XML error S3 sends.
type s3ErrorBody struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// signedRequest sends method bucket/key to endpoint with a body, signed
// with SigV4 at the given time by the SDK's signer.
func signedRequest(t *testing.T, endpoint, method, bucket, key string, body []byte, creds aws.Credentials, at time.Time) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, endpoint+"/"+bucket+"/"+key, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", payload)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payload, "s3", testenv.Region, at); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b
}

func TestAuthFailuresReachNothing(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "auth")
	ctx := context.Background()
	secret := plaintext("auth/secret", 100_000)

	// An object that exists, to check that GETs with bad credentials do
	// not return it.
	existing := "auth/existing"
	if _, err := p.S3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(existing), Body: bytes.NewReader(secret),
	}); err != nil {
		t.Fatalf("PUT with the right credentials: %v", err)
	}

	good := aws.Credentials{AccessKeyID: p.AccessKey, SecretAccessKey: p.SecretKey}
	cases := []struct {
		name     string
		creds    aws.Credentials
		at       time.Time
		wantCode string
	}{
		{"wrong-secret", aws.Credentials{AccessKeyID: p.AccessKey, SecretAccessKey: testenv.RandomKey(20)}, time.Now(), "SignatureDoesNotMatch"},
		{"unknown-access-key", aws.Credentials{AccessKeyID: "AKUNKNOWN" + strings.ToUpper(testenv.RandomKey(6)), SecretAccessKey: p.SecretKey}, time.Now(), "InvalidAccessKeyId"},
		{"date-skewed-back", good, time.Now().Add(-time.Hour), "RequestTimeTooSkewed"},
		{"date-skewed-forward", good, time.Now().Add(time.Hour), "RequestTimeTooSkewed"},
		// MinIO's credentials are not the proxy's: they must not work
		// through it.
		{"store-credentials", aws.Credentials{AccessKeyID: store.AccessKey, SecretAccessKey: store.SecretKey}, time.Now(), "InvalidAccessKeyId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "auth/" + tc.name
			resp, body := signedRequest(t, p.Endpoint, http.MethodPut, bucket, key, []byte("must not be stored"), tc.creds, tc.at)
			checkS3Error(t, "PUT", resp, body, http.StatusForbidden, tc.wantCode)
			if existsInStore(t, bucket, key) {
				t.Errorf("PUT with %s reached MinIO: %s exists there", tc.name, key)
			}
			resp, body = signedRequest(t, p.Endpoint, http.MethodGet, bucket, existing, nil, tc.creds, tc.at)
			checkS3Error(t, "GET", resp, body, http.StatusForbidden, tc.wantCode)
			if bytes.Contains(body, secret[:32]) {
				t.Errorf("GET with %s returned plaintext", tc.name)
			}
		})
	}

	// The same with real clients: the SDK and the aws cli.
	t.Run("sdk-wrong-secret", func(t *testing.T) {
		c := testenv.NewS3Client(p.Endpoint, p.AccessKey, testenv.RandomKey(20))
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("auth/sdk"), Body: strings.NewReader("x")})
		if code, status := testenv.APIError(err); status != 403 || code != "SignatureDoesNotMatch" {
			t.Errorf("PutObject with a wrong secret: %d %q (%v)", status, code, err)
		}
		if existsInStore(t, bucket, "auth/sdk") {
			t.Error("PUT with a wrong secret reached MinIO")
		}
	})
	t.Run("sdk-unknown-key", func(t *testing.T) {
		c := testenv.NewS3Client(p.Endpoint, "AKNOSUCHKEY0000000", p.SecretKey)
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(existing)})
		if code, status := testenv.APIError(err); status != 403 || code != "InvalidAccessKeyId" {
			t.Errorf("GetObject with an unknown key: %d %q (%v)", status, code, err)
		}
	})
	t.Run("awscli-wrong-secret", func(t *testing.T) {
		cli := newAWSCLI(t, testenv.AWSCLIs(t)[0].Path, p.Endpoint, p.AccessKey, testenv.RandomKey(20), cliConfigSinglePut)
		in := writePlainFile(t, t.TempDir(), "in", []byte("must not be stored"))
		_, stderr, err := cli.run("s3api", "put-object", "--bucket", bucket, "--key", "auth/cli", "--body", in)
		if err == nil || !strings.Contains(stderr, "SignatureDoesNotMatch") {
			t.Errorf("aws s3api put-object with a wrong secret: %v\n%s", err, stderr)
		}
		if existsInStore(t, bucket, "auth/cli") {
			t.Error("PUT with a wrong secret reached MinIO")
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, p.Endpoint+"/"+bucket+"/auth/anonymous", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous PUT: %s\n%s", resp.Status, body)
		}
		if existsInStore(t, bucket, "auth/anonymous") {
			t.Error("anonymous PUT reached MinIO")
		}
	})
}

func checkS3Error(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e s3ErrorBody
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: %s, body is not an S3 XML error: %v\n%s", what, resp.Status, err, body)
		return
	}
	if resp.StatusCode != status || e.Code != code {
		t.Errorf("%s: %d %s (%s), want %d %s", what, resp.StatusCode, e.Code, e.Message, status, code)
	}
}
