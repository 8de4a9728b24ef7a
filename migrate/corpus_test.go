package migrate_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/migrate"
)

// object is one object of a test corpus, as a client wrote it.
type object struct {
	key         string
	data        []byte
	parts       []int // part sizes; nil: a single PUT
	contentType string
	meta        map[string]string
	sha256      bool   // sent with x-amz-checksum-sha256 (sealed, returned with checksum mode)
	md5         bool   // sent with Content-MD5
	copyOf      string // made by CopyObject of this key
}

func pattern(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', 'e', 'a', 'l'})
	_, _ = r.Read(b)
	return b
}

// corpus is a bucket's worth of objects across every boundary the format
// has (0 B, segment ± 1, several parts), with user metadata, content
// types, sealed checksums, and a multipart copy whose parts stay sealed to
// its source's path (Meta.Origin). About 21 MiB.
func corpus(scale int) []object {
	const mib = 1 << 20
	S := envelope.SegmentSize
	objs := []object{
		{key: "empty", data: nil, contentType: "text/plain", meta: map[string]string{"a": "1"}},
		{key: "one", data: pattern(1, 1)},
		{key: "seg/minus", data: pattern(2, S-1)},
		{key: "seg/exact", data: pattern(3, S), contentType: "image/png"},
		{key: "seg/plus", data: pattern(4, S+1), meta: map[string]string{"color": "blue", "md5chksum": "x"}},
		{key: "dir/md5", data: pattern(5, mib), md5: true},
		{key: "dir/sha", data: pattern(6, 300<<10), sha256: true, contentType: "application/json"},
		{key: "odd key +%20 ü/x", data: pattern(7, 1000)},
		{key: "mp/two", data: pattern(8, 5*mib+1), parts: []int{5 * mib, 1}, contentType: "application/x-thing", meta: map[string]string{"owner": "bob"}},
	}
	if scale > 1 {
		objs = append(objs,
			object{key: "mp/three", data: pattern(9, 13*mib), parts: []int{5 * mib, 5 * mib, 3 * mib}},
			object{key: "mp/copied", copyOf: "mp/two"},
		)
	}
	return objs
}

// write puts the corpus through a proxy.
func write(t testing.TB, c *s3.Client, bucket string, objs []object) []object {
	t.Helper()
	ctx := context.Background()
	byKey := map[string]object{}
	for i, o := range objs {
		if o.copyOf != "" {
			src := byKey[o.copyOf]
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String(o.key), CopySource: aws.String(bucket + "/" + o.copyOf)}); err != nil {
				t.Fatalf("copy %s: %v", o.key, err)
			}
			o.data, o.parts, o.contentType, o.meta = src.data, src.parts, src.contentType, src.meta
			objs[i] = o
			continue
		}
		byKey[o.key] = o
		if o.parts == nil {
			in := &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(o.key), Body: bytes.NewReader(o.data), Metadata: o.meta}
			if o.contentType != "" {
				in.ContentType = aws.String(o.contentType)
			}
			if o.md5 {
				sum := md5.Sum(o.data)
				in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
			}
			if o.sha256 {
				sum := sha256.Sum256(o.data)
				in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
			}
			if _, err := c.PutObject(ctx, in); err != nil {
				t.Fatalf("put %s: %v", o.key, err)
			}
			continue
		}
		in := &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(o.key), Metadata: o.meta}
		if o.contentType != "" {
			in.ContentType = aws.String(o.contentType)
		}
		up, err := c.CreateMultipartUpload(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		off := 0
		for i, n := range o.parts {
			res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String(o.key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(o.data[off : off+n])})
			if err != nil {
				t.Fatal(err)
			}
			off += n
			done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String(o.key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatal(err)
		}
	}
	return objs
}

// check reads every object back through a proxy, bit for bit, with its
// metadata, content type, checksum, listed size and part count.
func check(t *testing.T, c *s3.Client, bucket, prefix string, objs []object) {
	t.Helper()
	n := checkObjects(t, c, bucket, prefix, objs)
	if n != len(objs) {
		t.Errorf("%d objects listed in %s, want %d", n, bucket, len(objs))
	}
}

// checkObjects checks objs under prefix and returns how many objects the
// bucket lists in all.
func checkObjects(t *testing.T, c *s3.Client, bucket, prefix string, objs []object) int {
	t.Helper()
	ctx := context.Background()
	listed := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			listed[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	for _, o := range objs {
		key := prefix + o.key
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Errorf("GET %s: %v", key, err)
			continue
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Errorf("GET %s: %v", key, err)
			continue
		}
		testenv.AssertSame(t, key, got, o.data)
		if s, ok := listed[key]; !ok || s != int64(len(o.data)) {
			t.Errorf("%s: listed %d bytes (%v), want %d", key, s, ok, len(o.data))
		}
		if want := o.contentType; want != "" && aws.ToString(out.ContentType) != want {
			t.Errorf("%s: Content-Type %q, want %q", key, aws.ToString(out.ContentType), want)
		}
		for k, v := range o.meta {
			if out.Metadata[k] != v {
				t.Errorf("%s: x-amz-meta-%s = %q, want %q (all: %v)", key, k, out.Metadata[k], v, out.Metadata)
			}
		}
		if o.md5 {
			sum := md5.Sum(o.data)
			if out.Metadata["md5chksum"] != base64.StdEncoding.EncodeToString(sum[:]) {
				t.Errorf("%s: md5chksum %q", key, out.Metadata["md5chksum"])
			}
		}
		if o.sha256 {
			sum := sha256.Sum256(o.data)
			if aws.ToString(out.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sum[:]) {
				t.Errorf("%s: sealed SHA-256 %q not returned", key, aws.ToString(out.ChecksumSHA256))
			}
		}
		if n := envelope.PartsInETag(aws.ToString(out.ETag)); len(o.parts) > 0 && n != len(o.parts) {
			t.Errorf("%s: ETag %s, want %d parts", key, aws.ToString(out.ETag), len(o.parts))
		}
	}
	return len(listed)
}

func createBucket(t testing.TB, u *testenv.Upstream, bucket string) {
	t.Helper()
	if _, err := u.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
}

func store(u *testenv.Upstream) *objstore.Store {
	return objstore.New(objstore.Config{Endpoint: u.Endpoint, Region: testenv.Region, AccessKey: u.AccessKey, SecretKey: u.SecretKey})
}

// counter is an Observer that counts.
type counter struct {
	mu      sync.Mutex
	moved   int64
	results []migrate.Result
	planned int
}

func (c *counter) Planned(n int, _ int64) { c.mu.Lock(); c.planned = n; c.mu.Unlock() }
func (c *counter) Moved(n int64)          { c.mu.Lock(); c.moved += n; c.mu.Unlock() }
func (c *counter) Finished(r migrate.Result) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

// report fails the test unless the run copied, skipped and failed these
// many objects.
func report(t testing.TB, rep *migrate.Report, err error, copied, skipped, failed int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied != copied || rep.Skipped != skipped || rep.Failed != failed {
		var b strings.Builder
		for _, r := range rep.Objects {
			fmt.Fprintf(&b, "\n  %s %s %s %s", r.Action, r.Source, r.Mode, r.Reason)
		}
		t.Fatalf("copied %d, skipped %d, failed %d; want %d, %d, %d:%s", rep.Copied, rep.Skipped, rep.Failed, copied, skipped, failed, b.String())
	}
}
