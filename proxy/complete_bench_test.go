package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// countingStore is a reverse proxy in front of MinIO that counts the
// requests s3seal sends to the store. It forwards the Host header as
// signed, so signatures still verify.
func countingStore(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(minioSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rp.ServeHTTP(w, r)
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &n
}

// startCountedProxy runs a proxy whose store requests go through
// countingStore, with a client for it.
func startCountedProxy(b testing.TB, more ...func(*proxy.Config)) (*env, *atomic.Int64) {
	endpoint, count := countingStore(b)
	e := startProxyWith(b, func(c *proxy.Config) {
		c.UpstreamURL = endpoint
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: "bench", SecretKey: "bench-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		for _, f := range more {
			f(c)
		}
	})
	e.client = testenv.NewS3Client(e.endpoint, "bench", "bench-secret")
	return e, count
}

// BenchmarkCompleteMultipart times CompleteMultipartUpload through the
// proxy for objects of N parts of 5 MiB, and reports the store requests it
// causes (store-requests/op). The parts are uploaded outside the timer.
func BenchmarkCompleteMultipart(b *testing.B) {
	e, count := startCountedProxy(b)
	bucket := newBucket(b, e)
	part := pattern(5 << 20)
	ctx := context.Background()
	for _, parts := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("parts=%d", parts), func(b *testing.B) {
			var requests int64
			for b.Loop() {
				b.StopTimer()
				key := aws.String("mp")
				up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
				if err != nil {
					b.Fatal(err)
				}
				var done []types.CompletedPart
				for i := range parts {
					res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
						PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
					if err != nil {
						b.Fatal(err)
					}
					done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
				}
				before := count.Load()
				b.StartTimer()
				if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key,
					UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				requests += count.Load() - before
				b.StartTimer()
			}
			b.ReportMetric(float64(requests)/float64(b.N), "store-requests/op")
		})
	}
}

// BenchmarkMultipartFirstHead times the first HEAD of a 32-part object
// through the proxy, which reads and verifies its part map (one ranged GET
// per part header), against a HEAD whose map is cached; store-requests/op
// counts what each costs the store.
func BenchmarkMultipartFirstHead(b *testing.B) {
	e, count := startCountedProxy(b)
	bucket := newBucket(b, e)
	ctx := context.Background()
	const parts = 32
	up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("src")})
	if err != nil {
		b.Fatal(err)
	}
	part := pattern(5 << 20)
	var done []types.CompletedPart
	for i := range parts {
		res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("src"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
		if err != nil {
			b.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("src"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		b.Fatal(err)
	}
	head := func(b *testing.B, key string) {
		if _, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("first", func(b *testing.B) {
		var requests int64
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			key := fmt.Sprintf("copy-%d", i)
			// A copy is a new object version: its map is not cached yet.
			if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String(key), CopySource: aws.String(bucket + "/src")}); err != nil {
				b.Fatal(err)
			}
			before := count.Load()
			b.StartTimer()
			head(b, key)
			b.StopTimer()
			requests += count.Load() - before
			b.StartTimer()
		}
		b.ReportMetric(float64(requests)/float64(b.N), "store-requests/op")
	})
	b.Run("cached", func(b *testing.B) {
		head(b, "src")
		before := count.Load()
		for b.Loop() {
			head(b, "src")
		}
		b.ReportMetric(float64(count.Load()-before)/float64(b.N), "store-requests/op")
	})
}
