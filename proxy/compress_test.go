package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// jsonLines is n bytes of generated JSON-lines logs.
func jsonLines(seed uint64, n int) []byte {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"ts":"2026-12-05T05:%02d:%02d.%06dZ","level":"%s","msg":"request served","req_id":%d,"bucket":"logs","key":"app/%d.json","status":%d,"ms":%d}`+"\n",
			i/60%60, i%60, rng.IntN(1e6), []string{"info", "warn", "debug"}[rng.IntN(3)], rng.Int64(), rng.IntN(1000), []int{200, 204, 404}[rng.IntN(3)], rng.IntN(2000))
	}
	return b.Bytes()[:n]
}

// proxySet starts proxies in front of the package's MinIO that share one
// keyring (so that each reads what the others wrote) and one client
// identity.
type proxySet struct {
	t              testing.TB
	kms            kms.Client
	keyID          string
	access, secret string
}

func newProxySet(t testing.TB) *proxySet {
	t.Helper()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	md, err := kr.CreateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	return &proxySet{t: t, kms: kr, keyID: md.KeyID, access: "client-" + rand.Text()[:8], secret: rand.Text()}
}

// start runs one more proxy of the set with compression z (and a data-key
// cache of its own, as a separate instance has).
func (ps *proxySet) start(z proxy.Compression) *env {
	e := startProxyWith(ps.t, func(c *proxy.Config) {
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: ps.access, SecretKey: ps.secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
		c.KMS, c.DefaultKeyID = kms.NewCache(ps.kms, kms.DefaultCacheConfig()), ps.keyID
		c.Compression = z
	})
	e.client = testenv.NewS3Client(e.endpoint, ps.access, ps.secret)
	return e
}

// startCompressing runs one proxy of one set per configuration.
func startCompressing(t testing.TB, zs ...proxy.Compression) []*env {
	t.Helper()
	ps := newProxySet(t)
	var envs []*env
	for _, z := range zs {
		envs = append(envs, ps.start(z))
	}
	return envs
}

// storedHeader is the envelope header of an object as the store holds it,
// and its stored size.
func storedHeader(t *testing.T, e *env, bucket, key string) (*envelope.Header, int64) {
	t.Helper()
	head, err := e.direct.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.ParseHeader(head.Metadata["s3seal"])
	if err != nil {
		t.Fatal(err)
	}
	return h, aws.ToInt64(head.ContentLength)
}

// TestCompressedObjects: against MinIO, with S2 and zstd: compressible
// objects are stored compressed (version 3, fewer bytes at the store) and
// read back bit-exact, whole and by range (suffix and open ranges
// included); HEAD and every listing (V1, V2, versions, url-encoded keys)
// show the plaintext size; random data, names and types on the skip list,
// client-compressed bodies and buckets with compression off are stored
// uncompressed (version 2, byte for byte as before).
func TestCompressedObjects(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []envelope.Algorithm{envelope.AlgS2, envelope.AlgZstd} {
		t.Run(string(alg), func(t *testing.T) {
			envs := startCompressing(t, proxy.Compression{Algorithm: alg, MinSaving: proxy.DefaultMinSaving, BlockSize: envelope.MinBlockSize,
				SkipExtensions: proxy.DefaultSkipExtensions, SkipContentTypes: proxy.DefaultSkipContentTypes}, proxy.Compression{Algorithm: alg})
			e, fresh := envs[0], envs[1]
			bucket := newBucket(t, e)
			const B = envelope.MinBlockSize
			objects := map[string][]byte{
				"logs/app.jsonl":       jsonLines(1, 3*B+1234),
				"logs/one byte":        []byte("x"),
				"logs/small.json":      jsonLines(2, 700),
				"logs/exact blocks+&":  jsonLines(3, 2*B),
				"logs/empty":           nil,
				"random.bin":           randomBytes(2*B + 5),
				"archive.zip":          jsonLines(4, B+9), // compressible, but named as compressed
				"photo":                jsonLines(5, B+9), // compressible, typed as compressed
				"client-gzipped.json":  jsonLines(6, B+9), // the client says it compressed it
				"logs/dir/ünïcode.txt": jsonLines(7, B/2),
			}
			ctypes := map[string]string{"photo": "image/jpeg"}
			encodings := map[string]string{"client-gzipped.json": "gzip"}
			for k, v := range objects {
				in := &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: bytes.NewReader(v), ContentLength: aws.Int64(int64(len(v)))}
				if ct := ctypes[k]; ct != "" {
					in.ContentType = &ct
				}
				if ce := encodings[k]; ce != "" {
					in.ContentEncoding = &ce
				}
				if _, err := e.client.PutObject(ctx, in); err != nil {
					t.Fatalf("put %s: %v", k, err)
				}
			}
			for k, v := range objects {
				h, stored := storedHeader(t, e, bucket, k)
				wantCompressed := strings.HasPrefix(k, "logs/") && len(v) > 100
				if got := h.Flags()&envelope.FlagCompressed != 0; got != wantCompressed {
					t.Fatalf("%s: compressed %v, want %v (version %d)", k, got, wantCompressed, h.Version())
				}
				if !wantCompressed && (h.Version() != 2 || stored != envelope.CiphertextSize(int64(len(v)))) {
					t.Fatalf("%s: version %d, %d stored bytes", k, h.Version(), stored)
				}
				if wantCompressed && len(v) > 1000 && stored > int64(len(v))/2 {
					t.Fatalf("%s: %d bytes stored for %d", k, stored, len(v))
				}
				// Whole GET and HEAD.
				get, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(k)})
				if err != nil {
					t.Fatalf("get %s: %v", k, err)
				}
				got, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(got, v) || aws.ToInt64(get.ContentLength) != int64(len(v)) {
					t.Fatalf("get %s: %d bytes (length %d), %v", k, len(got), aws.ToInt64(get.ContentLength), err)
				}
				head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(k)})
				if err != nil || aws.ToInt64(head.ContentLength) != int64(len(v)) {
					t.Fatalf("head %s: %v, %d", k, err, aws.ToInt64(head.ContentLength))
				}
				// GetObjectAttributes, from the instance that wrote it and
				// from one that did not (its size cache is empty).
				for _, c := range []*env{e, fresh} {
					attrs, err := c.client.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String(k),
						ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize, types.ObjectAttributesEtag}})
					if err != nil || aws.ToInt64(attrs.ObjectSize) != int64(len(v)) {
						t.Fatalf("GetObjectAttributes %s: %v, %d", k, err, aws.ToInt64(attrs.ObjectSize))
					}
				}
				if len(v) == 0 {
					continue
				}
				n := len(v)
				for _, r := range []string{"bytes=0-0", fmt.Sprintf("bytes=%d-", n-1), "bytes=-1", fmt.Sprintf("bytes=-%d", min(n, B+3)),
					fmt.Sprintf("bytes=%d-%d", n/3, 2*n/3), fmt.Sprintf("bytes=%d-", n/2),
					fmt.Sprintf("bytes=0-%d", n+100)} {
					checkRange(t, e, bucket, k, v, r)
				}
				if n > B {
					checkRange(t, e, bucket, k, v, fmt.Sprintf("bytes=%d-%d", B-1, B)) // across a block boundary
				}
			}
			// Listings, on an instance that saw none of the writes (its
			// size cache is empty, so it asks the store), and again.
			for _, c := range []*env{fresh, e} {
				checkListings(t, c, bucket, objects)
			}
		})
	}
}

// checkListings lists the bucket with V1, V2 (plain and url-encoded keys)
// and ListObjectVersions through c, and compares every size.
func checkListings(t *testing.T, c *env, bucket string, objects map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	check := func(api, key string, size int64) {
		if v, ok := objects[key]; !ok || int64(len(v)) != size {
			t.Errorf("%s: %q listed with %d bytes, want %d", api, key, size, len(objects[key]))
		}
	}
	v2, err := c.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(v2.Contents) != len(objects) {
		t.Fatalf("ListObjectsV2: %v, %d entries", err, len(v2.Contents))
	}
	for _, o := range v2.Contents {
		check("V2", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
	v2u, err := c.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, EncodingType: "url"})
	if err != nil || len(v2u.Contents) != len(objects) {
		t.Fatalf("ListObjectsV2 url: %v", err)
	}
	for _, o := range v2u.Contents {
		k, err := url.QueryUnescape(aws.ToString(o.Key))
		if err != nil {
			t.Fatal(err)
		}
		check("V2 url", k, aws.ToInt64(o.Size))
	}
	v1, err := c.client.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &bucket})
	if err != nil || len(v1.Contents) != len(objects) {
		t.Fatalf("ListObjects: %v", err)
	}
	for _, o := range v1.Contents {
		check("V1", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
	vs, err := c.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil || len(vs.Versions) != len(objects) {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	for _, o := range vs.Versions {
		check("versions", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
}

// TestCompressionPerBucket: the global setting and per-bucket overrides
// (on in one bucket, off in another), and a bucket named off keeps
// exact listings of the compressed objects written while it was on.
func TestCompressionPerBucket(t *testing.T) {
	ctx := context.Background()
	e := startProxy(t)
	on, off := newBucket(t, e), newBucket(t, e)
	data := jsonLines(9, 200_000)
	envs := startCompressing(t, proxy.Compression{Buckets: map[string]envelope.Algorithm{on: envelope.AlgZstd, off: ""}},
		proxy.Compression{Buckets: map[string]envelope.Algorithm{on: ""}})
	c, later := envs[0], envs[1]
	for _, b := range []string{on, off} {
		if _, err := c.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k.log"), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := storedHeader(t, e, on, "k.log"); h.Flags() != envelope.FlagCompressed {
		t.Fatalf("bucket on: flags %#x", h.Flags())
	}
	if h, _ := storedHeader(t, e, off, "k.log"); h.Version() != 2 {
		t.Fatalf("bucket off: version %d", h.Version())
	}
	// A body that fails its Content-MD5 stores nothing, compressed or not
	// (small: in-memory spool; large: the temporary file).
	// text then random: compressed (its first block is text), and over the
	// 1 MiB in-memory spool once stored (the random half stays raw).
	mixedBody := append(jsonLines(12, 2<<20), randomBytes(2<<20)...)
	if _, err := c.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(on), Key: aws.String("mixed.log"), Body: bytes.NewReader(mixedBody)}); err != nil {
		t.Fatal(err)
	}
	if h, stored := storedHeader(t, e, on, "mixed.log"); h.Flags() != envelope.FlagCompressed || stored < 2<<20 || stored > 3<<20 {
		t.Fatalf("mixed: flags %#x, %d stored bytes", h.Flags(), stored)
	}
	checkRange(t, c, on, "mixed.log", mixedBody, "bytes=0-")
	checkRange(t, later, on, "mixed.log", mixedBody, "bytes=2000000-2200000")
	for _, bad := range [][]byte{jsonLines(11, 5000), mixedBody} {
		_, err := c.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(on), Key: aws.String("bad.log"), Body: bytes.NewReader(bad),
			ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")}) // the MD5 of nothing
		if apiCode(err) != "BadDigest" {
			t.Fatalf("%d bytes with a wrong Content-MD5: %v", len(bad), err)
		}
		if _, err := e.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(on), Key: aws.String("bad.log")}); err == nil {
			t.Fatalf("%d bytes with a wrong Content-MD5: stored", len(bad))
		}
	}
	// A copy (metadata only: the key resealed, the body copied by the
	// store) stays compressed and reads back whole and by range.
	if _, err := c.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(on), Key: aws.String("copy.log"),
		CopySource: aws.String(on + "/k.log")}); err != nil {
		t.Fatal(err)
	}
	if h, _ := storedHeader(t, e, on, "copy.log"); h.Flags() != envelope.FlagCompressed {
		t.Fatalf("copy: flags %#x", h.Flags())
	}
	checkRange(t, c, on, "copy.log", data, "bytes=100000-150000")
	checkRange(t, later, on, "copy.log", data, "bytes=-70000")
	// UploadPartCopy reads a range of the compressed source through the
	// proxy (the part itself is not compressed: multipart uploads are not).
	up, err := c.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(off), Key: aws.String("mp.log")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(off), Key: aws.String("mp.log"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String(on + "/k.log"), CopySourceRange: aws.String("bytes=70000-189999")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(off), Key: aws.String("mp.log"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: pc.CopyPartResult.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	checkRange(t, c, off, "mp.log", data[70000:190000], "bytes=0-")
	// Turned off for the bucket now: its compressed objects still list
	// and read exactly.
	checkListings(t, later, on, map[string][]byte{"k.log": data, "copy.log": data, "mixed.log": mixedBody})
}

// TestCompressionLevels: against MinIO, two buckets compressed with zstd
// at its fastest and its best level, and one with S2 at its best: the
// same body is stored in fewer bytes at the best level, and an instance
// that compresses nothing (the buckets named off) reads all of them (the level is written
// nowhere), whole, by range and in listings; parts of a multipart upload
// are compressed at their bucket's level too.
func TestCompressionLevels(t *testing.T) {
	ctx := context.Background()
	e := startProxy(t)
	fast, best, s2best := newBucket(t, e), newBucket(t, e), newBucket(t, e)
	envs := startCompressing(t, proxy.Compression{Algorithm: envelope.AlgZstd, Level: envelope.LevelFastest,
		Buckets:      map[string]envelope.Algorithm{best: envelope.AlgZstd, s2best: envelope.AlgS2},
		BucketLevels: map[string]envelope.Level{best: envelope.LevelBest, s2best: envelope.LevelBest}},
		proxy.Compression{Buckets: map[string]envelope.Algorithm{fast: "", best: "", s2best: ""}}) // named: exact listings
	c, reader := envs[0], envs[1]
	data := jsonLines(21, 1<<20+4321)
	stored := map[string]int64{}
	for _, b := range []string{fast, best, s2best} {
		if _, err := c.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k.log"), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		h, n := storedHeader(t, e, b, "k.log")
		if h.Flags() != envelope.FlagCompressed || n > int64(len(data))/2 {
			t.Fatalf("%s: flags %#x, %d stored bytes of %d", b, h.Flags(), n, len(data))
		}
		stored[b] = n
		checkRange(t, reader, b, "k.log", data, "bytes=0-")
		checkRange(t, reader, b, "k.log", data, "bytes=300000-700000")
		checkListings(t, reader, b, map[string][]byte{"k.log": data})
	}
	if stored[best] >= stored[fast] {
		t.Errorf("zstd best stored %d bytes, fastest %d", stored[best], stored[fast])
	}
	t.Logf("stored bytes of %d: zstd fastest %d, zstd best %d, s2 best %d", len(data), stored[fast], stored[best], stored[s2best])

	// A compressed part takes its bucket's level too: one part (a last
	// part, so unpadded) is stored smaller at the best level.
	partStored := map[string]int64{}
	for _, b := range []string{fast, best} {
		uploadCompressedParts(t, c, b, "mp.log", [][]byte{data})
		ph := testenv.StoredPartHeaders(t, e.direct, b, "mp.log", 1)[0]
		if ph.Compression() == nil {
			t.Fatalf("%s: part stored uncompressed", b)
		}
		partStored[b] = ph.CiphertextSize()
		checkRange(t, reader, b, "mp.log", data, "bytes=0-")
	}
	if partStored[best] >= partStored[fast] {
		t.Errorf("a part at zstd best stored in %d bytes, at fastest in %d", partStored[best], partStored[fast])
	}
}

// TestCompressionConfig: settings a proxy refuses to start with.
func TestCompressionConfig(t *testing.T) {
	for _, z := range []proxy.Compression{
		{Algorithm: "gzip"},
		{Buckets: map[string]envelope.Algorithm{"b": "lz4"}},
		{Algorithm: envelope.AlgS2, MinSaving: 1},
		{Algorithm: envelope.AlgS2, MinSaving: -0.1},
		{Algorithm: envelope.AlgS2, BlockSize: 100 << 10},
		{Algorithm: envelope.AlgS2, BlockSize: 8 << 20},
		{Algorithm: envelope.AlgS2, Level: envelope.LevelFastest},
		{Algorithm: envelope.AlgZstd, Level: "max"},
		{Buckets: map[string]envelope.Algorithm{"b": envelope.AlgS2}, Level: envelope.LevelFastest},
		{Buckets: map[string]envelope.Algorithm{"b": envelope.AlgZstd}, BucketLevels: map[string]envelope.Level{"b": "11"}},
		{Algorithm: envelope.AlgZstd, Buckets: map[string]envelope.Algorithm{"b": ""}, BucketLevels: map[string]envelope.Level{"b": envelope.LevelBest}},
		{BucketLevels: map[string]envelope.Level{"b": envelope.LevelBest}},
	} {
		_, err := proxy.New(proxy.Config{KMS: kms.NewCache(nil, kms.DefaultCacheConfig()), DefaultKeyID: "k",
			Identities: proxy.NewStaticIdentities(nil, nil), UpstreamURL: "http://127.0.0.1:1", Compression: z})
		if err == nil || !strings.Contains(err.Error(), "compression") {
			t.Errorf("%+v: %v", z, err)
		}
	}
}
