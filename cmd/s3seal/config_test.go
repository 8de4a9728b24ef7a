package main

import (
	"crypto/fips140"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// writeConfig writes a --config file and returns its path.
func writeConfig(t *testing.T, json string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s3seal.json")
	if err := os.WriteFile(path, []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

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
	path := writeConfig(t, `{"listen": "127.0.0.1:1", "bucket_keys": "photos=alias/photos", "upstream": "http://file:9000"}`)
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

// The file's keys are the flag names with '-' as '_', not kong's snake
// case of the field name (allow_sig_v_2).
func TestConfigFileKeysAreFlagNames(t *testing.T) {
	unsetenv(t, "S3SEAL_ALLOW_SIGV2")
	unsetenv(t, "S3SEAL_UPSTREAM_ACCESS_KEY")
	unsetenv(t, "S3SEAL_KMS_KEY_ID")
	path := writeConfig(t, `{"allow_sigv2": false, "upstream_access_key": "AK", "kms_key_id": "alias/k", "json": true}`)
	c, err := parseCLI(t, "serve", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Serve; s.AllowSigV2 || s.UpstreamAccessKey != "AK" || s.KMSKeyID != "alias/k" {
		t.Errorf("allow sigv2 %v, upstream access key %q, kms key id %q", s.AllowSigV2, s.UpstreamAccessKey, s.KMSKeyID)
	}
}

func TestConfigFileUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"one", `{"listen": "127.0.0.1:1", "allow_sig_v_2": false}`, `unknown option "allow_sig_v_2"`},
		{"two", `{"upstreem": "", "listen": "127.0.0.1:1", "dataDir": ""}`, `unknown options "dataDir", "upstreem"`},
		{"not json", `{"listen": `, `unexpected EOF`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.json)
			_, err := parseCLI(t, "serve", "--config", path)
			if want := "config file " + path + ": " + tc.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %s", err, want)
			}
		})
	}
}

func TestAllowSigV2Flag(t *testing.T) {
	unsetenv(t, "S3SEAL_ALLOW_SIGV2")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, !fips140.Enabled()}, // off by default in FIPS mode (fips.go)
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

// The limits are options like any other: flag, environment and --config
// key, with their defaults when unset.
func TestLimitOptions(t *testing.T) {
	for _, name := range []string{"S3SEAL_HEADER_TIMEOUT", "S3SEAL_BODY_TIMEOUT", "S3SEAL_MAX_REQUESTS",
		"S3SEAL_MAX_REQUESTS_PER_IDENTITY", "S3SEAL_KEEPALIVE_AFTER", "S3SEAL_UPSTREAM_MAX_CONNS", "S3SEAL_UPSTREAM_CONN_WAIT"} {
		unsetenv(t, name)
	}
	c, err := parseCLI(t, "serve")
	if err != nil {
		t.Fatal(err)
	}
	want := LimitOptions{HeaderTimeout: 30 * time.Second, BodyTimeout: 30 * time.Second, KeepAliveAfter: 10 * time.Second, MaxRequests: 1024,
		MaxRequestsPerIdentity: 256, UpstreamMaxConns: 1024, UpstreamConnWait: 5 * time.Second}
	if c.Serve.LimitOptions != want {
		t.Errorf("defaults: %+v, want %+v", c.Serve.LimitOptions, want)
	}
	path := writeConfig(t, `{"body_timeout": "1m", "max_requests_per_identity": 8, "upstream_conn_wait": "2s"}`)
	t.Setenv("S3SEAL_UPSTREAM_MAX_CONNS", "2048")
	c, err = parseCLI(t, "serve", "--config", path, "--max-requests", "512")
	if err != nil {
		t.Fatal(err)
	}
	want = LimitOptions{HeaderTimeout: 30 * time.Second, BodyTimeout: time.Minute, KeepAliveAfter: 10 * time.Second, MaxRequests: 512,
		MaxRequestsPerIdentity: 8, UpstreamMaxConns: 2048, UpstreamConnWait: 2 * time.Second}
	if c.Serve.LimitOptions != want {
		t.Errorf("set: %+v, want %+v", c.Serve.LimitOptions, want)
	}
}

