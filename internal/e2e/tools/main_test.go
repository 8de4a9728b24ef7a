package tools_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// store is the store behind every proxy of this package: MinIO, or the
// one testenv.StoreEnv names.
var store *testenv.Upstream

func TestMain(m *testing.M) {
	testenv.MainWithStore(m, "tools", true, func(s *testenv.Upstream) { store = s })
}

// startProxy starts an s3seal in front of the package's MinIO, with extra
// settings from env.
func startProxy(t *testing.T, env map[string]string) *testenv.S3seal {
	t.Helper()
	e := store.UpstreamEnv()
	for k, v := range env {
		e[k] = v
	}
	return testenv.StartS3seal(t, e)
}

// direct returns a client that talks to MinIO itself, bypassing the proxy.
func direct() *s3.Client { return store.S3Client() }

// newBucket creates a bucket with a unique name directly in MinIO (set-up,
// not under test) and returns its name.
func newBucket(t *testing.T, prefix string) string {
	t.Helper()
	name := strings.ToLower(prefix) + "-" + testenv.RandomKey(4)
	if _, err := direct().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s in MinIO: %v", name, err)
	}
	return name
}

// storedKeys lists the keys MinIO holds under prefix, directly.
func storedKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(direct(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s/%s directly in MinIO: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// storedPlaintextWindow reports whether any 32-byte window taken from plain
// (at a few offsets) appears in what MinIO holds for bucket/key: a cheap
// check that a client's upload reached the store encrypted.
func storedPlaintextWindow(t *testing.T, bucket, key string, plain []byte) bool {
	t.Helper()
	out, err := direct().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read %s/%s directly from MinIO: %v", bucket, key, err)
	}
	defer out.Body.Close()
	stored, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s/%s directly from MinIO: %v", bucket, key, err)
	}
	if len(plain) < 32 {
		return len(plain) > 0 && bytes.Contains(stored, plain)
	}
	for _, off := range []int{0, len(plain) / 3, len(plain) / 2, len(plain) - 32} {
		if bytes.Contains(stored, plain[off:off+32]) {
			return true
		}
	}
	return false
}

// childEnv returns the environment for a client child process: the test's
// own, without anything that could point a client elsewhere or change how
// it verifies (AWS_*, BOTO_*, RCLONE_*, RESTIC_*, S3CMD_*; AWS_CA_BUNDLE in
// particular breaks rclone), with HOME set to home and extra appended.
func childEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "BOTO_"),
			strings.HasPrefix(name, "RCLONE_"), strings.HasPrefix(name, "RESTIC_"),
			strings.HasPrefix(name, "S3CMD_"), strings.HasPrefix(name, "XDG_"),
			name == "HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	return append(env, extra...)
}

// tool runs one client binary with a fixed environment.
type tool struct {
	name string
	env  []string
	dir  string
}

// requireTool fails the test if bin is not installed (.ci/run installs
// every client this package uses).
func requireTool(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("%s not found (.ci/run installs it): %v", bin, err)
	}
}

// toolTimeout bounds one client invocation, so that a hung transfer fails
// the test instead of the whole run.
const toolTimeout = 4 * time.Minute

// run runs the tool and returns stdout, stderr and the error.
func (c *tool) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.name, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, toolTimeout)
	}
	return stdout.String(), stderr.String(), err
}

