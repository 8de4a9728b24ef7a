package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// The proxy package's own integration tests run the proxy in-process in
// front of a real MinIO, with the embedded keyring as KMS. With
// S3SEAL_TEST_STORE=versitygw they start versitygw instead: CI runs the
// package on MinIO only (many of its tests check MinIO's answers), and a
// test that must hold on both stores can be run by name on versitygw.

var minioSrv *testenv.Upstream

func TestMain(m *testing.M) {
	up, stop, err := testenv.LaunchStore()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the store:", err)
		os.Exit(1)
	}
	minioSrv = up
	code := m.Run()
	stop()
	os.Exit(code)
}

type env struct {
	endpoint string
	client   *s3.Client // through the proxy
	direct   *s3.Client // straight to MinIO
	log      *bytes.Buffer
}

func startProxy(t testing.TB) *env {
	t.Helper()
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	e := startProxyWith(t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret)
	return e
}

// startProxyWith runs a proxy in front of the package's MinIO with a fresh
// keyring; adjust changes its configuration (identities, domains, ...).
func startProxyWith(t testing.TB, adjust func(*proxy.Config)) *env {
	t.Helper()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	md, err := kr.CreateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &bytes.Buffer{}
	cfg := proxy.Config{
		UpstreamURL: minioSrv.Endpoint, UpstreamAccessKey: minioSrv.AccessKey, UpstreamSecretKey: minioSrv.SecretKey,
		KMS: kms.NewCache(kr, kms.DefaultCacheConfig()), DefaultKeyID: md.KeyID,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logBuf, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	adjust(&cfg)
	return &env{endpoint: serveProxy(t, cfg), direct: minioSrv.S3Client(), log: logBuf}
}

// serveProxy runs a proxy with cfg on a free loopback port until the test
// ends and returns its endpoint.
func serveProxy(t testing.TB, cfg proxy.Config) string {
	t.Helper()
	srv, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newBucket(t testing.TB, e *env) string {
	t.Helper()
	name := "b-" + strings.ToLower(rand.Text()[:12])
	if _, err := e.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	return name
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestPutGetRoundTrip(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	S := envelope.SegmentSize
	for _, size := range []int{0, 1, S - 1, S, S + 1, 3*S + 17} {
		key := fmt.Sprintf("dir/obj %d+~%%", size)
		data := pattern(size)
		put, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data),
			Metadata: map[string]string{"color": "blue"}, ContentType: aws.String("text/x-test")})
		if err != nil {
			t.Fatalf("put %d: %v", size, err)
		}
		if !strings.HasSuffix(aws.ToString(put.ETag), `-0"`) {
			t.Errorf("put ETag %s", aws.ToString(put.ETag))
		}
		get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("get %d: %v", size, err)
		}
		got, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %d: %d bytes, err %v", size, len(got), err)
		}
		if get.Metadata["color"] != "blue" || aws.ToString(get.ContentType) != "text/x-test" || aws.ToString(get.ETag) != aws.ToString(put.ETag) {
			t.Errorf("get %d: metadata %v type %s etag %s", size, get.Metadata, aws.ToString(get.ContentType), aws.ToString(get.ETag))
		}
		head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		if err != nil || aws.ToInt64(head.ContentLength) != int64(size) || head.Metadata["color"] != "blue" {
			t.Fatalf("head %d: %v %v", size, err, head)
		}
		// Stored directly: ciphertext, sealed header, no user metadata in clear.
		raw, err := e.direct.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := io.ReadAll(raw.Body)
		raw.Body.Close()
		if int64(len(stored)) != envelope.CiphertextSize(int64(size)) || raw.Metadata["s3seal"] == "" || raw.Metadata["color"] != "" {
			t.Errorf("stored %d bytes, metadata %v", len(stored), raw.Metadata)
		}
		if size >= 16 && bytes.Contains(stored, data[:16]) {
			t.Errorf("plaintext visible in stored object")
		}
		// Ranges at segment boundaries.
		if size > 0 {
			ranges := []string{"bytes=0-0", fmt.Sprintf("bytes=%d-", size-1), "bytes=-1", fmt.Sprintf("bytes=-%d", S+1), "bytes=0-"}
			if size > S-1 {
				ranges = append(ranges, fmt.Sprintf("bytes=%d-%d", S-1, S), fmt.Sprintf("bytes=%d-", S-1))
			}
			if size > 1 {
				ranges = append(ranges, "bytes=1-", fmt.Sprintf("bytes=1-%d", size-2))
			}
			for _, r := range ranges {
				checkRange(t, e, bucket, key, data, r)
			}
		}
		_, err = e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-", size))})
		if code := apiCode(err); code != "InvalidRange" {
			t.Errorf("range past end of %d: %v", size, err)
		}
	}
	list, err := e.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		var size int
		fmt.Sscanf(strings.TrimPrefix(aws.ToString(o.Key), "dir/obj "), "%d", &size)
		if aws.ToInt64(o.Size) != int64(size) || !strings.HasSuffix(aws.ToString(o.ETag), `-0"`) {
			t.Errorf("listing %s: size %d etag %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag))
		}
	}
	if len(list.Contents) != 6 {
		t.Errorf("listed %d objects", len(list.Contents))
	}
}

