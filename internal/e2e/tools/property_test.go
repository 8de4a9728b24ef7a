package tools_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

var (
	propertySeed   = flag.Uint64("tools.seed", 0, "seed of TestRangeProperty (0: random, logged)")
	propertyRanges = flag.Int("tools.ranges", 2000, "random ranges per store in TestRangeProperty")
)

// propObject is one object of the property test: its plaintext and, for a
// multipart upload, its part sizes.
type propObject struct {
	key   string
	plain []byte
	parts []int // nil: a single PUT
	text  bool  // compressible (stored compressed by a compressing s3seal)
}

// boundaries returns the offsets where something changes: 0, the size,
// every part boundary and a few 64 KiB segment boundaries inside each part.
func (o *propObject) boundaries(rng *rand.Rand) []int {
	pts := []int{0, len(o.plain)}
	parts := o.parts
	if parts == nil {
		parts = []int{len(o.plain)}
	}
	off := 0
	for _, s := range parts {
		pts = append(pts, off)
		for k := 0; k < 3; k++ {
			if seg := (1 + rng.IntN(max(1, s>>16))) << 16; seg < s {
				pts = append(pts, off+seg)
			}
		}
		off += s
	}
	return pts
}

// propObjects makes the objects: multipart uploads with equal and unequal
// parts, tiny last parts and a single part, and single PUTs of sizes around
// segment boundaries.
func propObjects(rng *rand.Rand, seed uint64) []*propObject {
	mp := func(key string, parts ...int) *propObject {
		n := 0
		for _, p := range parts {
			n += p
		}
		return &propObject{key: key, parts: parts, plain: randomBytes(seed^uint64(n), n)}
	}
	uneven := func() []int {
		n := 2 + rng.IntN(3)
		parts := make([]int, n)
		for i := range parts {
			parts[i] = 5<<20 + rng.IntN(300<<10)
		}
		parts[n-1] = 1 + rng.IntN(6<<20)
		return parts
	}
	single := func(key string, n int) *propObject {
		return &propObject{key: key, plain: randomBytes(seed^uint64(n)^0xabc, n)}
	}
	// text objects compress: the "minio-compressed" case stores them
	// compressed in 64 KiB blocks (FORMAT.md 12.2), the others as any object.
	text := func(key string, n int) *propObject {
		var b bytes.Buffer
		if err := fill(&b, rand.New(rand.NewPCG(seed, uint64(n))), n, true); err != nil {
			panic(err)
		}
		return &propObject{key: key, plain: b.Bytes(), text: true}
	}
	// textMP is a multipart object of text, random and text parts: a
	// compressing s3seal stores its text parts compressed (the first
	// padded to 5 MiB, the small last one not) and the random part as a
	// version 2 part (FORMAT.md 12.2.3).
	textMP := func(key string) *propObject {
		parts := []int{6<<20 + rng.IntN(300<<10), 5<<20 + 1 + rng.IntN(300<<10), 1 + rng.IntN(3<<20)}
		var b bytes.Buffer
		for i, n := range parts {
			if err := fill(&b, rand.New(rand.NewPCG(seed, uint64(n))), n, i != 1); err != nil {
				panic(err)
			}
		}
		return &propObject{key: key, parts: parts, plain: b.Bytes(), text: true}
	}
	return []*propObject{
		textMP("mp/text-mixed"),
		mp("mp/equal", 5<<20, 5<<20, 1+rng.IntN(100<<10)),
		mp("mp/uneven", uneven()...),
		// Unequal parts whose sizes also fit "all parts as long as the
		// first, the last shorter": a layout guessed from the first part
		// header and the stored size is wrong here.
		mp("mp/uneven-fits-equal", 5<<20+300<<10, 5<<20+100<<10, 5<<20+200<<10, 1<<20+rng.IntN(1000)),
		mp("mp/tiny-last", 5<<20+1, 1),
		mp("mp/one-part", 1+rng.IntN(3<<20)),
		single("single/empty", 0),
		single("single/small", 1+rng.IntN(200)),
		single("single/segment", (1+rng.IntN(4))<<16+rng.IntN(3)-1),
		single("single/large", 100<<10+rng.IntN(2<<20)),
		text("text/blocks", (2+rng.IntN(3))<<16+rng.IntN(3)-1),
		text("text/large", 300<<10+rng.IntN(2<<20)),
		text("text/one-block", 2000+rng.IntN(60<<10)),
	}
}

