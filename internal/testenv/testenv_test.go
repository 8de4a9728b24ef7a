package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
}

func TestLogBufferSince(t *testing.T) {
	l := &logBuffer{limit: 8}
	l.Write([]byte("abcd"))
	mark := l.offset()
	l.Write([]byte("efgh"))
	if got := l.since(mark); got != "efgh" {
		t.Fatalf("since = %q, want efgh", got)
	}
	l.Write([]byte("ijkl")) // drops "abcd"
	if got := l.String(); got != "efghijkl" {
		t.Fatalf("String = %q", got)
	}
	if got := l.since(mark); got != "efghijkl" {
		t.Fatalf("since after drop = %q", got)
	}
	if got := l.since(0); got != "efghijkl" {
		t.Fatalf("since(0) after drop = %q", got)
	}
}

func TestProcStatusBytes(t *testing.T) {
	hwm, err := ProcStatusBytes(os.Getpid(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if hwm < 1<<20 {
		t.Fatalf("VmHWM of the test process = %d, implausible", hwm)
	}
	if _, err := ProcStatusBytes(os.Getpid(), "NoSuchField"); err == nil {
		t.Fatal("no error for a missing field")
	}
}

func TestMinIOBinaryIsPinned(t *testing.T) {
	bin, err := MinIOBinary()
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Main.Path != MinIOModule || info.Main.Version != MinIOVersion {
		t.Fatalf("%s is %s@%s, want %s@%s", bin, info.Main.Path, info.Main.Version, MinIOModule, MinIOVersion)
	}
	// A binary of another module, or of another version, is rejected.
	other := &pinnedTool{bin: "minio", module: "example.com/not-minio", pkg: "example.com/not-minio", version: MinIOVersion}
	if p, err := other.find(); err == nil {
		t.Fatalf("%s was accepted as example.com/not-minio", p)
	}
	older := &pinnedTool{bin: "minio", module: MinIOModule, pkg: MinIOModule, version: "v0.0.0-20200101000000-000000000000"}
	if p, err := older.find(); err == nil {
		t.Fatalf("%s was accepted as an older minio", p)
	}
}

// TestVersityGW: the second real store starts from its pinned build and
// serves S3 with the credentials it was given, and only those.
func TestVersityGW(t *testing.T) {
	v, err := LaunchVersityGW()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	ctx := context.Background()
	if _, err := v.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewS3Client(v.Endpoint, v.AccessKey, "wrong-secret").ListBuckets(ctx, nil); err == nil {
		t.Fatal("versitygw accepted a wrong secret")
	}
}

func TestMinIO(t *testing.T) {
	m := StartMinIO(t, MinIOOptions{})
	ctx := context.Background()
	c := m.S3Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100_000)
	rand.Read(body)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
	// Read it back with minio-go.
	mc, err := m.MinioClient()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("minio-go read back different bytes")
	}
	// Wrong credentials are refused: the server really checks them.
	bad := NewS3Client(m.Endpoint, m.AccessKey, "wrong-secret-key")
	if _, err := bad.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); err == nil {
		t.Fatal("HEAD with a wrong secret succeeded")
	}
	m.Stop()
	m.Stop() // idempotent
	if _, err := http.Get(m.Endpoint + "/minio/health/live"); err == nil {
		t.Fatal("minio still answers after Stop")
	}
}

func TestMinIOWithKMS(t *testing.T) {
	m := StartMinIO(t, MinIOOptions{KMSSecretKey: NewMinIOKMSSecretKey("testenv-key")})
	ctx := context.Background()
	c := m.S3Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sse-bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("sse-bkt"), Key: aws.String("k"), Body: strings.NewReader("secret"),
		ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	}); err != nil {
		t.Fatal(err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sse-bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerSideEncryption != s3types.ServerSideEncryptionAes256 {
		t.Fatalf("ServerSideEncryption = %q", h.ServerSideEncryption)
	}
}

func TestLaunchMinIOStopRemovesDir(t *testing.T) {
	m, err := LaunchMinIO(MinIOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.DataDir); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if _, err := os.Stat(m.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir still there after Stop: %v", err)
	}
}

func TestMoto(t *testing.T) {
	m := StartMoto(t)
	ctx := context.Background()
	c := kms.New(kms.Options{
		Region:       Region,
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             key.KeyMetadata.KeyId,
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: map[string]string{"s3seal:bucket": "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 {
		t.Fatalf("data key of %d bytes", len(dk.Plaintext))
	}
	// moto checks the encryption context.
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    dk.CiphertextBlob,
		EncryptionContext: map[string]string{"s3seal:bucket": "other"},
	}); err == nil {
		t.Fatal("Decrypt with another encryption context succeeded")
	}
}

func TestS3seal(t *testing.T) {
	m := StartMinIO(t, MinIOOptions{})
	s := StartS3seal(t, m.UpstreamEnv())
	if s.PID() == 0 {
		t.Fatal("no PID")
	}
	if s.AccessKey == "" || s.SecretKey == "" || s.AccessKey == m.AccessKey {
		t.Fatalf("client credentials not generated: %q", s.AccessKey)
	}
	rss, err := s.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Fatalf("VmHWM = %d", rss)
	}
	oldPID := s.PID()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.PID() == oldPID {
		t.Fatal("Restart kept the same process")
	}
	resp, err := http.Get(s.Endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after restart: %s", resp.Status)
	}
	s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if exited, _ := s.Exited(); exited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("process still running after Stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
