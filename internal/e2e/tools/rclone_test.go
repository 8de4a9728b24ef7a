package tools_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// rclone's multipart settings for these tests: 5 MiB parts above 5 MiB, so
// that multipart is exercised with small files (its defaults are 200 MiB).
var rcloneMultipart = []string{"--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"}

// newRclone returns rclone with one remote "S:" on the proxy, configured
// only through the environment.
func newRclone(t *testing.T, p *testenv.S3seal) *tool {
	t.Helper()
	requireTool(t, "rclone")
	home := t.TempDir()
	return &tool{name: "rclone", env: childEnv(home,
		"RCLONE_CONFIG="+filepath.Join(home, "rclone.conf"), // absent: remotes from env only
		"RCLONE_CONFIG_S_TYPE=s3",
		"RCLONE_CONFIG_S_PROVIDER=Other",
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
