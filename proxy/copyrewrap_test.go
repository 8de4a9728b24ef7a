package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// Copies of multipart objects to a bucket under another KMS key (issue
// #20): the copy's parts must be re-wrapped under the destination's key, so
// that it reads once the source's key is gone.

// byRegion is the KMS of a deployment with one KMS endpoint per region, as
// AWS has: each call goes to the KMS of the region in the key's ARN. With
// one moto server per region, stopping one is a region's KMS gone, which a
// single moto (it keeps regions apart but does not enforce key state)
// cannot show.
type byRegion map[string]kms.Client

func (b byRegion) of(keyID string) (kms.Client, error) {
	a, ok := kms.ParseARN(keyID)
	if !ok {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: "not a key ARN: " + keyID}
	}
	c, ok := b[a.Region]
	if !ok {
		return nil, &kms.Error{Code: kms.CodeNotFound, Message: "no KMS for region " + a.Region}
	}
	return c, nil
}

func (b byRegion) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*kms.DataKey, error) {
	c, err := b.of(keyID)
	if err != nil {
		return nil, err
	}
	return c.GenerateDataKey(ctx, keyID, encCtx)
}

func (b byRegion) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	c, err := b.of(keyID)
	if err != nil {
		return nil, err
	}
	return c.Decrypt(ctx, keyID, wrapped, encCtx)
}

func (b byRegion) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	c, err := b.of(keyID)
	if err != nil {
		return nil, err
	}
	return c.Encrypt(ctx, keyID, plaintext, encCtx)
}

func (b byRegion) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	c, err := b.of(srcKeyID)
	if err != nil {
		return nil, "", err
	}
	return c.ReEncrypt(ctx, srcKeyID, wrapped, srcCtx, dstKeyID, dstCtx)
}

func (b byRegion) DescribeKey(ctx context.Context, keyID string) (*kms.KeyMetadata, error) {
	c, err := b.of(keyID)
	if err != nil {
		return nil, err
	}
	return c.DescribeKey(ctx, keyID)
}

// randomBytes: data no shifted read can match by accident.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// storedParts reads the part headers of a multipart object straight from
// the store.
func storedParts(t *testing.T, e *env, bucket, key string) []*envelope.PartHeader {
	t.Helper()
	ctx := context.Background()
	head, err := e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("HEAD %s/%s at the store: %v", bucket, key, err)
	}
	n := envelope.PartsInETag(aws.ToString(head.ETag))
	var hdrs []*envelope.PartHeader
	var off int64
	for range n {
		get, err := e.direct.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key,
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+envelope.PartHeaderSize-1))})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		ph, err := envelope.ParsePartHeader(b)
		if err != nil {
			t.Fatalf("%s/%s part header at %d: %v", bucket, key, off, err)
		}
		hdrs = append(hdrs, ph)
		off += ph.CiphertextSize()
	}
	if n == 0 || off != aws.ToInt64(head.ContentLength) {
		t.Fatalf("%s/%s: %d parts end at %d of %d stored bytes", bucket, key, n, off, aws.ToInt64(head.ContentLength))
	}
	return hdrs
}

// partsUnder checks that an object's header and every part header name key.
func partsUnder(t *testing.T, e *env, bucket, key, want string) {
	t.Helper()
	if ki := storedKeyInfo(t, e, bucket, key); ki.KeyID != want {
		t.Errorf("%s/%s: object header under %s, want %s", bucket, key, ki.KeyID, want)
	}
	for _, ph := range storedParts(t, e, bucket, key) {
		if got := ph.KeyInfo().KeyID; got != want {
			t.Errorf("%s/%s: part %d under %s, want %s", bucket, key, ph.PartNumber(), got, want)
		}
	}
}

