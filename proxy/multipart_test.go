package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// uploadParts uploads data as a multipart object cut at the given sizes,
// with the given part numbers.
func uploadParts(t testing.TB, c *s3.Client, bucket, key string, data []byte, sizes []int, nums []int32) string {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		Metadata: map[string]string{"m": "v"}, ContentType: aws.String("application/x-parts")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	off := 0
	for i, n := range sizes {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(nums[i]), Body: bytes.NewReader(data[off : off+n])})
		if err != nil {
			t.Fatalf("part %d: %v", nums[i], err)
		}
		if !strings.HasSuffix(aws.ToString(res.ETag), `-0"`) {
			t.Errorf("part %d ETag %s looks like an MD5", nums[i], aws.ToString(res.ETag))
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(nums[i])})
		off += n
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range lp.Parts {
		if aws.ToString(p.ETag) != aws.ToString(parts[i].ETag) {
			t.Errorf("ListParts: part %d ETag %s, UploadPart said %s", aws.ToInt32(p.PartNumber), aws.ToString(p.ETag), aws.ToString(parts[i].ETag))
		}
		if aws.ToInt64(p.Size) != int64(sizes[i]) {
			t.Errorf("ListParts: part %d size %d, want %d", aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), sizes[i])
		}
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(done.ETag)
}

func TestMultipartRoundTrip(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	const MiB = 1 << 20
	cases := []struct {
		name  string
		sizes []int
		nums  []int32
	}{
		{"uniform", []int{5 * MiB, 5 * MiB, MiB + 3}, []int32{1, 2, 3}},
		{"one part", []int{100_000}, []int32{1}},
		{"uneven", []int{6 * MiB, 5 * MiB, 7}, []int32{1, 2, 3}},
		{"gaps in numbers", []int{5 * MiB, 5 * MiB, 10}, []int32{1, 3, 4}},
		{"empty last part", []int{5 * MiB, 0}, []int32{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			for _, n := range tc.sizes {
				total += n
			}
			data := pattern(total)
			key := "mp/" + strings.ReplaceAll(tc.name, " ", "-")
			etag := uploadParts(t, e.client, bucket, key, data, tc.sizes, tc.nums)
			if !strings.HasSuffix(etag, fmt.Sprintf(`-%d"`, len(tc.sizes))) {
				t.Errorf("ETag %s", etag)
			}
			get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("GET: %d bytes (want %d), err %v", len(got), len(data), err)
			}
			if get.Metadata["m"] != "v" || aws.ToString(get.ContentType) != "application/x-parts" || aws.ToString(get.ETag) != etag {
				t.Errorf("GET headers: %v %s %s", get.Metadata, aws.ToString(get.ContentType), aws.ToString(get.ETag))
			}
			head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(total) {
				t.Fatalf("HEAD: %v %d", err, aws.ToInt64(head.ContentLength))
			}
			// Ranges within and across part boundaries.
			rng := mrand.New(mrand.NewPCG(1, uint64(total)))
			ranges := []string{"bytes=0-0", "bytes=-1", fmt.Sprintf("bytes=-%d", min(total, 3*MiB))}
			if tc.sizes[0] < total {
				b := tc.sizes[0]
				ranges = append(ranges, fmt.Sprintf("bytes=%d-%d", b-1, b), fmt.Sprintf("bytes=%d-", b), fmt.Sprintf("bytes=%d-%d", b-5, min(total-1, b+70_000)))
			}
			for range 5 {
				a := rng.IntN(total)
				b := a + rng.IntN(total-a)
				ranges = append(ranges, fmt.Sprintf("bytes=%d-%d", a, b))
			}
			for _, r := range ranges {
				checkRange(t, e, bucket, key, data, r)
			}
			// partNumber GET returns that part's plaintext.
			off := 0
			for i, n := range tc.sizes {
				pg, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, PartNumber: aws.Int32(int32(i + 1))})
				if err != nil {
					t.Fatalf("partNumber %d: %v", i+1, err)
				}
				got, _ := io.ReadAll(pg.Body)
				pg.Body.Close()
				if !bytes.Equal(got, data[off:off+n]) || aws.ToInt32(pg.PartsCount) != int32(len(tc.sizes)) {
					t.Errorf("partNumber %d: %d bytes, parts count %d", i+1, len(got), aws.ToInt32(pg.PartsCount))
				}
				off += n
			}
			list, err := e.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &key})
			if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(total) || aws.ToString(list.Contents[0].ETag) != etag {
				t.Errorf("listing: %v %+v", err, list.Contents)
			}
		})
	}
}

func TestUploadPartCopy(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	const MiB = 1 << 20
	src := pattern(6*MiB + 123)
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: bytes.NewReader(src)}); err != nil {
		t.Fatal(err)
	}
	up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := e.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: aws.String("dst"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", 5*MiB))})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: aws.String("dst"), UploadId: up.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String(bucket + "/src")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("dst"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{ETag: p1.CopyPartResult.ETag, PartNumber: aws.Int32(1)}, {ETag: p2.CopyPartResult.ETag, PartNumber: aws.Int32(2)}}}}); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Clone(src[:5*MiB+1]), src...)
	get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, want) {
		t.Errorf("UploadPartCopy result: %d bytes, want %d", len(got), len(want))
	}
}

