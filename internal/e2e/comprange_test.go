package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestCompressedRanges: range GETs of compressed objects through a real
// s3seal on every store (MinIO, the embedded store, versitygw with
// S3SEAL_TEST_STORE=versitygw), in the orders that take each of the
// proxy's read paths: a cold range past the stored end (the suffix read
// after a 416), inside it, in the first block, a cold suffix range (the
// suffix read instead of a HEAD) short and longer than the suffix read,
// open ranges, then warm ranges of a remembered version, an overwrite
// between them, and ranges past the end (416 InvalidRange). Every answer
// is compared with the plaintext.
func TestCompressedRanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.StartProxy(t, map[string]string{"S3SEAL_COMPRESS": "zstd"})
		c := p.S3Client()
		ctx := context.Background()
		bucket := st.newBucket(t, "comprange")
		var b bytes.Buffer
		rng := mrand.New(mrand.NewPCG(7, 7))
		for b.Len() < 3<<20 {
			fmt.Fprintf(&b, `{"n":%d,"level":"info","path":"/k/%d","ms":%d}`+"\n", b.Len(), rng.IntN(1000), rng.IntN(5000))
		}
		text := b.Bytes()
		size := int64(len(text))
		get := func(key, r string) ([]byte, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &r})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}
		check := func(key string, body []byte, r string, off, n int64) {
			t.Helper()
			got, err := get(key, r)
			if err != nil {
				t.Fatalf("%s %s: %v", key, r, err)
			}
			testenv.AssertSame(t, key+" "+r, got, body[off:off+n])
		}
		sequences := map[string][]string{
			"past-end":    {"bytes=2000000-2100000", "bytes=2500000-2500999", "bytes=-70000", "bytes=100-"},
			"inside":      {"bytes=50000-150000", "bytes=3000000-"},
			"first-block": {"bytes=0-99", "bytes=262143-262145", "bytes=-1"},
			"suffix":      {"bytes=-5000", "bytes=0-0", "bytes=1048576-"},
			"long-suffix": {"bytes=-2000000", "bytes=-3000000"},
			"open":        {"bytes=2900000-", "bytes=1-2"},
		}
		for key := range sequences {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(text)}); err != nil {
				t.Fatal(err)
			}
			if st.Upstream == nil {
				continue // the embedded store has no door but the proxy
			}
			stored, err := st.Upstream.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
			if err != nil || aws.ToInt64(stored.ContentLength) > size/3 {
				t.Fatalf("%s: stored for %d bytes: %v, %v: not compressed", key, size, stored, err)
			}
		}
		for key, seq := range sequences {
			for _, r := range seq {
				off, n := resolve(r, size)
				check(key, text, r, off, n)
			}
		}
		// Uncompressed objects in the same bucket, which a suffix range
		// also reads with a suffix read first: a single object (named as
		// compressed already) and a multipart one, suffixes shorter and
		// longer than the suffix read.
		blob := bytes.Repeat([]byte("0123456789abcdef"), (5<<20+1000)/16)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("blob.gz"), Body: bytes.NewReader(blob[:1<<20+5])}); err != nil {
			t.Fatal(err)
		}
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp")})
		if err != nil {
			t.Fatal(err)
		}
		var parts []types.CompletedPart
		for i, part := range [][]byte{blob[:5<<20], blob[5<<20:]} {
			res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatal(err)
		}
		for key, body := range map[string][]byte{"blob.gz": blob[:1<<20+5], "mp": blob} {
			for _, r := range []string{"bytes=-100", "bytes=-70000", "bytes=-1000000", "bytes=10-20", "bytes=1048570-"} {
				off, n := resolve(r, int64(len(body)))
				check(key, body, r, off, n)
			}
		}

		// Overwritten after its ranges were read: the remembered version
		// is not the object any more, and the new one is served.
		other := bytes.ToUpper(text)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("past-end"), Body: bytes.NewReader(other)}); err != nil {
			t.Fatal(err)
		}
		check("past-end", other, "bytes=2500000-2500999", 2500000, 1000)
		check("past-end", other, "bytes=-10", size-10, 10)
		for _, r := range []string{"bytes=3500000-3500001", "bytes=3500000-"} {
			_, err := get("inside", r)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidRange" {
				t.Errorf("%s past the end: %v, want InvalidRange", r, err)
			}
		}
	})
}

// resolve resolves a bytes= range of the forms the test uses.
func resolve(r string, size int64) (off, n int64) {
	var a, z int64
	switch {
	case r[len("bytes=")] == '-':
		fmt.Sscanf(r, "bytes=-%d", &z)
		z = min(z, size)
		return size - z, z
	case r[len(r)-1] == '-':
		fmt.Sscanf(r, "bytes=%d-", &a)
		return a, size - a
	}
	fmt.Sscanf(r, "bytes=%d-%d", &a, &z)
	return a, min(z, size-1) - a + 1
}
