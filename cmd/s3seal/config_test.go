package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
)

// unsetenv unsets name for the test, restoring it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Setenv(name, "")
	os.Unsetenv(name)
}

func parseCLI(t *testing.T, args ...string) (*cli, error) {
	t.Helper()
	var c cli
	parser, err := kong.New(&c, cliOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parser.Parse(args)
	return &c, err
}

func TestConfigFilePrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s3seal.json")
	if err := os.WriteFile(path, []byte(`{"listen": "127.0.0.1:1", "bucket_keys": "photos=alias/photos", "upstream": "http://file:9000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3SEAL_UPSTREAM", "http://env:9000")
	c, err := parseCLI(t, "serve", "--config", path, "--listen", "127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Serve
	if s.Listen != "127.0.0.1:2" || s.Upstream != "http://env:9000" || s.BucketKeys != "photos=alias/photos" {
		t.Errorf("flag > env > file: listen %q upstream %q bucket keys %q", s.Listen, s.Upstream, s.BucketKeys)
	}
}

func TestAllowSigV2Flag(t *testing.T) {
	unsetenv(t, "S3SEAL_ALLOW_SIGV2")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--no-allow-sigv2"}, false},
		{[]string{"--allow-sigv2=false"}, false},
	} {
		c, err := parseCLI(t, append([]string{"serve"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if c.Serve.AllowSigV2 != tc.want {
			t.Errorf("%v: allow sigv2 %v, want %v", tc.args, c.Serve.AllowSigV2, tc.want)
		}
	}
	t.Setenv("S3SEAL_ALLOW_SIGV2", "false")
	if c, err := parseCLI(t, "serve"); err != nil || c.Serve.AllowSigV2 {
		t.Errorf("S3SEAL_ALLOW_SIGV2=false: allow sigv2 %v (%v)", c.Serve.AllowSigV2, err)
	}
}
