package tools_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// TestToolsCompressed runs the aws cli, rclone and restic tests through an
// s3seal that compresses every bucket (S3SEAL_COMPRESS=s2, README
// "Compression"): their text-like files are stored compressed, their
// random, already compressed or encrypted data (restic packs; random files)
// is stored as before by the adaptive check, and every sync, check, backup
// and restore comes out as without compression. "stored" checks, at the
// store, that the first kind is compressed and the second is not.
func TestToolsCompressed(t *testing.T) {
	env := map[string]string{"S3SEAL_COMPRESS": "s2"}
	t.Run("stored", func(t *testing.T) {
		forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) {
			if st.Embedded() {
				t.Skip("the store's objects are read straight from MinIO")
			}
			p := st.startProxy(t, nil)
			bucket := st.newBucket(t, "compressed")
			src := t.TempDir()
			text := strings.Repeat(`{"level":"info","msg":"backup done","files":1234}`+"\n", 20_000)
			if err := os.WriteFile(filepath.Join(src, "app.log"), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "pack.bin"), randomBytes(3, 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			cli := newAWSCLI(t, testenv.AWSCLIs(t)[0].Path, p.Endpoint, p.AccessKey, p.SecretKey)
			cli.ok(t, "s3", "sync", src, "s3://"+bucket+"/")
			for key, want := range map[string]bool{"app.log": true, "pack.bin": false} {
				head, err := direct().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				h, err := envelope.ParseHeader(head.Metadata["s3seal"])
				if err != nil {
					t.Fatal(err)
				}
				if got := h.Flags()&envelope.FlagCompressed != 0; got != want {
					t.Errorf("%s: stored compressed %v, want %v (%d stored bytes)", key, got, want, aws.ToInt64(head.ContentLength))
				}
			}
			out := t.TempDir()
			cli.ok(t, "s3", "sync", "s3://"+bucket+"/", out)
			assertSameTree(t, "aws s3 sync through a compressing s3seal", src, out)
		})
	})
	t.Run("multipart", func(t *testing.T) {
		forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) {
			if st.Embedded() {
				t.Skip("the store's objects are read straight from MinIO")
			}
			testCompressedMultipartCLI(t, st)
		})
	})
	t.Run("list-parts", func(t *testing.T) {
		forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) {
			if st.Embedded() {
				t.Skip("the store's parts are listed straight from MinIO")
			}
			testCompressedListPartsCLI(t, st)
		})
	})
	t.Run("awscli", func(t *testing.T) {
		for _, v := range testenv.AWSCLIs(t) {
			t.Run(v.Name, func(t *testing.T) {
				forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) { testAWSCLI(t, st, v.Path) })
			})
		}
	})
	t.Run("rclone", func(t *testing.T) { forEachStoreWith(t, env, testRclone) })
	t.Run("restic", func(t *testing.T) { forEachStoreWith(t, env, testRestic) })
}

