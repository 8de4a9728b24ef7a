package kms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"slices"
	"sync"

	"golang.org/x/sync/singleflight"
)

// Asymmetric keys (issue #21): an RSA key pair whose public half wraps data
// keys and whose private half never leaves the KMS. A writer that holds
// only the public key can seal objects it cannot open again: write-only
// backup ingestion, where a compromised backup host cannot read the
// archive it feeds.

// Key specs, key usages and the one encryption algorithm s3seal uses, as
// AWS KMS names them.
const (
	KeySpecSymmetric    = "SYMMETRIC_DEFAULT"
	KeySpecRSA3072      = "RSA_3072"
	KeySpecRSA4096      = "RSA_4096"
	KeyUsageEncrypt     = "ENCRYPT_DECRYPT"
	AlgSymmetric        = "SYMMETRIC_DEFAULT"
	AlgRSAESOAEPSHA256  = "RSAES_OAEP_SHA_256"
	CodeUnsupportedOper = "UnsupportedOperationException"
)

// WriteOnlyMessage is what a refused read of an asymmetrically wrapped
// object says: the instance was configured without decrypt rights.
const WriteOnlyMessage = "written for a write-only key; this instance cannot decrypt"

// PublicKey is the answer of GetPublicKey.
type PublicKey struct {
	KeyID                string   // canonical id (keyring) or ARN (AWS)
	KeySpec              string   // RSA_3072, RSA_4096
	KeyUsage             string   // ENCRYPT_DECRYPT
	EncryptionAlgorithms []string // must include RSAES_OAEP_SHA_256
	DER                  []byte   // X.509 SubjectPublicKeyInfo, DER
}

// AsymmetricClient is implemented by backends that hold RSA key pairs
// (kms/awskms, kms/keyring) and passed through by every wrapper of this
// package, so that a stacked Client reaches it with a type assertion.
// Neither method takes an encryption context: AWS KMS has none for
// asymmetric keys (s3seal's key AAD binds each sealed key to its path
// instead).
type AsymmetricClient interface {
	// GetPublicKey returns the public half of keyID (id, ARN or alias).
	GetPublicKey(ctx context.Context, keyID string) (*PublicKey, error)
	// DecryptAsymmetric decrypts ciphertext with the private half of
	// keyID, which must be given (AWS requires it for asymmetric keys),
	// under the algorithm alg.
	DecryptAsymmetric(ctx context.Context, keyID, alg string, ciphertext []byte) ([]byte, error)
}

// asymOf returns c as an AsymmetricClient, or an error that says the
// backend below has no asymmetric keys.
func asymOf(c Client) (AsymmetricClient, error) {
	a, ok := c.(AsymmetricClient)
	if !ok {
		return nil, &Error{Code: CodeUnsupportedOper, Message: fmt.Sprintf("%T has no asymmetric keys", c)}
	}
	return a, nil
}

// RSA parses the key and checks that it can wrap data keys the way s3seal
// does: an RSA key of 3072 or 4096 bits for ENCRYPT_DECRYPT that allows
// RSAES_OAEP_SHA_256.
func (p *PublicKey) RSA() (*rsa.PublicKey, error) {
	if p.KeyUsage != "" && p.KeyUsage != KeyUsageEncrypt {
		return nil, &Error{Code: CodeInvalidKeyUsage, Message: fmt.Sprintf("key %s has usage %s, not %s", p.KeyID, p.KeyUsage, KeyUsageEncrypt)}
	}
	if len(p.EncryptionAlgorithms) > 0 && !slices.Contains(p.EncryptionAlgorithms, AlgRSAESOAEPSHA256) {
		return nil, &Error{Code: CodeInvalidKeyUsage, Message: fmt.Sprintf("key %s does not allow %s", p.KeyID, AlgRSAESOAEPSHA256)}
	}
	k, err := x509.ParsePKIXPublicKey(p.DER)
	if err != nil {
		return nil, &Error{Code: CodeInvalidKeyUsage, Message: "public key of " + p.KeyID + " does not parse", Err: err}
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, &Error{Code: CodeInvalidKeyUsage, Message: fmt.Sprintf("key %s is %T, not RSA", p.KeyID, k)}
	}
	// RSA_2048 is left out on purpose: NIST SP 800-57 gives it 112-bit
	// strength, below the 128 bits of the AES-256 keys it would wrap.
	if n := pub.N.BitLen(); n != 3072 && n != 4096 {
		return nil, &Error{Code: CodeInvalidKeyUsage, Message: fmt.Sprintf("key %s is RSA-%d; s3seal wraps data keys with RSA_3072 or RSA_4096", p.KeyID, n)}
	}
	return pub, nil
}

// WrapRSA encrypts a data key to pub with RSAES-OAEP, SHA-256 for both
// the hash and MGF1, empty label: AWS KMS's RSAES_OAEP_SHA_256, so that
// KMS Decrypt with that algorithm opens it.
func WrapRSA(random io.Reader, pub *rsa.PublicKey, dek []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), random, pub, dek, nil)
}

// UnwrapRSA is WrapRSA's inverse, for backends that hold the private key.
func UnwrapRSA(priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
}

// AsymmetricConfig configures NewAsymmetric.
type AsymmetricConfig struct {
	// Decrypt lets Decrypt reach the KMS (this instance has decrypt
	// rights on the key). Off, Decrypt refuses with AccessDeniedException
	// and WriteOnlyMessage without a call: a write-only instance.
	Decrypt bool
	// Rand draws the data keys and OAEP seeds; crypto/rand if nil.
	Rand io.Reader
}

