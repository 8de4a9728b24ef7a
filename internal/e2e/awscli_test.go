package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// objectSizes cross every boundary of 64 KiB segments, plus a large object.
var objectSizes = []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20, 100 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// awsCLI runs the aws cli (v1) against one endpoint with credentials and a
// config file of its own: nothing from the host's ~/.aws or AWS_* variables
// is used.
type awsCLI struct {
	endpoint string
	env      []string
}

// cliConfigSinglePut keeps `aws s3 cp` to single PUTs and GETs up to 4 GiB.
const cliConfigSinglePut = `[default]
region = us-east-1
output = json
s3 =
    addressing_style = path
    multipart_threshold = 4GB
    multipart_chunksize = 4GB
`

// cliConfigDefault has the cli's default transfer settings (multipart and
// ranged parallel GETs above 8 MiB).
const cliConfigDefault = `[default]
region = us-east-1
output = json
s3 =
    addressing_style = path
`

func newAWSCLI(t *testing.T, endpoint, accessKey, secretKey, config string) *awsCLI {
	t.Helper()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("aws cli not found (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &awsCLI{endpoint: endpoint, env: clientEnv(dir, accessKey, secretKey, cfg, creds)}
}

// clientEnv is the environment for a CLI or boto3 child process.
func clientEnv(home, accessKey, secretKey, config, credentials string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "BOTO_") || name == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"AWS_ACCESS_KEY_ID="+accessKey,
		"AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+credentials,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1", // a failure is seen, not retried away
		"AWS_RETRY_MODE=standard",
		"AWS_PAGER=",
	)
}

