package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// boto3Driver talks to testdata/boto3_driver.py: one python process per
// test, one JSON command per line.
type boto3Driver struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

type boto3Result struct {
	OK            bool              `json:"ok"`
	Code          string            `json:"code"`
	Message       string            `json:"message"`
	Status        int               `json:"status"`
	ETag          string            `json:"etag"`
	ContentLength int64             `json:"content_length"`
	ContentRange  string            `json:"content_range"`
	Metadata      map[string]string `json:"metadata"`
	Objects       []struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
		ETag string `json:"etag"`
	} `json:"objects"`
}

func startBoto3(t *testing.T, endpoint, accessKey, secretKey string) *boto3Driver {
	t.Helper()
	script, err := filepath.Abs("testdata/boto3_driver.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\n"), 0o600)
	os.WriteFile(creds, nil, 0o600)
	cmd := exec.Command("python3", script, endpoint)
	cmd.Env = clientEnv(dir, accessKey, secretKey, cfg, creds)
	cmd.Stderr = &testWriter{t: t, prefix: "boto3: "}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("python3 boto3 driver: %v", err)
	}
	d := &boto3Driver{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	d.out.Buffer(make([]byte, 1<<20), 16<<20)
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return d
}

// do runs one command; a failed S3 call is a result with OK false.
func (d *boto3Driver) do(t *testing.T, cmd map[string]any) boto3Result {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("boto3 driver: %v", err)
	}
	if !d.out.Scan() {
		t.Fatalf("boto3 driver exited: %v", d.out.Err())
	}
	var r boto3Result
	if err := json.Unmarshal(d.out.Bytes(), &r); err != nil {
		t.Fatalf("boto3 driver: %v: %s", err, d.out.Bytes())
	}
	return r
}

// ok runs a command that must succeed.
func (d *boto3Driver) ok(t *testing.T, cmd map[string]any) boto3Result {
	t.Helper()
	r := d.do(t, cmd)
	if !r.OK {
		t.Fatalf("boto3 %v: %d %s: %s", cmd["op"], r.Status, r.Code, r.Message)
	}
	return r
}

// testWriter forwards a child's stderr to the test log.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s%s", w.prefix, p)
	return len(p), nil
}

func TestBoto3(t *testing.T) { forEachStore(t, testBoto3) }