// Asymmetric is a Client whose data keys are drawn locally and wrapped
// with the public half of an RSA key (GetPublicKey once per key, then
// kept), and whose Decrypt asks the KMS to open them with the private
// half (RSAES_OAEP_SHA_256). Stack it under a Cache so that one data key
// serves many objects: one RSA wrap per cache period, not per object.
//
// The encryption context is ignored (AWS KMS has none for asymmetric
// keys); callers bind the data key to its use elsewhere. ReEncrypt is not
// offered: it would need the private key, which is the point of not
// having it.
type Asymmetric struct {
	inner Client
	asym  AsymmetricClient
	cfg   AsymmetricConfig

	sf   singleflight.Group
	mu   sync.Mutex
	pubs map[string]*asymPub // by the key id callers name
}

type asymPub struct {
	id  string
	pub *rsa.PublicKey
}

var (
	_ Wrapper          = (*Asymmetric)(nil)
	_ AsymmetricClient = (*Asymmetric)(nil)
)

// NewAsymmetric wraps inner, which must reach an AsymmetricClient (every
// wrapper of this package passes one through).
func NewAsymmetric(inner Client, cfg AsymmetricConfig) (*Asymmetric, error) {
	a, err := asymOf(inner)
	if err != nil {
		return nil, err
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Asymmetric{inner: inner, asym: a, cfg: cfg, pubs: map[string]*asymPub{}}, nil
}

// Unwrap returns the Client below.
func (a *Asymmetric) Unwrap() Client { return a.inner }

// publicKey returns keyID's parsed public key, fetched once.
func (a *Asymmetric) publicKey(ctx context.Context, keyID string) (*asymPub, error) {
	a.mu.Lock()
	p := a.pubs[keyID]
	a.mu.Unlock()
	if p != nil {
		return p, nil
	}
	v, err, _ := a.sf.Do(keyID, func() (any, error) {
		pk, err := a.asym.GetPublicKey(ctx, keyID)
		if err != nil {
			return nil, err
		}
		pub, err := pk.RSA()
		if err != nil {
			return nil, err
		}
		p := &asymPub{id: pk.KeyID, pub: pub}
		a.mu.Lock()
		a.pubs[keyID] = p
		a.mu.Unlock()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*asymPub), nil
}

// GenerateDataKey draws a 32-byte data key and wraps it with keyID's
// public key. It makes no KMS call once the public key is known.
func (a *Asymmetric) GenerateDataKey(ctx context.Context, keyID string, _ map[string]string) (*DataKey, error) {
	p, err := a.publicKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	dek := make([]byte, 32)
	if _, err := io.ReadFull(a.cfg.Rand, dek); err != nil {
		return nil, err
	}
	wrapped, err := WrapRSA(a.cfg.Rand, p.pub, dek)
	if err != nil {
		Zero(dek)
		return nil, err
	}
	return &DataKey{KeyID: p.id, Plaintext: dek, Ciphertext: wrapped}, nil
}

// Encrypt wraps plaintext with keyID's public key (OAEP bounds its size:
// 318 bytes for RSA_3072).
func (a *Asymmetric) Encrypt(ctx context.Context, keyID string, plaintext []byte, _ map[string]string) ([]byte, error) {
	p, err := a.publicKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	ct, err := WrapRSA(a.cfg.Rand, p.pub, plaintext)
	if err != nil {
		return nil, &Error{Code: CodeValidation, Message: "plaintext too long for the key", Err: err}
	}
	return ct, nil
}

// Decrypt asks the KMS to open wrapped with keyID's private key, unless
// the instance is write-only.
func (a *Asymmetric) Decrypt(ctx context.Context, keyID string, wrapped []byte, _ map[string]string) ([]byte, error) {
	if !a.cfg.Decrypt {
		return nil, &Error{Code: CodeAccessDenied, Message: WriteOnlyMessage}
	}
	pt, err := a.asym.DecryptAsymmetric(ctx, keyID, AlgRSAESOAEPSHA256, wrapped)
	if err != nil {
		return nil, err
	}
	if len(pt) != 32 {
		Zero(pt)
		return nil, &Error{Code: CodeInvalidCiphertext, Message: fmt.Sprintf("an RSA-wrapped data key opened to %d bytes, not 32", len(pt))}
	}
	return pt, nil
}

// ReEncrypt is refused: rewrapping needs the private key's Decrypt, which
// callers do themselves when they have it.
func (a *Asymmetric) ReEncrypt(context.Context, string, []byte, map[string]string, string, map[string]string) ([]byte, string, error) {
	return nil, "", &Error{Code: CodeUnsupportedOper, Message: "ReEncrypt of an RSA-wrapped data key"}
}

// DescribeKey passes through.
func (a *Asymmetric) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return a.inner.DescribeKey(ctx, keyID)
}

// GetPublicKey passes through (uncached: callers of this method want the
// KMS's answer).
func (a *Asymmetric) GetPublicKey(ctx context.Context, keyID string) (*PublicKey, error) {
	return a.asym.GetPublicKey(ctx, keyID)
}

// DecryptAsymmetric passes through, unless the instance is write-only.
func (a *Asymmetric) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	if !a.cfg.Decrypt {
		return nil, &Error{Code: CodeAccessDenied, Message: WriteOnlyMessage}
	}
	return a.asym.DecryptAsymmetric(ctx, keyID, alg, ct)
}
