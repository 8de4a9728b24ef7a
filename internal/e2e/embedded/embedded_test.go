package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

var ctx = context.Background()

// start runs `s3seal serve` on the embedded store with extra settings.
func start(t *testing.T, env map[string]string) *testenv.S3seal {
	t.Helper()
	return testenv.StartS3seal(t, env)
}

func mkBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s/%s: read: %v", bucket, key, err)
	}
	return b
}

// listAll lists bucket with ListObjectsV2, page by page of pageSize.
func listAll(t *testing.T, c *s3.Client, bucket, prefix, delimiter string, pageSize int32) (keys []string, sizes map[string]int64, prefixes []string) {
	t.Helper()
	sizes = map[string]int64{}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(pageSize)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	p := s3.NewListObjectsV2Paginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2 %s prefix %q delimiter %q: %v", bucket, prefix, delimiter, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
			sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
		for _, cp := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
	}
	return keys, sizes, prefixes
}

func apiCode(err error) string {
	code, _ := testenv.APIError(err)
	return code
}

// multipart uploads plain in parts of the given sizes and returns the ETag.
func multipart(t *testing.T, c *s3.Client, bucket, key string, plain []byte, sizes []int) string {
	t.Helper()
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	var done []types.CompletedPart
	off := 0
	for i, n := range sizes {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(plain[off : off+n])})
		if err != nil {
			t.Fatalf("UploadPart %d of %s: %v", i+1, key, err)
		}
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
		off += n
	}
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatalf("CompleteMultipartUpload %s: %v", key, err)
	}
	return aws.ToString(out.ETag)
}

func payload(name string, n int) []byte {
	return FixturePlaintext(FixtureObject{Key: name, Size: n})
}

// mpSizes are the part sizes of the multipart objects here: S3's minimum
// for all but the last.
var mpSizes = []int{5 << 20, 5 << 20, 1234}

func sum(sizes []int) int {
	n := 0
	for _, s := range sizes {
		n += s
	}
	return n
}

// TestFolderMarkersAndLiteralKeys: a folder marker, "//" and (with dot
// segments allowed, as for a store known to keep keys literally) "./" and
// "../" segments are stored as the keys they are; the bucket lists exactly.
func TestFolderMarkersAndLiteralKeys(t *testing.T) {
	p := start(t, map[string]string{"S3SEAL_ALLOW_DOT_SEGMENTS": "true"})
	c := p.S3Client()
	mkBucket(t, c, "keys")
	mkBucket(t, c, "other")
	put(t, c, "other", "file", []byte("other's file"))
	keys := []string{"photos/", "photos/cat.jpg", "a/./b", "a/../c", "x//y", "../escape.txt", "./dot", "a/b/../../other/file", "trailing/..", "z"}
	for _, k := range keys {
		put(t, c, "keys", k, []byte("content of "+k))
	}
	for _, k := range keys {
		if got := string(get(t, c, "keys", k)); got != "content of "+k {
			t.Errorf("GET %q = %q", k, got)
		}
	}
	got, sizes, _ := listAll(t, c, "keys", "", "", 1000)
	want := append([]string(nil), keys...)
	sortStrings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("listing:\n got %q\nwant %q", got, want)
	}
	for _, k := range keys {
		if sizes[k] != int64(len("content of "+k)) {
			t.Errorf("listed size of %q: %d", k, sizes[k])
		}
	}
	// Pages of one key, and a delimiter.
	if got1, _, _ := listAll(t, c, "keys", "", "", 1); strings.Join(got1, "\n") != strings.Join(want, "\n") {
		t.Errorf("listing in pages of 1:\n got %q\nwant %q", got1, want)
	}
	top, _, prefixes := listAll(t, c, "keys", "", "/", 2)
	if strings.Join(top, ",") != "z" || strings.Join(prefixes, ",") != "../,./,a/,photos/,trailing/,x/" {
		t.Errorf("delimiter listing: keys %q prefixes %q", top, prefixes)
	}
	// Nothing escaped into the other bucket, and no new bucket appeared.
	if got := string(get(t, c, "other", "file")); got != "other's file" {
		t.Errorf("other/file = %q", got)
	}
	if ok, _, _ := listAll(t, c, "other", "", "", 1000); len(ok) != 1 {
		t.Errorf("bucket other holds %q", ok)
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if strings.Join(names, ",") != "keys,other" {
		t.Errorf("buckets %q, want keys,other", names)
	}
	// Deleting the folder marker leaves what is under it.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys"), Key: aws.String("photos/")}); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, "keys", "photos/cat.jpg")); got != "content of photos/cat.jpg" {
		t.Errorf("photos/cat.jpg after deleting photos/: %q", got)
	}
}

