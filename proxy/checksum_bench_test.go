package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// BenchmarkPutChecksum times a single PutObject through the proxy with a
// CRC32C of the plaintext sent as a header (sealed with the object) and
// in a trailer (arrives after the header went to the store, so it is
// kept with a CopyObject of the object onto itself), with minio-go, and
// reports the store requests each causes (store-requests/op).
func BenchmarkPutChecksum(b *testing.B) {
	e, count := startCountedProxy(b)
	bucket := newBucket(b, e)
	u, err := url.Parse(e.endpoint)
	if err != nil {
		b.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4("bench", "bench-secret", ""),
		Region: testenv.Region, BucketLookup: minio.BucketLookupPath, TrailingHeaders: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range []int{1 << 10, 32 << 20} {
		data := pattern(size)
		crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		sum := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
		for _, mode := range []string{"header", "trailer"} {
			opts := minio.PutObjectOptions{DisableMultipart: true}
			if mode == "header" {
				opts.UserMetadata = map[string]string{"x-amz-checksum-crc32c": sum}
			} else {
				opts.Checksum = minio.ChecksumCRC32C
			}
			b.Run(fmt.Sprintf("size=%d/%s", size, mode), func(b *testing.B) {
				key := "ck-" + mode
				var requests int64
				for b.Loop() {
					before := count.Load()
					if _, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(size), opts); err != nil {
						b.Fatal(err)
					}
					requests += count.Load() - before
				}
				b.ReportMetric(float64(requests)/float64(b.N), "store-requests/op")
				b.StopTimer()
				// Either way the checksum is kept.
				st, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{Checksum: true})
				if err != nil || st.ChecksumCRC32C != sum {
					b.Fatalf("%s: CRC32C %q, want %q (%v)", mode, st.ChecksumCRC32C, sum, err)
				}
			})
		}
	}
}

// TestTrailerChecksumKeptOrDropped: a PutObject's trailer checksum is kept
// by default, at the price of a second store request (the copy that
// reseals the header), and with DropTrailerChecksums is verified but not
// kept: one store request, and checksum mode returns nothing.
func TestTrailerChecksumKeptOrDropped(t *testing.T) {
	data := pattern(100_000)
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	sum := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	for _, tc := range []struct {
		drop     bool
		requests int64
		want     string
	}{{false, 2, sum}, {true, 1, ""}} {
		t.Run(fmt.Sprintf("drop=%v", tc.drop), func(t *testing.T) {
			e, count := startCountedProxy(t, func(c *proxy.Config) { c.DropTrailerChecksums = tc.drop })
			bucket := newBucket(t, e)
			u, _ := url.Parse(e.endpoint)
			mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4("bench", "bench-secret", ""),
				Region: testenv.Region, BucketLookup: minio.BucketLookupPath, TrailingHeaders: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			before := count.Load()
			if _, err := mc.PutObject(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{DisableMultipart: true, Checksum: minio.ChecksumCRC32C}); err != nil {
				t.Fatal(err)
			}
			if n := count.Load() - before; n != tc.requests {
				t.Errorf("%d store requests for the PUT, want %d", n, tc.requests)
			}
			st, err := mc.StatObject(ctx, bucket, "k", minio.StatObjectOptions{Checksum: true})
			if err != nil || st.ChecksumCRC32C != tc.want {
				t.Errorf("CRC32C %q, want %q (%v)", st.ChecksumCRC32C, tc.want, err)
			}
			obj, err := mc.GetObject(ctx, bucket, "k", minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			testenv.AssertSame(t, "GET", got, data)
		})
	}
}
