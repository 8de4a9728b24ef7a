package migrate_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// A compressed object (the golden v3-compressed-s2) migrates as it is: its
// object key resealed for the destination, the compressed body copied byte
// for byte (verified in full by decrypting it), and it stays compressed;
// re-encrypting it writes it uncompressed. A proxy that knows the bucket may
// hold compressed objects lists and reads it exactly.
func TestCompressedSource(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", "v3-compressed-s2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Bucket      string `json:"bucket"`
		Key         string `json:"key"`
		KeyID       string `json:"key_id"`
		DEK         string `json:"test_only_dek_hex"`
		Wrapped     string `json:"fake_wrapped_dek_hex"`
		HeaderValue string `json:"header_value"`
		BodyFile    string `json:"body_file"`
		PlainFile   string `json:"plaintext_file"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", g.BodyFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", g.PlainFile))
	if err != nil {
		t.Fatal(err)
	}
	dek, _ := hex.DecodeString(g.DEK)
	wrapped, _ := hex.DecodeString(g.Wrapped)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, g.Bucket)
	// TestVersion1Source uses the golden bucket too: leave it as found.
	t.Cleanup(func() {
		ctx := context.Background()
		src.S3Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &g.Bucket, Key: &g.Key})
		src.S3Client().DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &g.Bucket})
	})
	if _, err := src.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &g.Bucket, Key: &g.Key,
		Body: bytes.NewReader(body), Metadata: map[string]string{"s3seal": g.HeaderValue}}); err != nil {
		t.Fatal(err)
	}
	dir, kr := newKeyring(t)
	for _, tc := range []struct {
		bucket     string
		reencrypt  bool
		compressed bool
	}{{"from-v3", false, true}, {"from-v3-reencrypted", true, false}} {
		createBucket(t, dst, tc.bucket)
		rep, err := migrate.Run(context.Background(), migrate.Config{
			Src:      migrate.Side{Store: store(src), Bucket: g.Bucket, KMS: &goldenKMS{keyID: g.KeyID, wrapped: wrapped, dek: dek}},
			Dst:      migrate.Side{Store: store(dst), Bucket: tc.bucket, KMS: kr},
			DstKeyID: keyring.DefaultAlias, Verify: migrate.VerifyFull, ReencryptData: tc.reencrypt,
		})
		report(t, rep, err, 1, 0, 0)
		head, err := dst.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(tc.bucket), Key: &g.Key})
		if err != nil {
			t.Fatal(err)
		}
		h, err := envelope.ParseHeader(head.Metadata["s3seal"])
		if err != nil || (h.Flags()&envelope.FlagCompressed != 0) != tc.compressed {
			t.Fatalf("%s: destination header: %v, flags %v", tc.bucket, err, h)
		}
		if tc.compressed && aws.ToInt64(head.ContentLength) != int64(len(body)) {
			t.Fatalf("%s: %d stored bytes, the source has %d", tc.bucket, aws.ToInt64(head.ContentLength), len(body))
		}
	}
	env := dst.UpstreamEnv()
	env["S3SEAL_DATA_DIR"] = dir
	env["S3SEAL_COMPRESS_BUCKETS"] = "from-v3=off"
	p := testenv.StartS3seal(t, env)
	c := p.S3Client()
	for _, bucket := range []string{"from-v3", "from-v3-reencrypted"} {
		get, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &g.Key})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: %d bytes read, %v", bucket, len(got), err)
		}
		ls, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
		if err != nil || len(ls.Contents) != 1 || aws.ToInt64(ls.Contents[0].Size) != int64(len(plain)) {
			t.Fatalf("%s: listing %v, %+v", bucket, err, ls)
		}
	}
}

// A multipart object with compressed parts (FORMAT.md 12.2.3), written by
// a compressing s3seal, is migrated to another store (s3seal migrate) and
// re-wrapped in place (s3seal rewrap), part by part: each
// part header resealed with its block size, algorithm and body length
// carried over, the compressed bodies and padding copied unchanged, and a
// header that keeps the compressed flag. With the old key disabled it
// reads back bit-exact, whole and by range, and lists with its size.
func TestRewrapCompressedMultipart(t *testing.T) {
	ctx := context.Background()
	dir, kr := newKeyring(t)
	src := &regA.store.Upstream
	createBucket(t, src, "rewrap-compressed")
	env := src.UpstreamEnv()
	env["S3SEAL_DATA_DIR"] = dir
	env["S3SEAL_COMPRESS"] = "zstd"
	p := testenv.StartS3seal(t, env)
	var b bytes.Buffer
	for i := 0; b.Len() < 7<<20; i++ {
		fmt.Fprintf(&b, `{"n":%d,"level":"info","msg":"rewrap me","path":"/x/%d"}`+"\n", i, i%4099)
	}
	plain := b.Bytes()[:7<<20]
	objs := write(t, p.S3Client(), "rewrap-compressed", []object{{key: "mp/logs.jsonl", data: plain, parts: []int{6 << 20, 1 << 20}}})
	p.Stop()
	before := testenv.StoredPartHeaders(t, src.S3Client(), "rewrap-compressed", "mp/logs.jsonl", 2)
	for i, ph := range before {
		if ph.Compression() == nil {
			t.Fatalf("source part %d is not compressed", i+1)
		}
	}
	// s3seal migrate to another store first: the same re-wrap of every
	// part, for another bucket and store.
	dst := &regB.store.Upstream
	createBucket(t, dst, "migrated-compressed")
	mrep, err := migrate.Run(ctx, migrate.Config{
		Src: migrate.Side{Store: store(src), Bucket: "rewrap-compressed", KMS: kr},
		Dst: migrate.Side{Store: store(dst), Bucket: "migrated-compressed", KMS: kr}, DstKeyID: keyring.DefaultAlias, Verify: migrate.VerifyFull,
	})
	report(t, mrep, err, 1, 0, 0)
	if mrep.Objects[0].Mode != migrate.ModeParts {
		t.Fatalf("migrate mode %s", mrep.Objects[0].Mode)
	}
	for i, ph := range testenv.StoredPartHeaders(t, dst.S3Client(), "migrated-compressed", "mp/logs.jsonl", 2) {
		if ph.Compression() == nil || ph.BodyLen() != before[i].BodyLen() {
			t.Fatalf("migrated part %d: %+v, B %d", i+1, ph.Compression(), ph.BodyLen())
		}
	}
	denv := dst.UpstreamEnv()
	denv["S3SEAL_DATA_DIR"] = dir
	denv["S3SEAL_COMPRESS"] = "zstd"
	check(t, testenv.StartS3seal(t, denv).S3Client(), "migrated-compressed", "", objs)

	old, err := kr.DescribeKey(ctx, keyring.DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	md, err := kr.CreateKey("new")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.CreateAlias("alias/new", md.KeyID); err != nil {
		t.Fatal(err)
	}
	cenv := []string{"HOME=" + os.TempDir(), "S3SEAL_UPSTREAM=" + src.Endpoint, "S3SEAL_UPSTREAM_ACCESS_KEY=" + src.AccessKey,
		"S3SEAL_UPSTREAM_SECRET_KEY=" + src.SecretKey, "S3SEAL_DATA_DIR=" + dir}
	rep, err := runJSON(t, cenv, "rewrap", "s3://rewrap-compressed", "--to", "alias/new", "--verify")
	if err != nil || rep.Copied != 1 || rep.Objects[0].Mode != migrate.ModeParts {
		t.Fatalf("rewrap: %v %+v", err, rep)
	}
	head, err := src.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rewrap-compressed"), Key: aws.String("mp/logs.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := envelope.ParseHeader(head.Metadata["s3seal"]); err != nil || h.Flags()&envelope.FlagCompressed == 0 || h.KeyInfo().KeyID != md.KeyID {
		t.Fatalf("rewrapped header: %v %+v", err, h)
	}
	after := testenv.StoredPartHeaders(t, src.S3Client(), "rewrap-compressed", "mp/logs.jsonl", 2)
	for i := range after {
		a, b := after[i].Bytes(), before[i].Bytes()
		if !bytes.Equal(a[4:20], b[4:20]) || after[i].BodyLen() != before[i].BodyLen() || after[i].KeyInfo().KeyID != md.KeyID {
			t.Fatalf("part %d: resealed header % x (B %d), was % x (B %d)", i+1, a[4:20], after[i].BodyLen(), b[4:20], before[i].BodyLen())
		}
	}
	if err := kr.DisableKey(old.KeyID); err != nil {
		t.Fatal(err)
	}
	p2 := testenv.StartS3seal(t, env)
	check(t, p2.S3Client(), "rewrap-compressed", "", objs)
	r := "bytes=6291000-6292000"
	get, err := p2.S3Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rewrap-compressed"), Key: aws.String("mp/logs.jsonl"), Range: &r})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, plain[6291000:6292001]) {
		t.Fatalf("range across the parts: %d bytes, %v", len(got), err)
	}
}
