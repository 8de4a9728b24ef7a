package tools_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
)

// rclone's multipart settings for these tests: 5 MiB parts above 5 MiB, so
// that multipart is exercised with small files (its defaults are 200 MiB).
var rcloneMultipart = []string{"--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"}

// newRclone returns rclone with one remote "S:" on the proxy, configured
// only through the environment.
func newRclone(t *testing.T, p *testenv.S3seal) *tool {
	t.Helper()
	return newRcloneFor(t, p, "Other")
}

// newRcloneFor is newRclone with the remote's provider: rclone's defaults
// differ by provider (AWS, Minio and Ceph verify multipart ETags).
func newRcloneFor(t *testing.T, p *testenv.S3seal, provider string) *tool {
	t.Helper()
	requireTool(t, "rclone")
	home := t.TempDir()
	return &tool{name: "rclone", env: childEnv(home,
		"RCLONE_CONFIG="+filepath.Join(home, "rclone.conf"), // absent: remotes from env only
		"RCLONE_CONFIG_S_TYPE=s3",
		"RCLONE_CONFIG_S_PROVIDER="+provider,
		"RCLONE_CONFIG_S_ENDPOINT="+p.Endpoint,
		"RCLONE_CONFIG_S_ACCESS_KEY_ID="+p.AccessKey,
		"RCLONE_CONFIG_S_SECRET_ACCESS_KEY="+p.SecretKey,
		"RCLONE_CONFIG_S_REGION=us-east-1",
		"RCLONE_CONFIG_S_FORCE_PATH_STYLE=true",
	)}
}

// rcloneTree has small files, files just under and above the 5 MiB
// cutoff, and two multipart files with short last parts.
func rcloneTree() []fileSpec {
	specs := []fileSpec{
		{"empty", 0},
		{"one", 1},
		{"a/under-cutoff", 5<<20 - 1},
		{"a/at-cutoff", 5 << 20},
		{"a/b/multipart-2", 5<<20 + 1},
		{"a/b/multipart-3", 12<<20 + 777},
	}
	for i := 0; i < 24; i++ {
		specs = append(specs, fileSpec{fmt.Sprintf("small/s%02d", i), i * 9973})
	}
	return specs
}

var (
	rcloneCopied      = regexp.MustCompile(`(?m)INFO\s*:\s*(.+?): Copied \((new|replaced[^)]*|server-side copy)\)`)
	rcloneTransferred = regexp.MustCompile(`(?m)^Transferred:\s+(\d+) / (\d+),`)
	rcloneDifferences = regexp.MustCompile(`(\d+) differences found`)
	rcloneMatching    = regexp.MustCompile(`(\d+) matching files`)
)

