package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy"
)

// countingHop is a real HTTP hop between a proxy and MinIO that records
// every request the proxy sends to the store (method and Range). The Host
// header is kept, so that the proxy's signatures still verify.
type countingHop struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
	// modify, if set, changes the store's answers to requests (method
	// and Range) it matches: a hostile store.
	modify func(req string, resp *http.Response) error
}

func newCountingHop(t testing.TB) *countingHop {
	t.Helper()
	target, err := url.Parse(minioSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	h := &countingHop{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}, ModifyResponse: func(resp *http.Response) error {
		h.mu.Lock()
		modify := h.modify
		h.mu.Unlock()
		if modify == nil {
			return nil
		}
		return modify(strings.TrimSpace(resp.Request.Method+" "+resp.Request.Header.Get("Range")), resp)
	}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.seen = append(h.seen, strings.TrimSpace(r.Method+" "+r.Header.Get("Range")))
		h.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// take returns the requests seen since the last take.
func (h *countingHop) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seen
	h.seen = nil
	return s
}

// rangeCase is one range GET: cold on a fresh instance (no cached index,
// size or header), or warm right after an earlier range of the same
// object on the same instance.
type rangeCase struct {
	name, rng                      string
	warm                           bool
	maxCompressed, maxUncompressed int
}

// TestRangeGETStoreRequests counts, through a counting hop in front of
// MinIO, the store requests each kind of range GET costs on a compressed
// object, on an uncompressed object in the same compressing bucket and on
// one in a bucket without compression (the common case), and checks the
// bytes. With S3SEAL_RANGE_LATENCY=N it also logs the median latency of N
// runs of each case.
func TestRangeGETStoreRequests(t *testing.T) {
	ctx := context.Background()
	hop := newCountingHop(t)
	ps := newProxySet(t)
	plainBucket := newBucket(t, startProxy(t))
	zBucket := newBucket(t, startProxy(t))
	start := func() *env {
		e := startProxyWith(t, func(c *proxy.Config) {
			c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: ps.access, SecretKey: ps.secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
			c.KMS, c.DefaultKeyID = kms.NewCache(ps.kms, kms.DefaultCacheConfig()), ps.keyID
			c.Compression = proxy.Compression{Buckets: map[string]envelope.Algorithm{zBucket: envelope.AlgZstd}, MinSaving: proxy.DefaultMinSaving,
				SkipExtensions: proxy.DefaultSkipExtensions}
			c.UpstreamURL = hop.srv.URL
		})
		e.client = testenv.NewS3Client(e.endpoint, ps.access, ps.secret)
		return e
	}
	w := start()
	text := jsonLines(31, 3<<20+12345) // 13 blocks of 256 KiB; stored in about a sixth
	random := randomBytes(3<<20 + 12345)
	objects := []struct {
		name, bucket, key string
		body              []byte
		compressed        bool
	}{
		{"compressed", zBucket, "app.jsonl", text, true},
		{"uncompressed, compressing bucket", zBucket, "blob.bin", random, false},
		{"uncompressed bucket", plainBucket, "app.jsonl", text, false},
	}
	for _, o := range objects {
		if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: &o.key, Body: bytes.NewReader(o.body)}); err != nil {
			t.Fatal(err)
		}
		if h, stored := storedHeader(t, w, o.bucket, o.key); (h.Flags() == envelope.FlagCompressed) != o.compressed {
			t.Fatalf("%s: flags %#x, %d stored bytes", o.name, h.Flags(), stored)
		}
	}
	cases := []rangeCase{
		{"range, cold", "bytes=1000000-1100000", false, 3, 1},
		{"range, warm", "bytes=2000000-2000999", true, 1, 1},
		{"range inside the stored size, cold", "bytes=100000-200000", false, 3, 1},
		{"range in the first block, cold", "bytes=0-999", false, 3, 1},
		{"suffix, cold", "bytes=-5000", false, 2, 2},
		{"suffix, warm", "bytes=-70000", true, 1, 2},
		{"open, cold", "bytes=2500000-", false, 3, 1},
		{"open, warm", "bytes=3000000-", true, 1, 1},
	}
	get := func(e *env, bucket, key, rng string) ([]byte, error) {
		out, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	runs := 1
	if n := os.Getenv("S3SEAL_RANGE_LATENCY"); n != "" {
		fmt.Sscan(n, &runs)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| range GET | %s |\n|---|%s\n", strings.Join(func() []string {
		var h []string
		for _, o := range objects {
			h = append(h, o.name+": store requests", o.name+": median ms")
		}
		return h
	}(), " | "), strings.Repeat("---:|", 2*len(objects)))
	for _, c := range cases {
		row := "| " + c.name + " (`" + c.rng + "`)"
		for _, o := range objects {
			var took []time.Duration
			var seen []string
			for range runs {
				e := start()
				if c.warm {
					if _, err := get(e, o.bucket, o.key, "bytes=10-20"); err != nil {
						t.Fatal(err)
					}
				}
				hop.take()
				t0 := time.Now()
				got, err := get(e, o.bucket, o.key, c.rng)
				took = append(took, time.Since(t0))
				seen = hop.take()
				if err != nil {
					t.Fatalf("%s, %s: %v", o.name, c.name, err)
				}
				off, n := resolveRange(c.rng, int64(len(o.body)))
				testenv.AssertSame(t, o.name+", "+c.name, got, o.body[off:off+n])
			}
			max := c.maxUncompressed
			if o.compressed {
				max = c.maxCompressed
			}
			if len(seen) > max {
				t.Errorf("%s, %s: %d store requests %q, want at most %d", o.name, c.name, len(seen), seen, max)
			}
			slices.Sort(took)
			row += fmt.Sprintf(" | %d | %.2f", len(seen), float64(took[len(took)/2].Microseconds())/1000)
			t.Logf("%s, %s: %q", o.name, c.name, seen)
		}
		table.WriteString(row + " |\n")
	}
	t.Log(table.String())

	// A range past the end is InvalidRange for two store requests (the
	// aligned read's 416, then a suffix read or, before, a HEAD), also for
	// a multipart object, whose part map is not read for it.
	up, err := w.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &plainBucket, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := w.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &plainBucket, Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(text[:1000])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &plainBucket, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range append(objects, struct {
		name, bucket, key string
		body              []byte
		compressed        bool
	}{"multipart", plainBucket, "mp", text[:1000], false}) {
		e := start()
		hop.take()
		_, err := get(e, o.bucket, o.key, "bytes=9000000-9000010")
		seen := hop.take()
		if apiCode(err) != "InvalidRange" || len(seen) > 2 {
			t.Errorf("%s, past the end: %v, %d store requests %q", o.name, err, len(seen), seen)
		}
	}
}

