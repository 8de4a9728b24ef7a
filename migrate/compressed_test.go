package migrate_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// A compressed object (the golden v3-compressed-s2) migrates as it is: its
// object key resealed for the destination, the compressed body copied byte
// for byte (verified in full by decrypting it), and it stays compressed;
// re-encrypting it writes it uncompressed. A proxy that knows the bucket may
// hold compressed objects lists and reads it exactly.
func TestCompressedSource(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", "v3-compressed-s2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Bucket      string `json:"bucket"`
		Key         string `json:"key"`
		KeyID       string `json:"key_id"`
		DEK         string `json:"test_only_dek_hex"`
		Wrapped     string `json:"fake_wrapped_dek_hex"`
		HeaderValue string `json:"header_value"`
		BodyFile    string `json:"body_file"`
		PlainFile   string `json:"plaintext_file"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", g.BodyFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", g.PlainFile))
	if err != nil {
		t.Fatal(err)
	}
	dek, _ := hex.DecodeString(g.DEK)
	wrapped, _ := hex.DecodeString(g.Wrapped)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, g.Bucket)
	// TestVersion1Source uses the golden bucket too: leave it as found.
	t.Cleanup(func() {
		ctx := context.Background()
		src.S3Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &g.Bucket, Key: &g.Key})
		src.S3Client().DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &g.Bucket})
	})
	if _, err := src.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &g.Bucket, Key: &g.Key,
		Body: bytes.NewReader(body), Metadata: map[string]string{"s3seal": g.HeaderValue}}); err != nil {
		t.Fatal(err)
	}
	dir, kr := newKeyring(t)
	for _, tc := range []struct {
		bucket     string
		reencrypt  bool
		compressed bool
	}{{"from-v3", false, true}, {"from-v3-reencrypted", true, false}} {
		createBucket(t, dst, tc.bucket)
		rep, err := migrate.Run(context.Background(), migrate.Config{
			Src:      migrate.Side{Store: store(src), Bucket: g.Bucket, KMS: &goldenKMS{keyID: g.KeyID, wrapped: wrapped, dek: dek}},
			Dst:      migrate.Side{Store: store(dst), Bucket: tc.bucket, KMS: kr},
			DstKeyID: keyring.DefaultAlias, Verify: migrate.VerifyFull, ReencryptData: tc.reencrypt,
		})
		report(t, rep, err, 1, 0, 0)
		head, err := dst.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(tc.bucket), Key: &g.Key})
		if err != nil {
			t.Fatal(err)
		}
		h, err := envelope.ParseHeader(head.Metadata["s3seal"])
		if err != nil || (h.Flags()&envelope.FlagCompressed != 0) != tc.compressed {
			t.Fatalf("%s: destination header: %v, flags %v", tc.bucket, err, h)
		}
		if tc.compressed && aws.ToInt64(head.ContentLength) != int64(len(body)) {
			t.Fatalf("%s: %d stored bytes, the source has %d", tc.bucket, aws.ToInt64(head.ContentLength), len(body))
		}
	}
	env := dst.UpstreamEnv()
	env["S3SEAL_DATA_DIR"] = dir
	env["S3SEAL_COMPRESS_BUCKETS"] = "from-v3=off"
	p := testenv.StartS3seal(t, env)
	c := p.S3Client()
	for _, bucket := range []string{"from-v3", "from-v3-reencrypted"} {
		get, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &g.Key})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: %d bytes read, %v", bucket, len(got), err)
		}
		ls, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
		if err != nil || len(ls.Contents) != 1 || aws.ToInt64(ls.Contents[0].Size) != int64(len(plain)) {
			t.Fatalf("%s: listing %v, %+v", bucket, err, ls)
		}
	}
}
