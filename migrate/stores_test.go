package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

func keyringKMS(kr *keyring.Keyring) kms.Client { return kms.NewCache(kr, kms.DefaultCacheConfig()) }

// MinIO to versitygw (stricter where AWS S3 is), with a prefix on each
// side, and every object re-encrypted on the way as well.
func TestToVersityGW(t *testing.T) {
	vg, err := testenv.LaunchVersityGW()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vg.Stop)
	dir, kr := newKeyring(t)
	src := &regA.store.Upstream
	createBucket(t, src, "to-vgw")
	createBucket(t, &vg.Upstream, "from-minio")
	objs := write(t, keyringProxy(t, src, dir).S3Client(), "to-vgw", corpus(2))
	// Copy under two prefixes: re-wrapped, and decrypted and encrypted anew.
	for _, tc := range []struct {
		prefix    string
		reencrypt bool
	}{{"rewrapped/", false}, {"reencrypted/", true}} {
		rep, err := migrate.Run(context.Background(), migrate.Config{
			Src:      migrate.Side{Store: store(src), Bucket: "to-vgw", KMS: keyringKMS(kr)},
			Dst:      migrate.Side{Store: store(&vg.Upstream), Bucket: "from-minio", Prefix: tc.prefix, KMS: keyringKMS(kr)},
			DstKeyID: keyring.DefaultAlias, ReencryptData: tc.reencrypt, Verify: migrate.VerifyFull,
		})
		report(t, rep, err, len(objs), 0, 0)
	}
	c := keyringProxy(t, &vg.Upstream, dir).S3Client()
	for _, prefix := range []string{"rewrapped/", "reencrypted/"} {
		t.Run(strings.TrimSuffix(prefix, "/"), func(t *testing.T) {
			checkPrefix(t, c, "from-minio", prefix, objs)
		})
	}
}

// checkPrefix is check for a bucket that holds other prefixes too.
func checkPrefix(t *testing.T, c *s3.Client, bucket, prefix string, objs []object) {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != len(objs) {
		t.Errorf("%d objects under %s, want %d", len(out.Contents), prefix, len(objs))
	}
	checkObjects(t, c, bucket, prefix, objs)
}

// A bucket of objects s3seal did not write, imported with
// --encrypt-plaintext, then read back through s3seal; without the option
// they fail, with a reason that says what to do.
func TestEncryptPlaintext(t *testing.T) {
	dir, kr := newKeyring(t)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, "plain")
	createBucket(t, dst, "imported")
	sc := src.S3Client()
	objs := []object{
		{key: "a.html", data: []byte("<h1>hi</h1>"), contentType: "text/html", meta: map[string]string{"author": "ann"}, md5: true},
		{key: "empty", data: nil},
		{key: "big.bin", data: pattern(60, 12<<20+3), parts: []int{5 << 20, 5 << 20, 2<<20 + 3}},
	}
	for _, o := range objs {
		in := &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String(o.key), Body: bytes.NewReader(o.data), Metadata: o.meta}
		if o.contentType != "" {
			in.ContentType = aws.String(o.contentType)
		}
		if _, err := sc.PutObject(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	cfg := migrate.Config{
		Src:      migrate.Side{Store: store(src), Bucket: "plain", KMS: keyringKMS(kr)},
		Dst:      migrate.Side{Store: store(dst), Bucket: "imported", KMS: keyringKMS(kr)},
		DstKeyID: keyring.DefaultAlias, Verify: migrate.VerifyFull, PlainPartSize: 5 << 20,
	}
	rep, err := migrate.Run(context.Background(), cfg)
	report(t, rep, err, 0, 0, len(objs))
	if r := rep.Failures[0].Reason; !strings.Contains(r, "--encrypt-plaintext") {
		t.Errorf("reason %q does not say what to do", r)
	}
	cfg.EncryptPlaintext = true
	rep, err = migrate.Run(context.Background(), cfg)
	report(t, rep, err, len(objs), 0, 0)
	for _, r := range rep.Objects {
		if r.Mode != migrate.ModeEncrypt {
			t.Errorf("%s: %s", r.Source, r.Mode)
		}
	}
	check(t, keyringProxy(t, dst, dir).S3Client(), "imported", "", objs)
	rep, err = migrate.Run(context.Background(), cfg)
	report(t, rep, err, 0, len(objs), 0)

	// Nothing in clear at the destination.
	for _, o := range objs {
		out, err := dst.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("imported"), Key: aws.String(o.key)})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(out.Body)
		out.Body.Close()
		if len(o.data) > 4 && bytes.Contains(b.Bytes(), o.data[:min(len(o.data), 64)]) || out.Metadata["author"] != "" || aws.ToString(out.ContentType) == "text/html" {
			t.Errorf("%s: plaintext, metadata or content type in clear at the destination", o.key)
		}
	}
}

// Errors a user can act on: a missing destination bucket and a disabled
// destination key stop the run before anything is written; a disabled
// source key fails the objects under it, saying so.
func TestActionableErrors(t *testing.T) {
	dir, kr := newKeyring(t)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, "err-src")
	p := keyringProxy(t, src, dir)
	write(t, p.S3Client(), "err-src", corpus(1)[:3])
	p.Stop()
	cfg := migrate.Config{
		Src:      migrate.Side{Store: store(src), Bucket: "err-src", KMS: kr},
		Dst:      migrate.Side{Store: store(dst), Bucket: "err-missing", KMS: kr},
		DstKeyID: keyring.DefaultAlias,
	}
	_, err := migrate.Run(context.Background(), cfg)
	if !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), `destination bucket "err-missing" does not exist`) {
		t.Errorf("missing destination bucket: %v", err)
	}
	createBucket(t, dst, "err-dst")
	cfg.Dst.Bucket = "err-dst"

	md, err := kr.CreateKey("dst")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.DisableKey(md.KeyID); err != nil {
		t.Fatal(err)
	}
	cfg.DstKeyID = md.KeyID
	_, err = migrate.Run(context.Background(), cfg)
	if !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), "destination KMS key") || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled destination key: %v", err)
	}
	cfg.DstKeyID = "alias/nothing-here"
	if _, err = migrate.Run(context.Background(), cfg); !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), "no such key") {
		t.Errorf("unknown destination key: %v", err)
	}

	old, err := kr.DescribeKey(context.Background(), keyring.DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := kr.CreateKey("fresh")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.DisableKey(old.KeyID); err != nil {
		t.Fatal(err)
	}
	cfg.DstKeyID = fresh.KeyID
	rep, err := migrate.Run(context.Background(), cfg)
	report(t, rep, err, 0, 0, 3)
	for _, f := range rep.Failures {
		if !strings.Contains(f.Reason, "source KMS key") || !strings.Contains(f.Reason, "disabled") {
			t.Errorf("%s: %s", f.Source, f.Reason)
		}
	}
	out, _ := dst.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("err-dst")})
	if len(out.Contents) != 0 {
		t.Errorf("%d objects written by failed runs", len(out.Contents))
	}
}
