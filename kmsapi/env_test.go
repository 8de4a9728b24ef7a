package kmsapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kmsapi"
)

// Identities every test server knows. "admin" administers the account
// (the root principal); the others are plain identities.
const (
	admin  = "ADMIN"
	alice  = "ALICE"  // key administrator in policy tests
	bob    = "BOB"    // key user in policy tests
	carol  = "CAROL"  // retiring principal
	reader = "READER" // decrypt-only
	eve    = "EVE"    // named by no policy
)

func secretOf(ak string) string { return "secret-of-" + ak }

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is an audit log sink tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is a KMS API server on a loopback port over a fresh keyring.
type env struct {
	t     testing.TB
	dir   string
	kr    *keyring.Keyring
	srv   *kmsapi.Server
	url   string
	clock *testClock // the keyring's clock (key dates, rotation)
	audit *syncBuffer
}

func newEnv(t testing.TB, opts ...func(*keyring.Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &testClock{t: time.Now().UTC()}, audit: &syncBuffer{}}
	cfg := keyring.Config{Dir: e.dir, Now: e.clock.Now}
	for _, o := range opts {
		o(&cfg)
	}
	kr, err := keyring.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	e.kr = kr
	ids := &kmsapi.StaticIdentities{Secrets: map[string]string{}, Admins: map[string]bool{admin: true}}
	for _, ak := range []string{admin, alice, bob, carol, reader, eve} {
		ids.Secrets[ak] = secretOf(ak)
	}
	e.srv, err = kmsapi.New(kmsapi.Config{Keyring: kr, Identities: ids, Audit: kms.NewAuditLog(e.audit),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// sdk returns an aws-sdk-go-v2 KMS client signing as ak, without retries.
func (e *env) sdk(ak string) *sdk.Client {
	return sdk.New(sdk.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.url),
		Credentials:  credentials.NewStaticCredentialsProvider(ak, secretOf(ak), ""),
		Retryer:      aws.NopRetryer{},
	})
}

// backend returns s3seal's own AWS KMS backend signing as ak: what a
// proxy with S3SEAL_KMS=aws uses.
func (e *env) backend(ak string) *awskms.Client {
	e.t.Helper()
	c, err := awskms.New(context.Background(), awskms.Config{
		Region: "us-east-1", Endpoint: e.url,
		Credentials: credentials.NewStaticCredentialsProvider(ak, secretOf(ak), ""),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// code returns the AWS error code of an SDK error.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("got %v (code %q), want %s", err, got, want)
	}
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
