package e2e

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkkms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// writeOnlySetup is a key server (s3seal kms serve: the embedded keyring
// over the AWS KMS API) holding an RSA_3072 key pair, alias/backup, whose
// policy lets WRITER fetch the public key only and READER decrypt; a
// write-only proxy as WRITER and a read proxy as READER, both in front of
// MinIO. moto answers GetPublicKey but does not decrypt with an RSA
// private key (kms/awskms TestAsymmetricMoto), so the AWS KMS API path is
// tested end to end against s3seal's own KMS API.
type writeOnlySetup struct {
	ks             *testenv.KMSServer
	w, w2, r       *testenv.S3seal
	writerAudit    string
	readerKMS      map[string]string
	keyARN, bucket string
}

func newWriteOnlySetup(t *testing.T) *writeOnlySetup {
	t.Helper()
	const admin, writer, reader = "KMSADMIN", "WRITER", "READER"
	creds := filepath.Join(t.TempDir(), "credentials.json")
	cf, _ := json.Marshal(map[string]any{"identities": []map[string]any{
		{"access_key": admin, "secret_key": "admin-secret", "buckets": []string{"*"}},
		{"access_key": writer, "secret_key": "writer-secret", "buckets": []string{"*"}},
		{"access_key": reader, "secret_key": "reader-secret", "buckets": []string{"*"}},
	}})
	if err := os.WriteFile(creds, cf, 0o600); err != nil {
		t.Fatal(err)
	}
	ks := testenv.StartKMSServer(t, map[string]string{"S3SEAL_CREDENTIALS_FILE": creds, "S3SEAL_KMS_ADMINS": admin,
		"S3SEAL_ACCESS_KEY": "", "S3SEAL_SECRET_KEY": ""})
	api := sdkkms.New(sdkkms.Options{Region: testenv.Region, BaseEndpoint: aws.String(ks.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(admin, "admin-secret", "")})
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/%s"},"Action":["kms:GetPublicKey","kms:DescribeKey"],"Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/%s"},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}`, writer, reader)
	ctx := context.Background()
	k, err := api.CreateKey(ctx, &sdkkms.CreateKeyInput{KeySpec: kmstypes.KeySpecRsa3072, KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("backups"), Policy: aws.String(policy)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateAlias(ctx, &sdkkms.CreateAliasInput{AliasName: aws.String("alias/backup"), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	s := &writeOnlySetup{ks: ks, keyARN: aws.ToString(k.KeyMetadata.Arn), writerAudit: filepath.Join(t.TempDir(), "audit.log"),
		readerKMS: testenv.KMSClientEnv(ks.Endpoint, reader, "reader-secret")}
	s.w = testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), testenv.KMSClientEnv(ks.Endpoint, writer, "writer-secret"), map[string]string{
		"S3SEAL_WRITE_ONLY_KEY": "alias/backup", "S3SEAL_AUDIT_LOG": s.writerAudit,
	}))
	// A second write-only instance, with its own data-key cache.
	s.w2 = testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), testenv.KMSClientEnv(ks.Endpoint, writer, "writer-secret"), map[string]string{
		"S3SEAL_WRITE_ONLY_KEY": "alias/backup",
	}))
	s.r = testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), s.readerKMS, map[string]string{"S3SEAL_RSA_DECRYPT": "true"}))
	s.bucket = newBucket(t, "writeonly")
	return s
}

// wantWriteOnlyRefusal checks that err is the write-only instance's 403.
func wantWriteOnlyRefusal(t *testing.T, what string, err error) {
	t.Helper()
	code, status := testenv.APIError(err)
	var ae smithy.APIError
	msg := ""
	if err != nil && errors.As(err, &ae) {
		msg = ae.ErrorMessage()
	}
	if code != "AccessDenied" || status != 403 || !strings.Contains(msg, "write-only") {
		t.Fatalf("%s through the write-only proxy: %v (%s %d %q), want 403 AccessDenied saying why", what, err, code, status, msg)
	}
}

