// Package rsafile is an RSA key pair kept in PEM files instead of a KMS,
// for write-only buckets (kms.Asymmetric): the public key alone on the
// instance that writes, the private key only where objects are read back
// (a restore instance, s3seal decrypt). No KMS is involved, so nothing is
// audited or metered, and guarding the private key file is the operator's
// job.
//
// The key id that object headers record for such a key is
// "rsa-spki-sha256:" followed by the hex SHA-256 of the public key's DER
// SubjectPublicKeyInfo (FORMAT.md section 12.3): it names the key without
// a KMS, and a reader checks that its private key is that key's.
package rsafile

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/s3seal/s3seal/kms"
)

// KeyIDPrefix starts the key id of a PEM file key.
const KeyIDPrefix = "rsa-spki-sha256:"

// Key is an RSA key from PEM files: a public key, and the private key if
// it was given.
type Key struct {
	id   string
	der  []byte // SubjectPublicKeyInfo
	bits int
	priv *rsa.PrivateKey
}

var (
	_ kms.Client           = (*Key)(nil)
	_ kms.AsymmetricClient = (*Key)(nil)
)

// IsKeyID reports whether keyID names a PEM file key.
func IsKeyID(keyID string) bool { return strings.HasPrefix(keyID, KeyIDPrefix) }

// LoadPublic reads a PEM public key ("PUBLIC KEY", as `openssl pkey
// -pubout` writes it, or "RSA PUBLIC KEY").
func LoadPublic(path string) (*Key, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("rsafile: %s: a %q PEM block, want PUBLIC KEY (a private key does not belong on a write-only instance)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("rsafile: %s: %w", path, err)
	}
	rp, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("rsafile: %s: not an RSA key", path)
	}
	return newKey(rp, nil)
}

// LoadPrivate reads a PEM private key ("PRIVATE KEY", PKCS #8, as `openssl
// genpkey` writes it, or "RSA PRIVATE KEY", PKCS #1).
func LoadPrivate(path string) (*Key, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var priv any
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("rsafile: %s: a %q PEM block, want PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("rsafile: %s: %w", path, err)
	}
	rp, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("rsafile: %s: not an RSA key", path)
	}
	return newKey(&rp.PublicKey, rp)
}

func readPEM(path string) (*pem.Block, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rsafile: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("rsafile: %s: no PEM block", path)
	}
	return block, nil
}

func newKey(pub *rsa.PublicKey, priv *rsa.PrivateKey) (*Key, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	k := &Key{id: KeyIDPrefix + hex.EncodeToString(sum[:]), der: der, bits: pub.N.BitLen(), priv: priv}
	if _, err := k.publicKey().RSA(); err != nil { // 3072 or 4096 bits
		return nil, err
	}
	return k, nil
}

// ID is the key id object headers record for this key.
func (k *Key) ID() string { return k.id }

func (k *Key) spec() string { return fmt.Sprintf("RSA_%d", k.bits) }

func (k *Key) publicKey() *kms.PublicKey {
	return &kms.PublicKey{KeyID: k.id, KeySpec: k.spec(), KeyUsage: kms.KeyUsageEncrypt,
		EncryptionAlgorithms: []string{kms.AlgRSAESOAEPSHA256}, DER: k.der}
}

// check refuses a key id that names another key.
func (k *Key) check(keyID string) error {
	if keyID != "" && keyID != k.id {
		return &kms.Error{Code: kms.CodeNotFound, Message: fmt.Sprintf("key %s is not the PEM key %s", keyID, k.id)}
	}
	return nil
}

// GetPublicKey implements kms.AsymmetricClient.
func (k *Key) GetPublicKey(_ context.Context, keyID string) (*kms.PublicKey, error) {
	if err := k.check(keyID); err != nil {
		return nil, err
	}
	return k.publicKey(), nil
}

// DecryptAsymmetric implements kms.AsymmetricClient: it needs the private
// key file.
func (k *Key) DecryptAsymmetric(_ context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	if err := k.check(keyID); err != nil {
		return nil, err
	}
	if k.priv == nil {
		return nil, &kms.Error{Code: kms.CodeAccessDenied, Message: kms.WriteOnlyMessage + " (only the public key file was given)"}
	}
	if alg != kms.AlgRSAESOAEPSHA256 {
		return nil, &kms.Error{Code: kms.CodeInvalidKeyUsage, Message: "encryption algorithm " + alg + " is not " + kms.AlgRSAESOAEPSHA256}
	}
	pt, err := kms.UnwrapRSA(k.priv, ct)
	if err != nil {
		return nil, &kms.Error{Code: kms.CodeInvalidCiphertext, Message: "the ciphertext does not open with the private key"}
	}
	return pt, nil
}

func unsupported(op string) error {
	return &kms.Error{Code: kms.CodeUnsupportedOper, Message: op + " with an RSA key from a PEM file"}
}

// GenerateDataKey is not offered: kms.Asymmetric draws data keys.
func (k *Key) GenerateDataKey(context.Context, string, map[string]string) (*kms.DataKey, error) {
	return nil, unsupported("GenerateDataKey")
}

// Decrypt is not offered: a PEM key has no symmetric ciphertexts.
func (k *Key) Decrypt(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return nil, unsupported("symmetric Decrypt")
}

// Encrypt is not offered.
func (k *Key) Encrypt(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return nil, unsupported("Encrypt")
}

// ReEncrypt is not offered.
func (k *Key) ReEncrypt(context.Context, string, []byte, map[string]string, string, map[string]string) ([]byte, string, error) {
	return nil, "", unsupported("ReEncrypt")
}

// DescribeKey reports the key as AWS would an RSA key (the readiness
// probe).
func (k *Key) DescribeKey(_ context.Context, keyID string) (*kms.KeyMetadata, error) {
	if err := k.check(keyID); err != nil {
		return nil, err
	}
	return &kms.KeyMetadata{KeyID: k.id, KeyState: kms.KeyEnabled, KeySpec: k.spec(), KeyUsage: kms.KeyUsageEncrypt,
		EncryptionAlgorithms: []string{kms.AlgRSAESOAEPSHA256}}, nil
}
