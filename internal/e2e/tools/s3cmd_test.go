package tools_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// newS3cmd returns s3cmd with a config file of its own pointing at the
// proxy, path-style, plain HTTP, 5 MiB multipart chunks.
func newS3cmd(t *testing.T, p *testenv.S3seal) *tool {
	t.Helper()
	requireTool(t, "s3cmd")
	u, err := url.Parse(p.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "s3cfg")
	conf := fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
use_https = False
signature_v2 = False
bucket_location = us-east-1
multipart_chunk_size_mb = 5
progress_meter = False
`, p.AccessKey, p.SecretKey, u.Host, u.Host)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tool{name: "s3cmd", env: childEnv(home)}
}

// s3cmdUploads returns s3cmd's "upload: 'a' -> 's3://…'" lines.
func s3cmdUploads(out string) []string {
	var up []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "upload:") {
			up = append(up, strings.TrimSpace(l))
		}
	}
	return up
}

func TestS3cmd(t *testing.T) { forEachStore(t, testS3cmd) }

func testS3cmd(t *testing.T, st *storeEnv) {
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "s3cmd")
	sc := newS3cmd(t, p)
	cfg := filepath.Join(envValue(sc.env, "HOME"), "s3cfg")
	withCfg := func(args ...string) []string { return append([]string{"-c", cfg}, args...) }
	work := t.TempDir()

	// Files under the 5 MiB chunk size: single PUTs.
	var specs []fileSpec
	for i := 0; i < 20; i++ {
		specs = append(specs, fileSpec{fmt.Sprintf("d%d/f%02d", i%3, i), []int{0, 1, 4095, 65536, 65537, 1 << 20, 3<<20 + 5}[i%7] + i})
	}
	src := filepath.Join(work, "src")
	writeTree(t, src, specs, 8)

	t.Run("sync", func(t *testing.T) {
		out, _ := sc.ok(t, withCfg("sync", src+"/", "s3://"+bucket+"/sync/")...)
		if up := s3cmdUploads(out); len(up) != len(specs) {
			t.Errorf("first sync: %d uploads, want %d:\n%s", len(up), len(specs), tail(out, 4<<10))
		}
		out, _ = sc.ok(t, withCfg("sync", src+"/", "s3://"+bucket+"/sync/")...)
		if up := s3cmdUploads(out); len(up) != 0 {
			t.Errorf("second sync of an unchanged tree uploaded %d files, want 0: %q", len(up), first(up, 10))
		}
		// s3cmd ls shows plaintext sizes.
		out, _ = sc.ok(t, withCfg("ls", "-r", "s3://"+bucket+"/sync/")...)
		sizes := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 {
				sizes[f[len(f)-1]] = f[2]
			}
		}
		for _, s := range specs {
			uri := "s3://" + bucket + "/sync/" + s.path
			if got := sizes[uri]; got != strconv.Itoa(s.size) {
				t.Errorf("s3cmd ls: %s size %q, want %d", uri, got, s.size)
			}
		}
		if len(sizes) != len(specs) {
			t.Errorf("s3cmd ls: %d objects, want %d:\n%s", len(sizes), len(specs), out)
		}
	})

	t.Run("get", func(t *testing.T) {
		for _, s := range []fileSpec{specs[5], specs[6], specs[0]} {
			out := filepath.Join(work, "get.out")
			os.Remove(out)
			sc.ok(t, withCfg("get", "s3://"+bucket+"/sync/"+s.path, out)...)
			testenv.AssertSame(t, "s3cmd get "+s.path, testenv.ReadFile(t, out), testenv.ReadFile(t, filepath.Join(src, filepath.FromSlash(s.path))))
		}
	})

	t.Run("del", func(t *testing.T) {
		victim := specs[6].path
		sc.ok(t, withCfg("del", "s3://"+bucket+"/sync/"+victim)...)
		out, _ := sc.ok(t, withCfg("ls", "-r", "s3://"+bucket+"/sync/")...)
		if strings.Contains(out, victim) {
			t.Errorf("s3cmd ls still shows %s after del:\n%s", victim, out)
		}
		if keys := st.storedKeys(t, bucket, "sync/"+victim); len(keys) != 0 {
			t.Errorf("the store still holds %q after del", keys)
		}
		// sync puts it back, and only it.
		out, _ = sc.ok(t, withCfg("sync", src+"/", "s3://"+bucket+"/sync/")...)
		if up := s3cmdUploads(out); len(up) != 1 || !strings.Contains(up[0], victim) {
			t.Errorf("sync after del: uploads %q, want just %s", up, victim)
		}
	})

	// A 12 MiB file in 5 MiB chunks: s3cmd compares each part's ETag with
	// the part's MD5 unless the response says x-amz-server-side-encryption:
	// aws:kms.
	t.Run("multipart-put", func(t *testing.T) {
		plain := randomBytes(12, 12<<20)
		in := filepath.Join(work, "mp.in")
		if err := os.WriteFile(in, plain, 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := sc.run(withCfg("put", in, "s3://"+bucket+"/mp/12MiB")...)
		if err != nil || strings.Contains(stderr, "MD5 Sums don't match") || strings.Contains(stderr, "Retrying") {
			t.Fatalf("s3cmd put (multipart): err %v\nstdout:\n%s\nstderr:\n%s", err, tail(stdout, 4<<10), tail(stderr, 4<<10))
		}
		head, err := p.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mp/12MiB")})
		if err != nil {
			t.Fatalf("HEAD mp/12MiB through the proxy: %v", err)
		}
		if etag := aws.ToString(head.ETag); !strings.HasSuffix(etag, `-3"`) {
			t.Errorf("s3cmd put of 12 MiB in 5 MiB chunks: ETag %s, want a 3-part multipart ETag", etag)
		}
		if n := aws.ToInt64(head.ContentLength); n != 12<<20 {
			t.Errorf("HEAD mp/12MiB: Content-Length %d, want %d", n, 12<<20)
		}
		t.Logf("s3cmd put: %s%s", stdout, stderr)
		out := filepath.Join(work, "mp.out")
		sc.ok(t, withCfg("get", "s3://"+bucket+"/mp/12MiB", out)...)
		testenv.AssertSame(t, "s3cmd get of the multipart object", testenv.ReadFile(t, out), plain)
		ls, _ := sc.ok(t, withCfg("ls", "s3://"+bucket+"/mp/")...)
		if !strings.Contains(ls, strconv.Itoa(12<<20)) {
			t.Errorf("s3cmd ls does not show the plaintext size %d:\n%s", 12<<20, ls)
		}
		if st.storedPlaintextWindow(t, bucket, "mp/12MiB", plain) {
			t.Errorf("the store holds plaintext of mp/12MiB")
		}
	})

	// sync of a tree with a multipart file: s3cmd cannot compare a
	// multipart ETag with an MD5, so it reads the MD5 it stored in
	// x-amz-meta-s3cmd-attrs; the second sync must still upload nothing.
	t.Run("sync-multipart", func(t *testing.T) {
		mpSrc := filepath.Join(work, "mpsrc")
		mpSpecs := []fileSpec{{"big", 6<<20 + 99}, {"small", 1234}}
		writeTree(t, mpSrc, mpSpecs, 10)
		out, _ := sc.ok(t, withCfg("sync", mpSrc+"/", "s3://"+bucket+"/mpsync/")...)
		if up := s3cmdUploads(out); len(up) != len(mpSpecs) {
			t.Errorf("first sync: %d uploads, want %d:\n%s", len(up), len(mpSpecs), out)
		}
		out, _ = sc.ok(t, withCfg("sync", mpSrc+"/", "s3://"+bucket+"/mpsync/")...)
		if up := s3cmdUploads(out); len(up) != 0 {
			t.Errorf("second sync uploaded %q, want nothing", up)
		}
		down := filepath.Join(work, "mpdown")
		sc.ok(t, withCfg("sync", "s3://"+bucket+"/mpsync/", down+"/")...)
		assertSameTree(t, "s3cmd sync down", mpSrc, down)
	})
}

// envValue returns the value of name in env ("NAME=value" entries).
func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}
