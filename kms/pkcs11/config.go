// Package pkcs11 is the embedded keyring's custom key store over PKCS#11:
// keyring keys whose material lives in, and never leaves, a hardware
// security module (AWS CloudHSM, Thales Luna, YubiHSM 2, Nitrokey HSM,
// SoftHSM: anything with a PKCS#11 module). It implements
// keyring.KeyStore.
//
// Each key version is an AES-256 secret key object made in the token by
// C_GenerateKey with CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true and
// CKA_EXTRACTABLE false, found again by its CKA_LABEL. Data keys are sealed
// and opened inside the token with CKM_AES_GCM (C_Encrypt, C_Decrypt): a
// 12-byte nonce, a 128-bit tag, and the keyring's additional data (which
// binds the key id, version and encryption context). GCM rather than
// CKM_AES_KEY_WRAP_PAD because it takes additional data, which is how the
// keyring binds the encryption context, and because it seals any
// plaintext up to the KMS's 4096 bytes, not only key objects.
//
// The PKCS#11 code needs cgo (github.com/miekg/pkcs11 loads the module
// with dlopen). A build without cgo (CGO_ENABLED=0, the static container
// image) has the same API, whose Open fails with ErrNoCgo, so that an HSM
// configured for such a build is a clear error and nothing else changes.
package pkcs11

import (
	"errors"
	"fmt"
	"time"
)

// Type is the key store type the keyring file records for keys held here.
const Type = "pkcs11"

// Config opens a PKCS#11 key store.
type Config struct {
	// Module is the path of the HSM vendor's PKCS#11 module (a .so).
	Module string
	// TokenLabel names the token (an HSM partition, a slot) that holds
	// the keys; exactly one token of the module must carry it.
	TokenLabel string
	// PIN is the token's user (CKU_USER) PIN. A wrong PIN is never tried
	// twice by one process: HSMs lock the PIN after a few failures.
	PIN string
	// MaxSessions bounds the sessions, and so the operations, open at
	// once; default 8.
	MaxSessions int
	// CallTimeout bounds one operation on the HSM (waiting for a session
	// included); default 10 s, as the AWS KMS backend's call.
	CallTimeout time.Duration
}

// ErrNoCgo is Open's error in a build without cgo.
var ErrNoCgo = errors.New("pkcs11: this s3seal was built without cgo (CGO_ENABLED=0), so it cannot load a PKCS#11 module: rebuild it with CGO_ENABLED=1 and a C compiler (README: HSM-backed keys)")

func (c *Config) check() error {
	switch {
	case c.Module == "":
		return errors.New("pkcs11: no module path (S3SEAL_PKCS11_MODULE)")
	case c.TokenLabel == "":
		return errors.New("pkcs11: no token label (S3SEAL_PKCS11_TOKEN_LABEL)")
	case c.PIN == "":
		return errors.New("pkcs11: no PIN (S3SEAL_PKCS11_PIN or S3SEAL_PKCS11_PIN_FILE)")
	case len(c.TokenLabel) > 32:
		return fmt.Errorf("pkcs11: token label %q is longer than PKCS#11's 32 bytes", c.TokenLabel)
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 8
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	return nil
}
