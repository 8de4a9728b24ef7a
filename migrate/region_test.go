package migrate_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/migrate"
)

// TestAcrossRegions is the first acceptance test: a bucket written
// through s3seal in region A (its store, its KMS) migrated to region B's
// store under B's key; then A's KMS is gone, and every object reads back
// bit for bit through an s3seal that knows region B only. A re-run copies
// nothing.
func TestAcrossRegions(t *testing.T) {
	regA.startKMS(t)
	srcProxy := testenv.StartS3seal(t, regA.proxyEnv())
	createBucket(t, &regA.store.Upstream, "photos")
	createBucket(t, &regB.store.Upstream, "photos-b")
	objs := write(t, srcProxy.S3Client(), "photos", corpus(2))
	srcProxy.Stop()

	var obs counter
	cfg := migrate.Config{
		Src:      migrate.Side{Store: store(&regA.store.Upstream), Bucket: "photos", KMS: regA.kms(t)},
		Dst:      migrate.Side{Store: store(&regB.store.Upstream), Bucket: "photos-b", KMS: regB.kms(t)},
		DstKeyID: regB.key,
		Verify:   migrate.VerifyFull,
		Observer: &obs,
	}
	rep, err := migrate.Run(context.Background(), cfg)
	report(t, rep, err, len(objs), 0, 0)
	var stored int64
	for _, r := range rep.Objects {
		stored += r.Bytes
		want := migrate.ModeStream
		if strings.HasPrefix(r.Source, "s3://photos/mp/") {
			want = migrate.ModeParts
		}
		if r.Mode != want {
			t.Errorf("%s: %s, want %s", r.Source, r.Mode, want)
		}
	}
	if obs.moved != stored || rep.Bytes != stored || obs.planned != len(objs) {
		t.Errorf("moved %d bytes, report %d, source holds %d; planned %d", obs.moved, rep.Bytes, stored, obs.planned)
	}

	// Every header and part at B names B's key only.
	bc := regB.store.S3Client()
	for _, o := range objs {
		head, err := bc.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("photos-b"), Key: aws.String(o.key)})
		if err != nil {
			t.Fatal(err)
		}
		h, err := envelope.ParseHeader(head.Metadata["s3seal"])
		if err != nil || h.KeyInfo().KeyID != regB.key || h.Version() != 2 {
			t.Fatalf("%s: header %v, key %q", o.key, err, h.KeyInfo().KeyID)
		}
	}

	// A re-run finds everything in place, with B's KMS alone.
	cfg.Observer = nil
	rep, err = migrate.Run(context.Background(), cfg)
	report(t, rep, err, 0, len(objs), 0)

	// Region A's KMS is gone: an s3seal configured for region B only
	// reads every object.
	regA.moto.Stop()
	dstProxy := testenv.StartS3seal(t, regB.proxyEnv())
	check(t, dstProxy.S3Client(), "photos-b", "", objs)

	// The same through the CLI, each side's options prefixed: src- for A
	// (whose KMS is gone), dst- for B.
	env := []string{"HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true"}
	for side, r := range map[string]*region{"SRC": regA, "DST": regB} {
		u := r.store.Upstream
		env = append(env, "S3SEAL_"+side+"_UPSTREAM="+u.Endpoint, "S3SEAL_"+side+"_UPSTREAM_ACCESS_KEY="+u.AccessKey,
			"S3SEAL_"+side+"_UPSTREAM_SECRET_KEY="+u.SecretKey, "S3SEAL_"+side+"_KMS=aws", "S3SEAL_"+side+"_KMS_REGION="+r.name)
	}
	env = append(env, "S3SEAL_DST_KMS_ENDPOINT="+regB.moto.Endpoint, "S3SEAL_DST_KMS_KEY_ID="+regB.key,
		"S3SEAL_SRC_KMS_ENDPOINT=http://127.0.0.1:1")
	rep, err = runJSON(t, env, "migrate", "s3://photos", "s3://photos-b", "--verify")
	if err != nil || rep.Skipped != len(objs) {
		t.Fatalf("CLI re-run: %v %+v", err, rep)
	}
}
