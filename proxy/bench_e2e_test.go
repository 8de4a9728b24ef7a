package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// BenchmarkProxyGet and BenchmarkProxyPut move a 64 MiB object through the
// proxy (in process, for profiles) in front of MinIO.
func BenchmarkProxyGet(b *testing.B) {
	e := startProxy(b)
	bucket := newBucket(b, e)
	data := pattern(64 << 20)
	if _, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big"), Body: bytes.NewReader(data)}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		get, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big")})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, get.Body)
		get.Body.Close()
	}
}

// BenchmarkProxySmall makes GETs and HEADs of a 4 KiB object, one at a
// time: per-request costs (signatures, envelope header, allocation).
func BenchmarkProxySmall(b *testing.B) {
	e := startProxy(b)
	bucket := newBucket(b, e)
	data := pattern(4 << 10)
	if _, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("small"), Body: bytes.NewReader(data)}); err != nil {
		b.Fatal(err)
	}
	b.Run("GET", func(b *testing.B) {
		for b.Loop() {
			get, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("small")})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, get.Body)
			get.Body.Close()
		}
	})
	b.Run("HEAD", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("small")}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProxySmallAlloc reports what the proxy allocates per 4 KiB PUT,
// GET and HEAD (proxy-B/op, proxy-allocs/op): the same client makes the
// same requests straight to MinIO and through the proxy, both in this
// process, and the difference is the proxy's. The proxy logs at warn, as
// s3seal serve does by default. With GOMAXPROCS=1 (s3seal's pinned
// set-up) a garbage collection stops the one core that serves requests,
// so bytes per request is also how often a request waits for one: the
// p99 of small requests (bench/RESULTS.md).
func BenchmarkProxySmallAlloc(b *testing.B) {
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	e := startProxyWith(b, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret)
	e.direct = testenv.NewS3Client(minioSrv.Endpoint, minioSrv.AccessKey, minioSrv.SecretKey)
	proxied := newBucket(b, e)
	direct := "d-" + strings.ToLower(rand.Text()[:12])
	ctx := context.Background()
	if _, err := e.direct.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &direct}); err != nil {
		b.Fatal(err)
	}
	data := pattern(4 << 10)
	ops := []struct {
		name string
		fn   func(c *s3.Client, bucket string) error
	}{
		{"PUT", func(c *s3.Client, bucket string) error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("small"), Body: bytes.NewReader(data)})
			return err
		}},
		{"GET", func(c *s3.Client, bucket string) error {
			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("small")})
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, get.Body)
			get.Body.Close()
			return err
		}},
		{"HEAD", func(c *s3.Client, bucket string) error {
			_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("small")})
			return err
		}},
	}
	// perOp is the bytes and allocations of n calls of fn, per call.
	perOp := func(n int, fn func() error) (bytes, allocs float64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(n), float64(after.Mallocs-before.Mallocs) / float64(n)
	}
	for _, c := range []struct {
		c      *s3.Client
		bucket string
	}{{e.direct, direct}, {e.client, proxied}} {
		for _, op := range ops { // the object, and warm connections
			if err := op.fn(c.c, c.bucket); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			var dBytes, dAllocs, pBytes, pAllocs float64
			for b.Loop() {
				// Alternate in rounds so both see the same machine.
				db, da := perOp(20, func() error { return op.fn(e.direct, direct) })
				pb, pa := perOp(20, func() error { return op.fn(e.client, proxied) })
				dBytes, dAllocs, pBytes, pAllocs = dBytes+db, dAllocs+da, pBytes+pb, pAllocs+pa
			}
			n := float64(b.N)
			b.ReportMetric((pBytes-dBytes)/n, "proxy-B/op")
			b.ReportMetric((pAllocs-dAllocs)/n, "proxy-allocs/op")
		})
	}
}
