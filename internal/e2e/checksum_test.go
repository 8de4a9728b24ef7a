package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestMinioGoTrailingHeaders uploads a file larger than minio-go's 16 MiB
// part size with FPutObject, with and without TrailingHeaders (which makes
// minio-go send part checksums in trailers and a checksum of the whole
// object on CompleteMultipartUpload), and reads it back.
func TestMinioGoTrailingHeaders(t *testing.T) { forEachStore(t, testMinioGoTrailingHeaders) }

func testMinioGoTrailingHeaders(t *testing.T, env *storeEnv) {
	p := env.startProxy(t)
	bucket := env.newBucket(t, "miniotrail")
	ctx := context.Background()
	const size = 16<<20 + 1<<20 + 7
	plain := plaintext("miniotrail", size)
	file := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(file, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, trailing := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "trailing"}[trailing]
		t.Run(name, func(t *testing.T) {
			mc, err := minio.New(strings.TrimPrefix(p.Endpoint, "http://"), &minio.Options{
				Creds: miniocreds.NewStaticV4(p.AccessKey, p.SecretKey, ""), Region: testenv.Region,
				BucketLookup: minio.BucketLookupPath, TrailingHeaders: trailing,
			})
			if err != nil {
				t.Fatal(err)
			}
			key := "fput/" + name
			info, err := mc.FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{})
			if err != nil {
				t.Fatalf("FPutObject %s: %v", key, err)
			}
			t.Logf("FPutObject: ETag %s, CRC32C %q, type %q", info.ETag, info.ChecksumCRC32C, info.ChecksumMode)
			obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{Checksum: true})
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			_, err = got.ReadFrom(obj)
			obj.Close()
			if err != nil {
				t.Fatalf("GetObject %s: %v", key, err)
			}
			testenv.AssertSame(t, "GetObject "+key, got.Bytes(), plain)
		})
	}
}
