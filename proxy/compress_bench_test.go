package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy"
)

// BenchmarkListCompressed: a listing of S3SEAL_BENCH_LIST_OBJECTS objects
// (default 10,000; 1 KiB of JSON lines each), pages of 1000, through s3seal
// in front of MinIO: a bucket without compression, and a compressed bucket
// listed by an instance whose size cache is cold (every entry HEADed and
// its header opened) and warm (every size cached). README, "Compression".
func BenchmarkListCompressed(b *testing.B) {
	n := 10_000
	if v := os.Getenv("S3SEAL_BENCH_LIST_OBJECTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	z := proxy.Compression{Algorithm: envelope.AlgS2, MinSaving: proxy.DefaultMinSaving}
	ps := newProxySet(b)
	plainEnv, compEnv := ps.start(proxy.Compression{}), ps.start(z)
	plainBucket, compBucket := newBucket(b, plainEnv), newBucket(b, plainEnv)
	body := jsonLines(1, 1024)
	put := func(e *env, bucket string) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("logs/%06d.json", i)), Body: bytes.NewReader(body)}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	put(plainEnv, plainBucket)
	put(compEnv, compBucket)
	if head, err := plainEnv.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &compBucket, Key: aws.String("logs/000000.json")}); err != nil ||
		aws.ToInt64(head.ContentLength) >= int64(len(body)) {
		b.Fatalf("objects not compressed: %v", err)
	}
	list := func(b *testing.B, e *env, bucket string) {
		got := 0
		p := s3.NewListObjectsV2Paginator(e.client, &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, o := range page.Contents {
				if aws.ToInt64(o.Size) != int64(len(body)) {
					b.Fatalf("%s listed with %d bytes", aws.ToString(o.Key), aws.ToInt64(o.Size))
				}
				got++
			}
		}
		if got != n {
			b.Fatalf("%d objects listed", got)
		}
	}
	run := func(name string, fresh bool, e *env, bucket string) {
		b.Run(name, func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				if fresh {
					e = ps.start(z)
				}
				before := processCPU()
				b.StartTimer()
				list(b, e, bucket)
				cpu += processCPU() - before
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "CPU-s/listing")
		})
	}
	run("plain", false, plainEnv, plainBucket)
	run("compressed-cold", true, nil, compBucket)
	run("compressed-warm", false, compEnv, compBucket)
}

// processCPU is the CPU time of this process (client, proxy and all):
// MinIO's is not in it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
