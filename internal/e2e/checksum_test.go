package e2e

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/testenv"
)

// Checksums over the plaintext (issue #26): every algorithm, single and
// multipart objects, checksums sent as headers (aws-sdk-go-v2 over HTTP)
// and in trailers (minio-go with TrailingHeaders), both multipart types,
// and the errors S3 gives for mismatches and refused combinations.

// newMinio is a minio-go client for endpoint, sending checksums in
// trailers when trailing is set.
func newMinio(t *testing.T, endpoint, accessKey, secretKey string, trailing bool) *minio.Client {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds: miniocreds.NewStaticV4(accessKey, secretKey, ""), Region: testenv.Region,
		BucketLookup: minio.BucketLookupPath, TrailingHeaders: trailing,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// sumOf computes algorithm alg's digest of b, independently of the proxy's
// code.
func sumOf(alg types.ChecksumAlgorithm, b []byte) []byte {
	var h hash.Hash
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		h = crc32.NewIEEE()
	case types.ChecksumAlgorithmCrc32c:
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case types.ChecksumAlgorithmCrc64nvme:
		h = crc64nvme.New()
	case types.ChecksumAlgorithmSha1:
		h = sha1.New()
	case types.ChecksumAlgorithmSha256:
		h = sha256.New()
	}
	h.Write(b)
	return h.Sum(nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// checksumOf picks alg's value out of any of the SDK's output structs.
func checksumOf(alg types.ChecksumAlgorithm, crc32v, crc32c, crc64, sha1v, sha256v *string) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return aws.ToString(crc32v)
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(crc32c)
	case types.ChecksumAlgorithmCrc64nvme:
		return aws.ToString(crc64)
	case types.ChecksumAlgorithmSha1:
		return aws.ToString(sha1v)
	}
	return aws.ToString(sha256v)
}

var allAlgorithms = []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
	types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256}

func isCRC(alg types.ChecksumAlgorithm) bool {
	return alg == types.ChecksumAlgorithmCrc32 || alg == types.ChecksumAlgorithmCrc32c || alg == types.ChecksumAlgorithmCrc64nvme
}

// TestChecksumsSDK: aws-sdk-go-v2 sends checksums as headers over HTTP.
func TestChecksumsSDK(t *testing.T) { forEachStore(t, testChecksumsSDK) }