// run runs `aws --endpoint-url E args...` and returns stdout and stderr.
func (a *awsCLI) run(args ...string) ([]byte, string, error) {
	cmd := exec.Command("aws", append([]string{"--endpoint-url", a.endpoint}, args...)...)
	cmd.Env = a.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

// ok runs the command and fails the test if it fails.
func (a *awsCLI) ok(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, err := a.run(args...)
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// json runs an s3api command and decodes its JSON output.
func (a *awsCLI) json(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out := a.ok(t, args...)
	m := map[string]any{}
	if len(bytes.TrimSpace(out)) == 0 {
		return m
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

func jsonInt(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return -1
}

func jsonStr(v any) string { s, _ := v.(string); return s }

// assertETagRule checks that an ETag is either the plaintext's MD5 or
// visibly not an MD5: clients treat a 32-hex ETag as the body's MD5.
func assertETagRule(t *testing.T, what, etag string, plain []byte) {
	t.Helper()
	e := strings.Trim(etag, `"`)
	if len(e) != 32 {
		return
	}
	if _, err := hex.DecodeString(e); err != nil {
		return
	}
	if sum := md5.Sum(plain); e != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: ETag %s looks like an MD5 but is not the plaintext's (%x)", what, etag, sum)
	}
}

// assertETagsEqual checks that one object version shows one ETag everywhere.
func assertETagsEqual(t *testing.T, what string, etags ...string) {
	t.Helper()
	for _, e := range etags[1:] {
		if e != etags[0] {
			t.Errorf("%s: ETags differ: %q", what, etags)
			return
		}
	}
	if etags[0] == "" {
		t.Errorf("%s: empty ETag", what)
	}
}

func TestAWSCLI(t *testing.T) { forEachStore(t, testAWSCLI) }

func testAWSCLI(t *testing.T, st *storeEnv) {
	p := st.startProxy(t)
	bucket := st.newBucket(t, "awscli")
	cli := newAWSCLI(t, p.Endpoint, p.AccessKey, p.SecretKey, cliConfigSinglePut)
	dir := t.TempDir()
	plains := map[string][]byte{}
	etags := map[string]string{}

	for _, size := range objectSizes {
		key := "objects/" + sizeName(size)
		t.Run("put-head-get/"+sizeName(size), func(t *testing.T) {
			plain := plaintext("awscli/"+key, size)
			in := writePlainFile(t, dir, key+".in", plain)
			put := cli.json(t, "s3api", "put-object", "--bucket", bucket, "--key", key, "--body", in)
			etag := jsonStr(put["ETag"])
			head := cli.json(t, "s3api", "head-object", "--bucket", bucket, "--key", key)
			if got := jsonInt(head["ContentLength"]); got != int64(size) {
				t.Errorf("head-object ContentLength = %d, want %d", got, size)
			}
			out := filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".out")
			get := cli.json(t, "s3api", "get-object", "--bucket", bucket, "--key", key, out)
			if got := jsonInt(get["ContentLength"]); got != int64(size) {
				t.Errorf("get-object ContentLength = %d, want %d", got, size)
			}
			testenv.AssertSame(t, "get-object "+key, testenv.ReadFile(t, out), plain)
			assertETagsEqual(t, key+" (put, head, get)", etag, jsonStr(head["ETag"]), jsonStr(get["ETag"]))
			assertETagRule(t, key, etag, plain)
			st.assertCiphertextAtRest(t, bucket, key, plain)
			plains[key] = plain
			etags[key] = etag
		})
	}

	t.Run("list-objects-v2", func(t *testing.T) {
		list := cli.json(t, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "objects/")
		contents, _ := list["Contents"].([]any)
		seen := map[string]bool{}
		for _, c := range contents {
			obj, _ := c.(map[string]any)
			key := jsonStr(obj["Key"])
			plain, ok := plains[key]
			if !ok {
				t.Errorf("unexpected key %q in listing", key)
				continue
			}
			seen[key] = true
			if got := jsonInt(obj["Size"]); got != int64(len(plain)) {
				t.Errorf("listing: %s Size = %d, want plaintext size %d", key, got, len(plain))
			}
			if got := jsonStr(obj["ETag"]); got != etags[key] {
				t.Errorf("listing: %s ETag = %s, want %s as on PUT", key, got, etags[key])
			}
		}
		if len(seen) != len(plains) {
			t.Errorf("listing has %d of %d objects", len(seen), len(plains))
		}
	})

	t.Run("ranges", func(t *testing.T) {
		// Every boundary range on the 1 MiB object (boto3 covers the other
		// sizes: each cli call costs about a second).
		for _, key := range []string{"objects/1MiB"} {
			plain, ok := plains[key]
			if !ok {
				t.Fatalf("%s was not written", key)
			}
			for _, h := range segmentRanges {
				r, ok := parseRange(h, int64(len(plain)))
				if !ok {
					continue // unsatisfiable for this size: covered by boto3
				}
				out := filepath.Join(dir, "range.out")
				get := cli.json(t, "s3api", "get-object", "--bucket", bucket, "--key", key, "--range", h, out)
				testenv.AssertSame(t, key+" "+h, testenv.ReadFile(t, out), plain[r.start:r.end+1])
				if got, want := jsonStr(get["ContentRange"]), r.contentRange(int64(len(plain))); got != want {
					t.Errorf("%s %s: ContentRange %q, want %q", key, h, got, want)
				}
			}
		}
	})

	t.Run("copy-object", func(t *testing.T) {
		for _, size := range []int{0, 64<<10 + 1, 1 << 20} {
			src := "objects/" + sizeName(size)
			dst := "copies/" + sizeName(size)
			cli.json(t, "s3api", "copy-object", "--bucket", bucket, "--key", dst, "--copy-source", bucket+"/"+src)
			out := filepath.Join(dir, "copy.out")
			cli.json(t, "s3api", "get-object", "--bucket", bucket, "--key", dst, out)
			testenv.AssertSame(t, "copy "+dst, testenv.ReadFile(t, out), plains[src])
			st.assertCiphertextAtRest(t, bucket, dst, plains[src])
		}
	})

	t.Run("delete-object", func(t *testing.T) {
		for _, size := range []int{0, 64<<10 + 1, 1 << 20} {
			key := "copies/" + sizeName(size)
			cli.json(t, "s3api", "delete-object", "--bucket", bucket, "--key", key)
			if _, stderr, err := cli.run("s3api", "head-object", "--bucket", bucket, "--key", key); err == nil {
				t.Errorf("head-object %s after delete succeeded", key)
			} else if !strings.Contains(stderr, "404") && !strings.Contains(stderr, "Not Found") {
				t.Errorf("head-object %s after delete: %s", key, stderr)
			}
			if st.existsInStore(t, bucket, key) {
				t.Errorf("%s still in MinIO after delete", key)
			}
		}
	})

	t.Run("s3-cp", func(t *testing.T) {
		for _, size := range []int{0, 1, 64<<10 + 1, 1 << 20} {
			key := "cp/" + sizeName(size)
			plain := plaintext("awscli/"+key, size)
			in := writePlainFile(t, dir, "cp-"+sizeName(size)+".in", plain)
			cli.ok(t, "s3", "cp", in, "s3://"+bucket+"/"+key)
			out := filepath.Join(dir, "cp.out")
			cli.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
			testenv.AssertSame(t, "s3 cp "+key, testenv.ReadFile(t, out), plain)
			st.assertCiphertextAtRest(t, bucket, key, plain)
		}
		// aws s3 ls shows plaintext sizes.
		ls := string(cli.ok(t, "s3", "ls", "s3://"+bucket+"/cp/"))
		for _, size := range []int{0, 1, 64<<10 + 1, 1 << 20} {
			want := fmt.Sprintf("%d %s", size, sizeName(size))
			if !strings.Contains(strings.Join(strings.Fields(ls), " "), want) {
				t.Errorf("aws s3 ls lacks %q:\n%s", want, ls)
			}
		}
	})

	t.Run("s3-cp-ranged-download", func(t *testing.T) {
		// With default settings the cli downloads a 100 MiB object as
		// parallel 8 MiB ranged GETs.
		def := newAWSCLI(t, p.Endpoint, p.AccessKey, p.SecretKey, cliConfigDefault)
		key := "objects/100MiB"
		out := filepath.Join(dir, "ranged.out")
		def.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
		testenv.AssertSame(t, "ranged download "+key, testenv.ReadFile(t, out), plains[key])
		os.Remove(out)
	})

	t.Run("s3-cp-multipart", func(t *testing.T) {
		def := newAWSCLI(t, p.Endpoint, p.AccessKey, p.SecretKey, cliConfigDefault)
		key := "multipart/20MiB"
		plain := plaintext("awscli/"+key, 20<<20)
		in := writePlainFile(t, dir, "mp.in", plain)
		if _, stderr, err := def.run("s3", "cp", in, "s3://"+bucket+"/"+key); err != nil {
			t.Fatalf("aws s3 cp (multipart) failed: %v\n%s", err, stderr)
		}
		out := filepath.Join(dir, "mp.out")
		def.ok(t, "s3", "cp", "s3://"+bucket+"/"+key, out)
		testenv.AssertSame(t, "multipart "+key, testenv.ReadFile(t, out), plain)
		st.assertCiphertextAtRest(t, bucket, key, plain)
	})

}
