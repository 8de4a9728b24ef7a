package tools_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// TestMultipartAcrossProcesses sends the parts of one upload to two s3seal
// processes sharing a keyring (one data dir) in front of one MinIO, in
// random order and two at a time, restarts one of them midway, and reads the
// object back bit-exact through both. One part is an UploadPartCopy of a
// range of another encrypted object.
func TestMultipartAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))

	shared := map[string]string{
		"S3SEAL_DATA_DIR":        t.TempDir(),
		"S3SEAL_MASTER_KEY_FILE": filepath.Join(t.TempDir(), "master.key"),
		"S3SEAL_ACCESS_KEY":      "AK" + strings.ToUpper(testenv.RandomKey(9)),
		"S3SEAL_SECRET_KEY":      testenv.RandomKey(20),
	}
	a := startProxy(t, shared) // creates the keyring
	b := startProxy(t, shared) // loads it
	if a.Endpoint == b.Endpoint || a.PID() == b.PID() {
		t.Fatalf("want two processes, got %s (pid %d) and %s (pid %d)", a.Endpoint, a.PID(), b.Endpoint, b.PID())
	}
	proxies := []*testenv.S3seal{a, b}
	client := func(p *testenv.S3seal) *s3.Client { return p.S3Client() }
	bucket := newBucket(t, "multiproc")
	key := "object/across-processes"

	// The UploadPartCopy source, written through b.
	copySrc := randomBytes(seed+1, 9<<20+333)
	if _, err := client(b).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("copy-source"), Body: bytes.NewReader(copySrc),
	}); err != nil {
		t.Fatalf("PutObject copy-source through b: %v", err)
	}

	// Seven parts of unequal sizes (5-6 MiB), the last short; part 4 is
	// copied from copy-source.
	const nParts = 7
	const copied = 4
	copyStart := 1000 + rng.IntN(1<<20)
	sizes := make([]int, nParts)
	for i := range sizes {
		sizes[i] = 5<<20 + rng.IntN(1<<20)
	}
	sizes[nParts-1] = 1 + rng.IntN(3<<20)
	plain := randomBytes(seed+2, func() int {
		n := 0
		for _, s := range sizes {
			n += s
		}
		return n
	}())
	parts := make([][]byte, nParts)
	off := 0
	for i, s := range sizes {
		parts[i] = plain[off : off+s]
		off += s
	}
	copy(parts[copied-1], copySrc[copyStart:copyStart+sizes[copied-1]])

	cr, err := client(a).CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String("application/x-test"),
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload through a: %v", err)
	}
	uploadID := aws.ToString(cr.UploadId)

	order := rng.Perm(nParts)
	t.Logf("part sizes %v, order %v", sizes, order)
	etags := make([]string, nParts)
	var mu sync.Mutex
	send := func(t *testing.T, idxs []int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 2)
		for k, i := range idxs {
			p := proxies[k%2] // both processes get parts before and after the restart
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				n := int32(i + 1)
				var etag string
				var err error
				if n == copied {
					var out *s3.UploadPartCopyOutput
					out, err = client(p).UploadPartCopy(ctx, &s3.UploadPartCopyInput{
						Bucket:          aws.String(bucket),
						Key:             aws.String(key),
						UploadId:        aws.String(uploadID),
						PartNumber:      aws.Int32(n),
						CopySource:      aws.String(bucket + "/copy-source"),
						CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", copyStart, copyStart+sizes[i]-1)),
					})
					if err == nil && out.CopyPartResult != nil {
						etag = aws.ToString(out.CopyPartResult.ETag)
					}
				} else {
					etag, err = uploadPart(ctx, client(p), bucket, key, uploadID, n, parts[i])
				}
				if err != nil {
					t.Errorf("part %d through %s: %v", n, p.Endpoint, err)
					return
				}
				mu.Lock()
				etags[i] = etag
				mu.Unlock()
			}()
		}
		wg.Wait()
	}

	send(t, order[:nParts/2])
	if t.Failed() {
		t.FailNow()
	}
	oldPID := a.PID()
	if err := a.Restart(); err != nil {
		t.Fatalf("restart a: %v", err)
	}
	if a.PID() == oldPID {
		t.Fatalf("restart kept pid %d", oldPID)
	}
	send(t, order[nParts/2:])
	if t.Failed() {
		t.FailNow()
	}

	// ListParts through each process: plaintext sizes, the ETags the
	// uploads returned.
	for _, p := range proxies {
		lp, err := client(p).ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID)})
		if err != nil {
			t.Fatalf("ListParts through %s: %v", p.Endpoint, err)
		}
		if len(lp.Parts) != nParts {
			t.Fatalf("ListParts through %s: %d parts, want %d", p.Endpoint, len(lp.Parts), nParts)
		}
		for i, part := range lp.Parts {
			if n := aws.ToInt32(part.PartNumber); n != int32(i+1) {
				t.Errorf("ListParts: part %d numbered %d", i+1, n)
			}
			if got := aws.ToInt64(part.Size); got != int64(sizes[i]) {
				t.Errorf("ListParts through %s: part %d Size %d, want %d", p.Endpoint, i+1, got, sizes[i])
			}
			// ListParts has only the store's part ETag: a part ETag that
			// carries the part's plaintext MD5 (UploadPart with
			// Content-MD5) names the same stored part (README, "ETags").
			if got := aws.ToString(part.ETag); s3wire.StoreETag(got) != s3wire.StoreETag(etags[i]) {
				t.Errorf("ListParts through %s: part %d ETag %s, UploadPart said %s", p.Endpoint, i+1, got, etags[i])
			}
		}
	}
	lu, err := client(b).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads through b: %v", err)
	}
	// The listing shows the store's upload id: the last field of the id
	// s3seal handed out, which also carries the upload's binding (FORMAT.md).
	storeID := uploadID[strings.LastIndexByte(uploadID, '~')+1:]
	if len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != storeID || aws.ToString(lu.Uploads[0].Key) != key {
		t.Errorf("ListMultipartUploads: %d uploads, want just %s", len(lu.Uploads), storeID)
	}

	done, err := complete(ctx, client(b), bucket, key, uploadID, etags)
	if err != nil {
		t.Fatalf("CompleteMultipartUpload through b: %v", err)
	}
	etag := aws.ToString(done.ETag)
	if want := fmt.Sprintf("-%d\"", nParts); !strings.HasSuffix(etag, want) {
		t.Errorf("Complete ETag %s, want a multipart ETag ending in %s", etag, want)
	}

	// Restart b too: nothing about the object lives in a process.
	if err := b.Restart(); err != nil {
		t.Fatalf("restart b: %v", err)
	}
	for _, p := range proxies {
		c := client(p)
		got, out, err := getRange(ctx, c, bucket, key, "")
		if err != nil {
			t.Fatalf("GET through %s: %v", p.Endpoint, err)
		}
		testenv.AssertSame(t, "GET through "+p.Endpoint, got, plain)
		if e := aws.ToString(out.ETag); e != etag {
			t.Errorf("GET through %s: ETag %s, Complete said %s", p.Endpoint, e, etag)
		}
		if ct := aws.ToString(out.ContentType); ct != "application/x-test" {
			t.Errorf("GET through %s: Content-Type %q, want the one given at Create", p.Endpoint, ct)
		}
		// Ranges around every boundary between unequal parts.
		bound := 0
		for i := 0; i < nParts-1; i++ {
			bound += sizes[i]
			lo, hi := bound-1-rng.IntN(70000), bound+rng.IntN(min(70000, len(plain)-bound))
			h := fmt.Sprintf("bytes=%d-%d", lo, hi)
			got, out, err := getRange(ctx, c, bucket, key, h)
			if err != nil {
				t.Errorf("GET %s through %s: %v", h, p.Endpoint, err)
				continue
			}
			testenv.AssertSame(t, "GET "+h, got, plain[lo:hi+1])
			if cr, want := aws.ToString(out.ContentRange), fmt.Sprintf("bytes %d-%d/%d", lo, hi, len(plain)); cr != want {
				t.Errorf("GET %s: Content-Range %q, want %q", h, cr, want)
			}
		}
		// Every part by number.
		off := 0
		for i, s := range sizes {
			got, out, err := getPart(ctx, c, bucket, key, int32(i+1))
			if err != nil {
				t.Errorf("GET partNumber=%d through %s: %v", i+1, p.Endpoint, err)
				off += s
				continue
			}
			testenv.AssertSame(t, fmt.Sprintf("GET partNumber=%d", i+1), got, plain[off:off+s])
			if n := aws.ToInt32(out.PartsCount); n != nParts {
				t.Errorf("GET partNumber=%d: PartsCount %d, want %d", i+1, n, nParts)
			}
			off += s
		}
	}
	ls, err := client(a).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("object/")})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	if len(ls.Contents) != 1 || aws.ToInt64(ls.Contents[0].Size) != int64(len(plain)) || aws.ToString(ls.Contents[0].ETag) != etag {
		t.Errorf("ListObjectsV2: %v, want one object of %d bytes with ETag %s", summarize(ls.Contents), len(plain), etag)
	}
	if storedPlaintextWindow(t, bucket, key, plain) {
		t.Errorf("MinIO holds plaintext of %s", key)
	}
}

func summarize(objs []types.Object) []string {
	var s []string
	for _, o := range objs {
		s = append(s, fmt.Sprintf("%s %d %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag)))
	}
	return s
}