// TestDotSegmentsRefused: by default the proxy refuses "." and ".."
// segments in object keys, copy sources and DeleteObjects, whatever the
// store; an identity allowed one bucket cannot reach another through them.
func TestDotSegmentsRefused(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(creds, []byte(`{"identities":[
		{"access_key":"admin","secret_key":"admin-secret","buckets":["*"],"permissions":["read","write","admin"]},
		{"access_key":"narrow","secret_key":"narrow-secret","buckets":["allowed"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, map[string]string{"S3SEAL_CREDENTIALS_FILE": creds, "S3SEAL_ACCESS_KEY": "", "S3SEAL_SECRET_KEY": ""})
	admin := testenv.NewS3Client(p.Endpoint, "admin", "admin-secret")
	narrow := testenv.NewS3Client(p.Endpoint, "narrow", "narrow-secret")
	mkBucket(t, admin, "allowed")
	mkBucket(t, admin, "other")
	put(t, admin, "other", "file", []byte("keep me"))
	put(t, narrow, "allowed", "mine", []byte("mine"))

	for _, k := range []string{"../other/file", "x/../../other/file", "./file", "a/.", "a/..", `a\..\b`} {
		_, err := narrow.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("allowed"), Key: aws.String(k), Body: strings.NewReader("overwritten")})
		if code := apiCode(err); code != "XMinioInvalidResourceName" {
			t.Errorf("PUT allowed/%s: %v, want XMinioInvalidResourceName", k, err)
		}
		_, err = narrow.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("allowed"), Key: aws.String(k)})
		if code := apiCode(err); code != "XMinioInvalidResourceName" {
			t.Errorf("DELETE allowed/%s: %v, want XMinioInvalidResourceName", k, err)
		}
	}
	_, err := narrow.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("allowed"), Key: aws.String("stolen"), CopySource: aws.String("allowed/../other/file")})
	if code := apiCode(err); code != "XMinioInvalidObjectName" {
		t.Errorf("CopyObject from allowed/../other/file: %v, want XMinioInvalidObjectName", err)
	}
	// DeleteObjects: like MinIO, each object with a dot segment gets its
	// own error and the others are deleted.
	res, err := narrow.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("allowed"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("mine")}, {Key: aws.String("../other/file")}}}})
	if err != nil {
		t.Fatalf("DeleteObjects with ../other/file: %v", err)
	}
	if len(res.Errors) != 1 || aws.ToString(res.Errors[0].Key) != "../other/file" || aws.ToString(res.Errors[0].Code) != "XMinioInvalidObjectName" {
		t.Errorf("DeleteObjects errors = %+v, want one XMinioInvalidObjectName for ../other/file", res.Errors)
	}
	if len(res.Deleted) != 1 || aws.ToString(res.Deleted[0].Key) != "mine" {
		t.Errorf("DeleteObjects deleted = %+v, want mine", res.Deleted)
	}
	// Only refused objects: the store is not asked, the answer is the
	// proxy's own, in Quiet mode too.
	res, err = narrow.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("allowed"), Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("x/../../other/file")}}}})
	if err != nil || len(res.Errors) != 1 || len(res.Deleted) != 0 {
		t.Errorf("DeleteObjects of x/../../other/file alone: %+v, %v; want one error", res, err)
	}
	if got := string(get(t, admin, "other", "file")); got != "keep me" {
		t.Errorf("other/file = %q", got)
	}
	if _, err := admin.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("allowed"), Key: aws.String("mine")}); apiCode(err) != "NotFound" {
		t.Errorf("allowed/mine after DeleteObjects: %v, want NotFound", err)
	}
}

// TestSubresources: tagging is served as tagging, never stored as the
// object; subresources the store does not implement are refused.
func TestSubresources(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "sub")
	put(t, c, "sub", "obj", []byte("the object"))
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("sub"), Key: aws.String("obj"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}); err != nil {
		t.Errorf("PutObjectTagging: %v", err)
	}
	if got := string(get(t, c, "sub", "obj")); got != "the object" {
		t.Errorf("GET after PutObjectTagging = %q", got)
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("sub"), Key: aws.String("obj")})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Key) != "k" || aws.ToString(tags.TagSet[0].Value) != "v" {
		t.Errorf("GetObjectTagging: %+v, %v", tags, err)
	}
	_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("sub"), Key: aws.String("obj"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(time.Now().Add(time.Hour))}})
	if code := apiCode(err); code != "NotImplemented" {
		t.Errorf("PutObjectRetention: %v, want NotImplemented", err)
	}
	_, err = c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: aws.String("sub"), Key: aws.String("obj"),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}})
	if code := apiCode(err); code != "NotImplemented" {
		t.Errorf("PutObjectLegalHold: %v, want NotImplemented", err)
	}
	if got := string(get(t, c, "sub", "obj")); got != "the object" {
		t.Errorf("GET after refused subresources = %q", got)
	}
	keys, _, _ := listAll(t, c, "sub", "", "", 1000)
	if strings.Join(keys, ",") != "obj" {
		t.Errorf("bucket holds %q, want just obj", keys)
	}
}

// listV1 sends ListObjects (V1) with raw query parameters and decodes it.
func listV1(t *testing.T, p *testenv.S3seal, bucket, query string) listBucketResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.Endpoint+"/"+bucket+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := signedDo(t, p, req, http.StatusOK)
	var res listBucketResult
	if err := xml.Unmarshal(body, &res); err != nil {
		t.Fatalf("ListObjects ?%s: %v\n%s", query, err, body)
	}
	return res
}

type listBucketResult struct {
	Contents []struct {
		Key  string
		Size int64
		ETag string
	}
	CommonPrefixes []struct{ Prefix string }
	IsTruncated    bool
	NextMarker     string
	EncodingType   string
}

// signedDo signs req with the proxy's credentials, sends it and returns the
// body, failing unless the status is want.
func signedDo(t *testing.T, p *testenv.S3seal, req *http.Request, want int) []byte {
	t.Helper()
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	hash := emptyHash
	if req.Body != nil {
		hash = "UNSIGNED-PAYLOAD"
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: p.AccessKey, SecretAccessKey: p.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", testenv.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", req.Method, req.URL, resp.StatusCode, want, body)
	}
	return body
}

// TestListingsExact: ListObjects V1 with a delimiter, encoding-type=url and
// markers, V2 in small pages, and ListObjectVersions, all with plaintext
// sizes for single and multipart objects.
func TestListingsExact(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "lists")
	mp := payload("mp", sum(mpSizes))
	etag := multipart(t, c, "lists", "dir/multi part", mp, mpSizes)
	if !strings.HasSuffix(etag, `-3"`) {
		t.Errorf("Complete ETag %s, want -3", etag)
	}
	put(t, c, "lists", "dir/single", payload("single", 100))
	put(t, c, "lists", "top", payload("top", 7))
	want := map[string]int64{"dir/multi part": int64(len(mp)), "dir/single": 100, "top": 7}

	for _, q := range []string{"", "prefix=dir/", "delimiter=/&prefix=dir/", "encoding-type=url", "encoding-type=url&prefix=dir/&delimiter=/", "max-keys=1&marker=dir/multi%20part"} {
		res := listV1(t, p, "lists", q)
		for _, o := range res.Contents {
			key := o.Key
			if res.EncodingType == "url" {
				key = strings.ReplaceAll(key, "+", " ")
				key = strings.ReplaceAll(key, "%20", " ")
			}
			if want[key] != o.Size {
				t.Errorf("ListObjects ?%s: %s size %d, want %d", q, key, o.Size, want[key])
			}
		}
		if q == "" && len(res.Contents) != 3 {
			t.Errorf("ListObjects: %d objects", len(res.Contents))
		}
	}
	res := listV1(t, p, "lists", "delimiter=/")
	if len(res.Contents) != 1 || res.Contents[0].Key != "top" || len(res.CommonPrefixes) != 1 || res.CommonPrefixes[0].Prefix != "dir/" {
		t.Errorf("ListObjects ?delimiter=/: %+v", res)
	}
	res = listV1(t, p, "lists", "max-keys=1&delimiter=/")
	if !res.IsTruncated || res.NextMarker != "dir/" || len(res.CommonPrefixes) != 1 || len(res.Contents) != 0 {
		t.Errorf("ListObjects ?max-keys=1&delimiter=/: %+v", res)
	}
	res = listV1(t, p, "lists", "max-keys=1&delimiter=/&marker=dir/")
	if res.IsTruncated || len(res.Contents) != 1 || res.Contents[0].Key != "top" {
		t.Errorf("ListObjects after marker dir/: %+v", res)
	}

	_, sizes, _ := listAll(t, c, "lists", "", "", 1)
	for k, n := range want {
		if sizes[k] != n {
			t.Errorf("ListObjectsV2 pages of 1: %s size %d, want %d", k, sizes[k], n)
		}
	}
	v, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("lists")})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	if len(v.Versions) != 3 {
		t.Errorf("ListObjectVersions: %d versions", len(v.Versions))
	}
	for _, o := range v.Versions {
		if want[aws.ToString(o.Key)] != aws.ToInt64(o.Size) {
			t.Errorf("ListObjectVersions: %s size %d", aws.ToString(o.Key), aws.ToInt64(o.Size))
		}
	}
}