func TestPlaintextMD5ServedForSyncTools(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	data := pattern(1000)
	sum := md5.Sum(data)
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(data), ContentMD5: &b64}); err != nil {
		t.Fatal(err)
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil || head.Metadata["md5chksum"] != b64 {
		t.Errorf("HEAD after a PUT with Content-MD5: %v %v", err, head.Metadata)
	}
	bad := base64.StdEncoding.EncodeToString(make([]byte, 16))
	_, err = e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("bad"), Body: bytes.NewReader(data), ContentMD5: &bad})
	if apiCode(err) != "BadDigest" {
		t.Errorf("wrong Content-MD5: %v", err)
	}
	if _, err := e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("bad")}); err == nil {
		t.Error("object stored despite a wrong Content-MD5")
	}
}

func checkRange(t *testing.T, e *env, bucket, key string, data []byte, r string) {
	t.Helper()
	get, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &r})
	if err != nil {
		t.Errorf("range %s of %d: %v", r, len(data), err)
		return
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	var a, b int
	var total int
	if _, serr := fmt.Sscanf(aws.ToString(get.ContentRange), "bytes %d-%d/%d", &a, &b, &total); serr != nil || err != nil {
		t.Errorf("range %s: content-range %q err %v", r, aws.ToString(get.ContentRange), err)
		return
	}
	if total != len(data) || !bytes.Equal(got, data[a:b+1]) {
		t.Errorf("range %s of %d: got %d bytes for %d-%d/%d", r, len(data), len(got), a, b, total)
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestCopyObjectIsMetadataOnly(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	other := newBucket(t, e)
	data := pattern(100_000)
	if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: bytes.NewReader(data),
		Metadata: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []struct{ bucket, key string }{{bucket, "copy"}, {other, "x/y"}} {
		res, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &dst.bucket, Key: &dst.key, CopySource: aws.String(bucket + "/src")})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(aws.ToString(res.CopyObjectResult.ETag), `-0"`) {
			t.Errorf("copy ETag %s", aws.ToString(res.CopyObjectResult.ETag))
		}
		get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &dst.bucket, Key: &dst.key})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if !bytes.Equal(got, data) || get.Metadata["a"] != "1" || aws.ToString(get.ETag) != aws.ToString(res.CopyObjectResult.ETag) {
			t.Errorf("copy to %s/%s: %d bytes, meta %v", dst.bucket, dst.key, len(got), get.Metadata)
		}
	}
	// REPLACE metadata.
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("src"), CopySource: aws.String(bucket + "/src"),
		MetadataDirective: "REPLACE", Metadata: map[string]string{"b": "2"}}); err != nil {
		t.Fatal(err)
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("src")})
	if err != nil || head.Metadata["b"] != "2" || head.Metadata["a"] != "" || aws.ToInt64(head.ContentLength) != int64(len(data)) {
		t.Errorf("after REPLACE: %v %v", err, head)
	}
}

func TestAuthFailuresReachNothing(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	bad := testenv.NewS3Client(e.endpoint, "unknown", "x")
	_, err := bad.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("hi")})
	if apiCode(err) != "InvalidAccessKeyId" {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")}); err == nil {
		t.Error("object stored despite failed authentication")
	}
}

