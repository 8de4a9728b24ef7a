package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 package puts the PKCS#11 module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM is a SoftHSM2 token of its own, in a temp dir, for tests of
// HSM-backed keys: a real PKCS#11 module, no mock.
type SoftHSM struct {
	// Module is the PKCS#11 module's path.
	Module string
	// Conf is the SoftHSM2 configuration file: SOFTHSM2_CONF must name it
	// in every process that loads the module for this token.
	Conf string
	// TokenDir holds the token's files (remove it to take the token away).
	TokenDir string
	// Label, PIN and SOPIN are the token's.
	Label, PIN, SOPIN string
}

// NewSoftHSM initializes a token labelled label in a fresh temp dir. It
// fails (never skips) when SoftHSM2 is not installed, saying how to
// install it.
func NewSoftHSM(t testing.TB, label string) *SoftHSM {
	t.Helper()
	h, err := MakeSoftHSM(t.TempDir(), label)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// MakeSoftHSM is NewSoftHSM in dir, for callers without a testing.TB.
func MakeSoftHSM(dir, label string) (*SoftHSM, error) {
	if _, err := os.Stat(SoftHSMModule); err != nil {
		return nil, fmt.Errorf("testenv: SoftHSM2 is not installed (%v): apt-get install -y softhsm2 (.ci/run installs it)", err)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return nil, fmt.Errorf("testenv: softhsm2-util not found (%v): apt-get install -y softhsm2", err)
	}
	h := &SoftHSM{
		Module:   SoftHSMModule,
		Conf:     filepath.Join(dir, "softhsm2.conf"),
		TokenDir: filepath.Join(dir, "tokens"),
		Label:    label,
		PIN:      "user-" + RandomKey(8),
		SOPIN:    "so-" + RandomKey(8),
	}
	if err := os.MkdirAll(h.TokenDir, 0o700); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", h.TokenDir)
	if err := os.WriteFile(h.Conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", h.PIN, "--so-pin", h.SOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+h.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: softhsm2-util --init-token: %v\n%s", err, out)
	}
	return h, nil
}

// Env is the s3seal environment that uses this token.
func (h *SoftHSM) Env() map[string]string {
	return map[string]string{
		"SOFTHSM2_CONF":             h.Conf,
		"S3SEAL_PKCS11_MODULE":      h.Module,
		"S3SEAL_PKCS11_TOKEN_LABEL": h.Label,
		"S3SEAL_PKCS11_PIN":         h.PIN,
	}
}
