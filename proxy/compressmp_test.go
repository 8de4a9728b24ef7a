package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// uploadCompressedParts uploads parts through c as one multipart upload and
// completes it.
func uploadCompressedParts(t *testing.T, c *env, bucket, key string, parts [][]byte) {
	t.Helper()
	ctx := context.Background()
	up, err := c.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ContentType: aws.String("application/x-ndjson")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		res, err := c.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
}

// TestCompressedMultipart (FORMAT.md 12.2.3): against the test store
// (the package's MinIO in CI; also run by name on versitygw with
// S3SEAL_TEST_STORE=versitygw, and CI's versitygw pass runs
// TestToolsCompressed), with S2 and
// zstd: a multipart upload to a bucket with compression on gets an object
// header with the compressed flag and parts compressed one by one (a
// compressible part of 6 MiB stored in 5 MiB, padded; a random part and
// one just under 5 MiB stored uncompressed as version 2 parts; a small
// compressible last part stored small); it reads back bit-exact whole, by
// ranges inside and across compressed parts and by partNumber, from the
// instance that wrote it and from another one (empty caches, as after a
// restart); HEAD, GetObjectAttributes and every listing show the exact
// plaintext size; a copy keeps the flag; UploadPartCopy into a compressed
// upload compresses; and an upload id altered to compress parts of an
// upload created without the flag fails at completion.
func TestCompressedMultipart(t *testing.T) {
	ctx := context.Background()
	const mib = 1 << 20
	for _, alg := range []envelope.Algorithm{envelope.AlgS2, envelope.AlgZstd} {
		t.Run(string(alg), func(t *testing.T) {
			z := proxy.Compression{Algorithm: alg, MinSaving: proxy.DefaultMinSaving,
				SkipExtensions: proxy.DefaultSkipExtensions, SkipContentTypes: proxy.DefaultSkipContentTypes}
			ps := newProxySet(t)
			e, fresh := ps.start(z), ps.start(z)
			bucket := newBucket(t, e)
			parts := [][]byte{
				jsonLines(21, 6*mib),
				randomBytes(6 * mib),
				jsonLines(22, 5*mib-10000), // padding would eat the saving: stored raw
				jsonLines(23, mib+17),
			}
			plain := bytes.Join(parts, nil)
			total := int64(len(plain))
			const key = "logs/big.jsonl"
			uploadCompressedParts(t, e, bucket, key, parts)

			h, stored := storedHeader(t, e, bucket, key)
			if h.Version() != 3 || h.Flags() != envelope.FlagCompressed || h.Layout() != envelope.LayoutMultipart {
				t.Fatalf("object header: v%d flags %#x layout %v", h.Version(), h.Flags(), h.Layout())
			}
			hdrs := testenv.StoredPartHeaders(t, e.direct, bucket, key, len(parts))
			var sum int64
			for i, ph := range hdrs {
				compressed := ph.Compression() != nil
				if want := i == 0 || i == 3; compressed != want || ph.PlainLen() != int64(len(parts[i])) {
					t.Fatalf("part %d: compressed %v (v%d), %d bytes", i+1, compressed, ph.Version(), ph.PlainLen())
				}
				if compressed && (ph.Compression().Algorithm != alg || ph.Version() != 3) {
					t.Fatalf("part %d: %+v v%d", i+1, ph.Compression(), ph.Version())
				}
				if !compressed && (ph.Version() != 2 || ph.CiphertextSize() != ph.PlainLen()+envelope.PartOverhead) {
					t.Fatalf("part %d: v%d, %d stored", i+1, ph.Version(), ph.CiphertextSize())
				}
				sum += ph.CiphertextSize()
			}
			if hdrs[0].CiphertextSize() != envelope.MinStoredPartSize || hdrs[3].CiphertextSize() > int64(len(parts[3]))/2 || sum != stored {
				t.Fatalf("stored part sizes %d, %d; sum %d of %d", hdrs[0].CiphertextSize(), hdrs[3].CiphertextSize(), sum, stored)
			}
			if stored >= total {
				t.Fatalf("%d plaintext bytes stored in %d", total, stored)
			}
			t.Logf("%d plaintext bytes stored in %d (%.3f)", total, stored, float64(stored)/float64(total))

			for _, c := range []*env{fresh, e} {
				get, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(got, plain) || aws.ToInt64(get.ContentLength) != total {
					t.Fatalf("GET: %d bytes, %v", len(got), err)
				}
				head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil || aws.ToInt64(head.ContentLength) != total {
					t.Fatalf("HEAD: %v, %d", err, aws.ToInt64(head.ContentLength))
				}
				p1, p2, p3 := int64(len(parts[0])), int64(len(parts[0])+len(parts[1])), int64(len(parts[0])+len(parts[1])+len(parts[2]))
				for _, r := range []string{
					"bytes=0-0", "bytes=1000-300000", // inside compressed part 1, its first block
					fmt.Sprintf("bytes=%d-%d", mib+5, 2*mib+7),       // inside part 1, mid-blocks
					fmt.Sprintf("bytes=%d-%d", p1-10, p1-1),          // part 1's last block: index and padding read
					fmt.Sprintf("bytes=%d-%d", p1-1000, p1+1000),     // across compressed into raw
					fmt.Sprintf("bytes=%d-%d", 3*mib, p3+5),          // across three parts
					fmt.Sprintf("bytes=%d-%d", p2+100, p2+200),       // inside the raw text part
					fmt.Sprintf("bytes=%d-%d", p3-1, p3+300000),      // into the compressed last part
					fmt.Sprintf("bytes=%d-%d", p3+300000, p3+600000), // inside the last part
					"bytes=-1", "bytes=-700000", fmt.Sprintf("bytes=%d-", total-5),
				} {
					checkRange(t, c, bucket, key, plain, r)
				}
				var off int64
				for i, p := range parts {
					pn := aws.Int32(int32(i + 1))
					get, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: pn})
					if err != nil {
						t.Fatalf("GET part %d: %v", i+1, err)
					}
					got, err := io.ReadAll(get.Body)
					get.Body.Close()
					if err != nil || !bytes.Equal(got, p) || aws.ToInt32(get.PartsCount) != int32(len(parts)) {
						t.Fatalf("GET part %d: %d bytes, %v, parts count %d", i+1, len(got), err, aws.ToInt32(get.PartsCount))
					}
					head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: pn})
					if err != nil || aws.ToInt64(head.ContentLength) != int64(len(p)) {
						t.Fatalf("HEAD part %d: %v, %d", i+1, err, aws.ToInt64(head.ContentLength))
					}
					off += int64(len(p))
				}
				attrs, err := c.client.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String(key),
					ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize, types.ObjectAttributesObjectParts}})
				if err != nil || aws.ToInt64(attrs.ObjectSize) != total || attrs.ObjectParts == nil || len(attrs.ObjectParts.Parts) != len(parts) {
					t.Fatalf("GetObjectAttributes: %v, %d", err, aws.ToInt64(attrs.ObjectSize))
				}
				for i, p := range attrs.ObjectParts.Parts {
					if aws.ToInt64(p.Size) != int64(len(parts[i])) {
						t.Fatalf("GetObjectAttributes part %d: %d bytes", i+1, aws.ToInt64(p.Size))
					}
				}
			}

			// A copy (part by part, at the store) keeps the flag, and
			// reads. UploadPartCopy from it into a compressed upload
			// compresses the copied range.
			if _, err := e.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("logs/copy.jsonl"),
				CopySource: aws.String(bucket + "/" + key)}); err != nil {
				t.Fatal(err)
			}
			if ch, _ := storedHeader(t, e, bucket, "logs/copy.jsonl"); ch.Flags() != envelope.FlagCompressed {
				t.Fatalf("copy: flags %#x", ch.Flags())
			}
			checkRange(t, fresh, bucket, "logs/copy.jsonl", plain, fmt.Sprintf("bytes=%d-%d", mib, 7*mib))
			up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("logs/pc.jsonl")})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(aws.ToString(up.UploadId), "s3seal3z~"+string(alg)+"~") {
				t.Fatalf("upload id %s", aws.ToString(up.UploadId))
			}
			pc, err := e.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("logs/pc.jsonl"), UploadId: up.UploadId,
				PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/" + key), CopySourceRange: aws.String("bytes=100-2000099")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("logs/pc.jsonl"),
				UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: pc.CopyPartResult.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
				t.Fatal(err)
			}
			if ph := testenv.StoredPartHeaders(t, e.direct, bucket, "logs/pc.jsonl", 1)[0]; ph.Compression() == nil {
				t.Fatal("UploadPartCopy into a compressed upload: part not compressed")
			}
			checkRange(t, fresh, bucket, "logs/pc.jsonl", plain[100:2000100], "bytes=0-")

			// Listings from an instance that never saw these objects: the
			// size of each multipart entry comes from its header.
			objects := map[string][]byte{key: plain, "logs/copy.jsonl": plain, "logs/pc.jsonl": plain[100:2000100]}
			for _, c := range []*env{ps.start(z), fresh} {
				checkListings(t, c, bucket, objects)
			}
		})
	}
}

