package awskms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/kmstest"
)

var aliasSeq atomic.Int64

// createKey makes a symmetric key (and an alias for it) in moto.
func createKey(t *testing.T, c *Client) (id, arn, alias string) {
	t.Helper()
	ctx := context.Background()
	out, err := c.API().CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("s3seal test")})
	if err != nil {
		t.Fatal(err)
	}
	id, arn = aws.ToString(out.KeyMetadata.KeyId), aws.ToString(out.KeyMetadata.Arn)
	alias = fmt.Sprintf("alias/s3seal-test-%d", aliasSeq.Add(1))
	if _, err := c.API().CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	return id, arn, alias
}

func TestSuite(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Env {
		c := newMotoClient(t, "us-east-1")
		id, arn, alias := createKey(t, c)
		other, _, _ := createKey(t, c)
		return kmstest.Env{
			Client: c, KeyID: id, KeyARN: arn, Alias: alias,
			OtherKeyID: other, MissingKeyID: "0b0e8f2c-0000-4000-8000-000000000000",
		}
	})
}

func TestRoundTripAndContext(t *testing.T) {
	c := newMotoClient(t, "us-east-1")
	id, arn, _ := createKey(t, c)
	ctx := context.Background()
	dk, err := c.GenerateDataKey(ctx, id, kms.BucketContext("photos"))
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != arn {
		t.Fatalf("DataKey.KeyID %q, want the ARN %q", dk.KeyID, arn)
	}
	pt, err := c.Decrypt(ctx, dk.KeyID, dk.Ciphertext, kms.BucketContext("photos"))
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatal(err)
	}
	_, err = c.Decrypt(ctx, dk.KeyID, dk.Ciphertext, kms.BucketContext("videos"))
	if kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
		t.Fatalf("context mismatch: %v", err)
	}
}