func TestCopyMultipartObject(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	other := newBucket(t, e)
	const MiB = 1 << 20
	data := pattern(11*MiB + 5)
	etag := uploadParts(t, e.client, bucket, "src", data, []int{5 * MiB, 6 * MiB, 5}, []int32{1, 2, 3})
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &other, Key: aws.String("copy"), CopySource: aws.String(bucket + "/src")}); err != nil {
		t.Fatal(err)
	}
	// A copy of the copy, then the source overwritten: both copies keep
	// their own ciphertext.
	res, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy2"), CopySource: aws.String(other + "/copy"),
		MetadataDirective: "REPLACE", Metadata: map[string]string{"new": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(res.CopyObjectResult.ETag), `-3"`) {
		t.Errorf("copy ETag %s (source %s)", aws.ToString(res.CopyObjectResult.ETag), etag)
	}
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: strings.NewReader("overwritten")}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ bucket, key string }{{other, "copy"}, {bucket, "copy2"}} {
		get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key})
		if err != nil {
			t.Fatalf("%s/%s: %v", o.bucket, o.key, err)
		}
		got, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if !bytes.Equal(got, data) || get.Metadata["m"] != "v" && o.key == "copy" || o.key == "copy2" && get.Metadata["new"] != "yes" {
			t.Errorf("%s/%s: %d bytes, metadata %v", o.bucket, o.key, len(got), get.Metadata)
		}
		checkRange(t, e, o.bucket, o.key, data, fmt.Sprintf("bytes=%d-%d", 5*MiB-3, 11*MiB+1))
		head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.bucket, Key: &o.key})
		if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) {
			t.Errorf("HEAD %s/%s: %v %d", o.bucket, o.key, err, aws.ToInt64(head.ContentLength))
		}
	}
}

func TestGetObjectAttributesPlaintext(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	const MiB = 1 << 20
	data := pattern(10*MiB + 7)
	etag := uploadParts(t, e.client, bucket, "mp", data, []int{5 * MiB, 5*MiB + 7}, []int32{1, 2})
	put, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("one"), Body: bytes.NewReader(data[:1000])})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		key, etag string
		size      int64
		parts     []int64
	}{{"mp", etag, int64(len(data)), []int64{5 * MiB, 5*MiB + 7}}, {"one", aws.ToString(put.ETag), 1000, nil}} {
		attrs, err := e.client.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: &o.key,
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize, types.ObjectAttributesObjectParts, types.ObjectAttributesChecksum}})
		if err != nil {
			t.Fatalf("%s: %v", o.key, err)
		}
		if aws.ToInt64(attrs.ObjectSize) != o.size || `"`+aws.ToString(attrs.ETag)+`"` != o.etag {
			t.Errorf("%s: size %d etag %s", o.key, aws.ToInt64(attrs.ObjectSize), aws.ToString(attrs.ETag))
		}
		// Only a checksum of the plaintext: the SDK's default CRC32 of
		// the single object's body (kept from its PUT); none for the
		// multipart upload, which named no algorithm. Never the store's,
		// of the ciphertext.
		if o.parts != nil && attrs.Checksum != nil {
			t.Errorf("%s: checksum %+v, want none", o.key, attrs.Checksum)
		}
		if crc := crc32.ChecksumIEEE(data[:1000]); o.parts == nil && (attrs.Checksum == nil ||
			aws.ToString(attrs.Checksum.ChecksumCRC32) != base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc))) {
			t.Errorf("%s: checksum %+v, want the plaintext's CRC32", o.key, attrs.Checksum)
		}
		if o.parts != nil {
			if attrs.ObjectParts == nil || aws.ToInt32(attrs.ObjectParts.TotalPartsCount) != int32(len(o.parts)) {
				t.Errorf("%s: parts %+v", o.key, attrs.ObjectParts)
			} else {
				for i, p := range attrs.ObjectParts.Parts {
					if aws.ToInt64(p.Size) != o.parts[i] {
						t.Errorf("%s: part %d size %d", o.key, i+1, aws.ToInt64(p.Size))
					}
				}
			}
		}
	}
}

// TestMultipartETagHeaderFull: CreateMultipartUpload reserves header room
// for the manifest but not for the sealed ETag. An upload whose metadata
// fills the header still completes, with the store's ETag, rather than
// failing at Complete and never becoming readable.
func TestMultipartETagHeaderFull(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	key := "full"
	create := func(n int) (*s3.CreateMultipartUploadOutput, error) {
		return e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
			Metadata: map[string]string{"a": strings.Repeat("x", n)}})
	}
	// The largest metadata value CreateMultipartUpload takes.
	lo, hi := 0, 2048
	for lo < hi {
		mid := (lo + hi + 1) / 2
		up, err := create(mid)
		if err != nil {
			if apiCode(err) != "MetadataTooLarge" {
				t.Fatal(err)
			}
			hi = mid - 1
			continue
		}
		e.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
		lo = mid
	}
	up, err := create(lo)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(5<<20 + 999)
	var parts []types.CompletedPart
	for i, b := range [][]byte{data[:5<<20], data[5<<20:]} {
		sum := md5.Sum(b)
		res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	done, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatalf("Complete with %d bytes of metadata: %v", lo, err)
	}
	s1, s2 := md5.Sum(data[:5<<20]), md5.Sum(data[5<<20:])
	plain := fmt.Sprintf(`"%x-2"`, md5.Sum(append(s1[:], s2[:]...)))
	if aws.ToString(done.ETag) == plain || !strings.HasSuffix(aws.ToString(done.ETag), `-2"`) {
		t.Errorf("Complete ETag %s: want the store's (no room for %s)", aws.ToString(done.ETag), plain)
	}
	get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, data) || aws.ToString(get.ETag) != aws.ToString(done.ETag) {
		t.Errorf("GET: %d bytes, ETag %s, err %v", len(got), aws.ToString(get.ETag), err)
	}
}