// TestCompressedPartRefused: the compressed form of the upload id on an
// upload created without the flag (a bucket without compression, so its
// pending header lacks it) makes UploadPart compress, and the completion
// is refused (InvalidPart): the object is never readable with compressed
// parts its header does not admit.
func TestCompressedPartRefused(t *testing.T) {
	ctx := context.Background()
	z := proxy.Compression{Algorithm: envelope.AlgS2, Buckets: map[string]envelope.Algorithm{}}
	envs := startCompressing(t, z)
	e := envs[0]
	bucket := newBucket(t, e)
	z.Buckets[bucket] = "" // off here, on everywhere else: the id form is still understood
	c := startCompressing(t, z)[0]
	key := aws.String("k.log")
	up, err := c.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(up.UploadId)
	if !strings.HasPrefix(id, "s3seal2~") {
		t.Fatalf("upload id %s", id)
	}
	altered := "s3seal3z~s2~" + strings.TrimPrefix(id, "s3seal2~")
	data := jsonLines(31, 300000)
	res, err := c.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: &altered, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: &altered,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: res.ETag, PartNumber: aws.Int32(1)}}}})
	if apiCode(err) != "InvalidPart" {
		t.Fatalf("completion with a compressed part: %v", err)
	}
	if _, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key}); err == nil {
		t.Fatal("the object reads")
	}
}

