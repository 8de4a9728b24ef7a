package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// inspect reads envelopes with the store's credentials alone: the proxy
// and its keyring are gone by the time it runs.
func TestInspect(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	proxy := testenv.StartS3seal(t, mi.UpstreamEnv())
	c := proxy.S3Client()
	ctx := context.Background()
	bucket := "inspect-test"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("one"), Body: strings.NewReader("hello"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"color": "blue"}}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, n := range []int{5 << 20, 1000} {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(make([]byte, n))})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	if _, err := mi.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("plain"), Body: strings.NewReader("clear"),
		ContentType: aws.String("text/html")}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()

	run := func(key string, asJSON bool) string {
		t.Helper()
		var out bytes.Buffer
		cmd := &InspectCmd{Object: "s3://" + bucket + "/" + key, JSON: asJSON, out: &out,
			UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey}}
		if err := cmd.Run(); err != nil {
			t.Fatalf("inspect %s: %v", key, err)
		}
		return out.String()
	}
	decode := func(key string) Inspection {
		var in Inspection
		if err := json.Unmarshal([]byte(run(key, true)), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}

	one := decode("one")
	if !one.Sealed || one.FormatVersion != 2 || one.Layout != "single" || one.PlaintextSize == nil || *one.PlaintextSize != 5 ||
		one.StoredSize != envelope.CiphertextSize(5) || one.KMSKey == "" || len(one.Parts) != 0 || len(one.Warnings) != 0 {
		t.Errorf("single: %+v", one)
	}
	if ct := one.InClear["Content-Type"]; ct != "" && !defaultContentType(ct) {
		t.Errorf("single: the store has the sealed Content-Type in clear: %v", one.InClear)
	}
	mp := decode("mp")
	if mp.Layout != "multipart" || len(mp.Parts) != 2 || mp.PlaintextSize == nil || *mp.PlaintextSize != 5<<20+1000 {
		t.Fatalf("multipart: %+v", mp)
	}
	if p := mp.Parts[1]; p.Number != 2 || p.PlaintextSize != 1000 || p.StoredOffset != 5<<20+envelope.PartOverhead || p.FormatVersion != 2 || p.KMSKey != mp.KMSKey {
		t.Errorf("part 2: %+v", p)
	}
	plain := decode("plain")
	if plain.Sealed || plain.InClear["Content-Type"] != "text/html" || len(plain.Warnings) == 0 {
		t.Errorf("plain object: %+v", plain)
	}
	if text := run("mp", false); !strings.Contains(text, "layout") || !strings.Contains(text, "2 parts:") {
		t.Errorf("text form:\n%s", text)
	}
}

// TestOfflineCommandsVerifyHTTPSStore: inspect, decrypt, migrate and
// rewrap reach an https store as serve does, verified against the system's
// roots or --upstream-ca-file. The store is a real MinIO behind a TLS
// front in this process (the Host header is kept, so signatures verify).
func TestOfflineCommandsVerifyHTTPSStore(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	ctx := context.Background()
	bucket := "https-test"
	if _, err := mi.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartS3seal(t, mi.UpstreamEnv())
	if _, err := proxy.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a b/ü.txt"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()

	target, err := url.Parse(mi.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}})
	defer front.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	inspectWith := func(ca string) error {
		cmd := &InspectCmd{Object: "s3://" + bucket + "/a b/ü.txt", out: io.Discard,
			UpstreamOptions: UpstreamOptions{Upstream: front.URL, UpstreamRegion: "us-east-1",
				UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey, UpstreamCAFile: ca}}
		return cmd.Run()
	}
	if err := inspectWith(""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("inspect of a store whose CA is not trusted: %v, want a certificate error", err)
	}
	if err := inspectWith(caFile); err != nil {
		t.Errorf("inspect with --upstream-ca-file: %v", err)
	}
	if err := inspectWith(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("inspect with a CA file that does not exist succeeded")
	}
}

