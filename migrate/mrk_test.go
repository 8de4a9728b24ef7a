package migrate_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
	"github.com/s3seal/s3seal/migrate"
)

// TestMultiRegionKeys: a bucket written in region A under the primary of a
// multi-Region key reads through an s3seal in region B pointed at the
// replica there, with nothing re-wrapped; migrate from A's store to B's
// notices the related keys and copies every object without touching a
// wrapped key (the same key id and wrapped bytes in every header and
// part), and says so; into a bucket of another name (another encryption
// context) it re-wraps as for unrelated keys.
func TestMultiRegionKeys(t *testing.T) {
	mo := testenv.StartMotoMRK(t)
	ctx := context.Background()
	client := func(region string) *awskms.Client {
		c, err := awskms.New(ctx, awskms.Config{Region: region, Endpoint: mo.Endpoint, FollowARNRegion: true,
			Credentials: credentials.NewStaticCredentialsProvider(mo.AccessKey, mo.SecretKey, "")})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	kmsA, kmsB := client(regionA), client(regionB)
	out, err := kmsA.API().CreateKey(ctx, &kmsapi.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("s3seal mrk")})
	if err != nil {
		t.Fatal(err)
	}
	primary := aws.ToString(out.KeyMetadata.Arn)
	rep, err := kmsA.API().ReplicateKey(ctx, &kmsapi.ReplicateKeyInput{KeyId: out.KeyMetadata.KeyId, ReplicaRegion: aws.String(regionB)})
	if err != nil {
		t.Fatal(err)
	}
	replica := aws.ToString(rep.ReplicaKeyMetadata.Arn)

	proxyEnv := func(store *testenv.MinIO, region, key string) map[string]string {
		env := store.UpstreamEnv()
		for k, v := range map[string]string{
			"S3SEAL_KMS": "aws", "S3SEAL_KMS_REGION": region, "S3SEAL_KMS_ENDPOINT": mo.Endpoint, "S3SEAL_KMS_KEY_ID": key,
			"AWS_ACCESS_KEY_ID": mo.AccessKey, "AWS_SECRET_ACCESS_KEY": mo.SecretKey,
			"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
		} {
			env[k] = v
		}
		return env
	}
	const bucket = "mrk-maps"
	createBucket(t, &regA.store.Upstream, bucket)
	createBucket(t, &regB.store.Upstream, bucket)
	createBucket(t, &regB.store.Upstream, bucket+"-b")
	srcProxy := testenv.StartS3seal(t, proxyEnv(regA.store, regionA, primary))
	objs := write(t, srcProxy.S3Client(), bucket, corpus(2))
	srcProxy.Stop()

	// An s3seal in region B, pointed at the replica, reads region A's
	// objects as they are.
	nearB := testenv.StartS3seal(t, proxyEnv(regA.store, regionB, replica))
	check(t, nearB.S3Client(), bucket, "", objs)
	nearB.Stop()

	srcStore, dstStore := store(&regA.store.Upstream), store(&regB.store.Upstream)
	cfg := migrate.Config{
		Src:      migrate.Side{Store: srcStore, Bucket: bucket, KMS: kms.NewCache(kmsA, kms.DefaultCacheConfig())},
		Dst:      migrate.Side{Store: dstStore, Bucket: bucket, KMS: kms.NewCache(kmsB, kms.DefaultCacheConfig())},
		DstKeyID: replica,
		Verify:   migrate.VerifyFull,
	}
	cfg.DryRun = true
	res, err := migrate.Run(ctx, cfg)
	if err != nil || res.Planned != len(objs) {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	for _, r := range res.Objects {
		if !strings.HasSuffix(r.Mode, migrate.ModeKeepWrapped) {
			t.Errorf("dry run: %s: mode %q", r.Source, r.Mode)
		}
	}
	cfg.DryRun = false
	res, err = migrate.Run(ctx, cfg)
	report(t, res, err, len(objs), 0, 0)
	if res.KeptWrapped != len(objs) {
		t.Errorf("kept the wrapped keys of %d objects, want all %d", res.KeptWrapped, len(objs))
	}
	for _, r := range res.Objects {
		if !strings.HasSuffix(r.Mode, migrate.ModeKeptWrapped) {
			t.Errorf("%s: mode %q", r.Source, r.Mode)
		}
	}
	// Every header and part at B carries the source's key id and wrapped
	// key, byte for byte.
	for _, o := range objs {
		so, err := srcStore.Head(ctx, bucket, o.key)
		if err != nil {
			t.Fatal(err)
		}
		do, err := dstStore.Head(ctx, bucket, o.key)
		if err != nil {
			t.Fatal(err)
		}
		sh, err1 := envelope.ParseHeader(so.HeaderValue)
		dh, err2 := envelope.ParseHeader(do.HeaderValue)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if sk, dk := sh.KeyInfo(), dh.KeyInfo(); sk.KeyID != primary || dk.KeyID != sk.KeyID || !bytes.Equal(dk.Wrapped, sk.Wrapped) {
			t.Errorf("%s: destination header under %s, source %s; same wrapped key: %v", o.key, dk.KeyID, sk.KeyID, bytes.Equal(dk.Wrapped, sk.Wrapped))
		}
		if o.parts == nil && o.copyOf == "" {
			continue
		}
		_, dparts, err := dstStore.PartHeaders(ctx, do)
		if err != nil {
			t.Fatal(err)
		}
		for _, ph := range dparts {
			if ki := ph.KeyInfo(); ki.KeyID != primary || !bytes.Equal(ki.Wrapped, sh.KeyInfo().Wrapped) {
				t.Errorf("%s part %d: under %s", o.key, ph.PartNumber(), ki.KeyID)
			}
		}
	}
	// A re-run finds every copy in place, opened through the replica.
	res, err = migrate.Run(ctx, cfg)
	report(t, res, err, 0, len(objs), 0)

	// Region B alone reads the copy.
	dstProxy := testenv.StartS3seal(t, proxyEnv(regB.store, regionB, replica))
	check(t, dstProxy.S3Client(), bucket, "", objs)

	// The same through the CLI (each side's KMS as serve opens it), into a
	// prefix of the same bucket name.
	env := []string{"HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=" + mo.AccessKey, "AWS_SECRET_ACCESS_KEY=" + mo.SecretKey,
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
		"S3SEAL_SRC_KMS_REGION=" + regionA, "S3SEAL_DST_KMS_REGION=" + regionB, "S3SEAL_DST_KMS_KEY_ID=" + replica}
	for side, u := range map[string]testenv.Upstream{"SRC": regA.store.Upstream, "DST": regB.store.Upstream} {
		env = append(env, "S3SEAL_"+side+"_UPSTREAM="+u.Endpoint, "S3SEAL_"+side+"_UPSTREAM_ACCESS_KEY="+u.AccessKey,
			"S3SEAL_"+side+"_UPSTREAM_SECRET_KEY="+u.SecretKey, "S3SEAL_"+side+"_KMS=aws", "S3SEAL_"+side+"_KMS_ENDPOINT="+mo.Endpoint)
	}
	res, err = runJSON(t, env, "migrate", "s3://"+bucket, "s3://"+bucket+"/cli/", "--verify")
	if err != nil || res.Copied != len(objs) || res.KeptWrapped != len(objs) {
		t.Fatalf("CLI: %v %+v", err, res)
	}
	if n := checkObjects(t, dstProxy.S3Client(), bucket, "cli/", objs); n != 2*len(objs) {
		t.Errorf("%d objects in %s, want %d", n, bucket, 2*len(objs))
	}

	// Another bucket name is another encryption context: the keys are
	// re-wrapped under the replica.
	cfg.Dst.Bucket = bucket + "-b"
	res, err = migrate.Run(ctx, cfg)
	report(t, res, err, len(objs), 0, 0)
	if res.KeptWrapped != 0 {
		t.Errorf("kept %d wrapped keys across bucket names", res.KeptWrapped)
	}
	check(t, dstProxy.S3Client(), bucket+"-b", "", objs)
}
