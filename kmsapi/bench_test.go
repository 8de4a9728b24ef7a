package kmsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kmsapi"
)

// Throughput of the two calls a proxy makes, on one core with
// `go test ./kmsapi -run '^$' -bench . -cpu 1`:
//
//   - handler: the server alone (signature check, JSON, key policy,
//     keyring, audit line to a file), fed requests signed once (a
//     signature stays valid for 15 minutes), as a proxy's calls arrive;
//   - sdk: aws-sdk-go-v2's KMS client over loopback HTTP, client and
//     server sharing the core: the round trip a proxy sees.
//
// The key has a policy with an encryption-context condition, as a
// bucket-limited identity has, so policy evaluation is in the cost.
//
// calls/s is wall-clock throughput; calls/cpu-s divides by the CPU time
// the process used instead (getrusage), which is what one core sustains
// when it is not shared: on a busy machine the two differ.

func benchServer(b *testing.B) (*kmsapi.Server, *keyring.Keyring, string) {
	b.Helper()
	dir := b.TempDir()
	kr, err := keyring.Open(keyring.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { kr.Close() })
	f, err := os.OpenFile(filepath.Join(dir, "audit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	ids := &kmsapi.StaticIdentities{Secrets: map[string]string{admin: secretOf(admin), bob: secretOf(bob)}, Admins: map[string]bool{admin: true}}
	srv, err := kmsapi.New(kmsapi.Config{Keyring: kr, Identities: ids, Audit: kms.NewAuditLog(f), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ki, err := kr.CreateKeyWith(keyring.KeyOptions{Policy: rolesPolicy})
	if err != nil {
		b.Fatal(err)
	}
	return srv, kr, ki.KeyID
}

// signedRequest builds a request signed as bob.
func signedRequest(b *testing.B, target string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:7070/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+target)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: bob, SecretAccessKey: secretOf(bob)}
	if err := sdkv4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	return req
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs fn b.N times and reports calls/s and calls/cpu-s.
func loop(b *testing.B, fn func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		fn()
	}
	cpu := cpuTime() - start
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "calls/cpu-s")
}

func benchHandler(b *testing.B, srv *kmsapi.Server, target string, body []byte) {
	tmpl := signedRequest(b, target, body)
	loop(b, func() {
		req := tmpl.Clone(context.Background())
		req.Body = io.NopCloser(bytes.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

var photos = map[string]string{"s3seal:bucket": "photos"}

func BenchmarkGenerateDataKey(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		srv, _, id := benchServer(b)
		body, _ := json.Marshal(map[string]any{"KeyId": id, "KeySpec": "AES_256", "EncryptionContext": photos})
		benchHandler(b, srv, "GenerateDataKey", body)
	})
	b.Run("sdk", func(b *testing.B) {
		srv, _, id := benchServer(b)
		c := benchClient(b, srv)
		ctx := context.Background()
		loop(b, func() {
			if _, err := c.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: photos}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func BenchmarkDecrypt(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		srv, kr, id := benchServer(b)
		dk, err := kr.GenerateDataKey(context.Background(), id, photos)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"CiphertextBlob": dk.Ciphertext, "EncryptionContext": photos})
		benchHandler(b, srv, "Decrypt", body)
	})
	b.Run("sdk", func(b *testing.B) {
		srv, kr, id := benchServer(b)
		dk, err := kr.GenerateDataKey(context.Background(), id, photos)
		if err != nil {
			b.Fatal(err)
		}
		c := benchClient(b, srv)
		ctx := context.Background()
		loop(b, func() {
			if _, err := c.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.Ciphertext, EncryptionContext: photos}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func benchClient(b *testing.B, srv *kmsapi.Server) *sdk.Client {
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	return sdk.New(sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: bob, SecretAccessKey: secretOf(bob), CanExpire: false}, nil
		}),
	})
}
