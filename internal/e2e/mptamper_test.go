package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// Store-level tampering with multipart objects (format version 2): whoever
// can write to the store starts a new upload at the object's key and
// completes it from the genuine object header and a chosen set of genuine
// stored parts. Every such object must fail closed on GET, range GET, HEAD
// and `s3seal decrypt`, while untouched objects still read bit-exact.

// mpObject is a multipart object written through the proxy: its
// plaintext, and what the store holds (the envelope header and each stored
// part, header included).
type mpObject struct {
	plain  []byte
	header map[string]string
	parts  [][]byte
}

// mpPartSizes are the plaintext part sizes of the test objects: the store
// wants every part but the last to be at least 5 MiB.
var mpPartSizes = []int{5 << 20, 5 << 20, 300_000}

// putMultipart uploads a multipart object through the proxy and reads back
// what the store holds for it.
func putMultipart(t *testing.T, c *s3.Client, bucket, key, seed string) mpObject {
	t.Helper()
	ctx := context.Background()
	var total int
	for _, n := range mpPartSizes {
		total += n
	}
	plain := plaintext(seed, total)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	var done []types.CompletedPart
	off := 0
	for i, n := range mpPartSizes {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(plain[off : off+n])})
		if err != nil {
			t.Fatalf("UploadPart %s %d: %v", key, i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
		off += n
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload %s: %v", key, err)
	}
	st := readStored(t, bucket, key)
	return mpObject{plain: plain, header: st.Metadata, parts: splitParts(t, st.Body)}
}

// splitParts cuts a stored multipart body into its stored parts.
func splitParts(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var parts [][]byte
	for _, n := range mpPartSizes {
		size := int(envelope.PartCiphertextSize(int64(n)))
		if len(body) < size {
			t.Fatalf("stored body too short for its parts")
		}
		parts, body = append(parts, body[:size]), body[size:]
	}
	return parts
}

// writeMultipartStored completes a new multipart upload directly at the
// store, at bucket/key, from the given metadata and stored parts.
func writeMultipartStored(t *testing.T, bucket, key string, meta map[string]string, parts [][]byte) {
	t.Helper()
	ctx := context.Background()
	d := direct()
	up, err := d.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, Metadata: meta})
	if err != nil {
		t.Fatalf("create upload at the store: %v", err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		res, err := d.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("upload part at the store: %v", err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := d.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete upload at the store: %v", err)
	}
}

// runDecrypt runs `s3seal decrypt` on bucket/key straight from the store
// with the proxy's keyring, and returns the plaintext file it wrote (nil if
// it wrote none) and its error.
func runDecrypt(t *testing.T, p *testenv.S3seal, bucket, key string) ([]byte, error) {
	t.Helper()
	bin := testenv.BuildS3seal(t)
	out := filepath.Join(t.TempDir(), "plain")
	cmd := exec.Command(bin, "decrypt", "s3://"+bucket+"/"+key, "-o", out)
	cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+p.DataDir, "S3SEAL_MASTER_KEY_FILE="+p.MasterKeyFile)
	for k, v := range store.UpstreamEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("s3seal decrypt %s: %s", key, strings.TrimSpace(string(msg)))
	}
	got, rerr := os.ReadFile(out)
	if rerr != nil {
		got = nil
	}
	return got, err
}

