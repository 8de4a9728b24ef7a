package e2e

import (
	"bytes"
	"context"
	"crypto/fips140"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestRecoveryDrill is the README's recovery drill, with real processes:
// keys made with `s3seal keys` (several, with aliases), objects written
// through `s3seal serve` (single and multipart, under every key, before and
// after a rotation, one key then scheduled for deletion), `s3seal keys
// export` under a recovery passphrase; then the host is lost: the data dir
// (keyring, generated client credentials, usage report) and the master key
// file are deleted. `keys import` with a wrong passphrase fails cleanly
// and writes nothing; with the right one, into the empty data dir under a
// new master key, plus the credentials file the operator kept, the proxy
// starts again and every object reads back bit-exact, keys list is what it
// was, and the scheduled deletion kept its date (and, cancelled, its
// object reads too).
//
// On the embedded store the objects live in the data dir's store/ (the
// store's volume): that one directory survives, as a store would.
func TestRecoveryDrill(t *testing.T) {
	if fips140.Enabled() {
		// The drill exports and imports the keyring, which FIPS mode
		// refuses (cmd/s3seal TestFIPSModeDecisions, run in every pass).
		t.Skip("keys export/import are refused in FIPS 140-3 mode")
	}
	forEachStore(t, testRecoveryDrill)
}

func testRecoveryDrill(t *testing.T, st *storeEnv) {
	ctx := context.Background()
	bin := testenv.BuildS3seal(t)
	dataDir := t.TempDir()
	keyDir := t.TempDir()
	env := map[string]string{
		"S3SEAL_DATA_DIR":        dataDir,
		"S3SEAL_MASTER_KEY_FILE": filepath.Join(keyDir, "master.key"),
	}
	keys := func(wantOK bool, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, err := runS3seal(bin, env, args...)
		if (err == nil) != wantOK {
			t.Fatalf("s3seal %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
		}
		return stdout, stderr
	}
	keyID := func(args ...string) string {
		t.Helper()
		out, _ := keys(true, append([]string{"keys", "--json"}, args...)...)
		var md struct{ KeyId string }
		if err := json.Unmarshal([]byte(out), &md); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return md.KeyId
	}
	one := keyID("create", "-d", "one", "--alias", "alias/one", "--alias", "alias/one-too")
	keyID("create", "-d", "two", "--alias", "alias/two")
	doomed := keyID("create", "-d", "doomed", "--alias", "alias/doomed")

	// The proxy generates the client credentials into the data dir, as
	// on a first start with no S3SEAL_ACCESS_KEY.
	proxyEnv := func() map[string]string {
		m := map[string]string{"S3SEAL_ACCESS_KEY": "", "S3SEAL_SECRET_KEY": "",
			"S3SEAL_BUCKET_KEYS": "drill-one=alias/one,drill-two=alias/two,drill-doomed=" + doomed}
		for k, v := range env {
			m[k] = v
		}
		return m
	}
	start := func() *s3.Client {
		t.Helper()
		p := st.StartProxy(t, proxyEnv())
		var cred struct{ AccessKey, SecretKey string }
		b, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
		if err == nil {
			err = json.Unmarshal(b, &struct {
				AK *string `json:"access_key"`
				SK *string `json:"secret_key"`
			}{&cred.AccessKey, &cred.SecretKey})
		}
		if err != nil || cred.AccessKey == "" {
			t.Fatalf("generated credentials: %v", err)
		}
		return testenv.NewS3Client(p.Endpoint, cred.AccessKey, cred.SecretKey)
	}
	c := start()
	buckets := []string{"drill-one", "drill-two", "drill-default", "drill-doomed"}
	for _, b := range buckets {
		if st.Embedded() {
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := st.Upstream.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil && !strings.Contains(err.Error(), "BucketAlready") {
			t.Fatal(err)
		}
	}
	prefix := testenv.RandomKey(4) + "/"
	want := map[string][]byte{} // bucket/key -> plaintext
	put := func(c *s3.Client, bucket, key string, n int) {
		t.Helper()
		data := randomBytes(n)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s/%s: %v", bucket, key, err)
		}
		want[bucket+"/"+key] = data
	}
	multipart := func(c *s3.Client, bucket, key string, sizes ...int) {
		t.Helper()
		k := aws.String(prefix + key)
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: k})
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		var parts []types.CompletedPart
		for i, n := range sizes {
			data := randomBytes(n)
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: k, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
			all = append(all, data...)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: k, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatal(err)
		}
		want[bucket+"/"+key] = all
	}
	const mib = 1 << 20
	put(c, "drill-one", "small", 1000)
	put(c, "drill-one", "empty", 0)
	multipart(c, "drill-one", "mp-v1", 5*mib, mib+17)
	put(c, "drill-two", "two", 200000)
	put(c, "drill-default", "default", 65537)
	put(c, "drill-doomed", "doomed", 3000)
	st.Proxy.Stop()
	// A rotation, then objects under the new version (a new proxy: no
	// data key of version 1 cached).
	keys(true, "keys", "rotate", "alias/one")
	c = start()
	put(c, "drill-one", "after-rotation", 70000)
	multipart(c, "drill-two", "mp", 5*mib, 5*mib, 1)
	keys(true, "keys", "schedule-deletion", "alias/doomed", "--days", "7")
	listBefore, _ := keys(true, "keys", "--json", "list")

	// The backup, under a passphrase from the environment.
	backupDir := t.TempDir()
	backup := filepath.Join(backupDir, "keyring.age")
	const pass = "drill passphrase, kept in the safe"
	env["S3SEAL_RECOVERY_PASSPHRASE"] = pass
	_, stderr := keys(true, "keys", "export", "--to", backup)
	if !strings.Contains(stderr, "exported 4 keys") {
		t.Fatalf("export said: %s", stderr)
	}
	delete(env, "S3SEAL_RECOVERY_PASSPHRASE")
	creds, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	st.Proxy.Stop()

	// The host is lost.
	ents, _ := os.ReadDir(dataDir)
	for _, e := range ents {
		if st.Embedded() && e.Name() == "store" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(keyDir); err != nil {
		t.Fatal(err)
	}
	env["S3SEAL_MASTER_KEY_FILE"] = filepath.Join(t.TempDir(), "new-master.key")

	// A wrong passphrase fails cleanly: a clear message, nothing written.
	wrong := filepath.Join(backupDir, "wrong")
	os.WriteFile(wrong, []byte("drill passphrase, kept in the car\n"), 0o600)
	_, stderr = keys(false, "keys", "import", "--from", backup, "--passphrase-file", wrong)
	if !strings.Contains(stderr, "wrong recovery passphrase") || strings.Contains(stderr, "panic") {
		t.Fatalf("wrong passphrase said: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "keyring.json")); err == nil {
		t.Fatal("a failed import wrote a keyring")
	}
	right := filepath.Join(backupDir, "right")
	os.WriteFile(right, []byte(pass+"\n"), 0o600)
	out, _ := keys(true, "keys", "import", "--from", backup, "--passphrase-file", right)
	if !strings.Contains(out, "4 keys added") {
		t.Fatalf("import said: %s", out)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "credentials.json"), creds, 0o600); err != nil {
		t.Fatal(err)
	}

	listAfter, _ := keys(true, "keys", "--json", "list")
	if listAfter != listBefore {
		t.Fatalf("keys list after the restore:\n%s\nbefore:\n%s", listAfter, listBefore)
	}
	var after []struct {
		KeyId        string
		KeyState     string
		DeletionDate time.Time
		KeyVersions  int
	}
	json.Unmarshal([]byte(listAfter), &after)
	for _, k := range after {
		switch {
		case k.KeyId == doomed && (k.KeyState != "PendingDeletion" || k.DeletionDate.IsZero()):
			t.Errorf("the doomed key after restore: %+v", k)
		case k.KeyId == one && k.KeyVersions != 2:
			t.Errorf("the rotated key after restore: %+v", k)
		}
	}

	c = start()
	read := func(name string) ([]byte, error) {
		bucket, key, _ := strings.Cut(name, "/")
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return readAllLimited(out.Body, 64*mib)
	}
	for name, data := range want {
		got, err := read(name)
		if strings.HasPrefix(name, "drill-doomed/") {
			if err == nil {
				t.Errorf("%s read under a key pending deletion", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s after the restore: %v", name, err)
			continue
		}
		testenv.AssertSame(t, name+" after the restore", got, data)
	}
	// A range across the part boundary of the multipart object.
	rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("drill-one"), Key: aws.String(prefix + "mp-v1"), Range: aws.String("bytes=5242870-5242899")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readAllLimited(rg.Body, mib)
	rg.Body.Close()
	testenv.AssertSame(t, "range across parts", got, want["drill-one/mp-v1"][5242870:5242900])
	// The restored keyring writes too.
	put(c, "drill-one", "new", 4096)
	if got, err := read("drill-one/new"); err != nil || !bytes.Equal(got, want["drill-one/new"]) {
		t.Errorf("an object written after the restore: %v", err)
	}
	// The deletion, cancelled, gives the doomed key's object back.
	keys(true, "keys", "cancel-deletion", "alias/doomed")
	keys(true, "keys", "enable", "alias/doomed")
	if got, err := read("drill-doomed/doomed"); err != nil || !bytes.Equal(got, want["drill-doomed/doomed"]) {
		t.Errorf("the doomed key's object after cancel-deletion: %v", err)
	}
}

// runS3seal runs the s3seal binary with only env's S3SEAL_* settings.
func runS3seal(bin string, env map[string]string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(name, "S3SEAL_") && !strings.HasPrefix(name, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = nil
	err = cmd.Run()
	return o.String(), e.String(), err
}
