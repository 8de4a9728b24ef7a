package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// costProxy starts a proxy over MinIO with the embedded keyring behind the
// KMS stack serve builds (cache over retry over meter), the cache
// configured by cacheCfg.
func costProxy(t testing.TB, cacheCfg kms.CacheConfig, price float64) (*env, string) {
	t.Helper()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	md, err := kr.CreateKey("cost")
	if err != nil {
		t.Fatal(err)
	}
	client := kms.NewCache(kms.NewRetry(kms.NewMeter(kr), kms.RetryConfig{}), cacheCfg)
	id := proxy.Identity{AccessKey: "cost", SecretKey: "cost-secret-key", Buckets: []string{"*"}, Permissions: proxy.AllPermissions}
	ep := serveProxy(t, proxy.Config{
		UpstreamURL: minioSrv.Endpoint, UpstreamAccessKey: minioSrv.AccessKey, UpstreamSecretKey: minioSrv.SecretKey,
		Identities: proxy.NewStaticIdentities([]proxy.Identity{id}, nil),
		KMS:        client, DefaultKeyID: md.KeyID, Metrics: true, KMSPricePer10K: price,
		Logger: slog.New(slog.DiscardHandler),
	})
	e := &env{endpoint: ep, client: testenv.NewS3Client(ep, id.AccessKey, id.SecretKey), direct: minioSrv.S3Client()}
	return e, newBucket(t, e)
}

// putGet writes n objects of size bytes, 8 at a time, then reads each back.
func putGet(t testing.TB, e *env, bucket string, n, size int) {
	t.Helper()
	ctx := context.Background()
	data := pattern(size)
	for _, get := range []bool{false, true} {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 8)
		for i := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				key := fmt.Sprintf("o%06d", i)
				if !get {
					_, err := put(ctx, e.client, bucket, key, data)
					errs <- err
					return
				}
				res, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err == nil {
					var b []byte
					b, err = io.ReadAll(res.Body)
					res.Body.Close()
					if err == nil && !bytes.Equal(b, data) {
						err = fmt.Errorf("%s: wrong bytes", key)
					}
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// kmsRequests sums s3seal_kms_requests_total over its calls.
func kmsRequests(m map[string]float64) float64 {
	var n float64
	for _, call := range []string{"GenerateDataKey", "Decrypt", "Encrypt", "ReEncrypt", "DescribeKey"} {
		n += m[`s3seal_kms_requests_total{call="`+call+`"}`]
	}
	return n
}

// TestKMSCostMetrics: the KMS requests by call, the objects written and
// read, and the two derived figures, with the data-key cache off (one
// GenerateDataKey per PUT, one Decrypt per GET: exactly 1,000 requests per
// 1,000 objects) and on, at a configured price.
func TestKMSCostMetrics(t *testing.T) {
	const n = 40
	off := kms.CacheConfig{} // the zero config passes every call through
	e, bucket := costProxy(t, off, 0.05)
	putGet(t, e, bucket, n, 4096)
	m := scrape(t, e)
	for name, want := range map[string]float64{
		`s3seal_kms_requests_total{call="GenerateDataKey"}`:                 n,
		`s3seal_kms_requests_total{call="Decrypt"}`:                         n,
		`s3seal_objects_total{direction="written"}`:                         n,
		`s3seal_objects_total{direction="read"}`:                            n,
		`s3seal_kms_requests_per_1000_objects`:                              1000,
		`s3seal_kms_cost_per_million_objects_dollars{price_per_10k="0.05"}`: 5, // 1e6 requests at $0.05 per 10,000
	} {
		if got, ok := m[name]; !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("cache off: %s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	e, bucket = costProxy(t, kms.DefaultCacheConfig(), 0)
	putGet(t, e, bucket, n, 4096)
	m = scrape(t, e)
	total := kmsRequests(m)
	if gen := m[`s3seal_kms_requests_total{call="GenerateDataKey"}`]; gen < 1 || gen > 2 {
		t.Errorf("cache on: %v GenerateDataKey requests for %d PUTs, want 1 (2 if a retry raced)", gen, n)
	}
	if got, want := m[`s3seal_kms_requests_per_1000_objects`], 1000*total/(2*n); math.Abs(got-want) > 1e-9 || total >= n {
		t.Errorf("cache on: %v requests per 1000 objects, want %v (%v requests)", got, want, total)
	}
	if got, want := m[`s3seal_kms_cost_per_million_objects_dollars{price_per_10k="0.03"}`], total/(2*n)*1e6*0.03/1e4; math.Abs(got-want) > 1e-9 {
		t.Errorf("cache on: cost %v, want %v", got, want)
	}
}

// BenchmarkKMSCost writes b.N objects of 4 KiB and reads each back, with
// the data-key cache on (serve's defaults) and off, and reports the KMS
// requests per 1,000 objects written and read and the estimated cost of a
// million objects at AWS's $0.03 per 10,000 requests, as the metrics say:
//
//	go test ./proxy -run '^$' -bench KMSCost -benchtime 10000x
func BenchmarkKMSCost(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  kms.CacheConfig
	}{{"cache", kms.DefaultCacheConfig()}, {"nocache", kms.CacheConfig{}}} {
		b.Run(c.name, func(b *testing.B) {
			e, bucket := costProxy(b, c.cfg, 0)
			b.ResetTimer()
			putGet(b, e, bucket, b.N, 4096)
			b.StopTimer()
			m := scrape(b, e)
			b.ReportMetric(m[`s3seal_kms_requests_per_1000_objects`], "kms-req/1000obj")
			b.ReportMetric(m[`s3seal_kms_cost_per_million_objects_dollars{price_per_10k="0.03"}`], "$/Mobj")
			b.ReportMetric(m[`s3seal_kms_requests_total{call="GenerateDataKey"}`], "GenerateDataKey")
			b.ReportMetric(m[`s3seal_kms_requests_total{call="Decrypt"}`], "Decrypt")
		})
	}
}