func TestTamperedMultipartObjectsAreRefused(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "mptamper")
	c := p.S3Client()
	ctx := context.Background()

	// Two genuine objects at one key (the second replaces the first; the
	// first's stored form is kept aside), and one at another key.
	older := putMultipart(t, c, bucket, "k", "older")
	genuine := putMultipart(t, c, bucket, "k", "genuine")
	other := putMultipart(t, c, bucket, "elsewhere", "elsewhere")

	// An upload completed at the store but never finalized by s3seal: its
	// object carries the pending header from CreateMultipartUpload. A retry
	// of CompleteMultipartUpload through the proxy finalizes it.
	var pending, finalized mpObject
	{
		key := "p"
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(*up.UploadId, "~")
		if len(f) != 4 || f[0] != "s3seal2" {
			t.Fatalf("upload id %q is not an s3seal2 id", *up.UploadId)
		}
		storeID := f[3]
		var done, direct []types.CompletedPart
		off := 0
		for i, n := range mpPartSizes {
			res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(genuine.plain[off : off+n])})
			if err != nil {
				t.Fatal(err)
			}
			off += n
			done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
			tag := strings.TrimSuffix(strings.Trim(*res.ETag, `"`), "-0")
			direct = append(direct, types.CompletedPart{ETag: aws.String(`"` + tag + `"`), PartNumber: aws.Int32(int32(i + 1))})
		}
		if _, err := store.S3Client().CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
			UploadId: &storeID, MultipartUpload: &types.CompletedMultipartUpload{Parts: direct}}); err != nil {
			t.Fatal(err)
		}
		st := readStored(t, bucket, key)
		pending = mpObject{plain: genuine.plain, header: st.Metadata, parts: splitParts(t, st.Body)}
		if r := getVia(t, c, bucket, key, ""); r.status == 0 {
			t.Errorf("GET of an upload completed at the store but not finalized answered 2xx (%v)", r)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
			t.Error("HEAD of an upload completed at the store but not finalized succeeded")
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatalf("retried CompleteMultipartUpload did not finalize the completed upload: %v", err)
		}
		if r := getVia(t, c, bucket, key, ""); r.status != 0 || r.readErr != nil || !bytes.Equal(r.body, genuine.plain) {
			t.Fatalf("finalized by the retried Complete, the object does not read back: %v", r)
		}
		st = readStored(t, bucket, key)
		finalized = mpObject{plain: genuine.plain, header: st.Metadata, parts: splitParts(t, st.Body)}
	}

	g := genuine.parts
	cases := []struct {
		name   string
		key    string
		meta   map[string]string
		parts  [][]byte
		ranges []string
	}{
		{"completed-but-not-finalized", "p", pending.header, pending.parts, []string{"bytes=0-99"}},
		{"pending-header-put-back", "p", pending.header, finalized.parts, []string{"bytes=0-99", "bytes=-100"}},
		{"drop-middle-part", "k", genuine.header, [][]byte{g[0], g[2]}, []string{"bytes=0-99", "bytes=-100"}},
		{"drop-trailing-part", "k", genuine.header, [][]byte{g[0], g[1]}, []string{"bytes=0-99", "bytes=6000000-6000099"}},
		{"drop-trailing-parts", "k", genuine.header, [][]byte{g[0]}, []string{"bytes=0-99"}},
		{"splice-part-of-other-upload", "k", genuine.header, [][]byte{g[0], older.parts[1], g[2]},
			[]string{"bytes=0-99", "bytes=6000000-6000099", "bytes=5242000-5243000"}},
		{"reorder-parts", "k", genuine.header, [][]byte{g[1], g[0], g[2]}, []string{"bytes=0-99", "bytes=-100"}},
		{"older-object-header", "k", older.header, g, []string{"bytes=0-99", "bytes=-100"}},
		{"pending-header-of-another-key", "k", pending.header, g, []string{"bytes=0-99"}},
		{"header-of-object-at-other-key", "k", other.header, g, []string{"bytes=0-99"}},
		{"swap-headers-of-two-objects", "elsewhere", genuine.header, other.parts, []string{"bytes=0-99"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			restore := map[string]mpObject{"k": genuine, "elsewhere": other, "p": finalized}[tc.key]
			want := restore.plain
			writeMultipartStored(t, bucket, tc.key, tc.meta, tc.parts)
			r := getVia(t, c, bucket, tc.key, "")
			t.Logf("GET: %v", r)
			if r.status == 0 {
				t.Errorf("GET answered 2xx (%v)", r)
			}
			// An object with a pending header (no manifest) is not
			// finalized: a refusal that tells the client to retry
			// Complete, not a 500 SDKs retry in vain.
			if strings.HasPrefix(tc.name, "completed-but-not-finalized") && (r.status != 403 || r.code != "InvalidObjectState") {
				t.Errorf("GET of an object never finalized: %v, want 403 InvalidObjectState", r)
			}
			assertNoTamperedPlaintext(t, "GET", r, want)
			for _, h := range tc.ranges {
				res := getVia(t, c, bucket, tc.key, h)
				t.Logf("GET %s: %v", h, res)
				if res.status == 0 {
					t.Errorf("GET %s answered 2xx (%v)", h, res)
				}
			}
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(tc.key)}); err == nil {
				t.Error("HEAD succeeded")
			}
			if got, err := runDecrypt(t, p, bucket, tc.key); err == nil || got != nil {
				t.Errorf("s3seal decrypt: err %v, wrote %d bytes", err, len(got))
			}
			// Put the genuine object back: it reads bit-exact again (the
			// proxy caches nothing a tampered object could poison).
			writeMultipartStored(t, bucket, tc.key, restore.header, restore.parts)
			if r := getVia(t, c, bucket, tc.key, ""); r.status != 0 || r.readErr != nil || !bytes.Equal(r.body, want) {
				t.Fatalf("restored object does not read back: %v", r)
			}
		})
	}

	// The untouched objects read bit-exact through the proxy, in ranges
	// across part boundaries, and with s3seal decrypt.
	for key, o := range map[string]mpObject{"k": genuine, "elsewhere": other, "p": finalized} {
		want := o.plain
		for _, h := range []string{"", "bytes=5242870-5242890", "bytes=10485750-", "bytes=-1"} {
			r := getVia(t, c, bucket, key, h)
			exp := want
			if h != "" {
				rr, _ := parseRange(h, int64(len(want)))
				exp = want[rr.start : rr.end+1]
			}
			if r.status != 0 || r.readErr != nil || !bytes.Equal(r.body, exp) {
				t.Errorf("GET %s %s: %v", key, h, r)
			}
		}
		if got, err := runDecrypt(t, p, bucket, key); err != nil || !bytes.Equal(got, want) {
			t.Errorf("s3seal decrypt %s: %v (%d bytes)", key, err, len(got))
		}
	}
}
