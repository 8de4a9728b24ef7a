package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// kmsRequest signs a KMS JSON request the way aws-sdk-go-v2's KMS client
// does: service "kms", the body's hash signed but not sent.
func kmsRequest(t *testing.T, body []byte, now time.Time, extra ...string) *Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:7070/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.GenerateDataKey")
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	if err := sdkv4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	// net/http keeps Content-Length out of the header map; a server puts
	// it back for the verifier, as it was on the wire.
	h := req.Header.Clone()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &Request{Method: req.Method, RawPath: "/", Host: req.URL.Host, Header: h}
}

func TestVerifyPayload(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v := &Verifier{
		Lookup: func(ak string) (string, bool) {
			return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ak == "AKIDEXAMPLE"
		},
		Service: "kms",
		Now:     func() time.Time { return now },
	}
	body := []byte(`{"KeyId":"alias/photos","KeySpec":"AES_256"}`)

	auth, err := v.VerifyPayload(kmsRequest(t, body, now), body)
	if err != nil {
		t.Fatal(err)
	}
	if auth.AccessKey != "AKIDEXAMPLE" || auth.Service != "kms" || auth.Region != "us-east-1" {
		t.Fatalf("auth %+v", auth)
	}

	for _, tc := range []struct {
		name string
		mod  func(r *Request) []byte
		want *Error
	}{
		{"other body", func(r *Request) []byte { return []byte(`{"KeyId":"alias/backups","KeySpec":"AES_256"}`) }, ErrSignatureDoesNotMatch},
		{"empty body", func(r *Request) []byte { return nil }, ErrSignatureDoesNotMatch},
		{"no authorization", func(r *Request) []byte { r.Header.Del("Authorization"); return body }, ErrMissingAuth},
		{"presigned", func(r *Request) []byte { r.RawQuery = "X-Amz-Signature=00"; return body }, ErrUnsupportedAlgorithm},
		{"sigv2", func(r *Request) []byte { r.Header.Set("Authorization", "AWS AKIDEXAMPLE:c2ln"); return body }, ErrUnsupportedAlgorithm},
		{"target changed", func(r *Request) []byte { r.Header.Set("X-Amz-Target", "TrentService.Decrypt"); return body }, ErrSignatureDoesNotMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kmsRequest(t, body, now)
			b := tc.mod(r)
			_, err := v.VerifyPayload(r, b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// A signed x-amz-content-sha256 must be the body's hash.
	r := kmsRequest(t, body, now, "X-Amz-Content-Sha256", EmptySHA256)
	if _, err := v.VerifyPayload(r, body); !errors.Is(err, ErrContentSHA256Mismatch) {
		t.Fatalf("signed x-amz-content-sha256 of another body: %v", err)
	}
	sum := sha256.Sum256(body)
	r = kmsRequest(t, body, now, "X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	if _, err := v.VerifyPayload(r, body); err != nil {
		t.Fatalf("signed x-amz-content-sha256 of the body: %v", err)
	}

	// S3's service name does not verify a KMS signature.
	s3v := &Verifier{Lookup: v.Lookup, Now: v.Now}
	if _, err := s3v.VerifyPayload(kmsRequest(t, body, now), body); err == nil {
		t.Fatal("a kms-scoped signature verified for s3")
	}
}