// TestGetObjectAttributes answers XML with the plaintext size.
func TestGetObjectAttributes(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "attrs")
	mp := payload("mp", sum(mpSizes))
	multipart(t, c, "attrs", "mp", mp, mpSizes)
	put(t, c, "attrs", "single", payload("single", 1000))
	for key, size := range map[string]int{"mp": len(mp), "single": 1000} {
		out, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("attrs"), Key: aws.String(key),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize, types.ObjectAttributesObjectParts}})
		if err != nil {
			t.Errorf("GetObjectAttributes %s: %v", key, err)
			continue
		}
		if aws.ToInt64(out.ObjectSize) != int64(size) {
			t.Errorf("GetObjectAttributes %s: ObjectSize %d, want %d", key, aws.ToInt64(out.ObjectSize), size)
		}
		if key == "mp" && (out.ObjectParts == nil || aws.ToInt32(out.ObjectParts.TotalPartsCount) != 3) {
			t.Errorf("GetObjectAttributes mp: parts %+v, want 3", out.ObjectParts)
		}
	}
}

// TestCopyMultipart: CopyObject of a multipart source, and UploadPartCopy
// with ranges, through the proxy.
func TestCopyMultipart(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "copies")
	mp := payload("mp", sum(mpSizes))
	multipart(t, c, "copies", "src", mp, mpSizes)
	out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("copies"), Key: aws.String("dst"), CopySource: aws.String("copies/src")})
	if err != nil {
		t.Fatalf("CopyObject of a multipart source: %v", err)
	}
	if etag := aws.ToString(out.CopyObjectResult.ETag); !strings.HasSuffix(etag, `-3"`) {
		t.Errorf("CopyObject ETag %s, want -3", etag)
	}
	testenv.AssertSame(t, "copy of a multipart object", get(t, c, "copies", "dst"), mp)

	// A new object from ranges of the source.
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("copies"), Key: aws.String("ranges")})
	if err != nil {
		t.Fatal(err)
	}
	ranges := [][2]int{{100, 100 + 5<<20 - 1}, {len(mp) - 5000, len(mp) - 1}}
	var done []types.CompletedPart
	var want []byte
	for i, r := range ranges {
		pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("ranges"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String("copies/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
		if err != nil {
			t.Fatalf("UploadPartCopy %v: %v", r, err)
		}
		done = append(done, types.CompletedPart{ETag: pc.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))})
		want = append(want, mp[r[0]:r[1]+1]...)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("copies"), Key: aws.String("ranges"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	testenv.AssertSame(t, "object from UploadPartCopy ranges", get(t, c, "copies", "ranges"), want)
}

// TestMultipartAcrossRestart: an upload survives a restart of serve;
// ListMultipartUploads lists it, and answers an empty list for a bucket
// with none.
func TestMultipartAcrossRestart(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "mpu")
	mkBucket(t, c, "none")
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("none")})
	if err != nil || len(lu.Uploads) != 0 {
		t.Errorf("ListMultipartUploads on a bucket with none: %+v, %v", lu, err)
	}
	plain := payload("restart", sum(mpSizes))
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("obj")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	off := 0
	for i, n := range mpSizes {
		if i == 1 {
			if err := p.Restart(); err != nil {
				t.Fatalf("restart: %v", err)
			}
			c = p.S3Client()
			lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
			if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].Key) != "obj" {
				t.Errorf("ListMultipartUploads after restart: %+v, %v", lu, err)
			}
		}
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("obj"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(plain[off : off+n])})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
		off += n
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("obj"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Errorf("ListParts: %+v, %v", lp, err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("obj"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete after restart: %v", err)
	}
	testenv.AssertSame(t, "object uploaded across a restart", get(t, c, "mpu", "obj"), plain)
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.AssertSame(t, "the same after another restart", get(t, p.S3Client(), "mpu", "obj"), plain)
}

// TestSecondServe: a second serve on the same data dir exits at once with
// an error that says why; the first keeps serving.
func TestSecondServe(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "one")
	put(t, c, "one", "k", []byte("v"))
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.BuildS3seal(t), "serve")
	cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+p.DataDir, "S3SEAL_MASTER_KEY_FILE="+p.MasterKeyFile, "S3SEAL_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"S3SEAL_ACCESS_KEY="+p.AccessKey, "S3SEAL_SECRET_KEY="+p.SecretKey, "S3SEAL_UPSTREAM=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("second serve exited 0")
		}
		if !strings.Contains(out.String(), "in use") {
			t.Errorf("second serve said %q, want it to say the data dir is in use", out.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("second serve on the same data dir is still running after 15 s:\n%s", out.String())
	}
	if got := string(get(t, c, "one", "k")); got != "v" {
		t.Errorf("first serve after the second's attempt: %q", got)
	}
}