func testChecksumsSDK(t *testing.T, env *storeEnv) {
	p := env.startProxy(t)
	bucket := env.newBucket(t, "cksdk")
	c := p.S3Client()
	ctx := context.Background()

	t.Run("single", func(t *testing.T) {
		plain := plaintext("single", 70000)
		for _, alg := range allAlgorithms {
			key := "single/" + string(alg)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(plain), ChecksumAlgorithm: alg})
			if err != nil {
				t.Fatalf("PutObject %s: %v", key, err)
			}
			want := b64(sumOf(alg, plain))
			if got := checksumOf(alg, put.ChecksumCRC32, put.ChecksumCRC32C, put.ChecksumCRC64NVME, put.ChecksumSHA1, put.ChecksumSHA256); got != want {
				t.Errorf("PutObject %s: checksum %q, want %q", key, got, want)
			}
			assertKept(t, c, bucket, key, alg, want, types.ChecksumTypeFullObject, plain, nil)
		}
	})

	t.Run("multipart", func(t *testing.T) {
		sizes := []int{5 << 20, 5<<20 + 3, 1}
		plain := plaintext("multipart", sizes[0]+sizes[1]+sizes[2])
		for _, alg := range allAlgorithms {
			for _, typ := range []types.ChecksumType{types.ChecksumTypeComposite, types.ChecksumTypeFullObject} {
				if typ == types.ChecksumTypeFullObject && !isCRC(alg) || typ == types.ChecksumTypeComposite && alg == types.ChecksumAlgorithmCrc64nvme {
					continue
				}
				for _, complete := range []string{"parts", "whole", "bare", "type"} {
					key := "mp/" + string(alg) + "/" + string(typ) + "/" + complete
					t.Run(strings.TrimPrefix(key, "mp/"), func(t *testing.T) {
						testMultipartChecksum(t, c, bucket, key, alg, typ, complete, plain, sizes)
					})
				}
			}
		}
	})

	t.Run("copy", func(t *testing.T) {
		// Sources: a single object with a CRC32C, a multipart object
		// with a composite SHA256, one without any checksum.
		plain := plaintext("copy", 70000)
		src1 := "copysrc/crc32c"
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &src1, Body: bytes.NewReader(plain), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c}); err != nil {
			t.Fatal(err)
		}
		mpSizes := []int{5 << 20, 1000}
		mpPlain := plaintext("copymp", mpSizes[0]+mpSizes[1])
		src2 := "copysrc/multipart"
		testMultipartChecksum(t, c, bucket, src2, types.ChecksumAlgorithmSha256, types.ChecksumTypeComposite, "parts", mpPlain, mpSizes)
		src3 := "copysrc/none"
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &src3, Body: bytes.NewReader(plain)},
			func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired }); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, src, dst string
			alg            types.ChecksumAlgorithm
			plain          []byte
		}{
			{"same algorithm", src1, "copy/same", types.ChecksumAlgorithmCrc32c, plain},
			{"other algorithm", src1, "copy/other", types.ChecksumAlgorithmCrc64nvme, plain},
			{"multipart source", src2, "copy/mp", types.ChecksumAlgorithmSha256, mpPlain},
			{"multipart source, crc", src2, "copy/mpcrc", types.ChecksumAlgorithmCrc32, mpPlain},
			{"in place", src3, src3, types.ChecksumAlgorithmSha1, plain},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String(tc.dst),
					CopySource: aws.String(bucket + "/" + tc.src), ChecksumAlgorithm: tc.alg})
				if err != nil {
					t.Fatalf("CopyObject: %v", err)
				}
				want := b64(sumOf(tc.alg, tc.plain))
				r := res.CopyObjectResult
				if got := checksumOf(tc.alg, r.ChecksumCRC32, r.ChecksumCRC32C, r.ChecksumCRC64NVME, r.ChecksumSHA1, r.ChecksumSHA256); got != want || r.ChecksumType != types.ChecksumTypeFullObject {
					t.Errorf("CopyObjectResult: checksum %q %q, want %q FULL_OBJECT", got, r.ChecksumType, want)
				}
				var sizes []int
				if tc.src == src2 {
					sizes = mpSizes
				}
				assertKept(t, c, bucket, tc.dst, tc.alg, want, types.ChecksumTypeFullObject, tc.plain, sizes)
			})
		}
		// Without x-amz-checksum-algorithm the copy keeps the source's.
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy/kept"), CopySource: aws.String(bucket + "/" + src1)}); err != nil {
			t.Fatal(err)
		}
		assertKept(t, c, bucket, "copy/kept", types.ChecksumAlgorithmCrc32c, b64(sumOf(types.ChecksumAlgorithmCrc32c, plain)), types.ChecksumTypeFullObject, plain, nil)
	})

	t.Run("mp-object-size", func(t *testing.T) {
		// x-amz-mp-object-size is the plaintext's size; a wrong one is
		// refused where the store checks it (versitygw; MinIO ignores it).
		data := plaintext("mpsize", 5<<20+9)
		for _, tc := range []struct {
			name string
			size int64
			ok   bool
		}{{"right", int64(len(data)), true}, {"wrong", int64(len(data)) + 1, env.Embedded() || env.Upstream.Name == "minio"}} {
			key := "mpsize/" + tc.name
			cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			var parts []types.CompletedPart
			for i, b := range [][]byte{data[:5<<20], data[5<<20:]} {
				up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)})
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
			}
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
				MpuObjectSize: aws.Int64(tc.size), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			if (err == nil) != tc.ok {
				t.Errorf("Complete with x-amz-mp-object-size %d (%s): %v", tc.size, tc.name, err)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			alg types.ChecksumAlgorithm
			typ types.ChecksumType
		}{{types.ChecksumAlgorithmSha256, types.ChecksumTypeFullObject}, {types.ChecksumAlgorithmSha1, types.ChecksumTypeFullObject},
			{types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeComposite}, {"", types.ChecksumTypeComposite}} {
			key := "refused"
			_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ChecksumAlgorithm: tc.alg, ChecksumType: tc.typ})
			if code, status := testenv.APIError(err); code != "InvalidRequest" || status != 400 {
				t.Errorf("CreateMultipartUpload %s %s: %v, want InvalidRequest", tc.alg, tc.typ, err)
			}
		}
	})
}

