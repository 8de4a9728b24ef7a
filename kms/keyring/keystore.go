package keyring

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/s3seal/s3seal/kms"
)

// Keys in a custom key store (file format 3).
//
// A key may live in a hardware security module instead of the keyring
// file: AWS KMS's "custom key store" (Origin AWS_CLOUDHSM). Its material is
// made inside the HSM, marked non-extractable and sensitive, and never
// leaves it; the keyring file records only which token holds it and the
// label of each version's HSM key. Data keys are wrapped and unwrapped by
// the HSM (AES-256-GCM inside the token), so that a copy of the data dir
// and the master key together still open nothing without the HSM.
//
// Wrapped data keys of such a key use wrapped-key format 2: the same layout
// and additional data as format 1 (see the package documentation), with
// 0x02 as the first byte and the nonce chosen by the HSM, so that a blob
// says which backing wrapped it and a blob of one backing never opens
// under the other.

// KeyStore is a custom key store: an HSM that holds keys the keyring
// refers to by label but never sees. Implementations must be safe for
// concurrent use. Errors should be *kms.Error: InvalidCiphertextException
// for a ciphertext that fails authentication, KMSInvalidStateException for
// an HSM that cannot be used until someone acts (no module, a refused PIN,
// no such token or key: AWS KMS's answer for a key in a disconnected
// custom key store), KeyUnavailableException for a failure that may pass
// (a device or session error; retried); any other error is reported as
// KeyUnavailableException.
type KeyStore interface {
	// Type names the kind of store as the keyring file records it
	// ("pkcs11").
	Type() string
	// Token names the token (HSM partition) keys are created in, as the
	// keyring file records it.
	Token() string
	// CreateKey creates a new AES-256 key under label, never extractable,
	// in the token; it fails if the token already holds a key under label.
	CreateKey(ctx context.Context, label string) error
	// Seal encrypts pt under the key labelled label with AES-256-GCM and
	// additional data aad, inside the HSM, and returns the 12-byte nonce
	// followed by the ciphertext and the 16-byte tag.
	Seal(ctx context.Context, label string, pt, aad []byte) ([]byte, error)
	// Open reverses Seal.
	Open(ctx context.Context, label string, sealed, aad []byte) ([]byte, error)
	// Close releases the store (sessions, the module).
	Close() error
}

// Origins of keys, as AWS KMS names them in DescribeKey.
const (
	OriginKMS      = "AWS_KMS"
	OriginCloudHSM = "AWS_CLOUDHSM"
)

// wrapFormatKS is the first byte of a data key wrapped by a key in the
// custom key store (1: by keyring material).
const wrapFormatKS = 2

// customRecord says which custom key store holds a key. An export of the
// keyring can carry only this reference and the versions' labels, never
// the key: the HSM's own backup is the recovery path for such keys, and an
// export must say so rather than imply it carries them.
type customRecord struct {
	Type  string `json:"type"`  // KeyStore.Type, "pkcs11"
	Token string `json:"token"` // KeyStore.Token
	// Label is the HSM label of version 1; version n > 1 is labelled
	// Label-v<n> (versionLabel), recorded with the version.
	Label string `json:"label"`
}

// storeID is the CustomKeyStoreId DescribeKey shows for keys in it.
func (c *customRecord) storeID() string { return c.Type + ":" + c.Token }

// labelRE is what s3seal accepts as an HSM key label: printable, no
// spaces, so that it can be typed into any HSM's tools.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9._:/@+=-]{1,100}$`)

func validLabel(label string) error {
	if !labelRE.MatchString(label) {
		return &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("invalid HSM key label %q: want 1 to 100 letters, digits or . _ : / @ + = -", label)}
	}
	return nil
}

// versionLabel is the HSM label of version v of a key whose first version
// is labelled base.
func versionLabel(base string, v uint32) string {
	if v == 1 {
		return base
	}
	return base + "-v" + strconv.FormatUint(uint64(v), 10)
}

// CustomKeyStoreID is the CustomKeyStoreId of the configured key store
// ("pkcs11:<token label>"), or "" if none is configured.
func (k *Keyring) CustomKeyStoreID() string {
	if k.cfg.KeyStore == nil {
		return ""
	}
	return (&customRecord{Type: k.cfg.KeyStore.Type(), Token: k.cfg.KeyStore.Token()}).storeID()
}

// keyStoreFor returns the configured key store that holds kr, or
// KMSInvalidStateException saying why there is none.
func (k *Keyring) keyStoreFor(kr *keyRecord) (KeyStore, error) {
	ks := k.cfg.KeyStore
	if ks == nil {
		return nil, &kms.Error{Code: kms.CodeInvalidState, Message: fmt.Sprintf("%s is held in %s token %q, and no %s key store is configured (S3SEAL_PKCS11_MODULE, S3SEAL_PKCS11_TOKEN_LABEL, S3SEAL_PKCS11_PIN or S3SEAL_PKCS11_PIN_FILE)",
			ARN(kr.ID), kr.Custom.Type, kr.Custom.Token, kr.Custom.Type)}
	}
	if ks.Type() != kr.Custom.Type || ks.Token() != kr.Custom.Token {
		return nil, &kms.Error{Code: kms.CodeInvalidState, Message: fmt.Sprintf("%s is held in %s token %q, but the configured key store is %s token %q",
			ARN(kr.ID), kr.Custom.Type, kr.Custom.Token, ks.Type(), ks.Token())}
	}
	return ks, nil
}

// keyStoreErr makes err a *kms.Error: a store's own kms.Error passes, any
// other failure is KeyUnavailableException (the proxy answers 503).
func keyStoreErr(err error) error {
	var ke *kms.Error
	if errors.As(err, &ke) {
		return err
	}
	return &kms.Error{Code: kms.CodeKeyUnavailable, Message: "the custom key store failed", Err: err}
}

// addStoreVersion creates version v of kr in its key store.
func (k *Keyring) addStoreVersion(kr *keyRecord, label string) error {
	ks, err := k.keyStoreFor(kr)
	if err != nil {
		return err
	}
	if err := ks.CreateKey(context.Background(), label); err != nil {
		return keyStoreErr(err)
	}
	return nil
}
