package migrate_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
)

// Two regions, each with its own store and its own KMS: a moto_server per
// region, so that reading region B's copy provably needs nothing of A.
const (
	regionA = "eu-west-1"
	regionB = "us-west-2"
)

type region struct {
	name  string
	store *testenv.MinIO
	moto  *testenv.Moto // nil until startKMS
	key   string        // ARN of the region's KMS key
}

// regA and regB are the two regions' stores; regB has its KMS from the
// start, regA gets one per test that needs it (startKMS), so that a test
// can take it away.
var regA, regB *region

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The SDK's default chain must find the moto credentials and nothing
	// of the host's.
	tmp, err := os.MkdirTemp("", "migrate-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_CONFIG_FILE": filepath.Join(tmp, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(tmp, "none"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AWS_SESSION_TOKEN")
	for _, r := range []**region{&regA, &regB} {
		mi, err := testenv.LaunchMinIO(testenv.MinIOOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "migrate tests:", err)
			return 1
		}
		defer mi.Stop()
		*r = &region{store: mi}
	}
	regA.name, regB.name = regionA, regionB
	mo, key, err := launchKMS(regionB)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate tests:", err)
		return 1
	}
	defer mo.Stop()
	regB.moto, regB.key = mo, key
	if _, err := testenv.S3sealBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "migrate tests:", err)
		return 1
	}
	return m.Run()
}

// launchKMS starts a moto_server for one region and creates a key there.
func launchKMS(region string) (*testenv.Moto, string, error) {
	mo, err := testenv.LaunchMoto()
	if err != nil {
		return nil, "", err
	}
	c, err := kmsClient(region, mo)
	if err == nil {
		var out *kmsapi.CreateKeyOutput
		out, err = c.API().CreateKey(context.Background(), &kmsapi.CreateKeyInput{Description: aws.String("s3seal migrate " + region)})
		if err == nil {
			return mo, aws.ToString(out.KeyMetadata.Arn), nil
		}
	}
	mo.Stop()
	return nil, "", err
}

// startKMS gives the region a KMS of its own for one test.
func (r *region) startKMS(t *testing.T) {
	t.Helper()
	mo, key, err := launchKMS(r.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mo.Stop(); r.moto, r.key = nil, "" })
	r.moto, r.key = mo, key
}

func kmsClient(region string, mo *testenv.Moto) (*awskms.Client, error) {
	return awskms.New(context.Background(), awskms.Config{Region: region, Endpoint: mo.Endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(mo.AccessKey, mo.SecretKey, "")})
}

// kms is the region's AWS KMS (its own moto), as migrate stacks it.
func (r *region) kms(t *testing.T) kms.Client {
	t.Helper()
	c, err := kmsClient(r.name, r.moto)
	if err != nil {
		t.Fatal(err)
	}
	return kms.NewCache(c, kms.DefaultCacheConfig())
}

// proxyEnv configures an s3seal in front of the region's store with the
// region's KMS only.
func (r *region) proxyEnv() map[string]string {
	env := r.store.UpstreamEnv()
	for k, v := range map[string]string{
		"S3SEAL_KMS": "aws", "S3SEAL_KMS_REGION": r.name, "S3SEAL_KMS_ENDPOINT": r.moto.Endpoint, "S3SEAL_KMS_KEY_ID": r.key,
		"AWS_ACCESS_KEY_ID": r.moto.AccessKey, "AWS_SECRET_ACCESS_KEY": r.moto.SecretKey,
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		env[k] = v
	}
	return env
}
