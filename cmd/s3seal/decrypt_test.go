package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// TestDecryptWithoutProxy writes objects through a real s3seal in front of
// MinIO, stops the proxy, and recovers them from MinIO with the keyring
// alone.
func TestDecryptWithoutProxy(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	proxy := testenv.StartS3seal(t, mi.UpstreamEnv())
	c := proxy.S3Client()
	ctx := context.Background()
	bucket := "decrypt-test"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	single := bytes.Repeat([]byte("single-part plaintext "), 10_000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("one"), Body: bytes.NewReader(single)}); err != nil {
		t.Fatal(err)
	}
	multi := bytes.Repeat([]byte("multipart plaintext! "), 300_000) // 6.3 MB: two parts
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, chunk := range [][]byte{multi[:5<<20], multi[5<<20:]} {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()

	dir := t.TempDir()
	for _, o := range []struct {
		key  string
		want []byte
	}{{"one", single}, {"mp", multi}} {
		out := filepath.Join(dir, o.key)
		cmd := &DecryptCmd{Object: "s3://" + bucket + "/" + o.key, Output: out,
			UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey},
			KMSOptions:      KMSOptions{KMS: "local"}, KeyringOptions: KeyringOptions{DataDir: proxy.DataDir, MasterKeyFile: proxy.MasterKeyFile}}
		if err := cmd.Run(); err != nil {
			t.Fatalf("decrypt %s: %v", o.key, err)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, o.want) {
			t.Errorf("decrypt %s: %d bytes, want %d (%v)", o.key, len(got), len(o.want), err)
		}
	}
	// A damaged object leaves no output file behind.
	raw, err := mi.S3Client().GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(raw.Body)
	raw.Body.Close()
	stored := buf.Bytes()
	stored[len(stored)/2] ^= 1
	if _, err := mi.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("one"), Body: bytes.NewReader(stored), Metadata: raw.Metadata}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "damaged")
	cmd := &DecryptCmd{Object: "s3://" + bucket + "/one", Output: out,
		UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey},
		KMSOptions:      KMSOptions{KMS: "local"}, KeyringOptions: KeyringOptions{DataDir: proxy.DataDir, MasterKeyFile: proxy.MasterKeyFile}}
	if err := cmd.Run(); err == nil {
		t.Error("a damaged object decrypted")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a damaged object left an output file")
	}
}

// TestDecryptCompressed: an object a compressing s3seal wrote (S3SEAL_COMPRESS)
// is recovered from MinIO by decrypt without the proxy, and inspect shows
// it compressed without claiming a plaintext size it cannot know.
func TestDecryptCompressed(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := mi.UpstreamEnv()
	env["S3SEAL_COMPRESS"] = "zstd"
	proxy := testenv.StartS3seal(t, env)
	c := proxy.S3Client()
	ctx := context.Background()
	bucket := "decrypt-compressed"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	for i := 0; logs.Len() < 700_000; i++ {
		fmt.Fprintf(&logs, `{"n":%d,"level":"info","msg":"served","path":"/a/%d"}`+"\n", i, i%977)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("app.log"), Body: bytes.NewReader(logs.Bytes())}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	head, err := mi.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("app.log")})
	if err != nil || aws.ToInt64(head.ContentLength) > int64(logs.Len())/4 {
		t.Fatalf("stored %d bytes for %d: %v", aws.ToInt64(head.ContentLength), logs.Len(), err)
	}
	out := filepath.Join(t.TempDir(), "app.log")
	cmd := &DecryptCmd{Object: "s3://" + bucket + "/app.log", Output: out,
		UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey},
		KMSOptions:      KMSOptions{KMS: "local"}, KeyringOptions: KeyringOptions{DataDir: proxy.DataDir, MasterKeyFile: proxy.MasterKeyFile}}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, logs.Bytes()) {
		t.Fatalf("decrypted %d bytes, want %d: %v", len(got), logs.Len(), err)
	}
	// --info shows the compression and its ratio (stdout captured).
	infoFile := filepath.Join(t.TempDir(), "info.json")
	f, err := os.Create(infoFile)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	info := *cmd
	info.Info, info.Output = true, "-"
	err = info.Run()
	os.Stdout = stdout
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plaintext   int64 `json:"plaintext_size"`
		Stored      int64 `json:"stored_size"`
		Compression struct {
			Algorithm string  `json:"algorithm"`
			BlockSize int     `json:"block_size"`
			Ratio     float64 `json:"ratio"`
		} `json:"compression"`
	}
	raw, _ := os.ReadFile(infoFile)
	if err := json.Unmarshal(raw, &got); err != nil || got.Plaintext != int64(logs.Len()) || got.Compression.Algorithm != "zstd" ||
		got.Compression.BlockSize != 256<<10 || got.Compression.Ratio != float64(got.Stored)/float64(got.Plaintext) {
		t.Fatalf("decrypt --info: %s (%v)", raw, err)
	}
	var text bytes.Buffer
	ins := &InspectCmd{Object: "s3://" + bucket + "/app.log", out: &text,
		UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey}}
	if err := ins.Run(); err != nil {
		t.Fatal(err)
	}
	if s := text.String(); !regexp.MustCompile(`(?m)^flags +compressed$`).MatchString(s) ||
		!regexp.MustCompile(`(?m)^plaintext size +sealed .*inspect --open`).MatchString(s) {
		t.Fatalf("inspect:\n%s", s)
	}
}