// TestNoStorePort: the process listens on exactly one TCP port, the S3 one.
func TestNoStorePort(t *testing.T) {
	p := start(t, nil)
	mkBucket(t, p.S3Client(), "ports")
	ports := listeningPorts(t, p.PID())
	if len(ports) != 1 || !strings.HasSuffix(p.Endpoint, ":"+strconv.Itoa(ports[0])) {
		t.Errorf("s3seal (pid %d) listens on TCP ports %v; want only its S3 endpoint %s", p.PID(), ports, p.Endpoint)
	}
}

// listeningPorts returns the TCP ports pid listens on (from /proc).
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, portHex, _ := strings.Cut(fields[1], ":")
			port, _ := strconv.ParseInt(portHex, 16, 32)
			ports = append(ports, int(port))
		}
		fh.Close()
	}
	return ports
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestUpgradeFromGofakes3 starts serve on a data dir written by the
// previous embedded store (testdata/embedstore-gofakes3.tar.gz, made by
// fixturegen) and reads every object back: keys, sizes, metadata, content.
func TestUpgradeFromGofakes3(t *testing.T) {
	dir := t.TempDir()
	tar := exec.Command("tar", "-xzf", filepath.Join("testdata", "embedstore-gofakes3.tar.gz"), "-C", dir)
	if out, err := tar.CombinedOutput(); err != nil {
		t.Fatalf("untar the fixture: %v\n%s", err, out)
	}
	p := start(t, map[string]string{"S3SEAL_DATA_DIR": dir, "S3SEAL_ALLOW_DOT_SEGMENTS": "true"})
	c := p.S3Client()
	check := func(t *testing.T, c *s3.Client) {
		keys, sizes, _ := listAll(t, c, FixtureBucket, "", "", 1000)
		var want []string
		for _, o := range FixtureObjects {
			want = append(want, o.Key)
		}
		sortStrings(want)
		if strings.Join(keys, "\n") != strings.Join(want, "\n") {
			t.Errorf("listing after the upgrade:\n got %q\nwant %q", keys, want)
		}
		for _, o := range FixtureObjects {
			if sizes[o.Key] != int64(o.Size) {
				t.Errorf("%s: listed size %d, want %d", o.Key, sizes[o.Key], o.Size)
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(FixtureBucket), Key: aws.String(o.Key)})
			if err != nil {
				t.Errorf("GET %s: %v", o.Key, err)
				continue
			}
			body, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Errorf("GET %s: %v", o.Key, err)
				continue
			}
			testenv.AssertSame(t, "GET "+o.Key, body, FixturePlaintext(o))
			if o.ContentType != "" && aws.ToString(out.ContentType) != o.ContentType {
				t.Errorf("%s: Content-Type %q, want %q", o.Key, aws.ToString(out.ContentType), o.ContentType)
			}
			for k, v := range o.Meta {
				if out.Metadata[k] != v {
					t.Errorf("%s: metadata %s = %q, want %q", o.Key, k, out.Metadata[k], v)
				}
			}
			if n := len(o.Parts); n > 0 && !strings.HasSuffix(aws.ToString(out.ETag), fmt.Sprintf("-%d\"", n)) {
				t.Errorf("%s: ETag %s, want %d parts", o.Key, aws.ToString(out.ETag), n)
			}
		}
	}
	check(t, c)
	// It keeps working after a restart, and takes new writes.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	c = p.S3Client()
	check(t, c)
	put(t, c, FixtureBucket, "new", []byte("after the upgrade"))
	if got := string(get(t, c, FixtureBucket, "new")); got != "after the upgrade" {
		t.Errorf("new object: %q", got)
	}
}

