package e2e

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestFIPSModeS3Conventions: a proxy in FIPS 140-3 mode (GODEBUG=fips140=on,
// which a FIPS pass has anyway) keeps S3's MD5 and SHA-1 conventions, which
// no security property of s3seal rests on (README "FIPS 140-3 mode"): a
// Content-MD5 is checked (a wrong one is BadDigest and stores nothing), a
// multipart upload's ETag is the MD5 of its parts' MD5s, SHA-1 and CRC
// checksums are computed, kept and returned; bodies read back bit-exact and
// are ciphertext at rest.
func TestFIPSModeS3Conventions(t *testing.T) {
	env := store.UpstreamEnv()
	env["GODEBUG"] = "fips140=on"
	p := testenv.StartS3seal(t, env)
	if !strings.Contains(p.Log(), `msg="FIPS 140-3 mode" fips140=on`) {
		t.Fatalf("s3seal started with GODEBUG=fips140=on does not say it runs in FIPS mode:\n%s", p.Log())
	}
	c := p.S3Client()
	ctx := context.Background()
	bucket := newBucket(t, "fips")
	plain := plaintext("fips/single", 200_000)

	read := func(t *testing.T, key string) []byte {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		return b
	}

	t.Run("content-md5", func(t *testing.T) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("md5"), Body: bytes.NewReader(plain),
			ContentMD5: contentMD5(plain)}); err != nil {
			t.Fatalf("PUT with the right Content-MD5: %v", err)
		}
		testenv.AssertSame(t, "GET md5", read(t, "md5"), plain)
		assertCiphertextAtRest(t, bucket, "md5", plain)

		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("md5-wrong"), Body: bytes.NewReader(plain),
			ContentMD5: contentMD5(plain[1:])})
		if code, status := testenv.APIError(err); code != "BadDigest" || status != 400 {
			t.Fatalf("PUT with a wrong Content-MD5: %v, want 400 BadDigest", err)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("md5-wrong")}); err == nil {
			t.Error("a PUT refused for its Content-MD5 stored the object")
		}
	})

	t.Run("checksums", func(t *testing.T) {
		for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmCrc32c} {
			key := "checksum/" + string(alg)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain), ChecksumAlgorithm: alg})
			if err != nil {
				t.Fatalf("PUT %s: %v", key, err)
			}
			want := b64(sumOf(alg, plain))
			if got := checksumOf(alg, put.ChecksumCRC32, put.ChecksumCRC32C, put.ChecksumCRC64NVME, put.ChecksumSHA1, put.ChecksumSHA256); got != want {
				t.Errorf("PUT %s: checksum %q, want %q", key, got, want)
			}
			assertKept(t, c, bucket, key, alg, want, types.ChecksumTypeFullObject, plain, nil)
		}
	})

	t.Run("multipart-etag", func(t *testing.T) {
		key := "multipart"
		parts := [][]byte{plaintext("fips/p1", 5<<20+3), plaintext("fips/p2", 1234)}
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		for i, b := range parts {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b), ContentMD5: contentMD5(b)})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", i+1, err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		if got, want := aws.ToString(out.ETag), s3MultipartETag(parts...); got != want {
			t.Errorf("Complete ETag %s, want %s (S3's MD5 of the parts' MD5s)", got, want)
		}
		whole := append(append([]byte{}, parts[0]...), parts[1]...)
		testenv.AssertSame(t, "GET multipart", read(t, key), whole)
		assertCiphertextAtRest(t, bucket, key, whole)
	})
}