// randomRangeHeader returns a Range header for an object of size bytes with
// interest points pts: mostly satisfiable ranges near boundaries, some open
// and suffix ranges, some past the end and a few malformed ones.
func randomRangeHeader(rng *rand.Rand, size int, pts []int) string {
	start := rng.IntN(size + 1)
	if rng.IntN(3) > 0 {
		start = max(0, pts[rng.IntN(len(pts))]+rng.IntN(33)-16)
	}
	length := 1 + rng.IntN([]int{16, 70 << 10, 2 << 20, 12 << 20}[rng.IntN(4)])
	switch k := rng.IntN(100); {
	case k < 60:
		return fmt.Sprintf("bytes=%d-%d", start, start+length-1)
	case k < 72:
		return fmt.Sprintf("bytes=%d-", start)
	case k < 86:
		return fmt.Sprintf("bytes=-%d", min(length, size+rng.IntN(3)))
	case k < 94:
		return fmt.Sprintf("bytes=%d-%d", size+rng.IntN(3), size+rng.IntN(1000)+3)
	case k < 97:
		return fmt.Sprintf("bytes=%d-%d", start+length, start) // last < first: ignored by S3
	default:
		return "bytes=-0"
	}
}

// rangeResult is what a GET answered, for comparison with the reference.
type rangeResult struct {
	status       int
	code         string
	contentRange string
	length       int64
	body         []byte
}

func (r rangeResult) String() string {
	if r.code != "" {
		return fmt.Sprintf("%d %s", r.status, r.code)
	}
	return fmt.Sprintf("%d Content-Range %q Content-Length %d (%d bytes)", r.status, r.contentRange, r.length, len(r.body))
}

func doRange(ctx context.Context, c *s3.Client, bucket, key, h string) rangeResult {
	body, out, err := getRange(ctx, c, bucket, key, h)
	if err != nil {
		code, status := testenv.APIError(err)
		if code == "" {
			code = err.Error()
		}
		return rangeResult{status: status, code: code}
	}
	r := rangeResult{contentRange: aws.ToString(out.ContentRange), length: aws.ToInt64(out.ContentLength), body: body}
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		r.status = raw.StatusCode
	}
	return r
}