// TestCompressedMultipartFirstRead measures the first read of a 100-part
// object by an instance that has not seen it (README, "Compression"): its
// part map is read before any plaintext, one 4 KiB ranged GET per part
// header. Uncompressed parts of equal size are fetched in parallel (their
// offsets follow from the first header); compressed parts one after the
// other (each one's stored size is in its header). It logs the first and
// a second HEAD, and a 1 KiB range GET from the middle, on a fresh
// instance, for both. Run with S3SEAL_FIRST_READ=1; skipped otherwise
// (it uploads about 1 GiB).
func TestCompressedMultipartFirstRead(t *testing.T) {
	if os.Getenv("S3SEAL_FIRST_READ") == "" {
		t.Skip("S3SEAL_FIRST_READ not set")
	}
	ctx := context.Background()
	const parts, partSize = 100, 5<<20 + 4096
	z := proxy.Compression{Algorithm: envelope.AlgS2, MinSaving: proxy.DefaultMinSaving}
	ps := newProxySet(t)
	w := ps.start(z)
	plainBucket, compBucket := newBucket(t, w), newBucket(t, w)
	off := ps.start(proxy.Compression{Buckets: map[string]envelope.Algorithm{plainBucket: "", compBucket: envelope.AlgS2}})
	part := jsonLines(41, partSize)
	for _, b := range []string{plainBucket, compBucket} {
		all := make([][]byte, parts)
		for i := range all {
			all[i] = part
		}
		uploadCompressedParts(t, off, b, "k", all)
	}
	if h, _ := storedHeader(t, w, compBucket, "k"); h.Flags() != envelope.FlagCompressed {
		t.Fatalf("flags %#x", h.Flags())
	}
	if h, _ := storedHeader(t, w, plainBucket, "k"); h.Flags() != 0 {
		t.Fatalf("flags %#x", h.Flags())
	}
	for _, b := range []string{plainBucket, compBucket} {
		for run := range 3 {
			c := ps.start(z) // empty caches
			start := time.Now()
			head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
			first := time.Since(start)
			if err != nil || aws.ToInt64(head.ContentLength) != parts*partSize {
				t.Fatal(err)
			}
			start = time.Now()
			if _, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("k")}); err != nil {
				t.Fatal(err)
			}
			second := time.Since(start)
			c2 := ps.start(z)
			start = time.Now()
			checkRange(t, c2, b, "k", bytes.Repeat(part, parts), fmt.Sprintf("bytes=%d-%d", 50*partSize+1000, 50*partSize+2023))
			rng := time.Since(start)
			t.Logf("%d parts, compressed %v, run %d: first HEAD %v, second HEAD %v, first 1 KiB range GET %v",
				parts, b == compBucket, run, first.Round(time.Millisecond), second.Round(time.Millisecond), rng.Round(time.Millisecond))
		}
	}
}