// resolveRange resolves a bytes= range of the forms the cases use.
func resolveRange(rng string, size int64) (off, n int64) {
	spec := strings.TrimPrefix(rng, "bytes=")
	a, b, _ := strings.Cut(spec, "-")
	var x, y int64
	switch {
	case a == "":
		fmt.Sscan(b, &y)
		return size - y, y
	case b == "":
		fmt.Sscan(a, &x)
		return x, size - x
	}
	fmt.Sscan(a, &x)
	fmt.Sscan(b, &y)
	return x, min(y, size-1) - x + 1
}

// flipBodyByte returns a modify hook that flips byte i (from the end if
// negative) of the body of the first answer to a GET whose Range
// satisfies match.
func flipBodyByte(match func(rng string) bool, i int) (func(string, *http.Response) error, func() bool) {
	var mu sync.Mutex
	done := false
	return func(req string, resp *http.Response) error {
			mu.Lock()
			defer mu.Unlock()
			rng, isGet := strings.CutPrefix(req, "GET ")
			if done || !isGet || !match(rng) || resp.StatusCode/100 != 2 {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if i < 0 {
				b[len(b)+i] ^= 1
			} else {
				b[i] ^= 1
			}
			done = true
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return nil
		}, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done
		}
}

// TestCompressedRangeTamper: the reads that take fewer store requests
// (the block index and blocks from a suffix read, blocks from the first
// response, a remembered version's blocks in one request) fail, and never
// return other plaintext, when the store changes a byte of what they
// read, or serves another object's header for a remembered version.
func TestCompressedRangeTamper(t *testing.T) {
	ctx := context.Background()
	hop := newCountingHop(t)
	ps := newProxySet(t)
	bucket := newBucket(t, startProxy(t))
	start := func() *env {
		e := startProxyWith(t, func(c *proxy.Config) {
			c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: ps.access, SecretKey: ps.secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
			c.KMS, c.DefaultKeyID = kms.NewCache(ps.kms, kms.DefaultCacheConfig()), ps.keyID
			c.Compression = proxy.Compression{Algorithm: envelope.AlgZstd, MinSaving: proxy.DefaultMinSaving}
			c.UpstreamURL = hop.srv.URL
		})
		e.client = testenv.NewS3Client(e.endpoint, ps.access, ps.secret)
		return e
	}
	w := start()
	text := jsonLines(41, 2<<20+777)
	for _, key := range []string{"a.log", "b.log"} {
		if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(text)}); err != nil {
			t.Fatal(err)
		}
	}
	bHeader, _ := w.direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("b.log")})
	get := func(e *env, rng string) ([]byte, error) {
		out, err := e.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a.log"), Range: &rng})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	suffix := func(rng string) bool { return strings.HasPrefix(rng, "bytes=-") }
	closed := func(rng string) bool { return rng != "" && !suffix(rng) && !strings.HasSuffix(rng, "-") }
	type tamperCase struct {
		name, rng string
		warm      bool
		match     func(string) bool
		at        int
	}
	for _, c := range []tamperCase{
		{"index in a suffix read", "bytes=-1000", false, suffix, -3},
		{"block in a suffix read", "bytes=-1000", false, suffix, -200},
		{"index after a 416", "bytes=1500000-1500100", false, suffix, -5},
		{"block in the first response", "bytes=0-99", false, func(r string) bool { return r == "bytes=0-65551" }, 100},
		{"remembered version's blocks", "bytes=1000000-1000999", true, closed, 50},
	} {
		e := start()
		if c.warm {
			if got, err := get(e, "bytes=5-9"); err != nil || !bytes.Equal(got, text[5:10]) {
				t.Fatalf("%s: warming: %v", c.name, err)
			}
		}
		modify, hit := flipBodyByte(c.match, c.at)
		hop.mu.Lock()
		hop.modify = modify
		hop.mu.Unlock()
		got, err := get(e, c.rng)
		hop.mu.Lock()
		hop.modify = nil
		hop.mu.Unlock()
		seen := hop.take()
		t.Logf("%s: %q", c.name, seen)
		if !hit() {
			t.Fatalf("%s: no store answer was changed (%q)", c.name, seen)
		}
		if err == nil {
			off, n := resolveRange(c.rng, int64(len(text)))
			t.Errorf("%s: a changed byte went unnoticed (%d bytes, right: %v)", c.name, len(got), bytes.Equal(got, text[off:off+n]))
		}
	}

	// A remembered version whose store serves another object's header
	// (same ETag and size claimed) is not read with the remembered index.
	e := start()
	if _, err := get(e, "bytes=5-9"); err != nil {
		t.Fatal(err)
	}
	hop.mu.Lock()
	hop.modify = func(req string, resp *http.Response) error {
		if strings.HasPrefix(req, "GET bytes=") {
			resp.Header.Set("X-Amz-Meta-S3seal", bHeader.Metadata["s3seal"])
		}
		return nil
	}
	hop.mu.Unlock()
	got, err := get(e, "bytes=1000000-1000999")
	hop.mu.Lock()
	hop.modify = nil
	hop.mu.Unlock()
	if err == nil {
		t.Errorf("another object's header served for a remembered version: read %d bytes", len(got))
	}
}
