package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
)

// awsConfig has the cli's default transfer settings: multipart uploads and
// parallel ranged GETs of 8 MiB parts above 8 MiB.
const awsConfig = `[default]
region = us-east-1
output = json
s3 =
    addressing_style = path
`

// awsPartSize is the cli's default multipart_chunksize.
const awsPartSize = 8 << 20

// newAWSCLI returns the aws cli bin (testenv.AWSCLIs) talking to endpoint,
// with a config and credentials file of its own: nothing from the host's
// ~/.aws or AWS_* variables is used.
func newAWSCLI(t *testing.T, bin, endpoint, accessKey, secretKey string) *awsCLI {
	t.Helper()
	return newAWSCLIConfig(t, bin, endpoint, accessKey, secretKey, awsConfig)
}

// newAWSCLIConfig is newAWSCLI with the config file config (for other
// transfer settings).
func newAWSCLIConfig(t *testing.T, bin, endpoint, accessKey, secretKey, config string) *awsCLI {
	t.Helper()
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	creds := filepath.Join(home, "credentials")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &awsCLI{endpoint: endpoint, tool: tool{name: bin, env: childEnv(home,
		"AWS_ACCESS_KEY_ID="+accessKey,
		"AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1", // a failure is seen, not retried away
		"AWS_RETRY_MODE=standard",
		"AWS_PAGER=",
	)}}
}

type awsCLI struct {
	endpoint string
	tool     tool
}

// ok runs `aws --endpoint-url E args...`, fails the test on error, and
// returns stdout.
func (a *awsCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := a.tool.ok(t, append([]string{"--endpoint-url", a.endpoint}, args...)...)
	return out
}

// json runs an s3api command and decodes its JSON output into v.
func (a *awsCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := a.ok(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// resyncsStraight syncs src twice straight to the store up, with no
// s3seal between, and reports whether the second sync transferred files.
func resyncsStraight(t *testing.T, up *testenv.Upstream, bin, src string) bool {
	t.Helper()
	bucket := strings.ToLower("straight-") + testenv.RandomKey(4)
	if _, err := up.S3Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket in %s: %v", up.Name, err)
	}
	straight := newAWSCLI(t, bin, up.Endpoint, up.AccessKey, up.SecretKey)
	straight.ok(t, "s3", "sync", src, "s3://"+bucket+"/tree")
	return len(transfers(straight.ok(t, "s3", "sync", src, "s3://"+bucket+"/tree"))) > 0
}

// transfers returns the lines of `aws s3 sync/cp` output that report a
// transfer ("upload: …", "download: …", "copy: …").
func transfers(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		// Progress lines are separated by \r within one line.
		for _, part := range strings.Split(l, "\r") {
			part = strings.TrimSpace(part)
			for _, verb := range []string{"upload:", "download:", "copy:", "move:", "delete:"} {
				if strings.HasPrefix(part, verb) {
					lines = append(lines, part)
				}
			}
		}
	}
	return lines
}

// mixedTree is 200 files from 0 B to a few MiB, two of them above the
// cli's 8 MiB multipart threshold, in nested directories.
func mixedTree(seed uint64) []fileSpec {
	rng := rand.New(rand.NewPCG(seed, 1))
	var specs []fileSpec
	for i := 0; i < 200; i++ {
		var size int
		switch {
		case i == 0:
			size = 0
		case i == 1:
			size = 1
		case i == 2:
			size = 8<<20 + 1 // just above the threshold: a 1-byte last part
		case i == 3:
			size = 2*awsPartSize + 12345 // three parts
		case i%40 == 0:
			size = 1<<20 + rng.IntN(3<<20) // 1-4 MiB
		case i%7 == 0:
			size = 64<<10 + rng.IntN(512<<10)
		default:
			size = rng.IntN(64 << 10)
		}
		dir := fmt.Sprintf("d%d/e%d", i%5, i%3)
		if i%4 == 0 {
			dir = fmt.Sprintf("d%d", i%5)
		}
		specs = append(specs, fileSpec{path: fmt.Sprintf("%s/f%03d.bin", dir, i), size: size})
	}
	return specs
}

// TestAWSCLI runs aws cli v1 and v2 through s3seal on each store.
func TestAWSCLI(t *testing.T) {
	for _, v := range testenv.AWSCLIs(t) {
		t.Run(v.Name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st *storeEnv) { testAWSCLI(t, st, v.Path) })
		})
	}
}

