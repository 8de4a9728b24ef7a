package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestContentHeadersSealed: the content headers a client sets are sealed
// with the object (format version 2), kept from the store, and served from
// the sealed copy, so the store cannot change how a browser treats a file.
func TestContentHeadersSealed(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := map[string]string{
		"type": "text/plain; charset=utf-8", "disposition": `attachment; filename="a b.txt"`,
		"encoding": "gzip", "language": "de-CH", "cache": "max-age=60", "expires": expires.Format(http.TimeFormat),
	}
	check := func(t *testing.T, what string, ct, cd, ce, cl, cc, exp *string, w map[string]string) {
		t.Helper()
		got := map[string]string{"type": aws.ToString(ct), "disposition": aws.ToString(cd), "encoding": aws.ToString(ce),
			"language": aws.ToString(cl), "cache": aws.ToString(cc), "expires": aws.ToString(exp)}
		for k, v := range w {
			if got[k] != v {
				t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
			}
		}
	}
	body := []byte("hello, sealed headers")
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("doc"), Body: bytes.NewReader(body),
		ContentType: aws.String(want["type"]), ContentDisposition: aws.String(want["disposition"]),
		ContentEncoding: aws.String(want["encoding"]), ContentLanguage: aws.String(want["language"]),
		CacheControl: aws.String(want["cache"]), Expires: &expires}); err != nil {
		t.Fatal(err)
	}
	// The store has none of them in clear.
	raw, err := e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("doc")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(raw.ContentType) == want["type"] || aws.ToString(raw.ContentDisposition) != "" ||
		aws.ToString(raw.ContentEncoding) != "" || aws.ToString(raw.CacheControl) != "" {
		t.Errorf("the store holds content headers in clear: type %q disposition %q encoding %q cache %q",
			aws.ToString(raw.ContentType), aws.ToString(raw.ContentDisposition), aws.ToString(raw.ContentEncoding), aws.ToString(raw.CacheControl))
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("doc")})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "HEAD", head.ContentType, head.ContentDisposition, head.ContentEncoding, head.ContentLanguage, head.CacheControl, head.ExpiresString, want)

	// The store changes the object's Content-Type (and drops nothing else):
	// the client still sees the sealed headers.
	if _, err := e.direct.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("doc"), CopySource: aws.String(bucket + "/doc"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: raw.Metadata, ContentType: aws.String("text/html"),
		ContentDisposition: aws.String("inline")}); err != nil {
		t.Fatal(err)
	}
	get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("doc")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("GET body %q", got)
	}
	check(t, "GET after the store changed Content-Type", get.ContentType, get.ContentDisposition, get.ContentEncoding, get.ContentLanguage, get.CacheControl, get.ExpiresString, want)

	// response-* parameters still override, as on S3.
	get, err = e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("doc"), ResponseContentType: aws.String("application/x-override")})
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if ct := aws.ToString(get.ContentType); ct != "application/x-override" {
		t.Errorf("response-content-type: Content-Type %q", ct)
	}

	// A copy keeps them (COPY), or takes the request's (REPLACE).
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"), CopySource: aws.String(bucket + "/doc")}); err != nil {
		t.Fatal(err)
	}
	head, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("copy")})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "HEAD of a COPY copy", head.ContentType, head.ContentDisposition, head.ContentEncoding, head.ContentLanguage, head.CacheControl, head.ExpiresString, want)
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("replaced"), CopySource: aws.String(bucket + "/doc"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("image/png")}); err != nil {
		t.Fatal(err)
	}
	head, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("replaced")})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "HEAD of a REPLACE copy", head.ContentType, head.ContentDisposition, head.ContentEncoding, head.ContentLanguage, head.CacheControl, head.ExpiresString,
		map[string]string{"type": "image/png", "disposition": "", "encoding": "", "cache": ""})

	// A multipart object keeps the headers of its CreateMultipartUpload.
	up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"),
		ContentType: aws.String("video/mp4"), ContentDisposition: aws.String("inline")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	head, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "HEAD of a multipart object", head.ContentType, head.ContentDisposition, head.ContentEncoding, head.ContentLanguage, head.CacheControl, head.ExpiresString,
		map[string]string{"type": "video/mp4", "disposition": "inline"})
}
