package main

import (
	"context"
	"crypto/fips140"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestFIPSModeDecisions checks, in FIPS 140-3 mode (in a process of its own
// when this pass is not a FIPS one), what the command decides there:
// Signature V2 off by default and refused when asked for, a passphrase
// keyring refused, and the version text saying so.
func TestFIPSModeDecisions(t *testing.T) {
	if !testenv.InFIPSMode(t) {
		return
	}
	unsetenv(t, "S3SEAL_ALLOW_SIGV2")
	c, err := parseCLI(t, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.AllowSigV2 {
		t.Error("--allow-sigv2 defaults to true in FIPS mode")
	}
	if err := fipsAllowSigV2(c.Serve.AllowSigV2); err != nil {
		t.Errorf("the default (V2 off) is refused in FIPS mode: %v", err)
	}
	c, err = parseCLI(t, "serve", "--allow-sigv2")
	if err != nil {
		t.Fatal(err)
	}
	if err := fipsAllowSigV2(c.Serve.AllowSigV2); err == nil || !strings.Contains(err.Error(), "HMAC-SHA1") {
		t.Errorf("--allow-sigv2 in FIPS mode: %v, want a refusal naming HMAC-SHA1", err)
	}

	dir := t.TempDir()
	if _, _, err := (&KeyringOptions{DataDir: dir, Passphrase: "correct horse battery staple"}).keyringConfig(); err == nil || !strings.Contains(err.Error(), "scrypt") {
		t.Errorf("passphrase keyring in FIPS mode: %v, want a refusal naming scrypt", err)
	}
	if _, _, err := (&KeyringOptions{DataDir: dir, MasterKeyFile: filepath.Join(t.TempDir(), "k")}).keyringConfig(); err != nil {
		t.Errorf("key file keyring in FIPS mode: %v", err)
	}

	for _, run := range []func() error{(&KeysExportCmd{}).Run, (&KeysImportCmd{}).Run} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "age file") {
			t.Errorf("keys export/import in FIPS mode: %v, want a refusal naming the age file", err)
		}
	}

	if err := fipsCheckEnforced("serve"); err != nil {
		t.Errorf("fips140=on refused: %v", err)
	}
	if v := versionText(); !strings.Contains(v, "\nfips140 mode: on\n") {
		t.Errorf("version text in FIPS mode:\n%s", v)
	}
}

// childEnv is this process's environment without S3SEAL_* and GODEBUG,
// plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "S3SEAL_") || strings.HasPrefix(kv, "GODEBUG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runBin runs the s3seal binary and returns its combined output and exit
// code. A command expected to be refused that starts serving instead is
// killed after a minute: it then fails the test.
func runBin(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("s3seal %v did not exit within a minute: %v\n%s", args, err, out)
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("s3seal %v: %v", args, err)
	return "", -1
}

// TestVersionCommand runs the binary testenv builds: `s3seal version` (and
// --version) say the FIPS mode it runs in and the module it was built with,
// which in a FIPS pass must be this test binary's (testenv builds the
// proxy with the test's GOFIPS140); fips140=only refuses every command but
// version; fips140=on refuses V2 and a passphrase keyring at startup.
func TestVersionCommand(t *testing.T) {
	bin := testenv.BuildS3seal(t)
	inherited := os.Environ()
	out, code := runBin(t, bin, inherited, "version")
	if code != 0 {
		t.Fatalf("s3seal version: exit %d\n%s", code, out)
	}
	for _, want := range []string{"s3seal " + version + "\n", "\ngo: go1.", "\nfips140 mode: " + fipsModeName() + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("s3seal version lacks %q:\n%s", want, out)
		}
	}
	// This test binary and the proxy are built with the same GOFIPS140.
	own := buildSetting("GOFIPS140")
	t.Logf("this test binary: GOFIPS140=%q, fips140 mode %s; the proxy's version:\n%s", own, fipsModeName(), out)
	if own != "" && own != "off" {
		if want := "(built with GOFIPS140=" + own + ")"; !strings.Contains(out, want) {
			t.Errorf("this test binary was built with GOFIPS140=%s, the proxy testenv built says otherwise:\n%s", own, out)
		}
	} else if !strings.Contains(out, "fips140 module: latest (built without GOFIPS140") {
		t.Errorf("built without GOFIPS140, s3seal version says:\n%s", out)
	}
	if again, _ := runBin(t, bin, inherited, "--version"); again != out {
		t.Errorf("--version says\n%s\nversion says\n%s", again, out)
	}

	for _, mode := range []string{"off", "on", "only"} {
		out, code := runBin(t, bin, childEnv("GODEBUG=fips140="+mode), "version")
		if code != 0 || !strings.Contains(out, "\nfips140 mode: "+mode) {
			t.Errorf("GODEBUG=fips140=%s s3seal version: exit %d\n%s", mode, code, out)
		}
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(t.TempDir(), "master.key")
	only := childEnv("GODEBUG=fips140=only", "S3SEAL_DATA_DIR="+dataDir, "S3SEAL_MASTER_KEY_FILE="+keyFile)
	for _, args := range [][]string{{"serve"}, {"keys", "list"}, {"kms", "serve"}} {
		out, code := runBin(t, bin, only, args...)
		if code != 1 || !strings.Contains(out, "s3seal: GODEBUG=fips140=only is not supported") {
			t.Errorf("GODEBUG=fips140=only s3seal %v: exit %d, want 1 and the refusal\n%s", args, code, out)
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command refused under fips140=only touched the data dir: %v", err)
	}

	on := childEnv("GODEBUG=fips140=on", "S3SEAL_DATA_DIR="+dataDir, "S3SEAL_MASTER_KEY_FILE="+keyFile,
		"S3SEAL_LISTEN=127.0.0.1:0", "S3SEAL_ACCESS_KEY=AKFIPSTEST", "S3SEAL_SECRET_KEY=fips-test-secret-0123456789")
	for _, c := range []struct {
		name string
		env  string
		want string
	}{
		{"allow-sigv2", "S3SEAL_ALLOW_SIGV2=true", "s3seal: --allow-sigv2 (S3SEAL_ALLOW_SIGV2): Signature V2 authenticates with HMAC-SHA1"},
		{"passphrase", "S3SEAL_KEYRING_PASSPHRASE=correct horse battery staple", "s3seal: --passphrase (S3SEAL_KEYRING_PASSPHRASE): a passphrase keyring derives its key with scrypt"},
	} {
		out, code := runBin(t, bin, append(on, c.env), "serve")
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("%s: GODEBUG=fips140=on s3seal serve: exit %d, want 1 and %q\n%s", c.name, code, c.want, out)
		}
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a serve refused in FIPS mode made a keyring: %v", err)
	}
	if fips140.Enabled() && !strings.Contains(out, "fips140 mode: on") {
		t.Errorf("this pass runs in FIPS mode, the proxy's version says:\n%s", out)
	}
}