// TestDecryptCompressedMultipart: a multipart object a compressing s3seal
// wrote with compressed parts (FORMAT.md 12.2.3) is recovered from MinIO
// by decrypt without the proxy (--info gives its plaintext size), and
// inspect, without a key, lists each part's algorithm, block size and
// ratio (a part's plaintext size is in its header in clear).
func TestDecryptCompressedMultipart(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := mi.UpstreamEnv()
	env["S3SEAL_COMPRESS"] = "s2"
	proxy := testenv.StartS3seal(t, env)
	c := proxy.S3Client()
	ctx := context.Background()
	bucket := "decrypt-compressed-mp"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	for i := 0; logs.Len() < 7<<20; i++ {
		fmt.Fprintf(&logs, `{"n":%d,"level":"info","msg":"served","path":"/a/%d"}`+"\n", i, i%977)
	}
	plain := logs.Bytes()[:7<<20]
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp.log")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range [][]byte{plain[:6<<20], plain[6<<20:]} {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp.log"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp.log"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	out := filepath.Join(t.TempDir(), "mp.log")
	cmd := &DecryptCmd{Object: "s3://" + bucket + "/mp.log", Output: out,
		UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey},
		KMSOptions:      KMSOptions{KMS: "local"}, KeyringOptions: KeyringOptions{DataDir: proxy.DataDir, MasterKeyFile: proxy.MasterKeyFile}}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypted %d bytes, want %d: %v", len(got), len(plain), err)
	}
	// --info: the plaintext size from the sealed manifest (stdout captured).
	infoFile := filepath.Join(t.TempDir(), "info.json")
	f, err := os.Create(infoFile)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	info := *cmd
	info.Info, info.Output = true, "-"
	err = info.Run()
	os.Stdout = stdout
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plaintext   int64 `json:"plaintext_size"`
		Stored      int64 `json:"stored_size"`
		Parts       int   `json:"parts"`
		Compression struct {
			Parts string  `json:"parts"`
			Ratio float64 `json:"ratio"`
		} `json:"compression"`
	}
	raw, _ := os.ReadFile(infoFile)
	if err := json.Unmarshal(raw, &got); err != nil || got.Plaintext != int64(len(plain)) || got.Parts != 2 || got.Stored >= got.Plaintext ||
		got.Compression.Parts != "per part" || got.Compression.Ratio != float64(got.Stored)/float64(got.Plaintext) {
		t.Fatalf("decrypt --info: %s (%v)", raw, err)
	}
	var in Inspection
	var js bytes.Buffer
	ins := &InspectCmd{Object: "s3://" + bucket + "/mp.log", JSON: true, out: &js,
		UpstreamOptions: UpstreamOptions{Upstream: mi.Endpoint, UpstreamRegion: "us-east-1", UpstreamAccessKey: mi.AccessKey, UpstreamSecretKey: mi.SecretKey}}
	if err := ins.Run(); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if in.PlaintextSize == nil || *in.PlaintextSize != int64(len(plain)) || len(in.Parts) != 2 {
		t.Fatalf("inspect: %s", js.String())
	}
	for i, p := range in.Parts {
		if p.Compression != "s2" || p.BlockSize != 256<<10 || p.Ratio == nil || *p.Ratio >= 1 || p.FormatVersion != 3 ||
			*p.Ratio != float64(p.StoredSize)/float64(p.PlaintextSize) {
			t.Fatalf("part %d: %+v", i+1, p)
		}
	}
	if in.Parts[0].StoredSize != envelope.MinStoredPartSize {
		t.Fatalf("part 1 stored in %d bytes, want the 5 MiB floor", in.Parts[0].StoredSize)
	}
	var text bytes.Buffer
	ins.JSON, ins.out = false, &text
	if err := ins.Run(); err != nil {
		t.Fatal(err)
	}
	if s := text.String(); !strings.Contains(s, "s2, 262144-byte blocks, ratio") || !regexp.MustCompile(`(?m)^flags +compressed$`).MatchString(s) {
		t.Fatalf("inspect:\n%s", s)
	}
}
