package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
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

// TestKMSCredentialsPerSide: each side's KMS takes its own credentials
// (--src-kms-* and --dst-kms-*: the shared KMS option group), apart from
// the store's and the environment's. The destination's key lives in
// another AWS account (moto keeps accounts apart: credentials from STS
// AssumeRole of a role in account 222222222222 see that account's keys
// only), the source's in the environment's account. Without the
// destination's own credentials the run stops before copying, naming the
// destination's key; with them (as keys, or as a profile of a shared
// credentials file) every object arrives under the other account's key,
// and an s3seal serving with that account's credentials reads it.
func TestKMSCredentialsPerSide(t *testing.T) {
	ctx := context.Background()
	regA.startKMS(t)
	srcProxy := testenv.StartS3seal(t, regA.proxyEnv())
	createBucket(t, &regA.store.Upstream, "creds-src")
	objs := write(t, srcProxy.S3Client(), "creds-src", corpus(1))
	srcProxy.Stop()

	// Account 222222222222's credentials and key, in region B's KMS.
	stsc := sts.New(sts.Options{Region: regB.name, BaseEndpoint: aws.String(regB.moto.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(regB.moto.AccessKey, regB.moto.SecretKey, "")})
	role, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::222222222222:role/s3seal-migrate"),
		RoleSessionName: aws.String("s3seal-test")})
	if err != nil {
		t.Fatal(err)
	}
	ak, sk, tok := aws.ToString(role.Credentials.AccessKeyId), aws.ToString(role.Credentials.SecretAccessKey), aws.ToString(role.Credentials.SessionToken)
	other, err := awskms.New(ctx, awskms.Config{Region: regB.name, Endpoint: regB.moto.Endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, tok)})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := other.API().CreateKey(ctx, &kmsapi.CreateKeyInput{Description: aws.String("s3seal account 222222222222")})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := aws.ToString(ck.KeyMetadata.Arn)
	if a, _ := kms.ParseARN(otherKey); a.Account != "222222222222" {
		t.Fatalf("the assumed role's key is in account %s: moto did not switch accounts, the test proves nothing", a.Account)
	}

	// The environment's credentials are the source account's.
	env := []string{"HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
		"S3SEAL_SRC_KMS=aws", "S3SEAL_SRC_KMS_REGION=" + regA.name, "S3SEAL_SRC_KMS_ENDPOINT=" + regA.moto.Endpoint,
		"S3SEAL_DST_KMS=aws", "S3SEAL_DST_KMS_REGION=" + regB.name, "S3SEAL_DST_KMS_ENDPOINT=" + regB.moto.Endpoint,
		"S3SEAL_DST_KMS_KEY_ID=" + otherKey}
	for side, r := range map[string]*region{"SRC": regA, "DST": regB} {
		u := r.store.Upstream
		env = append(env, "S3SEAL_"+side+"_UPSTREAM="+u.Endpoint, "S3SEAL_"+side+"_UPSTREAM_ACCESS_KEY="+u.AccessKey,
			"S3SEAL_"+side+"_UPSTREAM_SECRET_KEY="+u.SecretKey)
	}
	createBucket(t, &regB.store.Upstream, "creds-dst")
	createBucket(t, &regB.store.Upstream, "creds-dst2")

	out, err := s3seal(t, env, "migrate", "s3://creds-src", "s3://creds-dst", "--progress", "never").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "destination KMS key "+otherKey) {
		t.Fatalf("without the destination's KMS credentials: %v\n%s", err, out)
	}
	out, err = s3seal(t, append(env, "S3SEAL_DST_KMS_ACCESS_KEY="+ak), "migrate", "s3://creds-src", "s3://creds-dst").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--dst-kms-access-key needs --dst-kms-secret-key") {
		t.Errorf("an access key without its secret: %v\n%s", err, out)
	}

	withKeys := append(env[:len(env):len(env)], "S3SEAL_DST_KMS_ACCESS_KEY="+ak, "S3SEAL_DST_KMS_SECRET_KEY="+sk, "S3SEAL_DST_KMS_SESSION_TOKEN="+tok)
	rep, err := runJSON(t, withKeys, "migrate", "s3://creds-src", "s3://creds-dst", "--verify")
	if err != nil || rep.Copied != len(objs) || rep.Failed != 0 {
		t.Fatalf("with the destination's KMS credentials: %v %+v", err, rep)
	}
	// The same credentials as a profile of a shared credentials file.
	credFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(credFile, fmt.Appendf(nil, "[other-account]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n", ak, sk, tok), 0o600); err != nil {
		t.Fatal(err)
	}
	withProfile := append(env[:len(env):len(env)], "S3SEAL_DST_KMS_PROFILE=other-account", "AWS_SHARED_CREDENTIALS_FILE="+credFile)
	rep, err = runJSON(t, withProfile, "migrate", "s3://creds-src", "s3://creds-dst2", "--verify")
	if err != nil || rep.Copied != len(objs) || rep.Failed != 0 {
		t.Fatalf("with the destination's KMS profile: %v %+v", err, rep)
	}

	// The source's account is gone; s3seal serve, with the other
	// account's KMS credentials as its own options, reads both copies.
	regA.moto.Stop()
	penv := regB.store.UpstreamEnv()
	for k, v := range map[string]string{
		"S3SEAL_KMS": "aws", "S3SEAL_KMS_REGION": regB.name, "S3SEAL_KMS_ENDPOINT": regB.moto.Endpoint, "S3SEAL_KMS_KEY_ID": otherKey,
		"S3SEAL_KMS_ACCESS_KEY": ak, "S3SEAL_KMS_SECRET_KEY": sk, "S3SEAL_KMS_SESSION_TOKEN": tok,
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		penv[k] = v
	}
	dstProxy := testenv.StartS3seal(t, penv)
	check(t, dstProxy.S3Client(), "creds-dst", "", objs)
	check(t, dstProxy.S3Client(), "creds-dst2", "", objs)
}
