package migrate_test

import (
	"context"
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

	rep, err = migrate.Run(context.Background(), cfg)
	report(t, rep, err, 0, len(objs), 0)
}
