//lint:file-ignore SA1019 the manager is deprecated for transfermanager, but it is what most Go programs still upload with (as in manager_test.go).

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
)

// TestHSMBackedKey runs s3seal over the package store (MinIO, or versitygw
// in CI's second pass) with its default key held in a
// SoftHSM2 token (issue #24): `s3seal keys create --custom-key-store
// pkcs11` makes it, objects written through it (single PUTs and a
// multipart upload) read back bit-exact, also after a restart that opens
// the token afresh; then the HSM made unusable three ways (wrong PIN,
// missing module, token removed under the running proxy) gives clients an
// S3-shaped KMS error, quickly, and stores nothing.
func TestHSMBackedKey(t *testing.T) {
	hsm := testenv.NewSoftHSM(t, "e2e-hsm")
	bin := testenv.BuildS3seal(t)
	dataDir, keyDir := t.TempDir(), t.TempDir()
	env := map[string]string{
		"S3SEAL_DATA_DIR":        dataDir,
		"S3SEAL_MASTER_KEY_FILE": filepath.Join(keyDir, "master.key"),
	}
	for k, v := range hsm.Env() {
		env[k] = v
	}

	keys := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"keys", "--json"}, args...)...)
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keys %s: %v\n%s", args, err, exitStderr(err))
		}
		return out
	}
	// The key, made with the CLI as an operator would.
	out := keys("create", "--custom-key-store", "pkcs11", "--alias", "alias/hsm", "-d", "e2e HSM key")
	var md struct{ KeyId, Origin, CustomKeyStoreId string }
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("keys create printed %q: %v", out, err)
	}
	if md.Origin != "AWS_CLOUDHSM" || md.CustomKeyStoreId != "pkcs11:e2e-hsm" {
		t.Fatalf("keys create: %s", out)
	}
	// The keyring file names the HSM key and holds no key material.
	raw, err := os.ReadFile(filepath.Join(dataDir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"material": null`)) || bytes.Contains(raw, []byte(`"material": "`)) {
		t.Fatalf("keyring file with only an HSM key holds material:\n%s", raw)
	}

	for k, v := range store.UpstreamEnv() {
		env[k] = v
	}
	env["S3SEAL_KMS_KEY_ID"] = "alias/hsm"
	p := testenv.StartS3seal(t, env)
	if !strings.Contains(p.Log(), "HSM key store connected") {
		t.Fatalf("serve did not log the HSM connection:\n%s", p.Log())
	}
	ctx := context.Background()
	c := p.S3Client()
	bucket := newBucket(t, "hsm")
	objects := map[string][]byte{}
	for _, size := range []int{0, 1, 64<<10 + 1, 1 << 20} {
		key := "put/" + sizeName(size)
		objects[key] = plaintext(key, size)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(objects[key])}); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
	}
	mpKey := "multipart/12MiB+7"
	objects[mpKey] = plaintext(mpKey, 12<<20+7)
	if _, err := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20 }).Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(mpKey), Body: struct{ io.Reader }{bytes.NewReader(objects[mpKey])}}); err != nil {
		t.Fatalf("multipart upload: %v", err)
	}
	readAll := func(what string, c *s3.Client) {
		t.Helper()
		for key, want := range objects {
			got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("%s: GET %s: %v", what, key, err)
			}
			body, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				t.Fatalf("%s: GET %s: %v", what, key, err)
			}
			testenv.AssertSame(t, what+" "+key, body, want)
		}
	}
	readAll("first start", c)
	for key, plain := range objects {
		assertCiphertextAtRest(t, bucket, key, plain)
		// The object's data key was wrapped by the HSM key: the header
		// names it, in wrapped-key format 2 (sealed inside the token).
		h, err := envelope.ParseHeader(readStored(t, bucket, key).Metadata[metaKey])
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if ki := h.KeyInfo(); ki.KeyID != md.KeyId || len(ki.Wrapped) == 0 || ki.Wrapped[0] != 2 {
			t.Fatalf("%s: header names key %s, wrapped blob format %x; want %s, 2", key, ki.KeyID, ki.Wrapped[:1], md.KeyId)
		}
	}

	// s3seal decrypt reads an object straight from the store, the HSM
	// unwrapping its data key, with no proxy.
	dec := exec.Command(bin, "decrypt", "s3://"+bucket+"/"+mpKey)
	dec.Env = os.Environ()
	for k, v := range env {
		dec.Env = append(dec.Env, k+"="+v)
	}
	plain, err := dec.Output()
	if err != nil {
		t.Fatalf("s3seal decrypt: %v\n%s", err, exitStderr(err))
	}
	testenv.AssertSame(t, "s3seal decrypt "+mpKey, plain, objects[mpKey])

	// A restart: no data key cached, every GET unwraps in the token.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	c = p.S3Client()
	readAll("after restart", c)

	// A rotation under the running proxy makes a new HSM key; a new
	// bucket's objects are wrapped under it, the older ones still read.
	keys("rotate", "alias/hsm")
	var rot struct {
		Versions []struct {
			Version     int
			HSMKeyLabel string
		}
	}
	if err := json.Unmarshal(keys("rotations", "alias/hsm"), &rot); err != nil {
		t.Fatal(err)
	}
	if len(rot.Versions) != 2 || rot.Versions[1].HSMKeyLabel != "s3seal-"+md.KeyId+"-v2" {
		t.Fatalf("keys rotations after a rotation: %+v", rot)
	}
	bucket2 := newBucket(t, "hsm-v2")
	v2 := plaintext("v2", 100<<10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket2), Key: aws.String("v2"), Body: bytes.NewReader(v2)}); err != nil {
		t.Fatal(err)
	}
	h, err := envelope.ParseHeader(readStored(t, bucket2, "v2").Metadata[metaKey])
	if err != nil {
		t.Fatal(err)
	}
	if id, v, ok := keyring.WrappedKeyVersion(h.KeyInfo().Wrapped); !ok || id != md.KeyId || v != 2 {
		t.Fatalf("an object put after the rotation is wrapped under %s version %d", id, v)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket2), Key: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	testenv.AssertSame(t, "after rotation", body, v2)
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	c = p.S3Client()
	readAll("after rotation and restart", c)

	// The HSM unusable: each proxy shares the data dir and store, and has
	// no data key cached.
	for name, override := range map[string]map[string]string{
		"wrong PIN":      {"S3SEAL_PKCS11_PIN": "not-the-pin"},
		"missing module": {"S3SEAL_PKCS11_MODULE": filepath.Join(t.TempDir(), "libmissing.so")},
	} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range override {
				e[k] = v
			}
			bad := testenv.StartS3seal(t, e)
			if !strings.Contains(bad.Log(), "HSM key store unavailable") {
				t.Errorf("serve did not log the unusable HSM:\n%s", bad.Log())
			}
			assertKMSRefusal(t, bad.S3Client(), bucket, mpKey, 400, "KMS.KMSInvalidStateException", 5*time.Second)
		})
	}

	// The token removed under the running proxy (after the restart it has
	// the HSM connected, and data keys for GETs cached: a new bucket
	// needs a new data key).
	if err := os.RemoveAll(hsm.TokenDir); err != nil {
		t.Fatal(err)
	}
	mark := p.LogOffset()
	assertKMSRefusal(t, c, bucket, "", 400, "KMS.KMSInvalidStateException", 30*time.Second)
	t.Logf("log after the token was removed:\n%s", p.LogSince(mark))
	// Restarted without its token, the proxy starts, and no object can be
	// read: the keyring file and master key alone open nothing.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	assertKMSRefusal(t, p.S3Client(), bucket, mpKey, 400, "KMS.KMSInvalidStateException", 5*time.Second)
}