// TestRangeProperty writes objects of random sizes with random part sizes
// through s3seal, once in front of MinIO and once on its embedded store,
// then compares thousands of random ranges (status, error code,
// Content-Range, Content-Length, body) with S3's answer for the plaintext and
// with what MinIO answers for the same range of the same plaintext stored
// directly. Run with -tools.seed to repeat a run.
func TestRangeProperty(t *testing.T) {
	seed := *propertySeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-tools.seed=%d repeats this run)", seed, seed)
	ctx := context.Background()
	objs := propObjects(rand.New(rand.NewPCG(seed, 6)), seed)

	// The reference: the same plaintexts, stored directly in MinIO.
	refBucket := newBucket(t, "reference")
	for _, o := range objs {
		if _, err := direct().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(refBucket), Key: aws.String(o.key), Body: bytes.NewReader(o.plain)}); err != nil {
			t.Fatalf("reference PutObject %s: %v", o.key, err)
		}
	}

	stores := []struct {
		name  string
		start func(t *testing.T) (*testenv.S3seal, string)
	}{
		{"minio", func(t *testing.T) (*testenv.S3seal, string) {
			return startProxy(t, nil), newBucket(t, "property")
		}},
		{"minio-compressed", func(t *testing.T) (*testenv.S3seal, string) {
			return startProxy(t, map[string]string{"S3SEAL_COMPRESS": "s2", "S3SEAL_COMPRESS_BLOCK_KIB": "64"}), newBucket(t, "property")
		}},
		{"embedded", func(t *testing.T) (*testenv.S3seal, string) {
			p := testenv.StartS3seal(t, nil)
			bucket := "property-" + testenv.RandomKey(4)
			if _, err := p.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Fatalf("CreateBucket on the embedded store: %v", err)
			}
			return p, bucket
		}},
	}
	for si, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			p, bucket := st.start(t)
			c := p.S3Client()
			etags := map[string]string{}
			for _, o := range objs {
				var etag string
				if o.parts == nil {
					out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.plain)})
					if err != nil {
						t.Fatalf("PutObject %s (%d bytes): %v", o.key, len(o.plain), err)
					}
					etag = aws.ToString(out.ETag)
				} else {
					var parts [][]byte
					off := 0
					for _, s := range o.parts {
						parts = append(parts, o.plain[off:off+s])
						off += s
					}
					var err error
					if etag, err = putMultipart(ctx, c, bucket, o.key, parts); err != nil {
						t.Fatalf("multipart %s (parts %v): %v", o.key, o.parts, err)
					}
					if want := fmt.Sprintf("-%d\"", len(o.parts)); !strings.HasSuffix(etag, want) {
						t.Errorf("%s: Complete ETag %s, want one ending in %s", o.key, etag, want)
					}
				}
				assertETagRule(t, o.key, etag, o.plain)
				etags[o.key] = etag
			}
			if st.name == "minio-compressed" {
				// The text objects are stored compressed, the others not;
				// every multipart object's header admits compressed parts,
				// and the text parts of mp/text-mixed are compressed.
				for _, o := range objs {
					if o.parts != nil {
						checkCompressedParts(t, bucket, o)
						continue
					}
					head, err := direct().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
					if err != nil {
						t.Fatal(err)
					}
					h, err := envelope.ParseHeader(head.Metadata["s3seal"])
					if err != nil || (h.Flags()&envelope.FlagCompressed != 0) != o.text {
						t.Fatalf("%s: stored with flags %v, text %v (%v)", o.key, h, o.text, err)
					}
				}
			}
			checkSizesAndETags(t, c, bucket, objs, etags)
			for _, o := range objs {
				got := doRange(ctx, c, bucket, o.key, "")
				if got.status != 200 || !bytes.Equal(got.body, o.plain) {
					t.Errorf("GET %s (%d bytes, parts %v): %v, want 200 and the plaintext", o.key, len(o.plain), o.parts, got)
				}
			}
			checkParts(t, c, bucket, objs)

			// Random ranges from four workers.
			var checked, failures atomic.Int64
			var mu sync.Mutex
			var examples []string
			start := time.Now()
			var wg sync.WaitGroup
			const workers = 4
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, uint64(100*si+w)))
					for i := 0; i < *propertyRanges/workers; i++ {
						o := objs[rng.IntN(len(objs))]
						h := randomRangeHeader(rng, len(o.plain), o.boundaries(rng))
						got := doRange(ctx, c, bucket, o.key, h)
						ref := doRange(ctx, direct(), refBucket, o.key, h)
						checked.Add(1)
						if msg := compareRange(h, got, ref, o.plain); msg != "" {
							failures.Add(1)
							mu.Lock()
							if len(examples) < 15 {
								examples = append(examples, fmt.Sprintf("%s (%d bytes, parts %v) Range %s: %s", o.key, len(o.plain), o.parts, h, msg))
							}
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			t.Logf("%d ranges checked in %s, %d failed", checked.Load(), time.Since(start).Round(time.Millisecond), failures.Load())
			if n := failures.Load(); n > 0 {
				t.Errorf("%d of %d ranges differ from the plaintext or from MinIO's answer; examples:\n%s",
					n, checked.Load(), strings.Join(examples, "\n"))
			}
		})
	}
}

