package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// twoKeys is an s3seal with an embedded keyring of two keys: bucketA
// under a (the default), bucketB under b.
type twoKeys struct {
	kr               *keyring.Keyring
	a, b             *kms.KeyMetadata
	p                *testenv.S3seal
	bucketA, bucketB string
}

func startTwoKeys(t *testing.T, start func(*testing.T, map[string]string) *testenv.S3seal) *twoKeys {
	t.Helper()
	dir, keyDir := t.TempDir(), t.TempDir()
	mk := filepath.Join(keyDir, "master.key")
	kr, err := keyring.Open(keyring.Config{Dir: dir, MasterKeyFile: mk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	k := &twoKeys{kr: kr}
	if k.a, err = kr.CreateKey("copy source"); err != nil {
		t.Fatal(err)
	}
	if k.b, err = kr.CreateKey("copy destination"); err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(rand.Text()[:8])
	k.bucketA, k.bucketB = "rewrap-a-"+suffix, "rewrap-b-"+suffix
	k.p = start(t, map[string]string{"S3SEAL_DATA_DIR": dir, "S3SEAL_MASTER_KEY_FILE": mk,
		"S3SEAL_KMS_KEY_ID": k.a.KeyID, "S3SEAL_BUCKET_KEYS": k.bucketB + "=" + k.b.KeyID})
	for _, bk := range []string{k.bucketA, k.bucketB} {
		if _, err := k.p.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bk)}); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// TestCopyMultipartUnderAnotherKey, on every store, through the s3seal
// binary: a multipart object in a bucket under key A is copied with
// CopyObject, and assembled with UploadPartCopy of ranges across its
// parts, into a bucket under key B (S3SEAL_BUCKET_KEYS). Once A is
// disabled and the proxy restarted (no data key cached), both copies read
// bit-exact and the source does not.
func TestCopyMultipartUnderAnotherKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		ctx := context.Background()
		k := startTwoKeys(t, st.StartProxy)
		kr, a, b, p, bucketA, bucketB := k.kr, k.a, k.b, k.p, k.bucketA, k.bucketB
		c := p.S3Client()
		sizes := []int{5<<20 + 4099, 5<<20 + 1, 70_001}
		data := randomBytes(sizes[0] + sizes[1] + sizes[2])
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucketA), Key: aws.String("src"),
			ContentType: aws.String("text/x-parts"), Metadata: map[string]string{"who": "me"}})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		off := 0
		for i, n := range sizes {
			res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucketA), Key: aws.String("src"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data[off : off+n]), ContentMD5: contentMD5(data[off : off+n])})
			if err != nil {
				t.Fatal(err)
			}
			done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
			off += n
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucketA), Key: aws.String("src"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatal(err)
		}

		cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucketB), Key: aws.String("copy"),
			CopySource: aws.String(bucketA + "/src")})
		if err != nil {
			t.Fatalf("CopyObject to the bucket under another key: %v", err)
		}
		// The re-wrapped copy keeps the source's ETag over the plaintext
		// parts (its parts came with Content-MD5).
		if got, want := aws.ToString(cp.CopyObjectResult.ETag), s3MultipartETag(data[:sizes[0]], data[sizes[0]:sizes[0]+sizes[1]], data[sizes[0]+sizes[1]:]); got != want {
			t.Errorf("copy ETag %s, want %s", got, want)
		}
		up, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucketB), Key: aws.String("assembled")})
		if err != nil {
			t.Fatal(err)
		}
		ranges := [][2]int{{7, 5<<20 + 5000}, {5<<20 + 5001, len(data) - 2}}
		var assembled []byte
		done = nil
		for i, r := range ranges {
			res, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucketB), Key: aws.String("assembled"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String(bucketA + "/src"),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
			if err != nil {
				t.Fatalf("UploadPartCopy %d: %v", i+1, err)
			}
			done = append(done, types.CompletedPart{ETag: res.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))})
			assembled = append(assembled, data[r[0]:r[1]+1]...)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucketB), Key: aws.String("assembled"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatal(err)
		}

		if err := kr.DisableKey(a.KeyID); err != nil {
			t.Fatal(err)
		}
		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
		c = p.S3Client()
		if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketA), Key: aws.String("src")}); err == nil {
			t.Fatal("the source reads with its key disabled: the test proves nothing")
		}
		read := func(key string, rng *string, pn *int32, want []byte) {
			t.Helper()
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketB), Key: aws.String(key), Range: rng, PartNumber: pn})
			if err != nil {
				t.Errorf("GET %s (range %v, part %v): %v", key, aws.ToString(rng), aws.ToInt32(pn), err)
				return
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("GET %s (range %v, part %v): %d bytes (%v), want %d", key, aws.ToString(rng), aws.ToInt32(pn), len(got), err, len(want))
			}
			if aws.ToString(out.SSEKMSKeyId) != b.KeyID {
				t.Errorf("GET %s: under %s, want %s", key, aws.ToString(out.SSEKMSKeyId), b.KeyID)
			}
		}
		from, to := sizes[0]-3, sizes[0]+sizes[1]+2
		read("copy", nil, nil, data)
		read("copy", aws.String(fmt.Sprintf("bytes=%d-%d", from, to)), nil, data[from:to+1])
		read("copy", nil, aws.Int32(2), data[sizes[0]:sizes[0]+sizes[1]])
		read("assembled", nil, nil, assembled)
		read("assembled", nil, aws.Int32(2), assembled[5<<20+5000-7+1:])
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketB), Key: aws.String("copy")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(head.ContentType) != "text/x-parts" || head.Metadata["who"] != "me" || aws.ToInt64(head.ContentLength) != int64(len(data)) {
			t.Errorf("HEAD copy: %q %v %d bytes", aws.ToString(head.ContentType), head.Metadata, aws.ToInt64(head.ContentLength))
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucketB)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Contents {
			want := int64(len(data))
			if aws.ToString(o.Key) == "assembled" {
				want = int64(len(assembled))
			}
			if aws.ToInt64(o.Size) != want {
				t.Errorf("listing: %s is %d bytes, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), want)
			}
		}
	})
}