// testMultipartChecksum uploads plain in parts of sizes with the algorithm
// and type asked at CreateMultipartUpload, completes with the part
// checksums and, as complete says, nothing else ("parts"), the whole
// object's checksum and type ("whole"), the whole object's checksum
// without type and "-N" ("bare"), or the type alone ("type"), a wrong
// whole-object checksum first, and checks what Complete, HEAD, GET and
// GetObjectAttributes say.
func testMultipartChecksum(t *testing.T, c *s3.Client, bucket, key string, alg types.ChecksumAlgorithm, typ types.ChecksumType, complete string, plain []byte, sizes []int) {
	ctx := context.Background()
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ChecksumAlgorithm: alg, ChecksumType: typ})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	if cr.ChecksumAlgorithm != alg || cr.ChecksumType != typ {
		t.Errorf("CreateMultipartUpload answered algorithm %q type %q", cr.ChecksumAlgorithm, cr.ChecksumType)
	}
	var parts []types.CompletedPart
	var partSums []byte
	off := 0
	for i, n := range sizes {
		body := plain[off : off+n]
		off += n
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body), ChecksumAlgorithm: alg})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		sum := sumOf(alg, body)
		partSums = append(partSums, sum...)
		got := checksumOf(alg, up.ChecksumCRC32, up.ChecksumCRC32C, up.ChecksumCRC64NVME, up.ChecksumSHA1, up.ChecksumSHA256)
		if got != b64(sum) {
			t.Errorf("UploadPart %d: checksum %q, want %q", i+1, got, b64(sum))
		}
		cp := types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)),
			ChecksumCRC32: up.ChecksumCRC32, ChecksumCRC32C: up.ChecksumCRC32C, ChecksumCRC64NVME: up.ChecksumCRC64NVME,
			ChecksumSHA1: up.ChecksumSHA1, ChecksumSHA256: up.ChecksumSHA256}
		parts = append(parts, cp)
	}
	want := b64(sumOf(alg, plain))
	if typ == types.ChecksumTypeComposite {
		want = b64(sumOf(alg, partSums)) + "-" + strconv.Itoa(len(sizes))
	}
	send := func(whole string) (*s3.CompleteMultipartUploadOutput, error) {
		in := &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
		if complete == "whole" || complete == "type" {
			in.ChecksumType = typ
		}
		if complete == "bare" {
			whole = strings.TrimSuffix(whole, "-"+strconv.Itoa(len(sizes)))
		}
		if whole != "" {
			switch alg {
			case types.ChecksumAlgorithmCrc32:
				in.ChecksumCRC32 = &whole
			case types.ChecksumAlgorithmCrc32c:
				in.ChecksumCRC32C = &whole
			case types.ChecksumAlgorithmCrc64nvme:
				in.ChecksumCRC64NVME = &whole
			case types.ChecksumAlgorithmSha1:
				in.ChecksumSHA1 = &whole
			case types.ChecksumAlgorithmSha256:
				in.ChecksumSHA256 = &whole
			}
		}
		return c.CompleteMultipartUpload(ctx, in)
	}
	whole := ""
	if complete == "whole" || complete == "bare" {
		// A wrong whole-object checksum: BadDigest, and the upload stays.
		wrong := b64(sumOf(alg, []byte("not the object")))
		if typ == types.ChecksumTypeComposite {
			wrong += "-" + strconv.Itoa(len(sizes))
		}
		_, err := send(wrong)
		if code, status := testenv.APIError(err); code != "BadDigest" || status != 400 {
			t.Fatalf("Complete with a wrong %s: %v, want BadDigest", alg, err)
		}
		whole = want
	}
	done, err := send(whole)
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got := checksumOf(alg, done.ChecksumCRC32, done.ChecksumCRC32C, done.ChecksumCRC64NVME, done.ChecksumSHA1, done.ChecksumSHA256); got != want || done.ChecksumType != typ {
		t.Errorf("CompleteMultipartUpload: checksum %q %q, want %q %q", got, done.ChecksumType, want, typ)
	}
	assertKept(t, c, bucket, key, alg, want, typ, plain, sizes)
}