// assertKMSRefusal checks that a PUT through c is refused with status and
// code within limit and stores nothing, and, if getKey is set, that a GET
// of it (its data key not cached) is refused alike.
func assertKMSRefusal(t *testing.T, c *s3.Client, bucket, getKey string, status int, code string, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	key := "refused/" + testenv.RandomKey(6)
	newBucketName := newBucket(t, "hsm-refused")
	for _, b := range []string{bucket, newBucketName} {
		start := time.Now()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(key), Body: bytes.NewReader([]byte("must not be stored"))})
		checkRefusal(t, "PUT "+b, err, status, code, time.Since(start), limit)
		if _, err := direct().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(key)}); err == nil {
			t.Errorf("PUT %s/%s was refused but the store holds the object", b, key)
		}
		uploads, err := direct().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b)})
		if err != nil {
			t.Fatal(err)
		}
		if len(uploads.Uploads) != 0 {
			t.Errorf("%s: %d multipart uploads left in the store", b, len(uploads.Uploads))
		}
	}
	if getKey != "" {
		start := time.Now()
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(getKey)})
		checkRefusal(t, "GET "+getKey, err, status, code, time.Since(start), limit)
	}
}

func checkRefusal(t *testing.T, what string, err error, status int, code string, took, limit time.Duration) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
	gotCode, gotStatus := testenv.APIError(err)
	if gotStatus != status || gotCode != code {
		t.Fatalf("%s: %d %s (%v), want %d %s", what, gotStatus, gotCode, err, status, code)
	}
	if took > limit {
		t.Fatalf("%s: refused after %s, want within %s", what, took, limit)
	}
	t.Logf("%s: %d %s after %s", what, gotStatus, gotCode, took.Round(time.Millisecond))
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
