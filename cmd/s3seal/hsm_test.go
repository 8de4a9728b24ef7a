//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HSM options: none gives no key store; the PIN comes from the
// environment or a file only others cannot read, never both.
func TestPKCS11Options(t *testing.T) {
	unsetenv(t, pinEnv)
	o := KeyringOptions{DataDir: t.TempDir()}
	if ks, err := o.keyStore(); ks != nil || err != nil {
		t.Fatalf("no HSM options: %v, %v", ks, err)
	}
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o = KeyringOptions{DataDir: dir, PKCS11Module: "/usr/lib/softhsm/libsofthsm2.so", PKCS11TokenLabel: "tok", PKCS11PINFile: pinFile}
	if _, err := o.keyStore(); err == nil || !strings.Contains(err.Error(), "want 0600 or 0400") {
		t.Fatalf("a PIN file others can read: %v", err)
	}
	if err := os.Chmod(pinFile, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := o.keyStore()
	if err != nil || ks == nil || ks.Token() != "tok" || ks.Type() != "pkcs11" {
		t.Fatalf("PIN from a 0600 file: %v, %v", ks, err)
	}
	ks.Close()
	t.Setenv(pinEnv, "1234")
	if _, err := o.keyStore(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("PIN in the environment and a file: %v", err)
	}
	o.PKCS11PINFile = ""
	if ks, err := o.keyStore(); err != nil || ks == nil {
		t.Fatalf("PIN from the environment: %v, %v", ks, err)
	} else {
		ks.Close()
	}
	unsetenv(t, pinEnv)
	if _, err := o.keyStore(); err == nil || !strings.Contains(err.Error(), "no PIN") {
		t.Fatalf("no PIN at all: %v", err)
	}
}