// TestWriteOnlyBackups: what a write-only proxy writes (single PUTs of
// several sizes, a multipart upload whose parts and completion go to two
// write-only instances) it lists and HEADs with exact sizes
// but cannot read (403 AccessDenied saying why, for whole GETs, ranges
// and part numbers); the read proxy reads every object bit-exact, ranges
// too, with its metadata; s3seal decrypt restores them from the store
// alone; the objects are format version 3 with the asymmetric flag, all
// sealed under one RSA-wrapped data key (one wrap per cache period), and
// the writer's KMS saw one GetPublicKey and no Decrypt; a flag cleared at
// the store is refused.
func TestWriteOnlyBackups(t *testing.T) {
	s := newWriteOnlySetup(t)
	ctx := context.Background()
	wc, rc := s.w.S3Client(), s.r.S3Client()
	objects := map[string][]byte{
		"empty":       {},
		"one":         {7},
		"segment+1":   randomBytes(envelope.SegmentSize + 1),
		"dir/200k":    randomBytes(200_000),
		"multipart/m": nil, // below
	}
	for key, body := range objects {
		if key == "multipart/m" {
			continue
		}
		if _, err := wc.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType: aws.String("application/x-backup"), Metadata: map[string]string{"host": "db1"}}); err != nil {
			t.Fatalf("PUT %s through the write-only proxy: %v", key, err)
		}
	}
	// Multipart: 5 MiB + 5 MiB + 1 byte + 3 bytes, created on one
	// write-only proxy, part 2 sent to the other, which completes it
	// without unwrapping a data key (neither can).
	var mp []byte
	up, err := wc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: aws.String("multipart/m"),
		Metadata: map[string]string{"host": "db1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(up.UploadId), "s3seal3a~") {
		t.Fatalf("upload id %q does not carry the pending key", aws.ToString(up.UploadId))
	}
	var done []types.CompletedPart
	for i, n := range []int{5 << 20, 5<<20 + 1, 3} {
		p := randomBytes(n)
		mp = append(mp, p...)
		pc := wc
		if i == 1 {
			pc = s.w2.S3Client()
		}
		res, err := pc.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: aws.String("multipart/m"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := s.w2.S3Client().CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: aws.String("multipart/m"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete through the write-only proxy: %v", err)
	}
	objects["multipart/m"] = mp

	// List and HEAD through the write-only proxy: exact sizes.
	list, err := wc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != len(objects) {
		t.Fatalf("listed %d objects, wrote %d", len(list.Contents), len(objects))
	}
	for _, o := range list.Contents {
		if want := int64(len(objects[aws.ToString(o.Key)])); aws.ToInt64(o.Size) != want {
			t.Errorf("listing: %s is %d bytes, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), want)
		}
	}
	for key, body := range objects {
		h, err := wc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("HEAD %s through the write-only proxy: %v", key, err)
		}
		if aws.ToInt64(h.ContentLength) != int64(len(body)) || len(h.Metadata) != 0 || aws.ToString(h.ETag) == "" || h.LastModified == nil {
			t.Errorf("HEAD %s: %d bytes, metadata %v, ETag %q, Last-Modified %v", key, aws.ToInt64(h.ContentLength), h.Metadata, aws.ToString(h.ETag), h.LastModified)
		}
		// Every read of the plaintext is refused, with the reason.
		_, err = wc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
		wantWriteOnlyRefusal(t, "GET "+key, err)
		_, err = wc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key), Range: aws.String("bytes=0-0")})
		wantWriteOnlyRefusal(t, "ranged GET "+key, err)
	}
	_, err = wc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String("multipart/m"), PartNumber: aws.Int32(2)})
	wantWriteOnlyRefusal(t, "GET partNumber=2", err)
	_, err = wc.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &s.bucket, Key: aws.String("copy"), CopySource: aws.String(s.bucket + "/dir/200k")})
	wantWriteOnlyRefusal(t, "CopyObject", err)

	// The read proxy reads everything back, ranges and metadata too.
	for key, body := range objects {
		out, err := rc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s through the read proxy: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		testenv.AssertSame(t, "read proxy GET "+key, got, body)
		if out.Metadata["host"] != "db1" {
			t.Errorf("%s: metadata %v through the read proxy", key, out.Metadata)
		}
		assertCiphertextAtRest(t, s.bucket, key, body)
		if len(body) < 3 {
			continue
		}
		for _, rg := range [][2]int{{1, len(body) - 2}, {len(body) / 2, len(body) - 1}, {0, 0}} {
			out, err := rc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))})
			if err != nil {
				t.Fatalf("ranged GET %s %v: %v", key, rg, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			testenv.AssertSame(t, fmt.Sprintf("read proxy GET %s bytes=%d-%d", key, rg[0], rg[1]), got, body[rg[0]:rg[1]+1])
		}
	}

	// At rest: version 3 headers with the asymmetric flag naming the RSA
	// key, and one RSA-wrapped data key for every single object (the
	// first proxy's cached one).
	wrapped := map[string]bool{}
	for key := range objects {
		h, err := envelope.ParseHeader(readStored(t, s.bucket, key).Metadata[metaKey])
		if err != nil {
			t.Fatal(err)
		}
		ki := h.KeyInfo()
		if h.Version() != 3 || h.Flags() != envelope.FlagAsymmetricWrap || ki.KeyID != s.keyARN || len(ki.Wrapped) != 384 {
			t.Fatalf("%s: header version %d flags %#x key %s, %d-byte wrapped key", key, h.Version(), h.Flags(), ki.KeyID, len(ki.Wrapped))
		}
		if key != "multipart/m" {
			wrapped[string(ki.Wrapped)] = true
		}
	}
	if len(wrapped) != 1 {
		t.Errorf("%d single objects sealed under %d wrapped data keys, want one (the cached one)", len(objects)-1, len(wrapped))
	}
	names := map[string]int{}
	for _, ev := range auditEvents(t, s.writerAudit) {
		names[ev.EventName]++
	}
	if names["GetPublicKey"] != 1 || names["Decrypt"] != 0 || names["GenerateDataKey"] != 0 {
		t.Errorf("the write-only proxy's KMS calls: %v, want one GetPublicKey", names)
	}
	if _, err := os.Stat(filepath.Join(s.w.DataDir, "keyring.json")); err == nil {
		t.Error("the write-only proxy's data dir holds a keyring")
	}

	// s3seal decrypt, with the reader's KMS identity, from the store alone.
	for _, key := range []string{"dir/200k", "multipart/m"} {
		got, err := runDecryptWith(t, s.readerKMS, s.bucket, key)
		if err != nil {
			t.Fatalf("s3seal decrypt %s: %v", key, err)
		}
		testenv.AssertSame(t, "s3seal decrypt "+key, got, objects[key])
	}

	// s3seal inspect, with the store's credentials only, says how the
	// data key is wrapped.
	cmd := exec.Command(testenv.BuildS3seal(t), "inspect", "s3://"+s.bucket+"/dir/200k", "--json")
	cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+t.TempDir())
	for k, v := range store.UpstreamEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	insp, err := cmd.Output()
	if err != nil {
		t.Fatalf("s3seal inspect: %v", err)
	}
	var in struct {
		FormatVersion int    `json:"format_version"`
		KeyWrapping   string `json:"key_wrapping"`
	}
	if err := json.Unmarshal(insp, &in); err != nil || in.FormatVersion != 3 || in.KeyWrapping != "RSAES_OAEP_SHA_256" {
		t.Errorf("s3seal inspect: %s (%v)", insp, err)
	}

	// The flag cleared at the store: the read proxy takes the wrapped key
	// for a symmetric KMS blob, which the KMS refuses, and returns no
	// plaintext. (Were an unwrap to succeed, the metadata AAD, which
	// covers the flags byte, would fail: envelope's v3 tests.)
	st := readStored(t, s.bucket, "dir/200k")
	raw, err := base64.RawURLEncoding.DecodeString(st.Metadata[metaKey])
	if err != nil {
		t.Fatal(err)
	}
	raw[5] = 0
	st.Metadata[metaKey] = base64.RawURLEncoding.EncodeToString(raw)
	writeStored(t, s.bucket, "tampered", st)
	out, err := rc.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String("tampered")})
	if err == nil {
		b, rerr := io.ReadAll(out.Body)
		out.Body.Close()
		if rerr == nil {
			t.Fatalf("a header with its flag cleared at the store was read: %d bytes", len(b))
		}
	}
	t.Logf("GET of the tampered object: %v", err)
}