// readChecks reads an object whole, a range across a part boundary and
// its part 2, bit-exact.
func readChecks(t *testing.T, c *s3.Client, bucket, key string, want []byte, rangeFrom, rangeTo int, part2 []byte) {
	t.Helper()
	ctx := context.Background()
	read := func(what string, in *s3.GetObjectInput, want []byte) {
		t.Helper()
		in.Bucket, in.Key = &bucket, &key
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Errorf("%s of %s/%s: %v", what, bucket, key, err)
			return
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s of %s/%s: %d bytes (%v), want %d, equal %v", what, bucket, key, len(got), err, len(want), bytes.Equal(got, want))
		}
	}
	read("GET", &s3.GetObjectInput{}, want)
	read("GET range", &s3.GetObjectInput{Range: aws.String(fmt.Sprintf("bytes=%d-%d", rangeFrom, rangeTo))}, want[rangeFrom:rangeTo+1])
	if part2 != nil {
		read("GET partNumber=2", &s3.GetObjectInput{PartNumber: aws.Int32(2)}, part2)
	}
}

// uploadPartCopies builds key in bucket from byte ranges of a source
// object, one UploadPartCopy (x-amz-copy-source-range) per part, and
// returns the plaintext it should hold.
func uploadPartCopies(t testing.TB, c *s3.Client, bucket, key, source string, srcData []byte, ranges [][2]int) []byte {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	var want []byte
	for i, r := range ranges {
		res, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String(source),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
		if err != nil {
			t.Fatalf("UploadPartCopy %d: %v", i+1, err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))})
		want = append(want, srcData[r[0]:r[1]+1]...)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestCopyMultipartAcrossRegions is the acceptance test: a
