package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/sigv4"
)

// chunkedPut builds a signed aws-chunked PutObject for the proxy at e and
// lets tamper change the encoded body before it is sent.
func chunkedPut(t *testing.T, e *env, bucket, key string, payload []byte, checksum string, tamper func([]byte) []byte) (int, string) {
	t.Helper()
	creds, err := e.client.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(e.endpoint, "http://")
	h := http.Header{}
	h.Set("Content-Encoding", "aws-chunked")
	h.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	if checksum != "" {
		h.Set("X-Amz-Trailer", checksum)
	}
	const chunk = 8192
	req := &sigv4.Request{Method: "PUT", RawPath: "/" + bucket + "/" + key, Host: host, Header: h}
	signer := &sigv4.Signer{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, Region: "us-east-1", Service: "s3"}
	signed, enc, err := signer.SignStreaming(req, bytes.NewReader(payload), int64(len(payload)), chunk, checksum, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(enc)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		body = tamper(bytes.Clone(body))
	}
	hr, err := http.NewRequest("PUT", e.endpoint+req.RawPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		hr.Header[k] = vs
	}
	for k, vs := range signed {
		hr.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	code := ""
	if m := regexp.MustCompile(`<Code>([^<]+)</Code>`).FindSubmatch(out); m != nil {
		code = string(m[1])
	}
	return resp.StatusCode, code
}

// TestStreamingNegative sends aws-chunked uploads that are wrong in each
// way a client or an attacker could make them: each gets an S3 error and
// nothing reaches the store.
func TestStreamingNegative(t *testing.T) {
	e := startProxy(t)
	bucket := newBucket(t, e)
	payload := pattern(20_000) // three chunks of 8 KiB, the last one short
	sigRE := regexp.MustCompile(`chunk-signature=([0-9a-f]{64})`)
	flipSig := func(n int) func([]byte) []byte {
		return func(b []byte) []byte {
			locs := sigRE.FindAllSubmatchIndex(b, -1)
			i := locs[n][2]
			b[i] ^= 1 // one bit of the n-th chunk signature
			return b
		}
	}
	cases := []struct {
		name     string
		checksum string
		tamper   func([]byte) []byte
		codes    []string
	}{
		{"valid", "", nil, nil},
		{"valid with trailer", "x-amz-checksum-crc32c", nil, nil},
		{"first chunk signature off by one bit", "", flipSig(0), []string{"SignatureDoesNotMatch"}},
		{"final chunk signature off by one bit", "", flipSig(3), []string{"SignatureDoesNotMatch"}},
		{"payload byte flipped", "", func(b []byte) []byte { b[bytes.Index(b, []byte("\r\n"))+10] ^= 1; return b }, []string{"SignatureDoesNotMatch"}},
		{"chunk longer than declared", "", func(b []byte) []byte {
			return bytes.Replace(b, []byte("2000;chunk"), []byte("2001;chunk"), 1)
		}, []string{"SignatureDoesNotMatch", "IncompleteBody", "InvalidRequest"}},
		{"chunk shorter than declared", "", func(b []byte) []byte {
			return bytes.Replace(b, []byte("2000;chunk"), []byte("1fff;chunk"), 1)
		}, []string{"SignatureDoesNotMatch", "IncompleteBody", "InvalidRequest"}},
		{"missing final chunk", "", func(b []byte) []byte {
			return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))]
		}, []string{"IncompleteBody", "InvalidRequest", ""}},
		{"trailer with the wrong checksum", "x-amz-checksum-crc32c", func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-checksum-crc32c:")) + len("x-amz-checksum-crc32c:")
			b[i] ^= 1
			return b
		}, []string{"BadDigest", "XAmzContentChecksumMismatch", "SignatureDoesNotMatch"}},
		{"trailer for an undeclared algorithm", "x-amz-checksum-crc32c", func(b []byte) []byte {
			return bytes.Replace(b, []byte("x-amz-checksum-crc32c:"), []byte("x-amz-checksum-sha256:"), 1)
		}, []string{"InvalidRequest", "MalformedTrailerError", "SignatureDoesNotMatch", "BadDigest"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("chunked-%d", i)
			status, code := chunkedPut(t, e, bucket, key, payload, tc.checksum, tc.tamper)
			_, headErr := e.direct.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
			if tc.codes == nil {
				if status != 200 || headErr != nil {
					t.Fatalf("valid upload: status %d %s, stored: %v", status, code, headErr)
				}
				get, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(get.Body)
				get.Body.Close()
				if !bytes.Equal(got, payload) {
					t.Errorf("read back %d bytes", len(got))
				}
				return
			}
			if status == 200 {
				t.Errorf("tampered upload accepted")
			}
			ok := false
			for _, c := range tc.codes {
				ok = ok || c == code
			}
			if !ok {
				t.Errorf("status %d code %q, want one of %v", status, code, tc.codes)
			}
			if headErr == nil {
				t.Errorf("an object was stored")
			}
		})
	}
}