func TestOtherRegion(t *testing.T) {
	east := newMotoClient(t, "us-east-1")
	west := newMotoClient(t, "eu-west-1")
	id, arn, alias := createKey(t, east)
	ctx := context.Background()
	dk, err := east.GenerateDataKey(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{id, alias} {
		if _, err := west.GenerateDataKey(ctx, k, nil); kms.ErrorCode(err) != kms.CodeNotFound {
			t.Fatalf("us-east-1 key %q used from eu-west-1: %v", k, err)
		}
		if _, err := west.DescribeKey(ctx, k); kms.ErrorCode(err) != kms.CodeNotFound {
			t.Fatalf("us-east-1 key %q described from eu-west-1: %v", k, err)
		}
	}
	if _, err := west.Decrypt(ctx, "", dk.Ciphertext, nil); err == nil {
		t.Fatal("us-east-1 ciphertext decrypted in eu-west-1 without its key's ARN")
	} else {
		t.Logf("ciphertext from another region: %v", err)
	}
	if _, err := west.GenerateDataKey(ctx, arn, nil); err == nil {
		t.Fatal("us-east-1 ARN used from eu-west-1 without FollowARNRegion")
	}
	// With FollowARNRegion a key named by its ARN is used in the ARN's
	// region, whatever the client's: object headers carry ARNs, and data
	// moved between regions names keys of both.
	west, err = New(ctx, Config{Region: "eu-west-1", Endpoint: motoEndpoint, FollowARNRegion: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{id, alias} { // a bare id or alias stays in the client's region
		if _, err := west.DescribeKey(ctx, k); kms.ErrorCode(err) != kms.CodeNotFound {
			t.Fatalf("us-east-1 key %q described from eu-west-1: %v", k, err)
		}
	}
	dk2, err := west.GenerateDataKey(ctx, arn, nil)
	if err != nil {
		t.Fatalf("us-east-1 ARN from a eu-west-1 client: %v", err)
	}
	if dk2.KeyID != arn {
		t.Errorf("GenerateDataKey by ARN: key %q, want %q", dk2.KeyID, arn)
	}
	for _, wrapped := range [][]byte{dk.Ciphertext, dk2.Ciphertext} {
		pt, err := west.Decrypt(ctx, arn, wrapped, nil)
		if err != nil {
			t.Fatalf("Decrypt by ARN from another region: %v", err)
		}
		kms.Zero(pt)
	}
	if md, err := west.DescribeKey(ctx, arn); err != nil || md.Arn != arn {
		t.Fatalf("DescribeKey by ARN from another region: %+v, %v", md, err)
	}
	if _, err := west.Encrypt(ctx, arn, make([]byte, 32), nil); err != nil {
		t.Fatalf("Encrypt by ARN from another region: %v", err)
	}
}

func TestDefaultKeyID(t *testing.T) {
	c0 := newMotoClient(t, "us-east-1")
	id, _, alias := createKey(t, c0)
	c, err := New(context.Background(), Config{Region: "us-east-1", Endpoint: motoEndpoint, KeyID: alias})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := c.GenerateDataKey(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.DescribeKey(context.Background(), "")
	if err != nil || md.KeyID != id || md.Arn != dk.KeyID {
		t.Fatalf("%+v %v", md, err)
	}
	_, err = c0.GenerateDataKey(context.Background(), "", nil)
	if kms.ErrorCode(err) != kms.CodeValidation {
		t.Fatalf("no default key: %v", err)
	}
}

// TestErrorMapping drives the client against a fake endpoint returning
// chosen failures, to check which become retryable.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		code      string
		retryable bool
	}{
		{"throttling", 400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, kms.CodeThrottling, true},
		{"internal", 500, `{"__type":"KMSInternalException","message":"x"}`, kms.CodeInternal, true},
		{"dependency timeout", 503, `{"__type":"DependencyTimeoutException","message":"x"}`, kms.CodeUnavailable, true},
		{"unknown 5xx", 502, `<html>bad gateway</html>`, kms.CodeInternal, true},
		{"disabled", 400, `{"__type":"DisabledException","message":"x"}`, kms.CodeDisabled, false},
		{"invalid state", 400, `{"__type":"KMSInvalidStateException","message":"x"}`, kms.CodeInvalidState, false},
		{"not found", 400, `{"__type":"NotFoundException","message":"x"}`, kms.CodeNotFound, false},
		{"access denied", 400, `{"__type":"AccessDeniedException","message":"x"}`, kms.CodeAccessDenied, false},
		{"bad signature", 400, `{"__type":"UnrecognizedClientException","message":"x"}`, kms.CodeAccessDenied, false},
		{"unsigned", 400, `{"__type":"MissingAuthenticationTokenException","message":"x"}`, kms.CodeAccessDenied, false},
		{"malformed signature", 400, `{"__type":"IncompleteSignatureException","message":"x"}`, kms.CodeAccessDenied, false},
		{"namespaced type", 400, `{"__type":"com.amazonaws.kms#IncorrectKeyException","message":"x"}`, kms.CodeIncorrectKey, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c, err := New(context.Background(), Config{Region: "us-east-1", Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GenerateDataKey(context.Background(), "k", nil)
			var ke *kms.Error
			if !errors.As(err, &ke) || ke.Code != tc.code || ke.Retryable() != tc.retryable {
				t.Fatalf("got %v (%T), want code %s retryable %v", err, err, tc.code, tc.retryable)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(500 * time.Millisecond)
		}))
		defer srv.Close()
		c, err := New(context.Background(), Config{Region: "us-east-1", Endpoint: srv.URL, CallTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GenerateDataKey(context.Background(), "k", nil)
		if !kms.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("timeout: %v", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, err := New(context.Background(), Config{Region: "us-east-1", Endpoint: url})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GenerateDataKey(context.Background(), "k", nil)
		if !kms.Retryable(err) {
			t.Fatalf("connection refused: %v", err)
		}
	})
}

// TestRetryOverMoto: the retry wrapper in front of the real client recovers
// from a flaky transport.
func TestRetryOverMoto(t *testing.T) {
	c0 := newMotoClient(t, "us-east-1")
	id, _, _ := createKey(t, c0)
	var n atomic.Int64
	flaky := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if n.Add(1)%2 == 1 {
			return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body: http.NoBody, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := New(context.Background(), Config{Region: "us-east-1", Endpoint: motoEndpoint, HTTPClient: flaky})
	if err != nil {
		t.Fatal(err)
	}
	r := kms.NewRetry(c, kms.RetryConfig{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
	for range 5 {
		dk, err := r.GenerateDataKey(context.Background(), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Decrypt(context.Background(), "", dk.Ciphertext, nil); err != nil {
			t.Fatal(err)
		}
	}
	if r.Stats().Retries < 10 {
		t.Fatalf("stats %+v", r.Stats())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
