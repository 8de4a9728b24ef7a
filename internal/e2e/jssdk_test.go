package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jsSDKDir returns a directory holding node_modules with the packages of
// testdata/js/package.json, installed with npm once per version of that
// file into the user's cache directory (outside the repository). A file
// lock keeps parallel test processes from installing at the same time. A
// failed install fails the test.
func jsSDKDir(t *testing.T) string {
	t.Helper()
	pkg, err := os.ReadFile("testdata/js/package.json")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for npm packages: %v", err)
	}
	sum := sha256.Sum256(pkg)
	dir := filepath.Join(cache, "s3seal-e2e-npm", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to install @aws-sdk/client-s3: %v", err)
	}
	start := time.Now()
	cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--no-save")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm install in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm install in %s took %v", dir, time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jsPutGetResult is what testdata/js/put-get.mjs prints.
type jsPutGetResult struct {
	SDKVersion string            `json:"sdkVersion"`
	Sent       map[string]string `json:"sent"`
	ETag       string            `json:"etag"`
	Length     int64             `json:"length"`
	SHA256     string            `json:"sha256"`
}

// TestJSSDK uses the AWS SDK for JavaScript v3 (@aws-sdk/client-s3 from
// npm, default settings) against the proxy: PutObject with a Node stream
// from a generator, which the SDK sends aws-chunked (STREAMING-UNSIGNED-
// PAYLOAD-TRAILER, a trailing CRC32, Transfer-Encoding: chunked), then
// GetObject, compared bit for bit. The script passes ContentLength: the SDK
// cannot send a stream of unknown length (see put-get.mjs).
func TestJSSDK(t *testing.T) { forEachStore(t, testJSSDK) }

func testJSSDK(t *testing.T, st *storeEnv) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the JavaScript SDK test: %v", err)
	}
	modules := jsSDKDir(t)
	// The script must sit next to node_modules for ESM resolution: run a
	// copy in a directory that links to the cached node_modules.
	script, err := os.ReadFile("testdata/js/put-get.mjs")
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(run, "node_modules")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(run, "package.json"), []byte(`{"type":"module"}`), 0o644)
	if err := os.WriteFile(filepath.Join(run, "put-get.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	ver, _ := exec.Command(node, "--version").Output()
	t.Logf("node %s", strings.TrimSpace(string(ver)))

	p := st.startProxy(t)
	bucket := st.newBucket(t, "jssdk")
	for _, size := range []int{0, 1, 1<<20 + 7, 12 << 20} {
		t.Run(sizeName(size), func(t *testing.T) {
			key := "js/" + sizeName(size)
			plain := plaintext("jssdk/"+key, size)
			in := writePlainFile(t, t.TempDir(), "plain", plain)
			cmd := exec.Command(node, filepath.Join(run, "put-get.mjs"), p.Endpoint, bucket, key, in)
			cmd.Dir = run
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+p.AccessKey, "AWS_SECRET_ACCESS_KEY="+p.SecretKey,
				"AWS_CONFIG_FILE="+filepath.Join(run, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(run, "none"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node put-get.mjs %s: %v\n%s", key, err, stderr.String())
			}
			var r jsPutGetResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("put-get.mjs output: %v\n%s", err, out)
			}
			t.Logf("@aws-sdk/client-s3 %s PutObject headers: content-encoding=%q x-amz-content-sha256=%q x-amz-trailer=%q x-amz-decoded-content-length=%q content-length=%q transfer-encoding=%q",
				r.SDKVersion, r.Sent["content-encoding"], r.Sent["x-amz-content-sha256"], r.Sent["x-amz-trailer"],
				r.Sent["x-amz-decoded-content-length"], r.Sent["content-length"], r.Sent["transfer-encoding"])
			want := sha256.Sum256(plain)
			if r.Length != int64(size) || r.SHA256 != hex.EncodeToString(want[:]) {
				t.Errorf("GetObject %s read %d bytes with SHA-256 %s, want %d bytes with %x", key, r.Length, r.SHA256, size, want)
			}
			if !strings.Contains(r.Sent["content-encoding"], "aws-chunked") {
				t.Errorf("PutObject %s was not sent aws-chunked (content-encoding %q): the streaming path is not exercised", key, r.Sent["content-encoding"])
			}
			assertETagRule(t, key, r.ETag, plain)
			st.assertCiphertextAtRest(t, bucket, key, plain)
		})
	}
}