// TestCompressedMultipartCopyRewrap: a copy of a multipart object with
// compressed parts to a bucket under another KMS key re-wraps every part
// (FORMAT.md 11.10): the copy's part headers carry block size, algorithm
// and body length over, its header keeps the compressed flag, and it reads
// bit-exact (whole and by range) with the source's key disabled.
func TestCompressedMultipartCopyRewrap(t *testing.T) {
	ctx := context.Background()
	const mib = 1 << 20
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	k1, err := kr.CreateKey("one")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := kr.CreateKey("two")
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxySet{t: t, kms: kr, keyID: k1.KeyID, access: "client-" + rand.Text()[:8], secret: rand.Text()}
	z := proxy.Compression{Algorithm: envelope.AlgZstd, MinSaving: proxy.DefaultMinSaving}
	e := ps.start(z)
	src, dst := newBucket(t, e), newBucket(t, e)
	c := startProxyWith(t, func(cfg *proxy.Config) {
		cfg.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: ps.access, SecretKey: ps.secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		cfg.KMS, cfg.DefaultKeyID = kms.NewCache(kr, kms.DefaultCacheConfig()), k1.KeyID
		cfg.BucketKeys = map[string]string{dst: k2.KeyID}
		cfg.Compression = z
	})
	c.client = testenv.NewS3Client(c.endpoint, ps.access, ps.secret)
	parts := [][]byte{jsonLines(51, 6*mib), randomBytes(5*mib + 7), jsonLines(52, 300000)}
	plain := bytes.Join(parts, nil)
	uploadCompressedParts(t, c, src, "a.jsonl", parts)
	if _, err := c.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("b.jsonl"), CopySource: aws.String(src + "/a.jsonl")}); err != nil {
		t.Fatal(err)
	}
	from := testenv.StoredPartHeaders(t, e.direct, src, "a.jsonl", len(parts))
	to := testenv.StoredPartHeaders(t, e.direct, dst, "b.jsonl", len(parts))
	for i := range parts {
		a, b := from[i].Bytes(), to[i].Bytes()
		if !bytes.Equal(a[4:20], b[4:20]) || from[i].BodyLen() != to[i].BodyLen() || to[i].KeyInfo().KeyID != k2.KeyID ||
			(from[i].Compression() != nil) != (i != 1) {
			t.Fatalf("part %d: copy header % x B %d key %s, source % x B %d", i+1, b[4:20], to[i].BodyLen(), to[i].KeyInfo().KeyID, a[4:20], from[i].BodyLen())
		}
	}
	if h, _ := storedHeader(t, e, dst, "b.jsonl"); h.Flags() != envelope.FlagCompressed || h.KeyInfo().KeyID != k2.KeyID {
		t.Fatalf("copy header: flags %#x key %s", h.Flags(), h.KeyInfo().KeyID)
	}
	if err := kr.DisableKey(k1.KeyID); err != nil {
		t.Fatal(err)
	}
	fresh := ps.start(z) // empty data-key cache: the source's key is out of reach
	checkRange(t, fresh, dst, "b.jsonl", plain, "bytes=0-")
	checkRange(t, fresh, dst, "b.jsonl", plain, fmt.Sprintf("bytes=%d-%d", 6*mib-5, 11*mib+100))
	if _, err := fresh.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(src), Key: aws.String("a.jsonl")}); err == nil {
		t.Fatal("the source reads with its key disabled")
	}
}

