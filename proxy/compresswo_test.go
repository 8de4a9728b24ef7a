package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// TestCompressedCopyWriteOnly: a compressed object copied into a bucket
// under an RSA key (write-only) stays compressed (CopyObject reseals the
// header only), and its stored size no longer gives its plaintext size. A
// write-only instance cannot open the header: its HEAD shows the size it
// remembers for that object version (the instance that made the copy) or
// is refused like a GET (403 AccessDenied), never a size computed from the
// stored size; its listing, which has no such answer, shows the stored-size
// rule's (README, "Compression"). An instance with decrypt rights shows
// the exact size everywhere and reads the object back. Against MinIO.
func TestCompressedCopyWriteOnly(t *testing.T) {
	ctx := context.Background()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sym, err := kr.CreateKey("sym")
	if err != nil {
		t.Fatal(err)
	}
	rk, err := kr.CreateKeyWith(keyring.KeyOptions{Description: "rsa", KeySpec: "RSA_3072"})
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(rand.Text()[:8])
	src, dst := "src-"+suffix, "wo-"+suffix
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	start := func(decrypt bool) *env {
		a, err := kms.NewAsymmetric(kr, kms.AsymmetricConfig{Decrypt: decrypt})
		if err != nil {
			t.Fatal(err)
		}
		e := startProxyWith(t, func(c *proxy.Config) {
			c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
			c.KMS, c.DefaultKeyID = kms.NewCache(kr, kms.DefaultCacheConfig()), sym.KeyID
			c.Compression = proxy.Compression{Algorithm: envelope.AlgS2, MinSaving: proxy.DefaultMinSaving}
			c.Asymmetric = proxy.AsymmetricKeys{KMS: kms.NewCache(a, kms.DefaultCacheConfig()), BucketKeys: map[string]string{dst: rk.KeyID}, Decrypt: decrypt}
		})
		e.client = testenv.NewS3Client(e.endpoint, access, secret)
		return e
	}
	w, w2, r := start(false), start(false), start(true)
	for _, b := range []string{src, dst} {
		if _, err := w.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	plain := jsonLines(81, 700_000)
	key := aws.String("a.jsonl")
	if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(src), Key: key, Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: key, CopySource: aws.String(src + "/a.jsonl")}); err != nil {
		t.Fatal(err)
	}
	h, stored := storedHeader(t, w, dst, "a.jsonl")
	if h.Flags() != envelope.FlagCompressed|envelope.FlagAsymmetricWrap || stored >= int64(len(plain))/2 {
		t.Fatalf("the copy: flags %#x, %d bytes stored for %d", h.Flags(), stored, len(plain))
	}
	headSize := func(c *env) (int64, error) {
		head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst), Key: key})
		if err != nil {
			return 0, err
		}
		return aws.ToInt64(head.ContentLength), nil
	}
	listed := func(c *env) int64 {
		l, err := c.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(dst)})
		if err != nil || len(l.Contents) != 1 {
			t.Fatalf("list: %v", err)
		}
		return aws.ToInt64(l.Contents[0].Size)
	}
	if n, err := headSize(w); err != nil || n != int64(len(plain)) {
		t.Errorf("HEAD through the write-only instance that made the copy: %d bytes, %v; want %d", n, err, len(plain))
	}
	// (A HEAD's error has no body: the status says it.)
	if n, err := headSize(w2); err == nil || func() bool { _, st := testenv.APIError(err); return st != 403 }() {
		t.Errorf("HEAD through another write-only instance: %d bytes, %v; want 403", n, err)
	}
	direct, err := w.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	want := stored // what a listing shows of a size no uncompressed object has
	if p, ok := envelope.ListedSize(stored, aws.ToString(direct.ETag)); ok {
		want = p
	}
	if n := listed(w2); n != want {
		t.Errorf("listing through another write-only instance: %d (stored %d), want the stored-size rule's %d", n, stored, want)
	}
	if n, err := headSize(r); err != nil || n != int64(len(plain)) || listed(r) != int64(len(plain)) {
		t.Errorf("HEAD through a reading instance: %d bytes, %v; listing %d; want %d", n, err, listed(r), len(plain))
	}
	get, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(dst), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("GET through a reading instance: %d bytes, %v", len(got), err)
	}
}