// TestInspectOpen: inspect --open opens headers with the keyring a real
// compressing s3seal wrote them with (the proxy stopped, MinIO holding
// them) and shows the plaintext size, ratio and block counts; without
// --open it uses no key and says the size is sealed; a wrong keyring and a
// write-only (RSA) writer's object fail with an error that names the key.
func TestInspectOpen(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := mi.UpstreamEnv()
	env["S3SEAL_COMPRESS"] = "s2"
	proxy := testenv.StartS3seal(t, env)
	ctx := context.Background()
	bucket := "inspect-open"
	if _, err := proxy.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	// Two blocks of JSON lines, one of random bytes (stored raw), then a
	// short block of JSON lines: 4 blocks of 256 KiB, 3 compressed.
	var logs bytes.Buffer
	for i := 0; logs.Len() < 3<<18; i++ {
		fmt.Fprintf(&logs, `{"n":%d,"level":"info","msg":"served","path":"/a/%d"}`+"\n", i, i%977)
	}
	noise := make([]byte, 256<<10)
	rand.Read(noise)
	body := slices.Concat(logs.Bytes()[:512<<10], noise, logs.Bytes()[:1000])
	for key, b := range map[string][]byte{"mixed.log": body, "random.gz": noise} {
		if _, err := proxy.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Stop()

	upstream := UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey}
	ownKeys := KeyringOptions{DataDir: proxy.DataDir, MasterKeyFile: proxy.MasterKeyFile}
	run := func(key string, open bool, kr KeyringOptions, rsaFile string, asJSON bool) (string, error) {
		var out bytes.Buffer
		cmd := &InspectCmd{Object: "s3://" + bucket + "/" + key, JSON: asJSON, Open: open, RSAPrivateKeyFile: rsaFile, out: &out,
			UpstreamOptions: upstream, KMSOptions: KMSOptions{KMS: "local"}, KeyringOptions: kr}
		err := cmd.Run()
		return out.String(), err
	}
	decode := func(key string, open bool) Inspection {
		t.Helper()
		out, err := run(key, open, ownKeys, "", true)
		if err != nil {
			t.Fatalf("inspect %s (open %v): %v", key, open, err)
		}
		var in Inspection
		if err := json.Unmarshal([]byte(out), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	head, err := mi.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("mixed.log")})
	if err != nil {
		t.Fatal(err)
	}
	stored := aws.ToInt64(head.ContentLength)

	// Without --open: no key is touched (a keyring dir that does not
	// exist stays so), and the size is said to be sealed.
	missing := filepath.Join(t.TempDir(), "no-keyring")
	out, err := run("mixed.log", false, KeyringOptions{DataDir: missing}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^plaintext size +sealed .*inspect --open`).MatchString(out) || strings.Contains(out, "stored / plaintext") {
		t.Errorf("inspect without --open:\n%s", out)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("inspect without --open created a keyring")
	}
	closed := decode("mixed.log", false)
	if closed.Opened || closed.PlaintextSize != nil || !closed.PlaintextSizeSealed || closed.Compression != nil || closed.StoredSize != stored {
		t.Errorf("inspect without --open: %+v", closed)
	}

	opened := decode("mixed.log", true)
	wantRatio := float64(stored) / float64(len(body))
	if !opened.Opened || opened.PlaintextSize == nil || *opened.PlaintextSize != int64(len(body)) || opened.PlaintextSizeSealed {
		t.Fatalf("inspect --open: %+v", opened)
	}
	if z := opened.Compression; z == nil || z.Algorithm != "s2" || z.BlockSize != 256<<10 || z.Ratio != wantRatio ||
		z.SavingPercent != 100*(1-wantRatio) || z.Blocks != 4 || z.RawBlocks != 1 || z.CompressedBlocks != 3 || wantRatio > 0.6 {
		t.Fatalf("inspect --open compression: %+v (stored %d of %d)", opened.Compression, stored, len(body))
	}
	out, err = run("mixed.log", true, ownKeys, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`(?m)^plaintext size +%d \(sealed; read with the key\)$`, len(body)),
		`(?m)^compression +s2, blocks of 262144 bytes$`,
		fmt.Sprintf(`(?m)^stored / plaintext +%s \(saves %s%%\)$`, regexp.QuoteMeta(fmt.Sprintf("%.4f", wantRatio)), regexp.QuoteMeta(fmt.Sprintf("%.1f", 100*(1-wantRatio)))),
		`(?m)^blocks +4: 3 compressed, 1 stored raw$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("inspect --open text lacks %s:\n%s", want, out)
		}
	}
	// An uncompressed object (skipped by its name): --open checks its
	// sealed size against the stored one and shows no compression.
	plain := decode("random.gz", true)
	if !plain.Opened || plain.PlaintextSize == nil || *plain.PlaintextSize != int64(len(noise)) || plain.Compression != nil || plain.FormatVersion != 2 {
		t.Errorf("inspect --open of an uncompressed object: %+v", plain)
	}

	// A write-only writer's object (an RSA public key file): opening it
	// needs the private key, and says so.
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "backup.key"), filepath.Join(dir, "backup.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	woEnv := mi.UpstreamEnv()
	woEnv["S3SEAL_WRITE_ONLY_KEY_FILE"] = pub
	wo := testenv.StartS3seal(t, woEnv)
	if _, err := wo.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("backup.log"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	wo.Stop()
	woKeys := KeyringOptions{DataDir: wo.DataDir, MasterKeyFile: wo.MasterKeyFile}
	// The write-only instance's keyring is another keyring: it does not
	// hold the key of the first instance's objects.
	if _, err := run("mixed.log", true, woKeys, "", false); err == nil ||
		!strings.Contains(err.Error(), "unwrap the data key with KMS key "+opened.KMSKey) {
		t.Errorf("inspect --open with another keyring: %v", err)
	}
	if _, err := run("backup.log", true, woKeys, "", false); err == nil || !strings.Contains(err.Error(), "write-only writer") ||
		!strings.Contains(err.Error(), "rsa-spki-sha256:") {
		t.Errorf("inspect --open of a write-only object without the private key: %v", err)
	}
	out, err = run("backup.log", true, woKeys, priv, true)
	if err != nil {
		t.Fatalf("inspect --open --rsa-private-key-file: %v", err)
	}
	var backup Inspection
	if err := json.Unmarshal([]byte(out), &backup); err != nil {
		t.Fatal(err)
	}
	if !backup.Opened || backup.PlaintextSize == nil || *backup.PlaintextSize != int64(len(body)) || backup.KeyWrapping == "" || backup.Compression != nil {
		t.Errorf("inspect --open of a write-only object with the private key: %+v", backup)
	}
}