// expectRange is S3's answer to Range h on an object of size bytes: status
// 200 (no range), 206 with [lo, hi], or 416 InvalidRange. It follows RFC
// 7233 as AWS S3 does: a byte-range-spec whose last byte is before its first
// is invalid and ignored (200, the whole object); a range starting at or
// past the end, a zero suffix and any range of an empty object are
// unsatisfiable; an end past the object is clamped.
func expectRange(h string, size int) (status, lo, hi int) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	if !ok || !ok2 {
		return 200, 0, size - 1
	}
	if first == "" { // suffix
		n, _ := strconv.Atoi(last)
		if n == 0 || size == 0 {
			return 416, 0, 0
		}
		return 206, max(0, size-n), size - 1
	}
	a, _ := strconv.Atoi(first)
	b := size - 1
	if last != "" {
		b, _ = strconv.Atoi(last)
		if b < a {
			return 200, 0, size - 1
		}
	}
	if a >= size {
		return 416, 0, 0
	}
	return 206, a, min(b, size-1)
}

// minioAgrees reports whether MinIO answers Range h as S3 does, so that its
// answer is a second reference: it answers 416 to a last-before-first range
// (S3 ignores it) and 206 "bytes 0--1/0" to a suffix range of an empty
// object (S3: 416).
func minioAgrees(h string, size int) bool {
	spec := strings.TrimPrefix(h, "bytes=")
	first, last, _ := strings.Cut(spec, "-")
	if first != "" && last != "" {
		a, _ := strconv.Atoi(first)
		b, _ := strconv.Atoi(last)
		if b < a {
			return false
		}
	}
	return size > 0
}

// compareRange returns "" if the proxy answered Range h as S3 does for the
// plaintext (and as MinIO does where MinIO agrees with S3), else what
// differs.
func compareRange(h string, got, ref rangeResult, plain []byte) string {
	status, lo, hi := expectRange(h, len(plain))
	if got.status != status {
		return fmt.Sprintf("s3seal answered %v, want status %d (MinIO: %v)", got, status, ref)
	}
	if status == 416 {
		if got.code != "InvalidRange" {
			return fmt.Sprintf("s3seal answered %v, want 416 InvalidRange", got)
		}
		return ""
	}
	wantCR := ""
	if status == 206 {
		wantCR = fmt.Sprintf("bytes %d-%d/%d", lo, hi, len(plain))
	}
	if got.contentRange != wantCR || got.length != int64(hi-lo+1) {
		return fmt.Sprintf("s3seal answered %v, want Content-Range %q Content-Length %d (MinIO: %v)", got, wantCR, hi-lo+1, ref)
	}
	if int64(len(got.body)) != got.length {
		return fmt.Sprintf("s3seal sent %d bytes with Content-Length %d", len(got.body), got.length)
	}
	if !bytes.Equal(got.body, plain[lo:hi+1]) {
		i := 0
		for i < len(got.body) && got.body[i] == plain[lo+i] {
			i++
		}
		return fmt.Sprintf("body differs from plaintext[%d:%d] at byte %d", lo, hi+1, i)
	}
	if minioAgrees(h, len(plain)) && (ref.status != got.status || ref.contentRange != got.contentRange || !bytes.Equal(ref.body, got.body)) {
		return fmt.Sprintf("s3seal answered %v, MinIO %v", got, ref)
	}
	return ""
}

