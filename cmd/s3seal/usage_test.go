package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/keyusage"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
)

// TestKeysUsage: two buckets written through s3seal under three keys of its
// embedded keyring (single and multipart objects, a multipart copy into a
// bucket under another key, which re-wraps its parts, two material versions
// of one key, an object s3seal did not write); the report's counts and bytes are exactly what
// was written. The fourth key, which the report does not name, is then
// disabled and every object still reads; schedule-deletion refuses the
// keys the report shows in use unless --force.
func TestKeysUsage(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	dataDir, keyFile := t.TempDir(), filepath.Join(t.TempDir(), "master.key")
	t.Setenv("S3SEAL_DATA_DIR", dataDir)
	t.Setenv("S3SEAL_MASTER_KEY_FILE", keyFile)
	t.Setenv("S3SEAL_KEYRING_PASSPHRASE", "")
	ctx := context.Background()

	keyID := func(args ...string) string {
		t.Helper()
		out, err := runKeys(t, append([]string{"--json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var md kms.KeyMetadata
		if err := json.Unmarshal([]byte(out), &md); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return md.KeyID
	}
	k1, k2, k3, unused := keyID("create", "-d", "one"), keyID("create", "-d", "two"), keyID("create", "-d", "three"), keyID("create", "-d", "unused")
	// Each proxy writes under the keys its S3SEAL_BUCKET_KEYS give.
	start := func(bucketKeys string) *testenv.S3seal {
		env := mi.UpstreamEnv()
		env["S3SEAL_DATA_DIR"], env["S3SEAL_MASTER_KEY_FILE"] = dataDir, keyFile
		env["S3SEAL_KMS_KEY_ID"], env["S3SEAL_BUCKET_KEYS"] = k1, bucketKeys
		return testenv.StartS3seal(t, env)
	}

	const mib = 1 << 20
	want := map[string][]byte{}
	put := func(c *s3.Client, bucket, key string, n int) {
		t.Helper()
		data := bytes.Repeat([]byte{byte(len(want))}, n)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		want[bucket+"/"+key] = data
	}
	p := start("usage2=" + k3)
	c := p.S3Client()
	for _, b := range []string{"usage", "usage2"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	put(c, "usage", "a1", 100)
	put(c, "usage", "a2", 70000)
	put(c, "usage2", "d1", 65536)
	p.Stop()

	p = start("usage=" + k2)
	c = p.S3Client()
	put(c, "usage", "b1", 1)
	// Multipart under k2: 5 MiB + 10 bytes.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("usage"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	var mp []byte
	var parts []types.CompletedPart
	for i, n := range []int{5 * mib, 10} {
		data := bytes.Repeat([]byte{byte(i + 7)}, n)
		mp = append(mp, data...)
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("usage"), Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("usage"), Key: aws.String("mp"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	want["usage/mp"] = mp
	p.Stop()

	p = start("usage=" + k3)
	c = p.S3Client()
	put(c, "usage", "c1", 0)
	// A copy under k3: its header and its parts (re-wrapped) are k3's only;
	// disabling k2 breaks the source, not the copy.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("usage"), Key: aws.String("cp"), CopySource: aws.String("usage/mp")}); err != nil {
		t.Fatal(err)
	}
	want["usage/cp"] = mp
	p.Stop()

	// A second material version of k1.
	if _, err := runKeys(t, "rotate", k1); err != nil {
		t.Fatal(err)
	}
	proxy := start("")
	put(proxy.S3Client(), "usage", "a3", 3)
	// Not s3seal's.
	if _, err := mi.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("usage"), Key: aws.String("plain"), Body: strings.NewReader("clear")}); err != nil {
		t.Fatal(err)
	}

	// The stored sizes, as the store lists them.
	stored := map[string]int64{}
	for _, b := range []string{"usage", "usage2"} {
		l, err := mi.S3Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Contents {
			stored[b+"/"+aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	usageOf := func(buckets []string, versions []keyusage.VersionUsage, objs ...string) keyusage.KeyUsage {
		u := keyusage.KeyUsage{Objects: len(objs), Buckets: buckets, Versions: versions}
		for _, o := range objs {
			u.PlaintextBytes += int64(len(want[o]))
			u.StoredBytes += stored[o]
		}
		return u
	}
	wantKeys := map[string]keyusage.KeyUsage{
		k1: usageOf([]string{"usage"}, []keyusage.VersionUsage{{Version: 1, Objects: 2}, {Version: 2, Objects: 1}}, "usage/a1", "usage/a2", "usage/a3"),
		k2: usageOf([]string{"usage"}, []keyusage.VersionUsage{{Version: 1, Objects: 2}}, "usage/b1", "usage/mp"),
		k3: usageOf([]string{"usage", "usage2"}, []keyusage.VersionUsage{{Version: 1, Objects: 3}}, "usage/c1", "usage/cp", "usage2/d1"),
	}

	upstream := []string{"--upstream", mi.Endpoint, "--upstream-access-key", mi.AccessKey, "--upstream-secret-key", mi.SecretKey}
	out, err := runKeys(t, append([]string{"--json", "usage", "s3://usage", "s3://usage2/", "--workers", "3"}, upstream...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep keyusage.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if rep.Objects != 9 || rep.Sealed != 8 || rep.Plain != 1 || len(rep.Failures) != 0 || len(rep.Keys) != 3 {
		t.Fatalf("report: %s", out)
	}
	for _, got := range rep.Keys {
		w := wantKeys[got.KeyID]
		w.KeyID = got.KeyID
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("key %s:\n got %s\nwant %s", got.KeyID, gj, wj)
		}
	}
	if rep.Key(unused) != nil {
		t.Fatalf("the unused key is in the report")
	}
	// The table says the same.
	out, err = runKeys(t, append([]string{"usage", "s3://usage", "s3://usage2", "--no-save"}, upstream...)...)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 {
			rows[f[3]] = strings.Join(f, " ")
		}
	}
	for id, w := range wantKeys {
		var vs []string
		for _, v := range w.Versions {
			vs = append(vs, fmt.Sprintf("v%d: %d", v.Version, v.Objects))
		}
		row := fmt.Sprintf("%d %d %d %s %s %s", w.Objects, w.PlaintextBytes, w.StoredBytes, id, strings.Join(w.Buckets, ","), strings.Join(vs, ", "))
		if rows[id] != row {
			t.Errorf("table row %q, want %q", rows[id], row)
		}
	}
	if !strings.Contains(out, "9 objects in s3://usage/ s3://usage2/: 8 sealed, 1 not sealed (no key), 0 unreadable") {
		t.Errorf("table:\n%s", out)
	}

	// Disabling the key the report does not name breaks no object.
	if _, err := runKeys(t, "disable", unused); err != nil {
		t.Fatal(err)
	}
	if err := proxy.Restart(); err != nil { // no data key cached from before
		t.Fatal(err)
	}
	c = proxy.S3Client()
	for name, data := range want {
		b, k, _ := strings.Cut(name, "/")
		res, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("get %s with %s disabled: %v", name, unused, err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s: %d bytes, %v", name, len(got), err)
		}
	}
	// ... and disabling one it names does break some.
	if _, err := runKeys(t, "disable", k3); err != nil {
		t.Fatal(err)
	}
	if err := proxy.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.S3Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("usage2"), Key: aws.String("d1")}); err == nil {
		t.Fatal("read an object under a disabled key")
	}

	// schedule-deletion reads the kept report.
	_, err = runKeys(t, "schedule-deletion", k2)
	if err == nil || !strings.Contains(err.Error(), "protects 2 objects") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("schedule-deletion of a key in use: %v", err)
	}
	if _, err := runKeys(t, "schedule-deletion", unused); err != nil {
		t.Fatalf("schedule-deletion of the unused key: %v", err)
	}
	if _, err := runKeys(t, "schedule-deletion", k2, "--force"); err != nil {
		t.Fatalf("schedule-deletion --force: %v", err)
	}
	out, err = runKeys(t, "--json", "describe", k2)
	if err != nil || !strings.Contains(out, string(kms.KeyPendingDeletion)) {
		t.Fatalf("after --force: %s %v", out, err)
	}
}

// TestKeysUsageCompressed: objects a compressing s3seal wrote to MinIO
// (S3SEAL_COMPRESS=s2): a compressed single object, an uncompressed one
// (random bytes, refused by the adaptive check) and a multipart object with
// a compressed part padded to 5 MiB and a small compressed last part. The
// report's stored bytes are the store's sizes; its plaintext bytes count the
// uncompressed object and the multipart object exactly (the latter from its
// part headers) and leave out the compressed single object, whose size is
// sealed and which plaintext_sealed_objects counts; the table marks it.
func TestKeysUsageCompressed(t *testing.T) {
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	env := mi.UpstreamEnv()
	env["S3SEAL_COMPRESS"] = "s2"
	proxy := testenv.StartS3seal(t, env)
	t.Setenv("S3SEAL_DATA_DIR", proxy.DataDir)
	t.Setenv("S3SEAL_MASTER_KEY_FILE", proxy.MasterKeyFile)
	t.Setenv("S3SEAL_KEYRING_PASSPHRASE", "")
	c := proxy.S3Client()
	ctx := context.Background()
	const bucket = "usage-compressed"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	for i := 0; logs.Len() < 7<<20; i++ {
		fmt.Fprintf(&logs, `{"n":%d,"level":"info","msg":"counted","path":"/u/%d"}`+"\n", i, i%977)
	}
	text := logs.Bytes()[:7<<20]
	random := make([]byte, 300_000)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string][]byte{"single.log": text[:900_000], "random.bin": random} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp.log")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range [][]byte{text[:6<<20], text[6<<20:]} {
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mp.log"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp.log"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()

	// What the store holds: the text compressed, the random bytes not.
	stored := map[string]int64{}
	l, err := mi.S3Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.Contents {
		stored[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	if stored["single.log"] >= 900_000/2 || stored["mp.log"] >= 6<<20 || stored["random.bin"] != envelope.CiphertextSize(300_000) {
		t.Fatalf("stored sizes %v: want the text compressed, the random bytes not", stored)
	}

	upstream := []string{"--upstream", mi.Endpoint, "--upstream-access-key", mi.AccessKey, "--upstream-secret-key", mi.SecretKey}
	out, err := runKeys(t, append([]string{"--json", "usage", "s3://" + bucket, "--no-save"}, upstream...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep keyusage.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if rep.Objects != 3 || rep.Sealed != 3 || len(rep.Failures) != 0 || len(rep.Keys) != 1 {
		t.Fatalf("report: %s", out)
	}
	k := rep.Keys[0]
	wantPlain := int64(len(random) + len(text)) // single.log left out: its size is sealed
	wantStored := stored["single.log"] + stored["random.bin"] + stored["mp.log"]
	if k.Objects != 3 || k.PlaintextBytes != wantPlain || k.StoredBytes != wantStored || k.PlaintextSealed != 1 {
		t.Errorf("key usage %+v: want 3 objects, %d plaintext bytes, %d stored, 1 with a sealed size", k, wantPlain, wantStored)
	}
	if !strings.Contains(out, `"plaintext_sealed_objects": 1`) {
		t.Errorf("JSON report lacks plaintext_sealed_objects:\n%s", out)
	}
	out, err = runKeys(t, append([]string{"usage", "s3://" + bucket, "--no-save"}, upstream...)...)
	if err != nil {
		t.Fatal(err)
	}
	if row := fmt.Sprintf("3 %d+ %d %s", wantPlain, wantStored, k.KeyID); !strings.Contains(strings.Join(strings.Fields(out), " "), row) ||
		!strings.Contains(out, "+: plaintext bytes leave out compressed objects, whose plaintext size is sealed (1,") {
		t.Errorf("table, want a row %q and the note:\n%s", row, out)
	}
}
