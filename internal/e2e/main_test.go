package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// store is the store behind every proxy of this package: MinIO, or the
// one testenv.StoreEnv names.
var store *testenv.Upstream

func TestMain(m *testing.M) {
	testenv.MainWithStore(m, "e2e", false, func(s *testenv.Upstream) { store = s })
}

// startProxy starts an s3seal in front of the package's MinIO.
func startProxy(t *testing.T) *testenv.S3seal {
	t.Helper()
	return testenv.StartS3seal(t, store.UpstreamEnv())
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

// storedObject is an object as MinIO holds it.
type storedObject struct {
	Body        []byte
	Metadata    map[string]string
	ContentType string
}

// readStored reads bucket/key directly from MinIO.
func readStored(t *testing.T, bucket, key string) storedObject {
	t.Helper()
	out, err := direct().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read %s/%s directly from MinIO: %v", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := readAllLimited(out.Body, 1<<30)
	if err != nil {
		t.Fatalf("read %s/%s directly from MinIO: %v", bucket, key, err)
	}
	return storedObject{Body: body, Metadata: out.Metadata, ContentType: aws.ToString(out.ContentType)}
}

// writeStored overwrites bucket/key directly in MinIO.
func writeStored(t *testing.T, bucket, key string, obj storedObject) {
	t.Helper()
	in := &s3.PutObjectInput{
		Bucket:   aws.String(bucket),
		Key:      aws.String(key),
		Body:     bytesReader(obj.Body),
		Metadata: obj.Metadata,
	}
	if obj.ContentType != "" {
		in.ContentType = aws.String(obj.ContentType)
	}
	if _, err := direct().PutObject(context.Background(), in); err != nil {
		t.Fatalf("write %s/%s directly to MinIO: %v", bucket, key, err)
	}
}

// existsInStore reports whether MinIO holds bucket/key.
func existsInStore(t *testing.T, bucket, key string) bool {
	t.Helper()
	_, err := direct().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if code, status := testenv.APIError(err); status == 404 || code == "NotFound" || code == "NoSuchKey" {
		return false
	}
	t.Fatalf("HEAD %s/%s directly in MinIO: %v", bucket, key, err)
	return false
}

// metaKey is the user-metadata name (x-amz-meta-s3seal) holding the wrapped
// key material of every object s3seal writes.
const metaKey = "s3seal"

// assertCiphertextAtRest checks what MinIO stored for bucket/key, written
// through the proxy from plain: it carries x-amz-meta-s3seal, it is not the
// plaintext, and no 16-byte window of the plaintext appears in it.
func assertCiphertextAtRest(t *testing.T, bucket, key string, plain []byte) {
	t.Helper()
	st := readStored(t, bucket, key)
	if v := st.Metadata[metaKey]; v == "" {
		t.Errorf("%s/%s in MinIO has no x-amz-meta-%s (metadata %v)", bucket, key, metaKey, keysOf(st.Metadata))
	}
	if len(plain) > 0 && len(st.Body) <= len(plain) {
		t.Errorf("%s/%s in MinIO is %d bytes for %d bytes of plaintext: no room for tags", bucket, key, len(st.Body), len(plain))
	}
	if off, w, found := findPlaintextWindow(st.Body, plain); found {
		t.Errorf("%s/%s in MinIO holds plaintext: %q at stored offset %d", bucket, key, w, off)
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// storeEnv is the store a client test runs against (testenv.StoreCase),
// with this package's checks of what it holds.
type storeEnv struct{ *testenv.StoreCase }

// forEachStore runs f per store: the package's and the embedded one.
func forEachStore(t *testing.T, f func(t *testing.T, st *storeEnv)) {
	testenv.ForEachStore(t, store, func(t *testing.T, c *testenv.StoreCase) { f(t, &storeEnv{c}) })
}

func (s *storeEnv) startProxy(t *testing.T) *testenv.S3seal { return s.StartProxy(t, nil) }

func (s *storeEnv) newBucket(t *testing.T, prefix string) string { return s.NewBucket(t, prefix) }

// assertCiphertextAtRest checks what the store holds for bucket/key: in
// MinIO, the object itself (assertCiphertextAtRest); in the embedded store,
// which a running serve keeps locked, no data file on disk holds a window
// of the plaintext.
func (s *storeEnv) assertCiphertextAtRest(t *testing.T, bucket, key string, plain []byte) {
	t.Helper()
	if !s.Embedded() {
		assertCiphertextAtRest(t, bucket, key, plain)
		return
	}
	err := filepath.WalkDir(filepath.Join(s.Proxy.DataDir, "store", "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if off, w, found := findPlaintextWindow(b, plain); found {
			t.Errorf("%s/%s: the embedded store's file %s holds plaintext: %q at offset %d", bucket, key, d.Name(), w, off)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan the embedded store's files: %v", err)
	}
}

// existsInStore reports whether the store holds bucket/key (the embedded
// store's listings and HEADs through the proxy are the store's own).
func (s *storeEnv) existsInStore(t *testing.T, bucket, key string) bool {
	t.Helper()
	if !s.Embedded() {
		return existsInStore(t, bucket, key)
	}
	_, err := s.Proxy.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if _, status := testenv.APIError(err); status == 404 {
		return false
	}
	t.Fatalf("HEAD %s/%s through the proxy: %v", bucket, key, err)
	return false
}