// checkSizesAndETags compares HEAD and ListObjectsV2 with the plaintext
// sizes and the ETags the writes returned.
func checkSizesAndETags(t *testing.T, c *s3.Client, bucket string, objs []*propObject, etags map[string]string) {
	t.Helper()
	ctx := context.Background()
	ls, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	listed := map[string][2]string{}
	for _, o := range ls.Contents {
		listed[aws.ToString(o.Key)] = [2]string{strconv.FormatInt(aws.ToInt64(o.Size), 10), aws.ToString(o.ETag)}
	}
	for _, o := range objs {
		want := [2]string{strconv.Itoa(len(o.plain)), etags[o.key]}
		if got := listed[o.key]; got != want {
			t.Errorf("ListObjectsV2: %s size, ETag = %q, want %q", o.key, got, want)
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
		if err != nil {
			t.Errorf("HEAD %s: %v", o.key, err)
			continue
		}
		if got := [2]string{strconv.FormatInt(aws.ToInt64(head.ContentLength), 10), aws.ToString(head.ETag)}; got != want {
			t.Errorf("HEAD %s: size, ETag = %q, want %q", o.key, got, want)
		}
	}
	if len(ls.Contents) != len(objs) {
		t.Errorf("ListObjectsV2: %d objects, want %d", len(ls.Contents), len(objs))
	}
}

// checkParts reads every part of every object by number, and one past the
// last.
func checkParts(t *testing.T, c *s3.Client, bucket string, objs []*propObject) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		parts := o.parts
		if parts == nil {
			parts = []int{len(o.plain)}
		}
		off := 0
		for i, s := range parts {
			// HEAD first: a GET may teach the proxy the layout.
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), PartNumber: aws.Int32(int32(i + 1))})
			if err != nil {
				t.Errorf("%s: HEAD partNumber=%d: %v", o.key, i+1, err)
			} else if n := aws.ToInt64(head.ContentLength); n != int64(s) {
				t.Errorf("%s: HEAD partNumber=%d: Content-Length %d, want %d", o.key, i+1, n, s)
			}
			body, out, err := getPart(ctx, c, bucket, o.key, int32(i+1))
			if err != nil {
				t.Errorf("%s: GET partNumber=%d: %v", o.key, i+1, err)
				off += s
				continue
			}
			testenv.AssertSame(t, fmt.Sprintf("%s partNumber=%d", o.key, i+1), body, o.plain[off:off+s])
			if o.parts != nil {
				if n := aws.ToInt32(out.PartsCount); int(n) != len(o.parts) {
					t.Errorf("%s: GET partNumber=%d: PartsCount %d, want %d", o.key, i+1, n, len(o.parts))
				}
				if want := fmt.Sprintf("bytes %d-%d/%d", off, off+s-1, len(o.plain)); s > 0 && aws.ToString(out.ContentRange) != want {
					t.Errorf("%s: GET partNumber=%d: Content-Range %q, want %q", o.key, i+1, aws.ToString(out.ContentRange), want)
				}
			}
			off += s
		}
		_, _, err := getPart(ctx, c, bucket, o.key, int32(len(parts)+1))
		if code, status := testenv.APIError(err); status != 416 || code != "InvalidPartNumber" {
			t.Errorf("%s: GET partNumber=%d (one past the last): %v, want 416 InvalidPartNumber", o.key, len(parts)+1, err)
		}
	}
}

// assertETagRule checks that an ETag is either the plaintext's MD5 or
// visibly not an MD5: clients treat a 32-hex ETag as the body's MD5.
func assertETagRule(t *testing.T, what, etag string, plain []byte) {
	t.Helper()
	e := strings.Trim(etag, `"`)
	if len(e) != 32 {
		return
	}
	if _, err := hex.DecodeString(e); err != nil {
		return
	}
	if e != md5hex(plain) {
		t.Errorf("%s: ETag %s looks like an MD5 but is not the plaintext's (%s)", what, etag, md5hex(plain))
	}
}

// checkCompressedParts checks, at the store, a multipart object written
// through a compressing s3seal: its header has the compressed flag, and
// each part is compressed exactly when it is a text part (of a text
// object; its random middle part and every part of a random object are
// stored uncompressed by the adaptive check).
func checkCompressedParts(t *testing.T, bucket string, o *propObject) {
	t.Helper()
	ctx := context.Background()
	head, err := direct().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.ParseHeader(head.Metadata["s3seal"])
	if err != nil || h.Flags()&envelope.FlagCompressed == 0 {
		t.Fatalf("%s: multipart header %v in a compressing bucket (%v)", o.key, h, err)
	}
	var off int64
	for i, ph := range testenv.StoredPartHeaders(t, direct(), bucket, o.key, len(o.parts)) {
		if want := o.text && i != 1; (ph.Compression() != nil) != want {
			t.Fatalf("%s: part %d of %d bytes compressed %v, want %v", o.key, i+1, o.parts[i], ph.Compression() != nil, want)
		}
		off += ph.CiphertextSize()
	}
	if off != aws.ToInt64(head.ContentLength) {
		t.Fatalf("%s: parts add up to %d stored bytes of %d", o.key, off, aws.ToInt64(head.ContentLength))
	}
}