// The compression options, from a --config file as from flags.
func TestCompressOptions(t *testing.T) {
	path := writeConfig(t, `{"compress": "s2", "compress_buckets": "logs=zstd,media=off", "compress_skip": "zip,.JPG,image/*", "compress_min_saving": 0.2}`)
	c, err := parseCLI(t, "serve", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.Serve.CompressOptions.config()
	if err != nil {
		t.Fatal(err)
	}
	if z.Algorithm != envelope.AlgS2 || z.Buckets["logs"] != envelope.AlgZstd || z.Buckets["media"] != "" || len(z.Buckets) != 2 ||
		z.MinSaving != 0.2 || z.BlockSize != 256<<10 || !slices.Equal(z.SkipExtensions, []string{"zip", "jpg"}) ||
		!slices.Equal(z.SkipContentTypes, []string{"image/*"}) {
		t.Fatalf("%+v", z)
	}
	c, err = parseCLI(t, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if z, err := c.Serve.CompressOptions.config(); err != nil || z.Algorithm != "" || z.Buckets != nil || len(z.SkipExtensions) == 0 {
		t.Fatalf("default: %+v, %v", z, err)
	}
	for _, bad := range []string{"--compress-buckets=logs=gzip", "--compress-buckets=logs", "--compress=lz4"} {
		c, err := parseCLI(t, "serve", bad)
		if err == nil {
			_, err = c.Serve.CompressOptions.config()
		}
		if err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestCompressLevelOptions: the compression level, global and per bucket
// (bucket=alg:level), from a --config file and flags; every bucket's level
// is checked against its algorithm's.
func TestCompressLevelOptions(t *testing.T) {
	path := writeConfig(t, `{"compress": "zstd", "compress_level": "fastest", "compress_buckets": "logs=zstd:Best,fast=s2:default,media=off,big=zstd"}`)
	c, err := parseCLI(t, "serve", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.Serve.CompressOptions.config()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]envelope.Level{"logs": envelope.LevelBest, "fast": envelope.LevelDefault}
	if z.Level != envelope.LevelFastest || z.Buckets["logs"] != envelope.AlgZstd || z.Buckets["fast"] != envelope.AlgS2 ||
		z.Buckets["big"] != envelope.AlgZstd || !maps.Equal(z.BucketLevels, want) {
		t.Fatalf("%+v", z)
	}
	if c, err = parseCLI(t, "serve", "--compress", "s2"); err != nil {
		t.Fatal(err)
	}
	if z, err := c.Serve.CompressOptions.config(); err != nil || z.Level != envelope.LevelDefault || z.BucketLevels != nil {
		t.Fatalf("default level: %+v, %v", z, err)
	}
	for _, bad := range []struct{ args, want string }{
		{"--compress=s2 --compress-level=fastest", `--compress-level: compression level "fastest" is not one of s2's (default, better, best)`},
		{"--compress=zstd --compress-level=max", `--compress-level: compression level "max" is not one of zstd's (fastest, default, better, best)`},
		{"--compress-level=max", `compression level "max"`},
		{"--compress=zstd --compress-level=fastest --compress-buckets=photos=s2", `--compress-buckets photos: --compress-level: compression level "fastest" is not one of s2's`},
		{"--compress-buckets=logs=s2:fastest", `--compress-buckets logs: compression level "fastest" is not one of s2's`},
		{"--compress-buckets=logs=zstd:11", `--compress-buckets logs: compression level "11"`},
		{"--compress-buckets=logs=off:best", "a level for a bucket without compression"},
	} {
		c, err := parseCLI(t, append([]string{"serve"}, strings.Fields(bad.args)...)...)
		if err == nil {
			_, err = c.Serve.CompressOptions.config()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.args, err, bad.want)
		}
	}
}

// TestCompressLevelRefusedAtStart: serve, the real binary, refuses an
// unknown level before it listens, and says why.
func TestCompressLevelRefusedAtStart(t *testing.T) {
	bin := testenv.BuildS3seal(t)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--data-dir", t.TempDir(),
		"--master-key-file", filepath.Join(t.TempDir(), "master.key"), "--compress", "s2", "--compress-level", "fastest")
	cmd.Env = append(os.Environ(), "S3SEAL_ACCESS_KEY=AKIDEXAMPLE", "S3SEAL_SECRET_KEY=secret-secret-secret")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 ||
		!strings.Contains(string(out), `s3seal: --compress-level: compression level "fastest" is not one of s2's (default, better, best)`) {
		t.Fatalf("serve with an unknown level: %v\n%s", err, out)
	}
}
