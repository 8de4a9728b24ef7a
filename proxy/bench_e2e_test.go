package proxy_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
