package main

import (
	"strings"
	"testing"

	"github.com/alecthomas/kong"
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
