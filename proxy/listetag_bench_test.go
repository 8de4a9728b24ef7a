package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// BenchmarkListMultipartETags prices what showing the sealed multipart
// ETag in listings would cost, which s3seal does not do (README, "ETags"):
// a listing of 1,000 multipart objects (ListObjectsV2, one page) against
// one HEAD per object through the proxy, 16 at a time. A HEAD repeated on
// the same instance (part map cached) is a store HEAD plus a header
// unseal, which is what resolving one listed ETag would take; the first
// HEAD of each object also verifies its parts (first-ms). Reported:
// store-requests/op and the time per round.
func BenchmarkListMultipartETags(b *testing.B) {
	const objects, parallel = 1000, 16
	e, count := startCountedProxy(b)
	bucket := newBucket(b, e)
	ctx := context.Background()
	body := pattern(1024)
	sum := md5.Sum(body)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range objects {
		g.Go(func() error {
			key := aws.String(fmt.Sprintf("mp/%04d", i))
			up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
			if err != nil {
				return err
			}
			res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
				PartNumber: aws.Int32(1), Body: bytes.NewReader(body), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
			if err != nil {
				return err
			}
			_, err = e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: res.ETag}}}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	headAll := func() error {
		var g errgroup.Group
		g.SetLimit(parallel)
		for i := range objects {
			g.Go(func() error {
				_, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("mp/%04d", i))})
				return err
			})
		}
		return g.Wait()
	}

	b.Run("list", func(b *testing.B) {
		start := count.Load()
		for b.Loop() {
			out, err := e.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("mp/")})
			if err != nil || len(out.Contents) != objects {
				b.Fatalf("list: %v, %d entries", err, len(out.Contents))
			}
		}
		b.ReportMetric(float64(count.Load()-start)/float64(b.N), "store-requests/op")
	})
	b.Run("head-each", func(b *testing.B) {
		first := time.Now()
		if err := headAll(); err != nil {
			b.Fatal(err)
		}
		firstMS := float64(time.Since(first).Microseconds()) / 1000
		start := count.Load()
		b.ResetTimer()
		for b.Loop() {
			if err := headAll(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(count.Load()-start)/float64(b.N), "store-requests/op")
		b.ReportMetric(firstMS, "first-ms")
	})
}