// transferredFiles returns the file count of rclone's final stats
// ("Transferred: N / M, 100%").
func transferredFiles(t *testing.T, stderr string) int {
	t.Helper()
	m := rcloneTransferred.FindAllStringSubmatch(stderr, -1)
	if len(m) == 0 {
		if strings.Contains(stderr, "There was nothing to transfer") {
			return 0
		}
		t.Fatalf("rclone printed no file count:\n%s", tail(stderr, 4<<10))
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func TestRclone(t *testing.T) { forEachStore(t, testRclone) }

func testRclone(t *testing.T, st *storeEnv) {
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "rclone")
	rc := newRclone(t, p)
	work := t.TempDir()
	src := filepath.Join(work, "src")
	specs := rcloneTree()
	writeTree(t, src, specs, 7)
	remote := "S:" + bucket + "/tree"
	common := append([]string{"-v", "--retries", "1", "--low-level-retries", "1"}, rcloneMultipart...)

	t.Run("copy", func(t *testing.T) {
		_, stderr := rc.ok(t, append([]string{"copy", src, remote}, common...)...)
		if n := transferredFiles(t, stderr); n != len(specs) {
			t.Errorf("copy: %d files transferred, want %d\n%s", n, len(specs), tail(stderr, 4<<10))
		}
		for _, key := range []string{"tree/a/b/multipart-3", "tree/a/under-cutoff"} {
			if st.storedPlaintextWindow(t, bucket, key, testenv.ReadFile(t, filepath.Join(src, strings.TrimPrefix(key, "tree/")))) {
				t.Errorf("the store holds plaintext of %s", key)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		// Sizes and MD5s of every file: single-part objects through the
		// served x-amz-meta-md5chksum, multipart ones through the one
		// rclone set on upload.
		_, stderr := rc.ok(t, append([]string{"check", src, remote}, common...)...)
		if strings.Contains(stderr, "could not be checked") || strings.Contains(stderr, "hash") && strings.Contains(stderr, "ERROR") {
			t.Errorf("check could not compare hashes:\n%s", tail(stderr, 4<<10))
		}
		if m := rcloneDifferences.FindStringSubmatch(stderr); m == nil || m[1] != "0" {
			t.Errorf("check: want \"0 differences found\":\n%s", tail(stderr, 4<<10))
		}
		if m := rcloneMatching.FindStringSubmatch(stderr); m == nil || m[1] != strconv.Itoa(len(specs)) {
			t.Errorf("check: want \"%d matching files\":\n%s", len(specs), tail(stderr, 4<<10))
		}
		// --download compares the bytes themselves.
		_, stderr = rc.ok(t, append([]string{"check", "--download", src, remote}, common...)...)
		if m := rcloneDifferences.FindStringSubmatch(stderr); m == nil || m[1] != "0" {
			t.Errorf("check --download: want \"0 differences found\":\n%s", tail(stderr, 4<<10))
		}
	})

	t.Run("copy-again", func(t *testing.T) {
		_, stderr := rc.ok(t, append([]string{"copy", src, remote}, common...)...)
		if n := transferredFiles(t, stderr); n != 0 {
			t.Errorf("second copy of an unchanged tree: %d files transferred, want 0", n)
		}
		if m := rcloneCopied.FindAllString(stderr, -1); len(m) != 0 {
			t.Errorf("second copy of an unchanged tree copied %q", first(m, 10))
		}
	})

	t.Run("cat", func(t *testing.T) {
		plain := testenv.ReadFile(t, filepath.Join(src, "a", "b", "multipart-3"))
		for _, r := range []struct{ off, count int }{
			{5<<20 - 3000, 6000},    // across the first part boundary
			{0, 17},                 // head
			{10<<20 - 1, 2<<20 + 2}, // across the second boundary into the short last part
			{12<<20 + 700, 77},      // the tail
		} {
			stdout, _ := rc.ok(t, "cat", remote+"/a/b/multipart-3", "--offset", strconv.Itoa(r.off), "--count", strconv.Itoa(r.count))
			testenv.AssertSame(t, fmt.Sprintf("cat --offset %d --count %d", r.off, r.count), []byte(stdout), plain[r.off:r.off+r.count])
		}
		stdout, _ := rc.ok(t, "cat", remote+"/a/under-cutoff", "--offset", "65530", "--count", "100")
		testenv.AssertSame(t, "cat single-part --offset 65530 --count 100", []byte(stdout), testenv.ReadFile(t, filepath.Join(src, "a", "under-cutoff"))[65530:65630])
	})

	// moveto within the remote is a server-side CopyObject and a DELETE.
	for _, c := range []struct{ name, from string }{
		{"moveto-single-part", "a/under-cutoff"},
		{"moveto-multipart", "a/b/multipart-3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			plain := testenv.ReadFile(t, filepath.Join(src, filepath.FromSlash(c.from)))
			to := "S:" + bucket + "/moved/" + c.from
			_, stderr := rc.ok(t, append([]string{"moveto", remote + "/" + c.from, to}, common...)...)
			if !strings.Contains(stderr, "server-side") {
				t.Errorf("moveto was not server-side:\n%s", tail(stderr, 4<<10))
			}
			stdout, _ := rc.ok(t, "cat", to)
			testenv.AssertSame(t, "cat after moveto", []byte(stdout), plain)
			stdout, _ = rc.ok(t, "lsf", remote+"/"+c.from)
			if strings.TrimSpace(stdout) != "" {
				t.Errorf("source still listed after moveto: %q", stdout)
			}
			if keys := st.storedKeys(t, bucket, "tree/"+c.from); len(keys) != 0 {
				t.Errorf("source still in the store after moveto: %q", keys)
			}
			// The moved object still has its size and MD5.
			stdout, _ = rc.ok(t, "md5sum", to)
			if got, want := strings.Fields(stdout), md5hex(plain); len(got) == 0 || got[0] != want {
				t.Errorf("md5sum after moveto = %q, want %s", stdout, want)
			}
			if st.storedPlaintextWindow(t, bucket, "moved/"+c.from, plain) {
				t.Errorf("the store holds plaintext of moved/%s", c.from)
			}
		})
	}
}

// TestRcloneMultipartETag uploads multipart files with rclone at its
// defaults for each provider. AWS, Minio and Ceph make rclone compare the
// object's ETag after the upload with the MD5 of the part MD5s it sent
// ("multipart upload corrupted: Etag differ" otherwise); Other skips that.
// Every upload must succeed and verify, and HEAD must show S3's ETag over
// the plaintext parts.
func TestRcloneMultipartETag(t *testing.T) { forEachStore(t, testRcloneMultipartETag) }

func testRcloneMultipartETag(t *testing.T, st *storeEnv) {
	p := st.startProxy(t, map[string]string{"S3SEAL_DOMAINS": "s3.test"})
	bucket := st.newBucket(t, "rclone-etag")
	cl := p.S3Client()
	work := t.TempDir()
	for _, provider := range []string{"AWS", "Minio", "Ceph", "Other"} {
		t.Run(provider, func(t *testing.T) {
			rc := newRcloneFor(t, p, provider)
			if provider == "AWS" {
				// rclone addresses AWS buckets as virtual hosts whatever
				// force_path_style says: bucket.s3.test, through a
				// forwarding proxy, since no resolver knows the name.
				u, _ := url.Parse(p.Endpoint)
				rc.env = append(rc.env, "RCLONE_CONFIG_S_ENDPOINT=http://s3.test:"+u.Port(),
					"HTTP_PROXY="+forwardProxy(t, u.Host), "NO_PROXY=")
			}
			for _, chunk := range []int{5 << 20, 10 << 20, 6 << 20} {
				t.Run(strconv.Itoa(chunk), func(t *testing.T) {
					// Three parts, the last one short.
					name := fmt.Sprintf("%s-%d.bin", provider, chunk)
					plain := randomBytes(uint64(chunk)+uint64(len(provider)), 2*chunk+12345)
					local := filepath.Join(work, name)
					if err := os.WriteFile(local, plain, 0o600); err != nil {
						t.Fatal(err)
					}
					flags := []string{"-v", "--retries", "1", "--low-level-retries", "1",
						"--s3-upload-cutoff", "5M", "--s3-chunk-size", strconv.Itoa(chunk>>20) + "M"}
					remote := "S:" + bucket + "/" + provider + "/" + name
					_, stderr := rc.ok(t, append([]string{"copyto", local, remote}, flags...)...)
					if strings.Contains(stderr, "ERROR") {
						t.Fatalf("copyto logged an error:\n%s", tail(stderr, 4<<10))
					}

					want := multipartETag(plain, chunk)
					head, err := cl.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(provider + "/" + name)})
					if err != nil {
						t.Fatal(err)
					}
					if got := aws.ToString(head.ETag); got != want {
						t.Errorf("HEAD ETag = %s, want %s (S3's over the plaintext parts)", got, want)
					}

					stdout, _ := rc.ok(t, "md5sum", remote)
					if got := strings.Fields(stdout); len(got) == 0 || got[0] != md5hex(plain) {
						t.Errorf("md5sum = %q, want %s", stdout, md5hex(plain))
					}
					_, stderr = rc.ok(t, append([]string{"check", "--one-way", "--include", name, work, "S:" + bucket + "/" + provider}, flags...)...)
					if m := rcloneMatching.FindStringSubmatch(stderr); m == nil || m[1] != "1" || strings.Contains(stderr, "hash") && strings.Contains(stderr, "ERROR") {
						t.Errorf("check: want 1 file matching by hash:\n%s", tail(stderr, 4<<10))
					}
					_, stderr = rc.ok(t, append([]string{"check", "--download", "--one-way", "--include", name, work, "S:" + bucket + "/" + provider}, flags...)...)
					if m := rcloneDifferences.FindStringSubmatch(stderr); m == nil || m[1] != "0" {
						t.Errorf("check --download: want \"0 differences found\":\n%s", tail(stderr, 4<<10))
					}
					if st.storedPlaintextWindow(t, bucket, provider+"/"+name, plain) {
						t.Errorf("the store holds plaintext of %s", name)
					}
				})
			}
		})
	}
}

// multipartETag is S3's ETag for plain uploaded in parts of chunk bytes.
func multipartETag(plain []byte, chunk int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(plain); off += chunk {
		sum := md5.Sum(plain[off:min(off+chunk, len(plain))])
		sums = append(sums, sum[:]...)
		n++
	}
	return fmt.Sprintf(`"%x-%d"`, md5.Sum(sums), n)
}

// forwardProxy starts an HTTP proxy (as HTTP_PROXY names one) that sends
// every request to target with its Host header unchanged, so that a client
// can reach virtual-hosted-style names no resolver knows.
func forwardProxy(t *testing.T, target string) string {
	t.Helper()
	srv := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", target
		pr.Out.Host = pr.In.Host
	}})
	t.Cleanup(srv.Close)
	return srv.URL
}