// multipart object (parts of sizes that are no multiple of the segment
// size) in a bucket under a us-east-1 key is copied with CopyObject, and
// built part by part with UploadPartCopy from ranges of it, into a bucket
// under a us-west-2 key; each region has its own KMS (moto server). Every
// header of both copies names the us-west-2 key, and once the us-east-1
// KMS is gone a fresh proxy reads both bit-exact (whole, a range across
// parts, partNumber=2) while the source no longer reads. A copy between
// buckets under the same key stays a store-side copy: its parts are the
// source's bytes.
func TestCopyMultipartAcrossRegions(t *testing.T) {
	ctx := context.Background()
	motoEast, motoWest := testenv.StartMoto(t), testenv.StartMoto(t)
	newClient := func(m *testenv.Moto, region string) *awskms.Client {
		c, err := awskms.New(ctx, awskms.Config{Region: region, Endpoint: m.Endpoint,
			Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	east, west := newClient(motoEast, "us-east-1"), newClient(motoWest, "us-west-2")
	newKey := func(c *awskms.Client) string {
		out, err := c.API().CreateKey(ctx, &kmsapi.CreateKeyInput{Description: aws.String("s3seal multipart copy across regions")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	eastKey, westKey := newKey(east), newKey(west)
	router := byRegion{"us-east-1": east, "us-west-2": west}
	suffix := strings.ToLower(rand.Text()[:8])
	eastBucket, east2Bucket, westBucket := "b-east-"+suffix, "b-east2-"+suffix, "b-west-"+suffix
	bucketKeys := map[string]string{eastBucket: eastKey, east2Bucket: eastKey, westBucket: westKey}
	e := startKMSProxy(t, kmsProxyOpts{kms: kms.NewCache(router, kms.DefaultCacheConfig()), defaultKey: eastKey, bucketKeys: bucketKeys})
	for _, b := range []string{eastBucket, east2Bucket, westBucket} {
		if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	sizes := []int{5<<20 + 1234, 5<<20 + 77, 4321}
	data := randomBytes(sizes[0] + sizes[1] + sizes[2])
	uploadParts(t, e.client, eastBucket, "multi", data, sizes, []int32{1, 2, 3})
	part2 := data[sizes[0] : sizes[0]+sizes[1]]
	// A range from inside part 1 to inside part 3.
	rFrom, rTo := sizes[0]-100_000, sizes[0]+sizes[1]+1000

	copyTo := func(bucket string) {
		t.Helper()
		if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy"),
			CopySource: aws.String(eastBucket + "/multi")}); err != nil {
			t.Fatalf("CopyObject %s/multi to %s: %v", eastBucket, bucket, err)
		}
	}
	copyTo(westBucket)
	copyTo(east2Bucket)
	// Ranges across the source's part boundaries; the first part 5 MiB + 500.
	assembled := uploadPartCopies(t, e.client, westBucket, "assembled", eastBucket+"/multi", data,
		[][2]int{{1000, 1000 + 5<<20 + 499}, {1000 + 5<<20 + 500, len(data) - 1}})

	partsUnder(t, e, westBucket, "copy", westKey)
	partsUnder(t, e, westBucket, "assembled", westKey)
	// The same-key copy is the store's: the source's part headers, byte
	// for byte (a re-wrapped part header has a fresh nonce).
	src, same := storedParts(t, e, eastBucket, "multi"), storedParts(t, e, east2Bucket, "copy")
	if len(src) != len(same) {
		t.Fatalf("same-key copy has %d parts, source %d", len(same), len(src))
	}
	for i := range src {
		if !bytes.Equal(src[i].Bytes(), same[i].Bytes()) {
			t.Errorf("same-key copy: part %d header differs from the source's: re-wrapped instead of copied at the store", i+1)
		}
	}
	readChecks(t, e.client, westBucket, "copy", data, rFrom, rTo, part2)
	readChecks(t, e.client, east2Bucket, "copy", data, rFrom, rTo, part2)

	// us-east-1's KMS is gone. A fresh proxy (no data key cached) reads
	// both copies under the us-west-2 key, and not the source.
	motoEast.Stop()
	fresh := startKMSProxy(t, kmsProxyOpts{kms: kms.NewCache(router, kms.DefaultCacheConfig()), defaultKey: westKey, bucketKeys: bucketKeys})
	if _, err := fresh.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(eastBucket), Key: aws.String("multi")}); err == nil {
		t.Fatal("the source still reads with its region's KMS gone: the test proves nothing")
	}
	readChecks(t, fresh.client, westBucket, "copy", data, rFrom, rTo, part2)
	readChecks(t, fresh.client, westBucket, "assembled", assembled, 5<<20-10, 5<<20+10, assembled[5<<20+500:])
}

// TestCopyMultipartDisabledKey: with the embedded keyring, which enforces
// key state, a multipart object copied (CopyObject, UploadPartCopy) from
// a bucket under key A to one under key B still reads once A is disabled.
func TestCopyMultipartDisabledKey(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t)
	keyA, keyB := createKey(t, kr, "copy source"), createKey(t, kr, "copy destination")
	suffix := strings.ToLower(rand.Text()[:8])
	bucketA, bucketB := "b-a-"+suffix, "b-b-"+suffix
	// No cache: a disabled key is refused at once. The client may name
	// any key with SSE-KMS headers.
	id := proxy.Identity{AccessKey: "client-" + rand.Text()[:8], SecretKey: rand.Text(), Buckets: []string{"*"},
		Permissions: proxy.AllPermissions, KMSKeys: []string{"*"}}
	e := startKMSProxy(t, kmsProxyOpts{kms: kr, defaultKey: keyA, bucketKeys: map[string]string{bucketA: keyA, bucketB: keyB},
		identities: []proxy.Identity{id}})
	for _, b := range []string{bucketA, bucketB} {
		if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	sizes := []int{5<<20 + 3, 5<<20 + 65537, 1}
	data := randomBytes(sizes[0] + sizes[1] + sizes[2])
	uploadParts(t, e.client, bucketA, "multi", data, sizes, []int32{1, 2, 5})
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucketB), Key: aws.String("copy"),
		CopySource: aws.String(bucketA + "/multi"), MetadataDirective: types.MetadataDirectiveReplace,
		Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	assembled := uploadPartCopies(t, e.client, bucketB, "assembled", bucketA+"/multi", data,
		[][2]int{{0, 5<<20 - 1}, {5 << 20, 10<<20 + 7}, {10<<20 + 8, len(data) - 1}})
	// A copy within bucket A that names key B with SSE-KMS headers.
	if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucketA), Key: aws.String("named"),
		CopySource: aws.String(bucketA + "/multi"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(keyB)}); err != nil {
		t.Fatal(err)
	}
	partsUnder(t, e, bucketB, "copy", keyB)
	partsUnder(t, e, bucketB, "assembled", keyB)
	partsUnder(t, e, bucketA, "named", keyB)

	if err := kr.DisableKey(keyA); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketA), Key: aws.String("multi")})
	wantS3Error(t, "GET of the source under the disabled key", err, http.StatusBadRequest, "KMS.DisabledException")
	part2 := data[sizes[0] : sizes[0]+sizes[1]]
	readChecks(t, e.client, bucketB, "copy", data, 100, len(data)-1, part2)
	readChecks(t, e.client, bucketB, "assembled", assembled, 5<<20-1, 5<<20, assembled[5<<20:10<<20+8])
	readChecks(t, e.client, bucketA, "named", data, sizes[0], sizes[0]+sizes[1], part2)
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketB), Key: aws.String("copy")})
	if err != nil {
		t.Fatalf("HEAD of the copy: %v", err)
	}
	if head.Metadata["k"] != "v" || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.SSEKMSKeyId) != keyB {
		t.Errorf("HEAD of the copy: metadata %v, %d bytes, key %s", head.Metadata, aws.ToInt64(head.ContentLength), aws.ToString(head.SSEKMSKeyId))
	}
}

