package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// s3MultipartETag is the ETag S3 gives an object uploaded in these parts:
// the MD5 of the parts' MD5s, "-N".
func s3MultipartETag(parts ...[]byte) string {
	var sums []byte
	for _, p := range parts {
		s := md5.Sum(p)
		sums = append(sums, s[:]...)
	}
	return fmt.Sprintf(`"%x-%d"`, md5.Sum(sums), len(parts))
}

func contentMD5(b []byte) *string {
	s := md5.Sum(b)
	return aws.String(base64.StdEncoding.EncodeToString(s[:]))
}

// TestMultipartETag: a multipart upload whose parts came with Content-MD5
// has S3's ETag over the plaintext parts in the Complete answer, HEAD, GET,
// GetObjectAttributes and copies, and conditions naming it hold on reads,
// writes and copy sources. Listings show the store's ETag (README).
func TestMultipartETag(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.startProxy(t)
		c := p.S3Client()
		ctx := context.Background()
		bucket := st.newBucket(t, "mpetag")
		part1, part2 := randomBytes(5<<20+3), randomBytes(1234)
		want := s3MultipartETag(part1, part2)

		// upload completes an upload of parts at key; withMD5 says which
		// parts carry a Content-MD5.
		upload := func(t *testing.T, key string, withMD5 []bool, ifMatch string, parts ...[]byte) (string, error) {
			t.Helper()
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			var done []types.CompletedPart
			for i, b := range parts {
				in := &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)}
				if withMD5[i] {
					in.ContentMD5 = contentMD5(b)
				}
				out, err := c.UploadPart(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
			}
			in := &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}
			if ifMatch != "" {
				in.IfMatch = aws.String(ifMatch)
			}
			out, err := c.CompleteMultipartUpload(ctx, in)
			if err != nil {
				c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
				return "", err
			}
			return aws.ToString(out.ETag), nil
		}
		status := func(err error) int {
			if err == nil {
				return 200
			}
			if _, st := testenv.APIError(err); st != 0 {
				return st
			}
			return -1
		}

		tag, err := upload(t, "m", []bool{true, true}, "", part1, part2)
		if err != nil {
			t.Fatal(err)
		}
		if tag != want {
			t.Fatalf("Complete ETag = %s, want %s", tag, want)
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("m")})
		if err != nil || aws.ToString(head.ETag) != want {
			t.Fatalf("HEAD ETag = %v (%v), want %s", aws.ToString(head.ETag), err, want)
		}
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("m")})
		if err != nil {
			t.Fatal(err)
		}
		get.Body.Close()
		if aws.ToString(get.ETag) != want {
			t.Errorf("GET ETag = %s, want %s", aws.ToString(get.ETag), want)
		}
		attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("m"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(attrs.ETag); got != strings.Trim(want, `"`) {
			t.Errorf("GetObjectAttributes ETag = %s, want %s", got, strings.Trim(want, `"`))
		}
		// With ObjectParts too, the ETag comes from the header read for the
		// parts (one HEAD, not two): the same ETag.
		attrs, err = c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("m"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectParts}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(attrs.ETag); got != strings.Trim(want, `"`) || attrs.ObjectParts == nil {
			t.Errorf("GetObjectAttributes ETag+ObjectParts: ETag %s (want %s), parts %v", got, strings.Trim(want, `"`), attrs.ObjectParts)
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("m")})
		if err != nil || len(list.Contents) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		listed := aws.ToString(list.Contents[0].ETag)
		if !strings.HasSuffix(listed, `-2"`) {
			t.Errorf("listed ETag %s: want the store's multipart ETag", listed)
		}

		t.Run("read-conditions", func(t *testing.T) {
			other := `"0123456789abcdef0123456789abcdef-2"`
			past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
			for _, c2 := range []struct {
				name                     string
				ifMatch, ifNoneMatch     string
				ifModified, ifUnmodified *time.Time
				wantGet                  int
			}{
				{name: "if-match-shown", ifMatch: want, wantGet: 200},
				{name: "if-match-listed", ifMatch: listed, wantGet: 200},
				{name: "if-match-list", ifMatch: other + ", " + want, wantGet: 200},
				{name: "if-match-other", ifMatch: other, wantGet: 412},
				{name: "if-none-match-shown", ifNoneMatch: want, wantGet: 304},
				{name: "if-none-match-listed", ifNoneMatch: listed, wantGet: 304},
				{name: "if-none-match-other", ifNoneMatch: other, wantGet: 200},
				// S3's pairs: a true If-Match wins over a false
				// If-Unmodified-Since, a false If-None-Match over a true
				// If-Modified-Since.
				{name: "if-match-true-unmodified-false", ifMatch: want, ifUnmodified: &past, wantGet: 200},
				{name: "if-none-match-false-modified-false", ifNoneMatch: other, ifModified: &future, wantGet: 200},
				{name: "if-none-match-other-unmodified-false", ifNoneMatch: other, ifUnmodified: &past, wantGet: 412},
			} {
				t.Run(c2.name, func(t *testing.T) {
					in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("m"), IfModifiedSince: c2.ifModified, IfUnmodifiedSince: c2.ifUnmodified}
					hin := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("m"), IfModifiedSince: c2.ifModified, IfUnmodifiedSince: c2.ifUnmodified}
					if c2.ifMatch != "" {
						in.IfMatch, hin.IfMatch = aws.String(c2.ifMatch), aws.String(c2.ifMatch)
					}
					if c2.ifNoneMatch != "" {
						in.IfNoneMatch, hin.IfNoneMatch = aws.String(c2.ifNoneMatch), aws.String(c2.ifNoneMatch)
					}
					out, err := c.GetObject(ctx, in)
					if got := status(err); got != c2.wantGet {
						t.Errorf("GET: status %d (%v), want %d", got, err, c2.wantGet)
					}
					if err == nil {
						out.Body.Close()
						if aws.ToString(out.ETag) != want {
							t.Errorf("GET ETag %s, want %s", aws.ToString(out.ETag), want)
						}
					} else if c2.wantGet == 412 {
						if code, _ := testenv.APIError(err); code != "PreconditionFailed" {
							t.Errorf("GET: %v, want PreconditionFailed", err)
						}
					}
					_, err = c.HeadObject(ctx, hin)
					if got := status(err); got != c2.wantGet {
						t.Errorf("HEAD: status %d (%v), want %d", got, err, c2.wantGet)
					}
				})
			}
		})

		t.Run("copy", func(t *testing.T) {
			src := aws.String(bucket + "/m")
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("c"), CopySource: src,
				CopySourceIfNoneMatch: aws.String(want)})
			if got := status(err); got != 412 {
				t.Errorf("copy If-None-Match the shown ETag: %d (%v), want 412", got, err)
			}
			out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("c"), CopySource: src,
				CopySourceIfMatch: aws.String(want)})
			if err != nil {
				t.Fatalf("copy If-Match the shown ETag: %v", err)
			}
			if got := aws.ToString(out.CopyObjectResult.ETag); got != want {
				t.Errorf("copy result ETag %s, want %s", got, want)
			}
			got, _ := getThrough(t, p, bucket, "c")
			testenv.AssertSame(t, "copy", got, append(append([]byte{}, part1...), part2...))

			// Parts copied with UploadPartCopy pass through the proxy: their
			// MD5s make S3's ETag too.
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("pc")})
			if err != nil {
				t.Fatal(err)
			}
			var done []types.CompletedPart
			for i, rng := range []string{fmt.Sprintf("bytes=0-%d", 5<<20-1), fmt.Sprintf("bytes=%d-%d", 5<<20, len(part1)+len(part2)-1)} {
				pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("pc"), UploadId: up.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), CopySource: src, CopySourceRange: aws.String(rng), CopySourceIfMatch: aws.String(want)})
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: pc.CopyPartResult.ETag})
			}
			cm, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("pc"), UploadId: up.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
			if err != nil {
				t.Fatal(err)
			}
			whole := append(append([]byte{}, part1...), part2...)
			if got, want := aws.ToString(cm.ETag), s3MultipartETag(whole[:5<<20], whole[5<<20:]); got != want {
				t.Errorf("ETag of an upload of copied parts = %s, want %s", got, want)
			}
		})

		t.Run("mixed-parts", func(t *testing.T) {
			// A part without Content-MD5: the proxy does not know its MD5,
			// and the object keeps the store's ETag.
			tag, err := upload(t, "mixed", []bool{true, false}, "", part1, part2)
			if err != nil {
				t.Fatal(err)
			}
			if tag == want || !strings.HasSuffix(tag, `-2"`) {
				t.Errorf("ETag of an upload with a part of unknown MD5 = %s: want the store's", tag)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mixed")})
			if err != nil || aws.ToString(head.ETag) != tag {
				t.Errorf("HEAD ETag %v (%v), Complete said %s", aws.ToString(head.ETag), err, tag)
			}
		})

		t.Run("write-conditions", func(t *testing.T) {
			tag, err := upload(t, "w", []bool{true, true}, "", part1, part2)
			if err != nil || tag != want {
				t.Fatalf("upload: %s %v", tag, err)
			}
			// Complete over it, If-Match its sealed ETag: the proxy maps it
			// to the store's.
			p3 := randomBytes(777)
			tag2, err := upload(t, "w", []bool{true, true}, tag, part1, p3)
			if err != nil {
				t.Fatalf("Complete If-Match the shown ETag %s: %v", tag, err)
			}
			if tag2 != s3MultipartETag(part1, p3) {
				t.Errorf("ETag %s, want %s", tag2, s3MultipartETag(part1, p3))
			}
			if _, err := upload(t, "w", []bool{true, true}, tag, part1, part2); status(err) != 412 {
				t.Errorf("Complete If-Match a replaced ETag: %v, want 412", err)
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("w"), Body: bytes.NewReader(p3), IfMatch: aws.String(tag)})
			if status(err) != 412 {
				t.Errorf("PUT If-Match a replaced ETag: %v, want 412", err)
			}
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("w"), Body: bytes.NewReader(p3), IfMatch: aws.String(tag2)}); err != nil {
				t.Errorf("PUT If-Match the shown ETag %s: %v", tag2, err)
			}
			got, _ := getThrough(t, p, bucket, "w")
			testenv.AssertSame(t, "after PUT If-Match", got, p3)
		})
	})
}