// ok runs the tool and fails the test if it fails; it returns stdout and
// stderr.
func (c *tool) ok(t *testing.T, args ...string) (string, string) {
	t.Helper()
	start := time.Now()
	stdout, stderr, err := c.run(args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", c.name, strings.Join(args, " "), err, tail(stdout, 8<<10), tail(stderr, 8<<10))
	}
	t.Logf("%s %s: %s", c.name, strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
	return stdout, stderr
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// fileSpec is one file of a generated tree.
type fileSpec struct {
	path string // slash-separated, relative
	size int
}

// fill writes size bytes of content to w derived from rng: mostly random,
// every third file text-like (compressible), so that tools which compress
// see both kinds.
func fill(w io.Writer, rng *rand.Rand, size int, textLike bool) error {
	buf := make([]byte, 64<<10)
	words := []string{"seal ", "store ", "proxy ", "part ", "range ", "backup\n", "sync ", "0123456789 "}
	for size > 0 {
		n := min(size, len(buf))
		chunk := buf[:n]
		if textLike {
			b := buf[:0]
			for len(b) < n {
				b = append(b, words[rng.IntN(len(words))]...)
			}
			chunk = b[:n]
		} else {
			for i := 0; i+8 <= n; i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
			for i := n &^ 7; i < n; i++ {
				buf[i] = byte(rng.Uint32())
			}
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// writeTree creates the files of specs under dir with content from seed.
func writeTree(t *testing.T, dir string, specs []fileSpec, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for i, s := range specs {
		p := filepath.Join(dir, filepath.FromSlash(s.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := fill(f, rng, s.size, i%3 == 1); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// randomBytes returns n bytes derived from seed.
func randomBytes(seed uint64, n int) []byte {
	var b bytes.Buffer
	b.Grow(n)
	_ = fill(&b, rand.New(rand.NewPCG(seed, 0xb17e5)), n, false)
	return b.Bytes()
}

// treeSums maps every regular file under dir (slash-separated relative
// path) to its size and SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		sums[filepath.ToSlash(rel)] = fmt.Sprintf("%d:%x", n, h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// assertSameTree checks that got holds exactly the files of want, each
// byte-identical.
func assertSameTree(t *testing.T, what, want, got string) {
	t.Helper()
	w, g := treeSums(t, want), treeSums(t, got)
	var missing, extra, differ []string
	for p, s := range w {
		gs, ok := g[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case gs != s:
			differ = append(differ, fmt.Sprintf("%s (want %s, got %s)", p, s, gs))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("%s: %d files expected, %d found; missing %d %q, extra %d %q, different %d %q",
			what, len(w), len(g), len(missing), first(missing, 10), len(extra), first(extra, 10), len(differ), first(differ, 10))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// storeEnv is the store a client test runs against (testenv.StoreCase),
// with this package's checks of what it holds, and the environment every
// proxy it starts gets besides the test's own (proxyEnv).
type storeEnv struct {
	*testenv.StoreCase
	proxyEnv map[string]string
}

// forEachStore runs f per store: the package's and the embedded one.
func forEachStore(t *testing.T, f func(t *testing.T, st *storeEnv)) {
	forEachStoreWith(t, nil, f)
}

// forEachStoreWith is forEachStore with proxies configured by env (for
// instance to compress).
func forEachStoreWith(t *testing.T, env map[string]string, f func(t *testing.T, st *storeEnv)) {
	testenv.ForEachStore(t, store, func(t *testing.T, c *testenv.StoreCase) { f(t, &storeEnv{c, env}) })
}

func (s *storeEnv) startProxy(t *testing.T, env map[string]string) *testenv.S3seal {
	if len(s.proxyEnv) > 0 {
		merged := maps.Clone(s.proxyEnv)
		maps.Copy(merged, env)
		env = merged
	}
	return s.StartProxy(t, env)
}

func (s *storeEnv) newBucket(t *testing.T, prefix string) string { return s.NewBucket(t, prefix) }

// storedKeys lists the keys the store holds under prefix (on the embedded
// store, through the proxy: listings show the store's keys as they are).
func (s *storeEnv) storedKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	if !s.Embedded() {
		return storedKeys(t, bucket, prefix)
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Proxy.S3Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// storedPlaintextWindow reports whether 32-byte windows of plain appear in
// what the store holds: for MinIO, in bucket/key read directly; for the
// embedded store, in any of its data files on disk.
func (s *storeEnv) storedPlaintextWindow(t *testing.T, bucket, key string, plain []byte) bool {
	t.Helper()
	if !s.Embedded() {
		return storedPlaintextWindow(t, bucket, key, plain)
	}
	found := false
	err := filepath.WalkDir(filepath.Join(s.Proxy.DataDir, "store"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(plain) < 32 {
			found = len(plain) > 0 && bytes.Contains(b, plain)
			return nil
		}
		for _, off := range []int{0, len(plain) / 3, len(plain) / 2, len(plain) - 32} {
			if bytes.Contains(b, plain[off:off+32]) {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan the embedded store's files: %v", err)
	}
	return found
}
