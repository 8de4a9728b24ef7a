package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/pkcs11"
)

// pinEnv holds the HSM token's PIN. It is read from the environment only,
// never a flag (the process list shows flags), and is the same for
// migrate's two sides, which can only share one module anyway.
const pinEnv = "S3SEAL_PKCS11_PIN"

// keyStore is the keyring's custom key store the options configure (the
// HSM over PKCS#11), or nil if none is. It does not touch the HSM yet.
func (o *KeyringOptions) keyStore() (keyring.KeyStore, error) {
	if o.PKCS11Module == "" && o.PKCS11TokenLabel == "" && o.PKCS11PINFile == "" {
		return nil, nil
	}
	pin := os.Getenv(pinEnv)
	if o.PKCS11PINFile != "" {
		if pin != "" {
			return nil, fmt.Errorf("give the HSM PIN in %s or in --pkcs11-pin-file, not both", pinEnv)
		}
		var err error
		if pin, err = readPINFile(o.PKCS11PINFile); err != nil {
			return nil, err
		}
	}
	s, err := pkcs11.Open(pkcs11.Config{Module: o.PKCS11Module, TokenLabel: o.PKCS11TokenLabel, PIN: pin})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readPINFile reads a PIN file, refusing one others may read, as the
// master key file is.
func readPINFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("PKCS#11 PIN file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("PKCS#11 PIN file %s has mode %v; want 0600 or 0400", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("PKCS#11 PIN file: %w", err)
	}
	pin := strings.TrimRight(string(b), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("PKCS#11 PIN file %s is empty", path)
	}
	return pin, nil
}

// checkKeyStore connects to the configured HSM at start and logs the
// outcome. A failure does not stop serve: keys held in the HSM answer a KMS
// error until it is back (as AWS KMS answers for a disconnected custom key
// store), and every other key keeps working.
func checkKeyStore(ctx context.Context, ks keyring.KeyStore, log *slog.Logger) {
	s, ok := ks.(*pkcs11.Store)
	if !ok {
		return
	}
	if err := s.Check(ctx); err != nil {
		log.Error("HSM key store unavailable: requests that need a key held in it fail with a KMS error until it is back", "token", s.Token(), "err", err)
		return
	}
	log.Info("HSM key store connected", "type", s.Type(), "token", s.Token())
}
