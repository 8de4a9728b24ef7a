package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// rssLimit is the most the proxy may hold resident while streaming objects
// of any size (DESIGN: memory per request is O(segment size)).
const rssLimit = 100 << 20

// TestLargeObjectBoundedMemory PUTs and GETs 2 GiB through the proxy,
// streamed from a generator on the client side and compared byte for byte
// on the way back (never held in memory), and checks the proxy's peak RSS
// (VmHWM).
func TestLargeObjectBoundedMemory(t *testing.T) {
	const size = 2 << 30
	p := startProxy(t)
	bucket := newBucket(t, "rss")
	key := "large/2GiB"
	ctx := context.Background()
	c := p.S3Client(func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	before, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: newGen(key, size),
	}); err != nil {
		t.Fatalf("PUT 2 GiB: %v", err)
	}
	putTime := time.Since(start)
	afterPut, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	})

	head, err := direct().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HEAD in MinIO: %v", err)
	}
	if aws.ToInt64(head.ContentLength) <= size || head.Metadata[metaKey] == "" {
		t.Errorf("MinIO holds %d bytes with metadata %v: not an s3seal object of 2 GiB",
			aws.ToInt64(head.ContentLength), keysOf(head.Metadata))
	}

	start = time.Now()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET 2 GiB: %v", err)
	}
	if n := aws.ToInt64(out.ContentLength); n != size {
		t.Errorf("GET Content-Length %d, want %d", n, size)
	}
	n, err := compareStream(out.Body, newGen(key, size))
	out.Body.Close()
	if err != nil {
		t.Fatalf("GET 2 GiB: after %d bytes: %v", n, err)
	}
	getTime := time.Since(start)
	afterGet, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}

	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f MiB/s", float64(size)/(1<<20)/d.Seconds()) }
	t.Logf("proxy VmHWM: at start %s, after 2 GiB PUT %s, after 2 GiB GET %s (limit %s)",
		mib(before), mib(afterPut), mib(afterGet), mib(rssLimit))
	t.Logf("PUT %v (%s), GET %v (%s), both through the proxy with the client on the same 2 cores",
		putTime.Round(time.Millisecond), rate(putTime), getTime.Round(time.Millisecond), rate(getTime))
	if afterGet >= rssLimit {
		t.Errorf("proxy peak RSS %s, want < %s", mib(afterGet), mib(rssLimit))
	}
}

// compareStream reads got to EOF and checks it equals want, chunk by chunk.
func compareStream(got, want io.Reader) (int64, error) {
	const chunk = 1 << 20
	a := make([]byte, chunk)
	b := make([]byte, chunk)
	var off int64
	for {
		n, err := io.ReadFull(got, a)
		if n > 0 {
			if _, werr := io.ReadFull(want, b[:n]); werr != nil {
				return off, fmt.Errorf("body longer than expected: %w", werr)
			}
			if !bytes.Equal(a[:n], b[:n]) {
				i := 0
				for a[i] == b[i] {
					i++
				}
				return off, fmt.Errorf("body differs at byte %d", off+int64(i))
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return off, err
		}
	}
	if m, _ := want.Read(b[:1]); m != 0 {
		return off, fmt.Errorf("body ended early at %d bytes", off)
	}
	return off, nil
}