// assertKept checks that HEAD and GET with checksum mode, and
// GetObjectAttributes, give the object's checksum and type, and that a GET
// (which the SDK validates against a FULL_OBJECT checksum) returns plain.
func assertKept(t *testing.T, c *s3.Client, bucket, key string, alg types.ChecksumAlgorithm, want string, typ types.ChecksumType, plain []byte, sizes []int) {
	t.Helper()
	ctx := context.Background()
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	if got := checksumOf(alg, head.ChecksumCRC32, head.ChecksumCRC32C, head.ChecksumCRC64NVME, head.ChecksumSHA1, head.ChecksumSHA256); got != want || head.ChecksumType != typ {
		t.Errorf("HeadObject %s: checksum %q %q, want %q %q", key, got, head.ChecksumType, want, typ)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(get.Body)
	get.Body.Close()
	if err != nil {
		t.Fatalf("GetObject %s (the SDK validates a full-object checksum): %v", key, err)
	}
	testenv.AssertSame(t, "GetObject "+key, got.Bytes(), plain)
	if v := checksumOf(alg, get.ChecksumCRC32, get.ChecksumCRC32C, get.ChecksumCRC64NVME, get.ChecksumSHA1, get.ChecksumSHA256); v != want {
		t.Errorf("GetObject %s: checksum %q, want %q", key, v, want)
	}
	attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: &key,
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize}})
	if err != nil {
		t.Fatalf("GetObjectAttributes %s: %v", key, err)
	}
	if attrs.Checksum == nil {
		t.Errorf("GetObjectAttributes %s: no Checksum", key)
	} else {
		ck := attrs.Checksum
		// S3 shows a composite checksum without its -N here.
		w := want
		if typ == types.ChecksumTypeComposite {
			w = want[:strings.LastIndexByte(want, '-')]
		}
		if got := checksumOf(alg, ck.ChecksumCRC32, ck.ChecksumCRC32C, ck.ChecksumCRC64NVME, ck.ChecksumSHA1, ck.ChecksumSHA256); got != w || ck.ChecksumType != typ {
			t.Errorf("GetObjectAttributes %s: checksum %q %q, want %q %q", key, got, ck.ChecksumType, w, typ)
		}
	}
	if aws.ToInt64(attrs.ObjectSize) != int64(len(plain)) {
		t.Errorf("GetObjectAttributes %s: ObjectSize %d", key, aws.ToInt64(attrs.ObjectSize))
	}
	if len(sizes) > 0 {
		op := attrs.ObjectParts
		if op == nil || aws.ToInt32(op.TotalPartsCount) != int32(len(sizes)) || len(op.Parts) != len(sizes) {
			t.Fatalf("GetObjectAttributes %s: ObjectParts %+v, want %d parts", key, op, len(sizes))
		}
		for i, p := range op.Parts {
			if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToInt64(p.Size) != int64(sizes[i]) {
				t.Errorf("GetObjectAttributes %s: part %d is number %d of %d bytes, want %d bytes", key, i+1, aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), sizes[i])
			}
		}
		// Paged as S3 pages them.
		paged, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: &key,
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectParts}, MaxParts: aws.Int32(1), PartNumberMarker: aws.String("1")})
		if err != nil {
			t.Fatalf("GetObjectAttributes %s, max-parts 1 after part 1: %v", key, err)
		}
		if op := paged.ObjectParts; op == nil || len(op.Parts) != 1 || aws.ToInt32(op.Parts[0].PartNumber) != 2 ||
			aws.ToBool(op.IsTruncated) != (len(sizes) > 2) || aws.ToString(op.NextPartNumberMarker) != "2" {
			t.Errorf("GetObjectAttributes %s, max-parts 1 after part 1: %+v", key, op)
		}
	}
}