// BenchmarkCopyMultipart copies a 64 MiB object of eight 8 MiB parts
// through the proxy in front of MinIO: to a bucket under the same key (the
// store copies the parts; no data through the proxy), to one under another
// key (every part re-wrapped and its ciphertext streamed through the
// proxy), and, for comparison, with eight UploadPartCopy requests (each
// range decrypted and encrypted anew).
func BenchmarkCopyMultipart(b *testing.B) {
	kr, err := keyring.Open(keyring.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	var keys [2]string
	for i := range keys {
		md, err := kr.CreateKey("bench")
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = md.KeyID
	}
	suffix := strings.ToLower(rand.Text()[:8])
	src, same, other := "b-src-"+suffix, "b-same-"+suffix, "b-other-"+suffix
	access, secret := "client-"+rand.Text()[:8], rand.Text()
	e := startProxyWith(b, func(c *proxy.Config) {
		c.KMS, c.DefaultKeyID = kms.NewCache(kr, kms.DefaultCacheConfig()), keys[0]
		c.BucketKeys = map[string]string{src: keys[0], same: keys[0], other: keys[1]}
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	e.client = testenv.NewS3Client(e.endpoint, access, secret)
	ctx := context.Background()
	for _, bk := range []string{src, same, other} {
		if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bk)}); err != nil {
			b.Fatal(err)
		}
	}
	const part = 8 << 20
	sizes := make([]int, 8)
	for i := range sizes {
		sizes[i] = part
	}
	data := randomBytes(len(sizes) * part)
	uploadParts(b, e.client, src, "big", data, sizes, []int32{1, 2, 3, 4, 5, 6, 7, 8})
	for _, dst := range []struct{ name, bucket string }{{"same-key", same}, {"other-key", other}} {
		b.Run("CopyObject/"+dst.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst.bucket), Key: aws.String("copy"),
					CopySource: aws.String(src + "/big")}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("UploadPartCopy/other-key", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		ranges := make([][2]int, len(sizes))
		for i := range ranges {
			ranges[i] = [2]int{i * part, (i+1)*part - 1}
		}
		for b.Loop() {
			uploadPartCopies(b, e.client, other, "assembled", src+"/big", data, ranges)
		}
	})
}