// testCompressedMultipartCLI: aws cli v2 uploads a 40 MiB JSON-lines file
// in 16 MiB parts (multipart_chunksize) through a compressing s3seal
// (FORMAT.md 12.2.3). At the store the object has the compressed flag, its
// parts are compressed and it takes fewer bytes than its plaintext; ranges
// and parts by number read back bit-exact; after a restart (empty caches)
// a listing shows the exact size, and the object downloads whole.
func testCompressedMultipartCLI(t *testing.T, st *storeEnv) {
	ctx := context.Background()
	const partSize, size = 16 << 20, 40 << 20
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "compressed-mp")
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"ts":"2026-12-05T06:%02d:%02d.%03dZ","level":"info","msg":"object stored","req":%d,"key":"logs/%d.json","bytes":%d}`+"\n",
			i/60%60, i%60, i%1000, i, i*7919%100000, i*104729%(1<<20))
	}
	plain := []byte(b.String()[:size])
	work := t.TempDir()
	in := filepath.Join(work, "app.jsonl")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := testenv.AWSCLIs(t)[1]
	config := awsConfig + "    multipart_chunksize = 16MB\n"
	cli := newAWSCLIConfig(t, v2.Path, p.Endpoint, p.AccessKey, p.SecretKey, config)
	const key = "logs/app.jsonl"
	cli.ok(t, "s3", "cp", in, "s3://"+bucket+"/"+key)

	head, err := direct().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.ParseHeader(head.Metadata["s3seal"])
	if err != nil {
		t.Fatal(err)
	}
	stored := aws.ToInt64(head.ContentLength)
	parts := envelope.PartsInETag(aws.ToString(head.ETag))
	if h.Flags()&envelope.FlagCompressed == 0 || h.Layout() != envelope.LayoutMultipart || parts != 3 {
		t.Fatalf("stored header: flags %#x, layout %v, ETag %s", h.Flags(), h.Layout(), aws.ToString(head.ETag))
	}
	if stored >= size {
		t.Fatalf("%d plaintext bytes stored in %d", size, stored)
	}
	var off int64
	for i, ph := range testenv.StoredPartHeaders(t, direct(), bucket, key, parts) {
		if ph.Compression() == nil || ph.Compression().Algorithm != envelope.AlgS2 {
			t.Fatalf("part %d stored uncompressed", i+1)
		}
		off += ph.CiphertextSize()
	}
	if off != stored {
		t.Fatalf("parts add up to %d stored bytes, object has %d", off, stored)
	}
	if st.storedPlaintextWindow(t, bucket, key, plain) {
		t.Errorf("the store holds plaintext of %s", key)
	}
	t.Logf("aws cli v2, 16 MiB parts: %d plaintext bytes stored in %d (%.3f)", size, stored, float64(stored)/float64(size))

	for _, r := range []struct{ start, end int64 }{
		{0, 99}, {partSize - 100, partSize + 99}, {5 << 20, 37 << 20}, {size - 1000, size - 1}, {partSize + 12345, partSize + 12345},
	} {
		h := fmt.Sprintf("bytes=%d-%d", r.start, r.end)
		out := filepath.Join(work, "range.out")
		var get struct{ ContentLength int64 }
		cli.json(t, &get, "s3api", "get-object", "--bucket", bucket, "--key", key, "--range", h, out)
		testenv.AssertSame(t, "get-object --range "+h, testenv.ReadFile(t, out), plain[r.start:r.end+1])
	}
	for pn, want := range map[string][]byte{"1": plain[:partSize], "3": plain[2*partSize:]} {
		out := filepath.Join(work, "part.out")
		var part struct{ PartsCount int }
		cli.json(t, &part, "s3api", "get-object", "--bucket", bucket, "--key", key, "--part-number", pn, out)
		testenv.AssertSame(t, "get-object --part-number "+pn, testenv.ReadFile(t, out), want)
		if part.PartsCount != 3 {
			t.Errorf("get-object --part-number %s: PartsCount %d", pn, part.PartsCount)
		}
	}

	// A restart (empty caches): the listing asks the store for the
	// header, and the object downloads whole.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	cli2 := newAWSCLIConfig(t, v2.Path, p.Endpoint, p.AccessKey, p.SecretKey, config)
	var ls struct {
		Contents []struct {
			Key  string
			Size int64
		}
	}
	cli2.json(t, &ls, "s3api", "list-objects-v2", "--bucket", bucket)
	if len(ls.Contents) != 1 || ls.Contents[0].Size != size {
		t.Errorf("list-objects-v2 after a restart: %+v, want %d bytes", ls.Contents, size)
	}
	out := filepath.Join(work, "app.out")
	cli2.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
	testenv.AssertSame(t, "aws s3 cp download after a restart", testenv.ReadFile(t, out), plain)
}

// testCompressedListPartsCLI: ListParts of an upload whose parts are
// compressed (README "Compression", ListParts), with aws cli v2 s3api and
// s3cmd. A 20 MiB JSON-lines file in 8 MiB parts: parts 1 and 2 are
// compressed and padded to 5 MiB at the store. `aws s3api list-parts`
// through the instance that stored them shows their exact plaintext
// sizes and the ETags upload-part gave, and complete-multipart-upload
// built from its output completes the object. After a restart the
// instance cannot know a compressed part's plaintext size (S3 cannot read
// a part before completion) and list-parts shows stored − 20480 =
// 5222400; `s3cmd put --upload-id` resumes the upload from there: it
// compares each listed part's size, then its ETag, with its own chunk,
// re-uploads every part (an s3seal part ETag is never an MD5), and
// completes; the object reads back exact. Through the same instance
// s3cmd finds the sizes equal and the ETags not, with the same outcome.
// `s3cmd put --continue-put` without an id takes the store's upload id
// from ListMultipartUploads and fails on it (NoSuchUpload), as for any
// upload through s3seal.
func testCompressedListPartsCLI(t *testing.T, st *storeEnv) {
	const chunk, size = 8 << 20, 20 << 20
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "compressed-lp")
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"ts":"2026-12-05T09:%02d:%02d.%03dZ","level":"info","msg":"part listed","req":%d,"key":"logs/%d.json"}`+"\n",
			i/60%60, i%60, i%1000, i, i*7919%100000)
	}
	plain := []byte(b.String()[:size])
	work := t.TempDir()
	in := filepath.Join(work, "app.jsonl")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	var chunks []string
	for i := 0; i*chunk < size; i++ {
		f := filepath.Join(work, fmt.Sprintf("part%d", i+1))
		if err := os.WriteFile(f, plain[i*chunk:min(size, (i+1)*chunk)], 0o600); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, f)
	}
	v2 := testenv.AWSCLIs(t)[1]
	type listed struct {
		Parts []struct {
			PartNumber int
			ETag       string
			Size       int64
		}
	}
	// start creates an upload and sends its first two parts; it returns the
	// upload id and the parts' ETags.
	start := func(cli *awsCLI, key string) (string, []string) {
		t.Helper()
		var up struct{ UploadId string }
		cli.json(t, &up, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", key)
		if !strings.HasPrefix(up.UploadId, "s3seal3z~") {
			t.Fatalf("upload id %s: not a compressed upload", up.UploadId)
		}
		var etags []string
		for i, f := range chunks[:2] {
			var res struct{ ETag string }
			cli.json(t, &res, "s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", up.UploadId,
				"--part-number", fmt.Sprint(i+1), "--body", f)
			etags = append(etags, res.ETag)
		}
		lp, err := direct().ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: aws.String(up.UploadId[strings.LastIndexByte(up.UploadId, '~')+1:])})
		if err != nil || len(lp.Parts) != 2 {
			t.Fatalf("ListParts at the store: %v", err)
		}
		for _, part := range lp.Parts {
			if n := aws.ToInt64(part.Size); n != envelope.MinStoredPartSize {
				t.Fatalf("part %d stored in %d bytes, want 5 MiB (compressed, padded)", aws.ToInt32(part.PartNumber), n)
			}
		}
		return up.UploadId, etags
	}
	check := func(key string) {
		t.Helper()
		out := filepath.Join(work, "get.out")
		os.Remove(out)
		cli := newAWSCLI(t, v2.Path, p.Endpoint, p.AccessKey, p.SecretKey)
		cli.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
		testenv.AssertSame(t, "download of "+key, testenv.ReadFile(t, out), plain)
	}

	// The instance that stored the parts: exact sizes; Complete from them.
	cli := newAWSCLI(t, v2.Path, p.Endpoint, p.AccessKey, p.SecretKey)
	id, etags := start(cli, "lp/complete.jsonl")
	var lp listed
	cli.json(t, &lp, "s3api", "list-parts", "--bucket", bucket, "--key", "lp/complete.jsonl", "--upload-id", id)
	if len(lp.Parts) != 2 {
		t.Fatalf("list-parts: %+v", lp)
	}
	var done []string
	for i, part := range lp.Parts {
		// (A part ETag that carries the part's MD5, when the cli sent a
		// Content-MD5, names the same stored part: README, "ETags".)
		if part.PartNumber != i+1 || part.Size != chunk || s3wire.StoreETag(part.ETag) != s3wire.StoreETag(etags[i]) {
			t.Errorf("list-parts: part %d: %+v, want %d bytes, ETag %s", i+1, part, chunk, etags[i])
		}
		done = append(done, fmt.Sprintf(`{"PartNumber":%d,"ETag":%q}`, part.PartNumber, part.ETag))
	}
	var last struct{ ETag string }
	cli.json(t, &last, "s3api", "upload-part", "--bucket", bucket, "--key", "lp/complete.jsonl", "--upload-id", id, "--part-number", "3", "--body", chunks[2])
	done = append(done, fmt.Sprintf(`{"PartNumber":3,"ETag":%q}`, last.ETag))
	cli.ok(t, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "lp/complete.jsonl", "--upload-id", id,
		"--multipart-upload", `{"Parts":[`+strings.Join(done, ",")+`]}`)
	check("lp/complete.jsonl")

	sc := newS3cmd(t, p)
	cfg := filepath.Join(envValue(sc.env, "HOME"), "s3cfg")
	// s3cmd resumes through the same instance: the sizes match, the ETags
	// (never MD5s) do not, and every part is sent again.
	id, _ = start(cli, "lp/same.jsonl")
	stdout, stderr := sc.ok(t, "-c", cfg, "--multipart-chunk-size-mb=8", "put", "--upload-id", id, in, "s3://"+bucket+"/lp/same.jsonl")
	t.Logf("s3cmd put --upload-id, same instance:\n%s%s", stdout, stderr)
	for pn := 1; pn <= 2; pn++ {
		if want := fmt.Sprintf("does not match for s3://%s/lp/same.jsonl part %d, reuploading", bucket, pn); !strings.Contains(stderr, want) ||
			strings.Contains(stderr, "size (") {
			t.Errorf("s3cmd: want a checksum mismatch for part %d (%q), no size mismatch", pn, want)
		}
	}
	check("lp/same.jsonl")
	// --continue-put without an id finds the upload by ListMultipartUploads,
	// which shows the store's upload id: s3seal cannot upload to it.
	start(cli, "lp/continue.jsonl")
	stdout, stderr, err := sc.run("-c", cfg, "--multipart-chunk-size-mb=8", "put", "--continue-put", in, "s3://"+bucket+"/lp/continue.jsonl")
	t.Logf("s3cmd put --continue-put: %v\n%s%s", err, stdout, stderr)
	if err == nil || !strings.Contains(stderr, "404 (NoSuchUpload)") {
		t.Errorf("s3cmd put --continue-put with the store's upload id: %v, want NoSuchUpload", err)
	}

	// After a restart: the uncompressed rule's sizes; s3cmd resumes.
	id, etags = start(cli, "lp/resume.jsonl")
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	cli = newAWSCLI(t, v2.Path, p.Endpoint, p.AccessKey, p.SecretKey)
	lp = listed{}
	cli.json(t, &lp, "s3api", "list-parts", "--bucket", bucket, "--key", "lp/resume.jsonl", "--upload-id", id)
	for i, part := range lp.Parts {
		if want := envelope.MinStoredPartSize - envelope.PartOverhead; part.Size != want || s3wire.StoreETag(part.ETag) != s3wire.StoreETag(etags[i]) {
			t.Errorf("list-parts after a restart: part %d: %+v, want %d bytes (stored − 20480), ETag %s", i+1, part, want, etags[i])
		}
	}
	sc = newS3cmd(t, p)
	cfg = filepath.Join(envValue(sc.env, "HOME"), "s3cfg")
	stdout, stderr = sc.ok(t, "-c", cfg, "--multipart-chunk-size-mb=8", "put", "--upload-id", id, in, "s3://"+bucket+"/lp/resume.jsonl")
	t.Logf("s3cmd put --upload-id:\n%s%s", stdout, stderr)
	for pn := 1; pn <= 2; pn++ {
		if want := fmt.Sprintf("size (%d vs %d) does not match for s3://%s/lp/resume.jsonl part %d, reuploading", envelope.MinStoredPartSize-envelope.PartOverhead, chunk, bucket, pn); !strings.Contains(stderr, want) {
			t.Errorf("s3cmd: no %q", want)
		}
	}
	check("lp/resume.jsonl")
}