// TestMinioGoTrailingHeaders uploads with minio-go, with and without
// TrailingHeaders (which sends part checksums in trailers and the whole
// object's on CompleteMultipartUpload): FPutObject of a file above its
// 16 MiB part size, and each algorithm as a single object (trailer) and
// multipart (trailers, COMPOSITE and, for the CRCs minio-go merges,
// FULL_OBJECT). It compares the checksums with what the same client gets
// straight from MinIO.
func TestMinioGoTrailingHeaders(t *testing.T) { forEachStore(t, testMinioGoTrailingHeaders) }

func testMinioGoTrailingHeaders(t *testing.T, env *storeEnv) {
	p := env.startProxy(t)
	bucket := env.newBucket(t, "miniotrail")
	ctx := context.Background()
	const size = 16<<20 + 1<<20 + 7
	plain := plaintext("miniotrail", size)
	file := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(file, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	// direct uploads the same way straight to MinIO, for comparison, into
	// a bucket of its own.
	directBucket := ""
	if !env.Embedded() && env.Upstream.Name == "minio" {
		directBucket = env.newBucket(t, "miniotrail-direct")
	}
	direct := func(t *testing.T, trailing bool, up func(mc *minio.Client, bucket string) (minio.UploadInfo, error)) *minio.UploadInfo {
		if env.Embedded() || env.Upstream.Name != "minio" {
			return nil
		}
		mc := newMinio(t, env.Upstream.Endpoint, env.Upstream.AccessKey, env.Upstream.SecretKey, trailing)
		info, err := up(mc, directBucket)
		if err != nil {
			t.Fatalf("the same upload straight to MinIO: %v", err)
		}
		return &info
	}
	for _, trailing := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "trailing"}[trailing]
		t.Run(name, func(t *testing.T) {
			mc := newMinio(t, p.Endpoint, p.AccessKey, p.SecretKey, trailing)
			key := "fput/" + name
			fput := func(mc *minio.Client, bucket string) (minio.UploadInfo, error) {
				return mc.FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{})
			}
			info, err := fput(mc, bucket)
			if err != nil {
				t.Fatalf("FPutObject %s: %v", key, err)
			}
			// MinIO leaves ChecksumType out of its Complete answer; S3,
			// and s3seal, send it.
			if d := direct(t, trailing, fput); d != nil && d.ChecksumCRC32C != info.ChecksumCRC32C {
				t.Errorf("FPutObject: CRC32C %q through s3seal, %q from MinIO", info.ChecksumCRC32C, d.ChecksumCRC32C)
			}
			if trailing && (info.ChecksumCRC32C == "" || info.ChecksumMode != "COMPOSITE") {
				t.Errorf("FPutObject with TrailingHeaders: CRC32C %q type %q, want a COMPOSITE one", info.ChecksumCRC32C, info.ChecksumMode)
			}
			assertMinioRead(t, mc, bucket, key, plain, info.ChecksumCRC32C)
		})
	}

	t.Run("algorithms", func(t *testing.T) {
		mc := newMinio(t, p.Endpoint, p.AccessKey, p.SecretKey, true)
		const partSize = 5 << 20
		mp := plain[:2*partSize+5]
		for _, tc := range []struct {
			ck   minio.ChecksumType
			alg  types.ChecksumAlgorithm
			full bool // multipart: FULL_OBJECT
		}{
			{minio.ChecksumCRC32, types.ChecksumAlgorithmCrc32, false},
			{minio.ChecksumCRC32C, types.ChecksumAlgorithmCrc32c, false},
			{minio.ChecksumCRC64NVME, types.ChecksumAlgorithmCrc64nvme, true},
			{minio.ChecksumSHA1, types.ChecksumAlgorithmSha1, false},
			{minio.ChecksumSHA256, types.ChecksumAlgorithmSha256, false},
			{minio.ChecksumFullObjectCRC32, types.ChecksumAlgorithmCrc32, true},
			{minio.ChecksumFullObjectCRC32C, types.ChecksumAlgorithmCrc32c, true},
		} {
			name := string(tc.alg) + map[bool]string{false: "", true: "-full"}[tc.full]
			t.Run(name, func(t *testing.T) {
				if !tc.ck.FullObjectRequested() {
					// A single object, its checksum in the trailer.
					small := plain[:100003]
					key := "single/" + name
					info, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(small), int64(len(small)),
						minio.PutObjectOptions{Checksum: tc.ck, DisableMultipart: true})
					if err != nil {
						t.Fatalf("PutObject %s: %v", key, err)
					}
					want := b64(sumOf(tc.alg, small))
					if got := minioChecksum(info, tc.alg); got != want {
						t.Errorf("PutObject %s: checksum %q, want %q", key, got, want)
					}
					assertMinioRead(t, mc, bucket, key, small, want)
					// Keeping the trailer's checksum replaced the object
					// with a copy: the ETag the PUT answered is still the
					// object's.
					st, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
					if err != nil || st.ETag != info.ETag {
						t.Errorf("StatObject %s: ETag %q, PutObject answered %q (%v)", key, st.ETag, info.ETag, err)
					}
				}
				// Multipart, the parts' checksums in trailers.
				key := "multipart/" + name
				up := func(mc *minio.Client, bucket string) (minio.UploadInfo, error) {
					return mc.PutObject(ctx, bucket, key, bytes.NewReader(mp), int64(len(mp)),
						minio.PutObjectOptions{Checksum: tc.ck, PartSize: partSize})
				}
				info, err := up(mc, bucket)
				if err != nil {
					t.Fatalf("PutObject %s: %v", key, err)
				}
				want := b64(sumOf(tc.alg, mp))
				if !tc.full {
					var sums []byte
					for off := 0; off < len(mp); off += partSize {
						sums = append(sums, sumOf(tc.alg, mp[off:min(off+partSize, len(mp))])...)
					}
					want = b64(sumOf(tc.alg, sums)) + "-3"
				}
				if got := minioChecksum(info, tc.alg); strings.TrimSuffix(got, "-3") != strings.TrimSuffix(want, "-3") {
					t.Errorf("PutObject %s: checksum %q, want %q", key, got, want)
				}
				if d := direct(t, true, up); d != nil && minioChecksum(*d, tc.alg) != minioChecksum(info, tc.alg) {
					t.Errorf("PutObject %s: checksum %q through s3seal, %q from MinIO", key, minioChecksum(info, tc.alg), minioChecksum(*d, tc.alg))
				}
				assertMinioRead(t, mc, bucket, key, mp, want)
			})
		}
	})
}