func TestTamperedObjectsFail(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	data := pattern(200_000)
	for _, k := range []string{"a", "b"} {
		if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := e.direct.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a")})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(raw.Body)
	raw.Body.Close()
	flipped := bytes.Clone(stored)
	flipped[len(flipped)/2] ^= 1
	// Copy a's metadata onto a new key "c" with a's body: header bound to "a".
	if _, err := e.direct.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("c"), Body: bytes.NewReader(stored), Metadata: raw.Metadata}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.direct.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a"), Body: bytes.NewReader(flipped), Metadata: raw.Metadata}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "c"} {
		get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(k)})
		if err == nil {
			got, rerr := io.ReadAll(get.Body)
			get.Body.Close()
			if rerr == nil {
				t.Errorf("%s: tampered object read back (%d bytes)", k, len(got))
			}
			if len(got) > 0 && !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("%s: tampered plaintext delivered", k)
			}
		}
	}
}

func TestMetadataTooLarge(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	big := map[string]string{"a": strings.Repeat("x", 1900)}
	_, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("x"), Metadata: big})
	if apiCode(err) != "MetadataTooLarge" {
		t.Errorf("PUT with 1.9 KB of metadata: %v", err)
	}
	_, err = e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"s3seal": "spoof"}})
	if apiCode(err) != "InvalidArgument" {
		t.Errorf("PUT with x-amz-meta-s3seal: %v", err)
	}
}

func TestChecksumsOfThePlaintext(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	data := pattern(200_000)
	put, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(data),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ChecksumCRC32C) == "" {
		t.Errorf("PUT response lacks the checksum")
	}
	get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body) // the SDK validates the checksum while reading
	get.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET with checksum mode: %v", err)
	}
	if aws.ToString(get.ChecksumCRC32C) != aws.ToString(put.ChecksumCRC32C) {
		t.Errorf("GET checksum %q, PUT checksum %q", aws.ToString(get.ChecksumCRC32C), aws.ToString(put.ChecksumCRC32C))
	}
	rng, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled, Range: aws.String("bytes=10-20")})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rng.Body)
	rng.Body.Close()
	if rng.ChecksumCRC32C != nil {
		t.Errorf("a range carries a whole-object checksum")
	}
}

func TestVersionedBucket(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	if _, err := e.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := pattern(70_000), pattern(1000)
	p1, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(v1)})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(v2)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(p1.VersionId) == "" || aws.ToString(p1.VersionId) == aws.ToString(p2.VersionId) {
		t.Fatalf("version ids %q %q", aws.ToString(p1.VersionId), aws.ToString(p2.VersionId))
	}
	versions, err := e.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, v := range versions.Versions {
		sizes[aws.ToString(v.VersionId)] = aws.ToInt64(v.Size)
	}
	if sizes[aws.ToString(p1.VersionId)] != int64(len(v1)) || sizes[aws.ToString(p2.VersionId)] != int64(len(v2)) {
		t.Errorf("version sizes %v", sizes)
	}
	get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k"), VersionId: p1.VersionId, Range: aws.String("bytes=65530-65540")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, v1[65530:65541]) || aws.ToString(get.VersionId) != aws.ToString(p1.VersionId) {
		t.Errorf("ranged GET of the old version: %d bytes, version %s", len(got), aws.ToString(get.VersionId))
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k"), VersionId: p1.VersionId})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(v1)) {
		t.Errorf("HEAD of the old version: %v", err)
	}
	if _, err := e.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("k"), VersionId: p2.VersionId}); err != nil {
		t.Fatal(err)
	}
	cur, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(cur.Body)
	cur.Body.Close()
	if !bytes.Equal(got, v1) {
		t.Errorf("after deleting the newest version, GET has %d bytes", len(got))
	}
	// Conditions use the ETags clients see.
	_, err = e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k"), IfMatch: p2.ETag})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Match with another version's ETag: %v", err)
	}
	ok, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k"), IfMatch: p1.ETag})
	if err != nil {
		t.Errorf("If-Match with the current ETag: %v", err)
	} else {
		ok.Body.Close()
	}
	_, err = e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k"), IfNoneMatch: p1.ETag})
	if !strings.Contains(fmt.Sprint(err), "304") {
		t.Errorf("If-None-Match with the current ETag: %v", err)
	}
}
