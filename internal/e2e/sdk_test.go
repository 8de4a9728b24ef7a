package e2e

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestGoSDKs uses aws-sdk-go-v2 with its default checksum settings and
// minio-go (which signs bodies as STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunks
// over plain HTTP) against the proxy.
func TestGoSDKs(t *testing.T) { forEachStore(t, testGoSDKs) }

func testGoSDKs(t *testing.T, env *storeEnv) {
	p := env.startProxy(t)
	bucket := env.newBucket(t, "sdks")
	ctx := context.Background()
	sizes := []int{0, 1, 64<<10 - 1, 64<<10 + 1, 1 << 20}

	t.Run("aws-sdk-go-v2", func(t *testing.T) {
		c := p.S3Client()
		for _, size := range sizes {
			key := "awssdk/" + sizeName(size)
			plain := plaintext(key, size)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain)})
			if err != nil {
				t.Fatalf("PutObject %s: %v", key, err)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("HeadObject %s: %v", key, err)
			}
			if aws.ToInt64(head.ContentLength) != int64(size) {
				t.Errorf("HeadObject %s: ContentLength %d", key, aws.ToInt64(head.ContentLength))
			}
			r := getVia(t, c, bucket, key, "")
			if r.status != 0 || r.readErr != nil {
				t.Fatalf("GetObject %s: %v", key, r)
			}
			testenv.AssertSame(t, "GetObject "+key, r.body, plain)
			assertETagsEqual(t, key, aws.ToString(put.ETag), aws.ToString(head.ETag))
			env.assertCiphertextAtRest(t, bucket, key, plain)
		}
	})

	t.Run("minio-go", func(t *testing.T) {
		mc, err := p.MinioClient()
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range sizes {
			key := "miniogo/" + sizeName(size)
			plain := plaintext(key, size)
			// A reader that is not an io.Seeker: minio-go streams it in
			// signed chunks.
			info, err := mc.PutObject(ctx, bucket, key, struct{ io.Reader }{bytes.NewReader(plain)}, int64(size),
				minio.PutObjectOptions{DisableMultipart: true, UserMetadata: map[string]string{"client": "minio-go"}})
			if err != nil {
				t.Fatalf("PutObject %s: %v", key, err)
			}
			st, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatalf("StatObject %s: %v", key, err)
			}
			if st.Size != int64(size) {
				t.Errorf("StatObject %s: Size %d", key, st.Size)
			}
			if st.UserMetadata["Client"] != "minio-go" && st.UserMetadata["client"] != "minio-go" {
				t.Errorf("StatObject %s: user metadata %v", key, st.UserMetadata)
			}
			assertETagsEqual(t, key, info.ETag, st.ETag)
			obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatalf("GetObject %s: %v", key, err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatalf("GetObject %s: %v", key, err)
			}
			testenv.AssertSame(t, "GetObject "+key, got, plain)
			env.assertCiphertextAtRest(t, bucket, key, plain)
			if size > 64<<10 {
				var o minio.GetObjectOptions
				if err := o.SetRange(65535, 65536); err != nil {
					t.Fatal(err)
				}
				obj, err := mc.GetObject(ctx, bucket, key, o)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil {
					t.Fatalf("ranged GetObject %s: %v", key, err)
				}
				testenv.AssertSame(t, "ranged GetObject "+key, got, plain[65535:65537])
			}
		}
		// Listing shows plaintext sizes.
		for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "miniogo/"}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			want := -1
			for _, size := range sizes {
				if o.Key == "miniogo/"+sizeName(size) {
					want = size
				}
			}
			if o.Size != int64(want) {
				t.Errorf("ListObjects: %s Size %d, want %d", o.Key, o.Size, want)
			}
		}
	})
}

// TestRestart checks that objects written before a restart of the proxy
// read back after it (everything needed lives in the object, the store and
// the keyring in the data dir).
func TestRestart(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "restart")
	key := "before-restart"
	plain := plaintext(key, 200_000)
	if _, err := p.S3Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain),
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	r := getVia(t, p.S3Client(), bucket, key, "")
	if r.status != 0 || r.readErr != nil {
		t.Fatalf("GET after restart: %v", r)
	}
	testenv.AssertSame(t, "GET after restart", r.body, plain)
}
