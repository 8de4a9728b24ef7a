package awskms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// motoEndpoint is the URL of the moto_server TestMain started.
var motoEndpoint string

func TestMain(m *testing.M) {
	os.Exit(runWithMoto(m))
}

func runWithMoto(m *testing.M) int {
	// Fake credentials and no shared config files: the SDK's default chain
	// must find exactly these.
	tmp, err := os.MkdirTemp("", "awskms-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	moto, err := testenv.LaunchMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer moto.Stop()
	os.Setenv("AWS_ACCESS_KEY_ID", moto.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", moto.SecretKey)
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(tmp, "config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(tmp, "credentials"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	motoEndpoint = moto.Endpoint
	return m.Run()
}

func newMotoClient(t *testing.T, region string) *Client {
	t.Helper()
	c, err := New(context.Background(), Config{Region: region, Endpoint: motoEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