// TestCompressedPartDigests: a part of a compressed upload is verified
// against its Content-MD5 over the plaintext before anything is stored
// (BadDigest, no part at the store), and parts sent with their MD5s give
// the object S3's multipart ETag over the plaintext parts, as
// uncompressed ones do.
func TestCompressedPartDigests(t *testing.T) {
	ctx := context.Background()
	e := startCompressing(t, proxy.Compression{Algorithm: envelope.AlgS2, MinSaving: proxy.DefaultMinSaving})[0]
	bucket := newBucket(t, e)
	key := aws.String("d.log")
	up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{jsonLines(61, 6<<20), jsonLines(62, 100000)}
	_, err = e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(parts[0]), ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")}) // the MD5 of nothing
	if apiCode(err) != "BadDigest" {
		t.Fatalf("a compressed part with a wrong Content-MD5: %v", err)
	}
	lp, err := e.direct.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: key, UploadId: aws.String(storeUploadID(aws.ToString(up.UploadId)))})
	if err != nil || len(lp.Parts) != 0 {
		t.Fatalf("parts at the store after a bad digest: %v, %d", err, len(lp.Parts))
	}
	var done []types.CompletedPart
	var sums []byte
	for i, p := range parts {
		sum := md5.Sum(p)
		sums = append(sums, sum[:]...)
		res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)),
			Body: bytes.NewReader(p), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"%x-2"`, md5.Sum(sums))
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil || aws.ToString(head.ETag) != want || aws.ToInt64(head.ContentLength) != int64(len(parts[0])+len(parts[1])) {
		t.Fatalf("HEAD: %v, ETag %s (want %s), %d bytes", err, aws.ToString(head.ETag), want, aws.ToInt64(head.ContentLength))
	}
	if hdrs := testenv.StoredPartHeaders(t, e.direct, bucket, "d.log", 2); hdrs[0].Compression() == nil || hdrs[1].Compression() == nil {
		t.Fatal("parts stored uncompressed")
	}
}

// storeUploadID is the store's upload id inside an s3seal upload id (its
// last field).
func storeUploadID(client string) string {
	f := strings.Split(client, "~")
	return f[len(f)-1]
}

// TestCompressedListParts: ListParts of an upload whose parts are
// compressed (FORMAT.md 12.2.3; README "Compression"), Go SDK, against the
// package's MinIO (the versitygw pass is TestToolsCompressed/list-parts). The
// instance that stored the parts shows every part's exact plaintext size
// (a compressible 6 MiB part padded to 5 MiB at the store, a random one
// stored uncompressed, a small compressible one stored small) and the
// ETags UploadPart gave. Another instance (as after a restart) cannot read
// an uploaded part before completion, so for a compressed part it shows
// what the uncompressed rule makes of the stored size (stored − 20480):
// exact for the uncompressed part only, as documented. The upload
// completes from that instance's ListParts (part numbers and ETags), and
// the object reads back exact.
func TestCompressedListParts(t *testing.T) {
	ctx := context.Background()
	const mib = 1 << 20
	z := proxy.Compression{Algorithm: envelope.AlgS2, MinSaving: proxy.DefaultMinSaving}
	ps := newProxySet(t)
	e, fresh := ps.start(z), ps.start(z)
	bucket := newBucket(t, e)
	key := aws.String("logs/resume.jsonl")
	parts := [][]byte{jsonLines(71, 6*mib), randomBytes(6 * mib), jsonLines(72, mib+17)}
	up, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(up.UploadId), "s3seal3z~") {
		t.Fatalf("upload id %s", aws.ToString(up.UploadId))
	}
	etags := map[int32]string{}
	for i, p := range parts {
		pn := int32(i + 1)
		res, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
			PartNumber: aws.Int32(pn), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))})
		if err != nil {
			t.Fatalf("part %d: %v", pn, err)
		}
		etags[pn] = aws.ToString(res.ETag)
	}
	// What the store holds: parts 1 and 3 compressed (1 padded to 5 MiB).
	stored := map[int32]int64{}
	lp, err := e.direct.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: key, UploadId: aws.String(storeUploadID(aws.ToString(up.UploadId)))})
	if err != nil || len(lp.Parts) != len(parts) {
		t.Fatalf("ListParts at the store: %v, %d parts", err, len(lp.Parts))
	}
	for _, p := range lp.Parts {
		stored[aws.ToInt32(p.PartNumber)] = aws.ToInt64(p.Size)
	}
	if stored[1] != envelope.MinStoredPartSize || stored[2] != int64(len(parts[1]))+envelope.PartOverhead || stored[3] >= int64(len(parts[2]))/2 {
		t.Fatalf("stored part sizes %v: want part 1 padded to 5 MiB, part 2 uncompressed, part 3 compressed", stored)
	}

	list := func(c *env) map[int32]types.Part {
		t.Helper()
		got := map[int32]types.Part{}
		res, err := c.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(res.UploadId) != aws.ToString(up.UploadId) {
			t.Errorf("ListParts: upload id %s, want the client's %s", aws.ToString(res.UploadId), aws.ToString(up.UploadId))
		}
		for _, p := range res.Parts {
			got[aws.ToInt32(p.PartNumber)] = p
		}
		if len(got) != len(parts) {
			t.Fatalf("ListParts: %d parts, want %d", len(got), len(parts))
		}
		return got
	}
	for pn, p := range list(e) {
		if n := aws.ToInt64(p.Size); n != int64(len(parts[pn-1])) {
			t.Errorf("ListParts through the writing instance: part %d Size %d, want %d", pn, n, len(parts[pn-1]))
		}
		if tag := aws.ToString(p.ETag); tag != etags[pn] {
			t.Errorf("ListParts: part %d ETag %s, UploadPart said %s", pn, tag, etags[pn])
		}
	}
	other := list(fresh)
	for pn, p := range other {
		want := stored[pn] - envelope.PartOverhead // the uncompressed rule
		if n := aws.ToInt64(p.Size); n != want {
			t.Errorf("ListParts through another instance: part %d Size %d, want %d (stored %d − 20480)", pn, n, want, stored[pn])
		}
		if tag := aws.ToString(p.ETag); tag != etags[pn] {
			t.Errorf("ListParts through another instance: part %d ETag %s, UploadPart said %s", pn, tag, etags[pn])
		}
	}
	var done []types.CompletedPart
	for pn := int32(1); pn <= int32(len(parts)); pn++ {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(pn), ETag: other[pn].ETag})
	}
	if _, err := fresh.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete from another instance's ListParts: %v", err)
	}
	checkRange(t, fresh, bucket, *key, bytes.Join(parts, nil), "bytes=0-")
}
