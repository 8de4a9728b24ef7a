package main

import (
	"context"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/s3seal/s3seal/migrate"
)

// A command that needs a group twice embeds it with a prefix; kong then
// prefixes the flags, the environment variables and the config file's
// keys, and keeps the two copies apart.
func TestPrefixedOptionGroups(t *testing.T) {
	var root struct {
		Copy struct {
			Src        UpstreamOptions `embed:"" prefix:"src-" envprefix:"S3SEAL_SRC_"`
			Dst        UpstreamOptions `embed:"" prefix:"dst-" envprefix:"S3SEAL_DST_"`
			KMSOptions `embed:"" envprefix:"S3SEAL_"`
		} `cmd:""`
		Config kong.ConfigFlag
	}
	unsetenv(t, "S3SEAL_DST_UPSTREAM_REGION")
	t.Setenv("S3SEAL_SRC_UPSTREAM", "http://src:9000")
	path := writeConfig(t, `{"dst_upstream_region": "eu-west-1"}`)
	parser, err := kong.New(&root, kong.Configuration(loadConfig))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"copy", "--config", path, "--dst-upstream", "http://dst:9000"}); err != nil {
		t.Fatal(err)
	}
	c := root.Copy
	if c.Src.Upstream != "http://src:9000" || c.Dst.Upstream != "http://dst:9000" ||
		c.Src.UpstreamRegion != "us-east-1" || c.Dst.UpstreamRegion != "eu-west-1" || c.KMS != "local" {
		t.Errorf("src %+v, dst %+v, kms %q", c.Src, c.Dst, c.KMS)
	}

	envs := map[string]string{}
	for _, f := range parser.Model.Children[0].Flags {
		envs[f.Name] = f.Envs[0]
	}
	for flag, env := range map[string]string{
		"src-upstream":        "S3SEAL_SRC_UPSTREAM",
		"src-upstream-region": "S3SEAL_SRC_UPSTREAM_REGION",
		"dst-upstream":        "S3SEAL_DST_UPSTREAM",
		"kms":                 "S3SEAL_KMS",
	} {
		if envs[flag] != env {
			t.Errorf("--%s: environment variable %q, want %s", flag, envs[flag], env)
		}
	}
}

// Every option's environment variable is S3SEAL_*: an option group
// embedded without envprefix would read UPSTREAM or DATA_DIR instead.
func TestEnvPrefix(t *testing.T) {
	var c cli
	parser, err := kong.New(&c, cliOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			for _, e := range f.Envs {
				if !strings.HasPrefix(e, "S3SEAL_") || strings.HasPrefix(e, "S3SEAL_S3SEAL_") {
					t.Errorf("%s --%s: environment variable %s", n.Path(), f.Name, e)
				}
			}
		}
		for _, child := range n.Children {
			walk(child)
		}
	}
	walk(parser.Model.Node)
}

// TestDecryptWithoutUpstream: with no upstream, decrypt reads the embedded
// store of the data dir (internal/e2e/embedded runs it).
func TestDecryptWithoutUpstream(t *testing.T) {
	unsetenv(t, "S3SEAL_UPSTREAM")
	if _, err := parseCLI(t, "decrypt", "s3://b/k"); err != nil {
		t.Errorf("decrypt without an upstream: %v", err)
	}
}

