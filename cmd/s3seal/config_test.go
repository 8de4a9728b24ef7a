package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
)

func TestConfigFilePrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s3seal.json")
	if err := os.WriteFile(path, []byte(`{"listen": "127.0.0.1:1", "bucket_keys": "photos=alias/photos", "upstream": "http://file:9000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3SEAL_UPSTREAM", "http://env:9000")
	var c cli
	parser, err := kong.New(&c, cliOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"serve", "--config", path, "--listen", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	s := c.Serve
	if s.Listen != "127.0.0.1:2" || s.Upstream != "http://env:9000" || s.BucketKeys != "photos=alias/photos" {
		t.Errorf("flag > env > file: listen %q upstream %q bucket keys %q", s.Listen, s.Upstream, s.BucketKeys)
	}
}
