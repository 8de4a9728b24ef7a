package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
)

func TestMasterKeyPlacement(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	data := t.TempDir()
	for _, tc := range []struct {
		name      string
		opts      KeyringOptions
		setup     func()
		inDataDir bool
		legacy    bool
		under     string
	}{
		{name: "default is outside", opts: KeyringOptions{DataDir: data}, under: filepath.Join(cfgHome, "s3seal")},
		{name: "explicit outside", opts: KeyringOptions{DataDir: data, MasterKeyFile: filepath.Join(cfgHome, "k")}, under: cfgHome},
		{name: "explicit inside", opts: KeyringOptions{DataDir: data, MasterKeyFile: filepath.Join(data, "sub", "k")}, inDataDir: true, under: data},
		{name: "inside through dot-dot", opts: KeyringOptions{DataDir: data, MasterKeyFile: filepath.Join(data, "x", "..", "k")}, inDataDir: true, under: data},
		{name: "sibling with a common prefix", opts: KeyringOptions{DataDir: data, MasterKeyFile: data + "-key/k"}, under: filepath.Dir(data)},
		{name: "legacy", opts: KeyringOptions{DataDir: data}, setup: func() {
			os.WriteFile(filepath.Join(data, keyring.MasterKeyFileName), []byte("x"), 0o600)
		}, inDataDir: true, legacy: true, under: data},
		// An upgraded image that names a key file not made yet still
		// finds the earlier version's.
		{name: "legacy, configured elsewhere", opts: KeyringOptions{DataDir: data, MasterKeyFile: filepath.Join(cfgHome, "new", "k")}, inDataDir: true, legacy: true, under: data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			cfg, mk, err := tc.opts.keyringConfig()
			if err != nil {
				t.Fatal(err)
			}
			if mk.inDataDir != tc.inDataDir || mk.legacy != tc.legacy || cfg.MasterKeyFile != mk.path || !strings.HasPrefix(mk.path, tc.under) {
				t.Errorf("%+v", mk)
			}
		})
	}
	// A data dir reached through a symbolic link is the same dir.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	if _, mk, _ := (&KeyringOptions{DataDir: link, MasterKeyFile: filepath.Join(data, "k2")}).keyringConfig(); !mk.inDataDir {
		t.Error("a key inside the data dir's link target is not seen as inside")
	}
	// A passphrase keyring has no key file.
	if cfg, mk, _ := (&KeyringOptions{DataDir: data, Passphrase: "p"}).keyringConfig(); cfg.MasterKeyFile != "" || mk.inDataDir {
		t.Errorf("passphrase: %+v", mk)
	}
}

// TestServeKeepsTheMasterKeyApart runs `s3seal serve` as a process: with
// defaults it makes its master key outside the data dir; a key configured
// inside is refused unless accepted; the master.key an earlier version
// made inside keeps working, with a warning.
func TestServeKeepsTheMasterKeyApart(t *testing.T) {
	cfgHome := t.TempDir()
	data := t.TempDir()
	p := testenv.StartS3seal(t, map[string]string{"S3SEAL_DATA_DIR": data, "S3SEAL_MASTER_KEY_FILE": "", "XDG_CONFIG_HOME": cfgHome})
	p.Stop()
	keys, _ := filepath.Glob(filepath.Join(cfgHome, "s3seal", "*.key"))
	if len(keys) != 1 {
		t.Fatalf("master keys made: %v\n%s", keys, p.Log())
	}
	if st, err := os.Stat(keys[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("master key file %s: %v %v", keys[0], st.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(data, keyring.MasterKeyFileName)); err == nil {
		t.Error("a master key was made in the data dir")
	}
	if !strings.Contains(p.Log(), keys[0]) || !strings.Contains(p.Log(), "back it up") {
		t.Errorf("the log does not say where the new key is:\n%s", p.Log())
	}
	// Restarted, it finds the same key.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	p.Stop()

	// Configured inside: refused, with how to keep it apart.
	bin := testenv.BuildS3seal(t)
	fresh := t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "S3SEAL_DATA_DIR="+fresh, "S3SEAL_MASTER_KEY_FILE="+filepath.Join(fresh, "master.key"),
		"S3SEAL_LISTEN=127.0.0.1:0", "S3SEAL_ACCESS_KEY=a", "S3SEAL_SECRET_KEY=b", "S3SEAL_UPSTREAM=", "S3SEAL_KMS=local")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "inside the data dir") || !strings.Contains(string(out), "S3SEAL_MASTER_KEY_FILE") {
		t.Errorf("key inside the data dir: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "master.key")); err == nil {
		t.Error("the refused key file was made")
	}
	// Accepted by name, it starts.
	p = testenv.StartS3seal(t, map[string]string{"S3SEAL_DATA_DIR": fresh, "S3SEAL_MASTER_KEY_FILE": filepath.Join(fresh, "master.key"),
		"S3SEAL_ALLOW_MASTER_KEY_IN_DATA_DIR": "true"})
	p.Stop()
	if !strings.Contains(p.Log(), "INSECURE") {
		t.Errorf("no warning for an accepted key inside the data dir:\n%s", p.Log())
	}

	// An earlier version's data dir: master.key inside, nothing configured.
	legacy := t.TempDir()
	kr, err := keyring.Open(keyring.Config{Dir: legacy})
	if err != nil {
		t.Fatal(err)
	}
	kr.Close()
	p = testenv.StartS3seal(t, map[string]string{"S3SEAL_DATA_DIR": legacy, "S3SEAL_MASTER_KEY_FILE": "", "XDG_CONFIG_HOME": cfgHome})
	p.Stop()
	if !strings.Contains(p.Log(), "INSECURE") {
		t.Errorf("no warning for a legacy key:\n%s", p.Log())
	}
}