func minioChecksum(info minio.UploadInfo, alg types.ChecksumAlgorithm) string {
	switch alg {
	case types.ChecksumAlgorithmCrc32:
		return info.ChecksumCRC32
	case types.ChecksumAlgorithmCrc32c:
		return info.ChecksumCRC32C
	case types.ChecksumAlgorithmCrc64nvme:
		return info.ChecksumCRC64NVME
	case types.ChecksumAlgorithmSha1:
		return info.ChecksumSHA1
	}
	return info.ChecksumSHA256
}

// TestTrailerChecksumVersioned: in a versioned bucket, keeping a trailer's
// checksum (a copy of the object onto itself) leaves one version, the one
// the PUT answered with, carrying the checksum.
func TestTrailerChecksumVersioned(t *testing.T) { forEachStore(t, testTrailerChecksumVersioned) }

func testTrailerChecksumVersioned(t *testing.T, env *storeEnv) {
	// Only MinIO here versions buckets: the embedded store has no
	// versioning, and testenv starts versitygw without --versioning-dir.
	if env.Embedded() || env.Upstream.Name != "minio" {
		t.Skip("this store is started without bucket versioning; the test runs on MinIO")
	}
	p := env.startProxy(t)
	bucket := env.newBucket(t, "ckversioned")
	ctx := context.Background()
	mc := newMinio(t, p.Endpoint, p.AccessKey, p.SecretKey, true)
	if err := mc.EnableVersioning(ctx, bucket); err != nil {
		t.Fatalf("versioning: %v", err)
	}
	data := plaintext("versioned", 3000)
	info, err := mc.PutObject(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{Checksum: minio.ChecksumSHA256, DisableMultipart: true})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		versions = append(versions, o.VersionID)
	}
	if len(versions) != 1 || versions[0] != info.VersionID {
		t.Errorf("versions %v, PutObject answered version %q", versions, info.VersionID)
	}
	assertMinioRead(t, mc, bucket, "k", data, b64(sumOf(types.ChecksumAlgorithmSha256, data)))
}