func testAWSCLI(t *testing.T, st *storeEnv, bin string) {
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "awscli")
	cli := newAWSCLI(t, bin, p.Endpoint, p.AccessKey, p.SecretKey)
	work := t.TempDir()

	t.Run("cp-100MiB", func(t *testing.T) {
		const size = 100 << 20
		plain := randomBytes(100, size)
		in := filepath.Join(work, "big.in")
		if err := os.WriteFile(in, plain, 0o600); err != nil {
			t.Fatal(err)
		}
		key := "big/100MiB.bin"
		cli.ok(t, "s3", "cp", in, "s3://"+bucket+"/"+key)

		var ls struct {
			Contents []struct {
				Key, ETag string
				Size      int64
			}
		}
		cli.json(t, &ls, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "big/")
		if len(ls.Contents) != 1 || ls.Contents[0].Key != key {
			t.Fatalf("list-objects-v2 = %+v, want just %s", ls.Contents, key)
		}
		if ls.Contents[0].Size != size {
			t.Errorf("list-objects-v2: Size %d, want %d", ls.Contents[0].Size, size)
		}
		listed := ls.Contents[0].ETag
		parts := (size + awsPartSize - 1) / awsPartSize
		if want := fmt.Sprintf("-%d\"", parts); !strings.HasSuffix(listed, want) {
			t.Errorf("list-objects-v2: ETag %s, want a multipart ETag ending in %s", listed, want)
		}
		// When the parts came with Content-MD5, HEAD and GET show S3's
		// ETag over the plaintext parts, the listing the store's (README,
		// "ETags"); a condition on either names the object.
		var head struct{ ETag string }
		cli.json(t, &head, "s3api", "head-object", "--bucket", bucket, "--key", key, "--if-match", listed)
		etag := head.ETag
		if !strings.HasSuffix(etag, fmt.Sprintf("-%d\"", parts)) {
			t.Errorf("head-object: ETag %s, want a multipart ETag of %d parts", etag, parts)
		}
		cli.json(t, &head, "s3api", "head-object", "--bucket", bucket, "--key", key, "--if-match", etag)
		if st.storedPlaintextWindow(t, bucket, key, plain) {
			t.Errorf("the store holds plaintext of %s", key)
		}

		// Default settings download it as parallel 8 MiB ranged GETs.
		out := filepath.Join(work, "big.out")
		cli.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
		testenv.AssertSame(t, "aws s3 cp download of "+key, testenv.ReadFile(t, out), plain)
		os.Remove(out)

		// Ranges across part boundaries: a few bytes around the first
		// boundary, one spanning two whole parts.
		ranges := []struct{ start, end int64 }{
			{awsPartSize - 100, awsPartSize + 99},
			{3*awsPartSize - 7, 5*awsPartSize + 7},
		}
		for _, r := range ranges {
			h := fmt.Sprintf("bytes=%d-%d", r.start, r.end)
			out := filepath.Join(work, "range.out")
			var get struct {
				ContentLength int64
				ContentRange  string
				ETag          string
			}
			cli.json(t, &get, "s3api", "get-object", "--bucket", bucket, "--key", key, "--range", h, out)
			testenv.AssertSame(t, "get-object --range "+h, testenv.ReadFile(t, out), plain[r.start:r.end+1])
			if want := fmt.Sprintf("bytes %d-%d/%d", r.start, r.end, size); get.ContentRange != want {
				t.Errorf("get-object --range %s: ContentRange %q, want %q", h, get.ContentRange, want)
			}
			if get.ContentLength != r.end-r.start+1 {
				t.Errorf("get-object --range %s: ContentLength %d, want %d", h, get.ContentLength, r.end-r.start+1)
			}
			if get.ETag != etag {
				t.Errorf("get-object --range %s: ETag %s, HEAD said %s", h, get.ETag, etag)
			}
		}
		// A part by number.
		var part struct {
			ContentLength int64
			PartsCount    int
			ETag          string
		}
		out = filepath.Join(work, "part.out")
		cli.json(t, &part, "s3api", "get-object", "--bucket", bucket, "--key", key, "--part-number", "13", out)
		testenv.AssertSame(t, "get-object --part-number 13", testenv.ReadFile(t, out), plain[12*awsPartSize:])
		if part.ETag != etag {
			t.Errorf("get-object --part-number 13: ETag %s, HEAD said %s", part.ETag, etag)
		}
		if part.PartsCount != parts {
			t.Errorf("get-object --part-number 13: PartsCount %d, want %d", part.PartsCount, parts)
		}
	})

	t.Run("sync", func(t *testing.T) {
		src := filepath.Join(work, "src")
		specs := mixedTree(6)
		writeTree(t, src, specs, 6)
		// Files last changed a few seconds ago, as a tree being backed up
		// usually is: a store that keeps LastModified to the second (not
		// to the millisecond, as S3 and MinIO do) would otherwise look
		// older than a file written in the second of its upload, and the
		// cli re-uploads such files on every sync.
		past := time.Now().Add(-3 * time.Second)
		for _, sp := range specs {
			if err := os.Chtimes(filepath.Join(src, filepath.FromSlash(sp.path)), past, past); err != nil {
				t.Fatal(err)
			}
		}
		dst := "s3://" + bucket + "/tree"

		out := cli.ok(t, "s3", "sync", src, dst)
		if n := len(transfers(out)); n != len(specs) {
			t.Errorf("first sync: %d transfers, want %d:\n%s", n, len(specs), tail(out, 4<<10))
		}
		out = cli.ok(t, "s3", "sync", src, dst)
		if tr := transfers(out); len(tr) != 0 {
			// versitygw v1.8.0 makes the cli re-upload some unchanged
			// files straight too (it compares modification times): only
			// then is this one check left out for the store.
			if st.Upstream != nil && st.Upstream.Name != "minio" && resyncsStraight(t, st.Upstream, bin, src) {
				t.Logf("second sync re-uploaded %d files; straight against %s it re-uploads too, so the check is left out for this store", len(tr), st.Upstream.Name)
			} else {
				t.Errorf("second sync of an unchanged tree transferred %d files, want 0: %q", len(tr), first(tr, 10))
			}
		}

		// Listings carry plaintext sizes, multipart ETags for the files
		// above the threshold.
		var ls struct {
			Contents []struct {
				Key, ETag string
				Size      int64
			}
		}
		cli.json(t, &ls, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/")
		sizes := map[string]int{}
		for _, s := range specs {
			sizes["tree/"+s.path] = s.size
		}
		if len(ls.Contents) != len(specs) {
			t.Errorf("list-objects-v2: %d objects, want %d", len(ls.Contents), len(specs))
		}
		for _, o := range ls.Contents {
			want, ok := sizes[o.Key]
			if !ok {
				t.Errorf("list-objects-v2: unexpected key %q", o.Key)
				continue
			}
			if o.Size != int64(want) {
				t.Errorf("list-objects-v2: %s Size %d, want %d", o.Key, o.Size, want)
			}
			multipart := want >= awsPartSize
			if got := !strings.HasSuffix(o.ETag, `-0"`); got != multipart {
				t.Errorf("list-objects-v2: %s (%d bytes) ETag %s: multipart %v, want %v", o.Key, want, o.ETag, got, multipart)
			}
		}

		down := filepath.Join(work, "down")
		out = cli.ok(t, "s3", "sync", dst, down)
		if n := len(transfers(out)); n != len(specs) {
			t.Errorf("sync down: %d transfers, want %d", n, len(specs))
		}
		assertSameTree(t, "aws s3 sync down", src, down)
		out = cli.ok(t, "s3", "sync", dst, down)
		if tr := transfers(out); len(tr) != 0 {
			t.Errorf("second sync down transferred %d files, want 0: %q", len(tr), first(tr, 10))
		}

		// A server-side copy of a multipart object: above the threshold the
		// cli copies it with UploadPartCopy, 8 MiB at a time.
		mp := specs[3]
		out = cli.ok(t, "s3", "cp", dst+"/"+mp.path, "s3://"+bucket+"/copied/"+mp.path)
		if tr := transfers(out); len(tr) != 1 || !strings.HasPrefix(tr[0], "copy:") {
			t.Errorf("aws s3 cp s3:// s3://: transfers %q, want one copy", tr)
		}
		got := filepath.Join(work, "copied.out")
		cli.ok(t, "s3", "cp", "s3://"+bucket+"/copied/"+mp.path, got)
		testenv.AssertSame(t, "server-side copy of "+mp.path, testenv.ReadFile(t, got), testenv.ReadFile(t, filepath.Join(src, filepath.FromSlash(mp.path))))
		var head struct {
			ContentLength int64
			ETag          string
		}
		cli.json(t, &head, "s3api", "head-object", "--bucket", bucket, "--key", "copied/"+mp.path)
		if head.ContentLength != int64(mp.size) || !strings.HasSuffix(head.ETag, `-3"`) {
			t.Errorf("head-object of the copy: %d bytes, ETag %s; want %d bytes in 3 parts", head.ContentLength, head.ETag, mp.size)
		}

		// A changed file is uploaded again, and only it.
		changed := filepath.Join(src, filepath.FromSlash(specs[5].path))
		if err := os.WriteFile(changed, []byte("changed, and of another size"), 0o600); err != nil {
			t.Fatal(err)
		}
		out = cli.ok(t, "s3", "sync", src, dst)
		if tr := transfers(out); len(tr) != 1 || !strings.Contains(tr[0], specs[5].path) {
			t.Errorf("sync after changing %s: transfers %q, want just that file", specs[5].path, tr)
		}
	})
}