// migrate takes serve's options twice, with src- and dst- prefixes, from
// flags, the environment and the config file.
func TestMigrateOptions(t *testing.T) {
	for _, name := range []string{"S3SEAL_SRC_KMS", "S3SEAL_DST_KMS_KEY_ID", "S3SEAL_DST_KMS_REGION", "S3SEAL_SRC_DATA_DIR"} {
		unsetenv(t, name)
	}
	t.Setenv("S3SEAL_SRC_KMS_REGION", "eu-west-1")
	t.Setenv("S3SEAL_DST_UPSTREAM", "http://dst:9000")
	path := writeConfig(t, `{"dst_kms_region": "us-west-2", "src_upstream_access_key": "AK"}`)
	c, err := parseCLI(t, "migrate", "s3://a/p/", "s3://b", "--config", path, "--src-upstream", "http://src:9000",
		"--src-kms", "aws", "--dst-kms", "aws", "--dst-kms-key-id", "arn:aws:kms:us-west-2:1:key/k", "--verify", "--workers", "8")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Migrate
	if m.SrcUpstream.Upstream != "http://src:9000" || m.DstUpstream.Upstream != "http://dst:9000" || m.SrcUpstream.UpstreamAccessKey != "AK" ||
		m.SrcKMS.KMS != "aws" || m.SrcKMS.KMSRegion != "eu-west-1" || m.DstKMS.KMSRegion != "us-west-2" ||
		m.DstKey.KMSKeyID != "arn:aws:kms:us-west-2:1:key/k" || m.Verify.v != migrate.VerifyHeader || m.Workers != 8 || m.SrcKeyring.DataDir != "./s3seal-data" {
		t.Errorf("%+v", m)
	}
	c, err = parseCLI(t, "migrate", "s3://a", "s3://b", "--src-upstream", "x", "--verify=full", "--dst-bucket-keys", "b=alias/b")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.Migrate.DstKey.keyFor("b"); c.Migrate.Verify.v != migrate.VerifyFull || k != "alias/b" || err != nil {
		t.Errorf("--verify=full: %v; key for b: %q %v", c.Migrate.Verify.v, k, err)
	}
	if _, err := parseCLI(t, "migrate", "s3://a", "s3://b", "--src-upstream", "x", "--verify=most"); err == nil {
		t.Error("--verify=most accepted")
	}
	if _, err := parseCLI(t, "rewrap", "s3://a", "--upstream", "x"); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Errorf("rewrap without --to: %v", err)
	}
}

// Each side's KMS credentials come from its own prefixed options (flags,
// environment, config file), and only a complete set is accepted.
func TestKMSCredentialOptions(t *testing.T) {
	for _, name := range []string{"S3SEAL_DST_KMS_ACCESS_KEY", "S3SEAL_DST_KMS_SECRET_KEY", "S3SEAL_DST_KMS_SESSION_TOKEN", "S3SEAL_DST_KMS_PROFILE",
		"S3SEAL_SRC_KMS_ACCESS_KEY", "S3SEAL_SRC_KMS_SECRET_KEY", "S3SEAL_SRC_KMS_SESSION_TOKEN"} {
		unsetenv(t, name)
	}
	t.Setenv("S3SEAL_SRC_KMS_PROFILE", "src-account")
	path := writeConfig(t, `{"dst_kms_access_key": "AKDST", "dst_kms_session_token": "TOKEN"}`)
	c, err := parseCLI(t, "migrate", "s3://a", "s3://b", "--config", path, "--src-upstream", "x", "--dst-upstream", "y", "--dst-kms-secret-key", "SKDST")
	if err != nil {
		t.Fatal(err)
	}
	src, dst := c.Migrate.SrcKMS, c.Migrate.DstKMS
	if src.KMSProfile != "src-account" || src.KMSAccessKey != "" || dst.KMSAccessKey != "AKDST" || dst.KMSSecretKey != "SKDST" ||
		dst.KMSSessionToken != "TOKEN" || dst.KMSProfile != "" {
		t.Errorf("src %+v, dst %+v", src, dst)
	}
	cfg, err := dst.awsConfig("dst-")
	if err != nil || cfg.Credentials == nil || cfg.Profile != "" {
		t.Fatalf("dst: %+v %v", cfg, err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKDST" || creds.SecretAccessKey != "SKDST" || creds.SessionToken != "TOKEN" {
		t.Errorf("dst credentials: %v %v", creds.AccessKeyID, err)
	}
	if cfg, err := src.awsConfig("src-"); err != nil || cfg.Credentials != nil || cfg.Profile != "src-account" || !cfg.FollowARNRegion {
		t.Errorf("src: %+v %v", cfg, err)
	}
	for _, tc := range []struct {
		name string
		o    KMSOptions
		want string
	}{
		{"access key alone", KMSOptions{KMSAccessKey: "AK"}, "--dst-kms-access-key needs --dst-kms-secret-key"},
		{"secret alone", KMSOptions{KMSSecretKey: "SK"}, "need --dst-kms-access-key"},
		{"token alone", KMSOptions{KMSSessionToken: "T"}, "need --dst-kms-access-key"},
		{"keys and profile", KMSOptions{KMSAccessKey: "AK", KMSSecretKey: "SK", KMSProfile: "p"}, "not both"},
	} {
		if _, err := tc.o.awsConfig("dst-"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