// TestDecryptEmbedded: `s3seal decrypt` with no upstream reads the embedded
// store of the data dir once serve has stopped, and says why it cannot
// while serve runs.
func TestDecryptEmbedded(t *testing.T) {
	p := start(t, nil)
	c := p.S3Client()
	mkBucket(t, c, "dec")
	mp := payload("mp", sum(mpSizes))
	multipart(t, c, "dec", "mp", mp, mpSizes)
	put(t, c, "dec", "single", payload("single", 70000))
	bin := testenv.BuildS3seal(t)
	decrypt := func(key string) ([]byte, string, error) {
		out := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(bin, "decrypt", "s3://dec/"+key, "-o", out)
		cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+p.DataDir, "S3SEAL_MASTER_KEY_FILE="+p.MasterKeyFile, "S3SEAL_UPSTREAM=")
		msg, err := cmd.CombinedOutput()
		b, _ := os.ReadFile(out)
		return b, string(msg), err
	}
	if _, msg, err := decrypt("single"); err == nil || !strings.Contains(msg, "in use") {
		t.Errorf("decrypt while serve runs: %v, %q; want it to say the store is in use", err, msg)
	}
	p.Stop()
	for key, want := range map[string][]byte{"mp": mp, "single": payload("single", 70000)} {
		got, msg, err := decrypt(key)
		if err != nil {
			t.Fatalf("decrypt %s: %v\n%s", key, err, msg)
		}
		testenv.AssertSame(t, "s3seal decrypt "+key, got, want)
	}

	// inspect and rewrap read the embedded store the same way, and a
	// restarted serve reads what rewrap wrote under the new key alone.
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+p.DataDir, "S3SEAL_MASTER_KEY_FILE="+p.MasterKeyFile, "S3SEAL_UPSTREAM=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("s3seal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var in struct {
		FormatVersion int    `json:"format_version"`
		Layout        string `json:"layout"`
		KMSKey        string `json:"kms_key"`
		Parts         []any  `json:"parts"`
	}
	if err := json.Unmarshal([]byte(run("inspect", "--json", "s3://dec/mp")), &in); err != nil {
		t.Fatal(err)
	}
	if in.FormatVersion != 2 || in.Layout != "multipart" || len(in.Parts) != len(mpSizes) {
		t.Fatalf("inspect of the embedded store's multipart object: %+v", in)
	}
	run("keys", "create", "--alias", "alias/rewrapped")
	run("rewrap", "s3://dec", "--to", "alias/rewrapped")
	run("keys", "disable", in.KMSKey)
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	c = p.S3Client()
	for key, want := range map[string][]byte{"mp": mp, "single": payload("single", 70000)} {
		testenv.AssertSame(t, "GET after rewrap, old key disabled, "+key, get(t, c, "dec", key), want)
	}
}
