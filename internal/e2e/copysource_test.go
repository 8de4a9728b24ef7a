package e2e

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// copySourceKeys hold every kind of character a key may: reserved ones
// clients send raw ("&", "=", ":"), ones they must escape ("+", "%", "?",
// "#", space) and UTF-8.
var copySourceKeys = []string{"amp&.txt", "plus+sign.txt", "100%.txt", "what?.txt", "with space.txt",
	"a=b;c:d@e,f$g!h.txt", "hash#.txt", "café/日本.txt"}

// rcloneCopySource is x-amz-copy-source as rclone sends it: the path
// escaped as a URL path ("&", "=", ... raw), "+" as "%2B".
func rcloneCopySource(bucket, key string) string {
	return strings.ReplaceAll((&url.URL{Path: bucket + "/" + key}).EscapedPath(), "+", "%2B")
}

// TestCopySourceEncodings: CopyObject and UploadPartCopy with source keys
// of every kind, in rclone's encoding and in the canonical one, on every
// store.
func TestCopySourceEncodings(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.startProxy(t)
		c := p.S3Client()
		ctx := context.Background()
		bucket := st.newBucket(t, "cpsrc")
		for i, key := range copySourceKeys {
			body := randomBytes(1000 + i)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatalf("PUT %q: %v", key, err)
			}
			for enc, src := range map[string]string{
				"rclone":    rcloneCopySource(bucket, key),
				"canonical": s3wire.EscapePath(bucket, key)[1:],
			} {
				dst := "copy-" + enc + "/" + key
				if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(dst), CopySource: aws.String(src)}); err != nil {
					t.Errorf("CopyObject from %q (%s): %v", src, enc, err)
					continue
				}
				got, _ := getThrough(t, p, bucket, dst)
				testenv.AssertSame(t, "copy of "+key, got, body)
			}
			// UploadPartCopy, whose data passes through the proxy.
			dst := "part-copy/" + key
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(dst)})
			if err != nil {
				t.Fatal(err)
			}
			pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String(dst), UploadId: up.UploadId,
				PartNumber: aws.Int32(1), CopySource: aws.String(rcloneCopySource(bucket, key))})
			if err != nil {
				t.Errorf("UploadPartCopy from %q: %v", key, err)
				continue
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(dst),
				UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
					{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
				t.Fatal(err)
			}
			got, _ := getThrough(t, p, bucket, dst)
			testenv.AssertSame(t, "part copy of "+key, got, body)
		}
	})
}
