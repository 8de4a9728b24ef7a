//lint:file-ignore SA1019 the manager is deprecated for transfermanager, but it is what most Go programs still upload with, and what issue 5 names.

package e2e

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestGoSDKManager: aws-sdk-go-v2's upload and download managers at their
// default settings (5 MiB parts, 5 uploads in parallel; ranged parallel
// downloads) through s3seal, from a non-seekable reader of unknown length.
func TestGoSDKManager(t *testing.T) { forEachStore(t, testGoSDKManager) }

func testGoSDKManager(t *testing.T, st *storeEnv) {
	p := st.startProxy(t)
	bucket := st.newBucket(t, "manager")
	ctx := context.Background()
	c := p.S3Client()
	for _, size := range []int{3 << 20, 23<<20 + 5} {
		key := "manager/" + sizeName(size)
		plain := plaintext(key, size)
		up := manager.NewUploader(c)
		res, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: struct{ io.Reader }{bytes.NewReader(plain)}})
		if err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
		if size > 5<<20 && !strings.HasSuffix(aws.ToString(res.ETag), `-5"`) {
			t.Errorf("upload %s: ETag %s, want 5 parts", key, aws.ToString(res.ETag))
		}
		buf := manager.NewWriteAtBuffer(make([]byte, 0, size))
		n, err := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 5 << 20 }).
			Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil || n != int64(size) {
			t.Fatalf("download %s: %d bytes, %v", key, n, err)
		}
		testenv.AssertSame(t, "manager "+key, buf.Bytes(), plain)
		st.assertCiphertextAtRest(t, bucket, key, plain)
	}
}