func testBoto3(t *testing.T, st *storeEnv) {
	p := st.startProxy(t)
	bucket := st.newBucket(t, "boto3")
	py := startBoto3(t, p.Endpoint, p.AccessKey, p.SecretKey)
	dir := t.TempDir()
	plains := map[string][]byte{}
	etags := map[string]string{}

	for _, size := range objectSizes {
		key := "objects/" + sizeName(size)
		t.Run("put-head-get/"+sizeName(size), func(t *testing.T) {
			plain := plaintext("boto3/"+key, size)
			in := writePlainFile(t, dir, key+".in", plain)
			put := py.ok(t, map[string]any{"op": "put", "bucket": bucket, "key": key, "file": in,
				"metadata": map[string]string{"owner": "e2e", "size": sizeName(size)}})
			head := py.ok(t, map[string]any{"op": "head", "bucket": bucket, "key": key})
			if head.ContentLength != int64(size) {
				t.Errorf("head ContentLength = %d, want %d", head.ContentLength, size)
			}
			out := filepath.Join(dir, "get.out")
			get := py.ok(t, map[string]any{"op": "get", "bucket": bucket, "key": key, "file": out})
			if get.ContentLength != int64(size) {
				t.Errorf("get ContentLength = %d, want %d", get.ContentLength, size)
			}
			testenv.AssertSame(t, "get_object "+key, testenv.ReadFile(t, out), plain)
			assertETagsEqual(t, key+" (put, head, get)", put.ETag, head.ETag, get.ETag)
			assertETagRule(t, key, put.ETag, plain)
			for _, m := range []map[string]string{head.Metadata, get.Metadata} {
				if m["owner"] != "e2e" || m["size"] != sizeName(size) {
					t.Errorf("user metadata read back as %v", m)
				}
			}
			st.assertCiphertextAtRest(t, bucket, key, plain)
			plains[key] = plain
			etags[key] = put.ETag
		})
	}

	t.Run("list_objects_v2", func(t *testing.T) {
		r := py.ok(t, map[string]any{"op": "list", "bucket": bucket, "prefix": "objects/"})
		if len(r.Objects) != len(plains) {
			t.Errorf("listing has %d objects, want %d", len(r.Objects), len(plains))
		}
		for _, o := range r.Objects {
			plain, ok := plains[o.Key]
			if !ok {
				t.Errorf("unexpected key %q", o.Key)
				continue
			}
			if o.Size != int64(len(plain)) {
				t.Errorf("listing: %s Size = %d, want plaintext size %d", o.Key, o.Size, len(plain))
			}
			if o.ETag != etags[o.Key] {
				t.Errorf("listing: %s ETag = %s, want %s as on PUT", o.Key, o.ETag, etags[o.Key])
			}
		}
	})

	t.Run("ranges", func(t *testing.T) {
		out := filepath.Join(dir, "range.out")
		for _, key := range []string{"objects/1MiB", "objects/65537B", "objects/65536B", "objects/65535B", "objects/1B"} {
			plain := plains[key]
			if plain == nil {
				t.Fatalf("%s was not written", key)
			}
			size := int64(len(plain))
			for _, h := range append(segmentRanges, "bytes=2000000-", "bytes=70000-70000") {
				r, satisfiable := parseRange(h, size)
				res := py.do(t, map[string]any{"op": "get", "bucket": bucket, "key": key, "range": h, "file": out})
				if !satisfiable {
					if res.OK || res.Status != 416 || res.Code != "InvalidRange" {
						t.Errorf("%s %s (size %d): want 416 InvalidRange, got ok=%v %d %s", key, h, size, res.OK, res.Status, res.Code)
					}
					continue
				}
				if !res.OK {
					t.Errorf("%s %s: %d %s: %s", key, h, res.Status, res.Code, res.Message)
					continue
				}
				testenv.AssertSame(t, key+" "+h, testenv.ReadFile(t, out), plain[r.start:r.end+1])
				if res.ContentRange != r.contentRange(size) {
					t.Errorf("%s %s: Content-Range %q, want %q", key, h, res.ContentRange, r.contentRange(size))
				}
				if res.ContentLength != r.end-r.start+1 {
					t.Errorf("%s %s: Content-Length %d, want %d", key, h, res.ContentLength, r.end-r.start+1)
				}
			}
		}
	})

	t.Run("copy_object", func(t *testing.T) {
		out := filepath.Join(dir, "copy.out")
		for _, size := range []int{0, 1, 64 << 10, 1 << 20} {
			src := "objects/" + sizeName(size)
			dst := "copies/" + sizeName(size)
			c := py.ok(t, map[string]any{"op": "copy", "bucket": bucket, "key": dst, "src_bucket": bucket, "src_key": src})
			get := py.ok(t, map[string]any{"op": "get", "bucket": bucket, "key": dst, "file": out})
			testenv.AssertSame(t, "copy "+dst, testenv.ReadFile(t, out), plains[src])
			assertETagsEqual(t, dst+" (copy, get)", c.ETag, get.ETag)
			st.assertCiphertextAtRest(t, bucket, dst, plains[src])
		}
	})

	t.Run("delete_object", func(t *testing.T) {
		for _, size := range []int{0, 1, 64 << 10, 1 << 20} {
			key := "copies/" + sizeName(size)
			py.ok(t, map[string]any{"op": "delete", "bucket": bucket, "key": key})
			if r := py.do(t, map[string]any{"op": "head", "bucket": bucket, "key": key}); r.OK || r.Status != 404 {
				t.Errorf("head %s after delete: ok=%v status %d", key, r.OK, r.Status)
			}
			if st.existsInStore(t, bucket, key) {
				t.Errorf("%s still in MinIO after delete", key)
			}
		}
		// Deleting a missing key succeeds, as on S3.
		py.ok(t, map[string]any{"op": "delete", "bucket": bucket, "key": "copies/never-written"})
	})

	t.Run("upload_file-download_file", func(t *testing.T) {
		for _, size := range []int{0, 64<<10 + 1, 1 << 20} {
			key := "transfer/" + sizeName(size)
			plain := plaintext("boto3/"+key, size)
			in := writePlainFile(t, dir, "transfer.in", plain)
			py.ok(t, map[string]any{"op": "upload", "bucket": bucket, "key": key, "file": in})
			out := filepath.Join(dir, "transfer.out")
			py.ok(t, map[string]any{"op": "download", "bucket": bucket, "key": key, "file": out})
			testenv.AssertSame(t, "download_file "+key, testenv.ReadFile(t, out), plain)
			st.assertCiphertextAtRest(t, bucket, key, plain)
		}
		// 100 MiB comes back as parallel 8 MiB ranged GETs.
		key := "objects/100MiB"
		out := filepath.Join(dir, "ranged.out")
		py.ok(t, map[string]any{"op": "download", "bucket": bucket, "key": key, "file": out})
		testenv.AssertSame(t, "ranged download_file "+key, testenv.ReadFile(t, out), plains[key])
		os.Remove(out)
	})
}