// TestCopyRewrapBoundedMemory: a re-wrapping copy streams its parts: the
// proxy's peak RSS (VmHWM) stays under rssLimit while it copies four
// 64 MiB parts (eight at once would be 256 MiB if parts were buffered).
func TestCopyRewrapBoundedMemory(t *testing.T) {
	const part, parts = 64 << 20, 4
	ctx := context.Background()
	k := startTwoKeys(t, func(t *testing.T, env map[string]string) *testenv.S3seal {
		all := store.UpstreamEnv()
		for n, v := range env {
			all[n] = v
		}
		return testenv.StartS3seal(t, all)
	})
	c := k.p.S3Client(func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	data := randomBytes(part)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(k.bucketA), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i := range parts {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(k.bucketA), Key: aws.String("big"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(k.bucketA), Key: aws.String("big"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	before, err := k.p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(k.bucketB), Key: aws.String("big"),
		CopySource: aws.String(k.bucketA + "/big")}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	after, err := k.p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(k.bucketB), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SSEKMSKeyId) != k.b.KeyID {
		t.Errorf("the copy is under %s, want %s", aws.ToString(out.SSEKMSKeyId), k.b.KeyID)
	}
	want := io.MultiReader(bytes.NewReader(data), bytes.NewReader(data), bytes.NewReader(data), bytes.NewReader(data))
	if n, err := compareStream(out.Body, want); err != nil {
		t.Errorf("GET of the copy: after %d bytes: %v", n, err)
	}
	out.Body.Close()
	t.Logf("re-wrapping copy of %d MiB: %v; proxy VmHWM %.1f MiB before, %.1f MiB after (limit %d MiB)",
		parts*part>>20, took.Round(time.Millisecond), float64(before)/(1<<20), float64(after)/(1<<20), rssLimit>>20)
	if after >= rssLimit {
		t.Errorf("proxy peak RSS %.1f MiB during the copy, want < %d MiB", float64(after)/(1<<20), rssLimit>>20)
	}
}
