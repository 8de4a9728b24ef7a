package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
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
