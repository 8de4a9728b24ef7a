package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkkms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestWriteOnlySync: backup tools through a write-only s3seal (issue
// #21). A key server (s3seal kms serve) holds an RSA_3072 key pair whose
// policy lets the backup host's identity fetch the public key only; the
// write-only proxy takes `aws s3 sync` (cli v2) and `rclone copy --update
// --use-server-modtime` of a tree with multipart files, and a second run of
// each sends nothing; every GET
// through it is refused; a read proxy whose identity may decrypt reads
// every file back bit-exact.
func TestWriteOnlySync(t *testing.T) {
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
	k, err := api.CreateKey(ctx, &sdkkms.CreateKeyInput{KeySpec: kmstypes.KeySpecRsa3072, KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt, Policy: aws.String(policy)})
	if err != nil {
		t.Fatal(err)
	}
	w := startProxy(t, mergeEnv(testenv.KMSClientEnv(ks.Endpoint, writer, "writer-secret"),
		map[string]string{"S3SEAL_WRITE_ONLY_KEY": aws.ToString(k.KeyMetadata.Arn)}))
	r := startProxy(t, mergeEnv(testenv.KMSClientEnv(ks.Endpoint, reader, "reader-secret"), map[string]string{"S3SEAL_RSA_DECRYPT": "true"}))
	bucket := newBucket(t, "writeonly-sync")

	src := filepath.Join(t.TempDir(), "src")
	specs := rcloneTree()
	writeTree(t, src, specs, 21)

	var cli testenv.AWSCLI
	for _, c := range testenv.AWSCLIs(t) {
		if c.Name == "v2" {
			cli = c
		}
	}
	if cli.Path == "" {
		t.Fatal("aws cli v2 not found")
	}
	a := newAWSCLI(t, cli.Path, w.Endpoint, w.AccessKey, w.SecretKey)
	if n := len(transfers(a.ok(t, "s3", "sync", src, "s3://"+bucket+"/aws"))); n != len(specs) {
		t.Fatalf("aws s3 sync through the write-only proxy: %d transfers, want %d", n, len(specs))
	}
	if again := transfers(a.ok(t, "s3", "sync", src, "s3://"+bucket+"/aws")); len(again) != 0 {
		t.Errorf("second aws s3 sync of an unchanged tree sent %d files: %v", len(again), again)
	}

	// rclone compares modification times it reads from the object's
	// metadata (X-Amz-Meta-Mtime, on a HEAD), which is sealed: a write-only
	// proxy cannot show it, and plain `rclone copy` sends every file again.
	// With --update --use-server-modtime rclone compares with the time
	// the store took the object (from the listing), as aws s3 sync does.
	rc := newRclone(t, w)
	common := append([]string{"-v", "--retries", "1", "--low-level-retries", "1", "--update", "--use-server-modtime"}, rcloneMultipart...)
	_, stderr := rc.ok(t, append([]string{"copy", src, "S:" + bucket + "/rclone"}, common...)...)
	if n := transferredFiles(t, stderr); n != len(specs) {
		t.Fatalf("rclone copy through the write-only proxy: %d files, want %d\n%s", n, len(specs), tail(stderr, 4<<10))
	}
	_, stderr = rc.ok(t, append([]string{"copy", src, "S:" + bucket + "/rclone"}, common...)...)
	if n := transferredFiles(t, stderr); n != 0 {
		t.Errorf("second rclone copy of an unchanged tree: %d files transferred, want 0\n%s", n, tail(stderr, 4<<10))
	}

	wc, rcl := w.S3Client(), r.S3Client()
	for _, prefix := range []string{"aws", "rclone"} {
		for _, s := range specs {
			key := prefix + "/" + s.path
			want := testenv.ReadFile(t, filepath.Join(src, filepath.FromSlash(s.path)))
			if _, err := wc.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}); err == nil {
				t.Fatalf("GET %s through the write-only proxy succeeded", key)
			} else if code, status := testenv.APIError(err); code != "AccessDenied" || status != 403 {
				t.Fatalf("GET %s through the write-only proxy: %v", key, err)
			}
			out, err := rcl.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("GET %s through the read proxy: %v", key, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			testenv.AssertSame(t, "read proxy "+key, got, want)
			if len(want) >= 32 && storedPlaintextWindow(t, bucket, key, want) {
				t.Errorf("the store holds plaintext of %s", key)
			}
		}
	}
	if strings.Contains(w.Log(), "level=ERROR") {
		t.Errorf("the write-only proxy logged errors:\n%s", tail(w.Log(), 4<<10))
	}
}

func mergeEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