// runDecryptWith runs `s3seal decrypt` on bucket/key straight from the
// store with the KMS settings env.
func runDecryptWith(t *testing.T, env map[string]string, bucket, key string) ([]byte, error) {
	t.Helper()
	bin := testenv.BuildS3seal(t)
	out := filepath.Join(t.TempDir(), "plain")
	cmd := exec.Command(bin, "decrypt", "s3://"+bucket+"/"+key, "-o", out)
	cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+t.TempDir())
	for k, v := range withEnv(store.UpstreamEnv(), env) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(msg)))
	}
	return os.ReadFile(out)
}

// TestWriteOnlyPEMKeys: the same without a KMS for the RSA key: the
// write-only proxy has only a PEM public key file (made by openssl), the
// read proxy and s3seal decrypt the private key file. Headers name the key
// by the SHA-256 of its public key.
func TestWriteOnlyPEMKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "backup.key"), filepath.Join(dir, "backup.pub")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", priv},
		{"pkey", "-in", priv, "-pubout", "-out", pub},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	w := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), map[string]string{"S3SEAL_WRITE_ONLY_KEY_FILE": pub}))
	r := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), map[string]string{"S3SEAL_RSA_PRIVATE_KEY_FILE": priv}))
	bucket := newBucket(t, "writeonly-pem")
	ctx := context.Background()
	wc, rc := w.S3Client(), r.S3Client()

	small := randomBytes(100_000)
	put(t, w, bucket, "small", small)
	up, err := wc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	var big []byte
	var done []types.CompletedPart
	for i, n := range []int{5 << 20, 1000} {
		p := randomBytes(n)
		big = append(big, p...)
		res, err := wc.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("big"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := wc.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("big"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("Complete through the write-only proxy: %v", err)
	}
	for key, body := range map[string][]byte{"small": small, "big": big} {
		_, err := wc.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		wantWriteOnlyRefusal(t, "GET "+key, err)
		h, err := wc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(body)) {
			t.Fatalf("HEAD %s through the write-only proxy: %v", key, err)
		}
		testenv.AssertSame(t, "read proxy GET "+key, get(t, r, bucket, key), body)
		out, err := rc.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key), Range: aws.String("bytes=10-99")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		testenv.AssertSame(t, "read proxy ranged GET "+key, got, body[10:100])
		hv, err := envelope.ParseHeader(readStored(t, bucket, key).Metadata[metaKey])
		if err != nil || !strings.HasPrefix(hv.KeyInfo().KeyID, "rsa-spki-sha256:") || hv.Flags() != envelope.FlagAsymmetricWrap {
			t.Fatalf("%s: header %v", key, err)
		}
		got, err = runDecryptWith(t, map[string]string{"S3SEAL_RSA_PRIVATE_KEY_FILE": priv}, bucket, key)
		if err != nil {
			t.Fatalf("s3seal decrypt %s: %v", key, err)
		}
		testenv.AssertSame(t, "s3seal decrypt "+key, got, body)
	}
	// The write-only proxy never saw the private key: not in its memory
	// (the first prime's limbs, as a parsed key holds them; the read
	// proxy, which loaded the key, holds them: the check can fail) ...
	keyPEM, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := parsed.(*rsa.PrivateKey)
	var limbs []byte
	for _, w := range key.Primes[0].Bits()[:4] {
		limbs = binary.LittleEndian.AppendUint64(limbs, uint64(w))
	}
	if !memoryHolds(t, r.PID(), limbs) {
		t.Fatal("the read proxy's memory does not hold its private key: the memory check cannot see keys")
	}
	if memoryHolds(t, w.PID(), limbs) {
		t.Error("the write-only proxy's memory holds the private key")
	}
	// ... nor in its data dir.
	line := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")[5] // a line of the key's base64
	filepath.WalkDir(w.DataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(line)) || bytes.Contains(b, limbs) {
				t.Errorf("%s holds the private key", path)
			}
		}
		return nil
	})
}

// memoryHolds reports whether the writable memory of process pid holds
// needle (read through /proc/PID/mem, which the test's user may read for
// its own children).
func memoryHolds(t *testing.T, pid int, needle []byte) bool {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") {
			continue
		}
		var start, end uint64
		if _, err := fmt.Sscanf(f[0], "%x-%x", &start, &end); err != nil {
			continue
		}
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		if bytes.Contains(buf[:n], needle) {
			return true
		}
	}
	return false
}