// TestTrailerChecksumKeepsObject: keeping a trailer's checksum (a copy of
// the object onto itself with a new header) keeps what the PUT set: tags,
// user metadata, content type.
func TestTrailerChecksumKeepsObject(t *testing.T) { forEachStore(t, testTrailerChecksumKeepsObject) }

func testTrailerChecksumKeepsObject(t *testing.T, env *storeEnv) {
	p := env.startProxy(t)
	bucket := env.newBucket(t, "ckkeeps")
	ctx := context.Background()
	mc := newMinio(t, p.Endpoint, p.AccessKey, p.SecretKey, true)
	data := plaintext("keeps", 5000)
	_, err := mc.PutObject(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		Checksum: minio.ChecksumCRC64NVME, DisableMultipart: true, ContentType: "text/x-kept",
		UserMetadata: map[string]string{"color": "blue"}, UserTags: map[string]string{"team": "storage"}})
	if err != nil {
		t.Fatal(err)
	}
	assertMinioRead(t, mc, bucket, "k", data, b64(sumOf(types.ChecksumAlgorithmCrc64nvme, data)))
	st, err := mc.StatObject(ctx, bucket, "k", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ContentType != "text/x-kept" || st.UserMetadata["Color"] != "blue" {
		t.Errorf("StatObject: content type %q, user metadata %v", st.ContentType, st.UserMetadata)
	}
	tags, err := mc.GetObjectTagging(ctx, bucket, "k", minio.GetObjectTaggingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tags.ToMap(); got["team"] != "storage" || len(got) != 1 {
		t.Errorf("tags %v", got)
	}
}

// assertMinioRead reads key back with minio-go, asking for checksums, and
// checks its checksum (when want is not "") and plaintext.
func assertMinioRead(t *testing.T, mc *minio.Client, bucket, key string, plain []byte, want string) {
	t.Helper()
	ctx := context.Background()
	st, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatalf("StatObject %s: %v", key, err)
	}
	if want != "" && st.ChecksumCRC32C != want && st.ChecksumCRC32 != want && st.ChecksumCRC64NVME != want && st.ChecksumSHA1 != want && st.ChecksumSHA256 != want {
		t.Errorf("StatObject %s: checksums %q %q %q %q %q, want %q", key, st.ChecksumCRC32, st.ChecksumCRC32C, st.ChecksumCRC64NVME, st.ChecksumSHA1, st.ChecksumSHA256, want)
	}
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(obj)
	obj.Close()
	if err != nil {
		t.Fatalf("GetObject %s (minio-go verifies a full-object checksum): %v", key, err)
	}
	testenv.AssertSame(t, "GetObject "+key, got.Bytes(), plain)
}
