package keyring

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"io"

	"github.com/s3seal/s3seal/kms"
)

// RSA key pairs (key specs RSA_3072 and RSA_4096, usage ENCRYPT_DECRYPT,
// algorithm RSAES_OAEP_SHA_256), as AWS KMS's asymmetric keys: the public
// half is handed to anyone who asks (GetPublicKey), so that a write-only
// s3seal can wrap data keys it cannot unwrap; the private half is the
// key's one version of material (PKCS #8 DER), sealed at rest under the
// master key like symmetric material, and used only by
// DecryptAsymmetric. Like AWS, an RSA key has one version: it cannot be
// rotated, and it does not take GenerateDataKey, Encrypt or a symmetric
// Decrypt (InvalidKeyUsageException).

// rsaBits is the modulus size of spec, or 0 if spec is no RSA spec the
// keyring makes.
func rsaBits(spec string) int {
	switch spec {
	case kms.KeySpecRSA3072:
		return 3072
	case kms.KeySpecRSA4096:
		return 4096
	}
	return 0
}

// newMaterial draws a new version of kr's material.
func (k *Keyring) newMaterial(kr *keyRecord) ([]byte, error) {
	if bits := rsaBits(kr.KeySpec); bits != 0 {
		priv, err := rsa.GenerateKey(k.cfg.Rand, bits)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	}
	m := make([]byte, 32)
	if _, err := io.ReadFull(k.cfg.Rand, m); err != nil {
		return nil, err
	}
	return m, nil
}

// materialFits reports whether unsealed material m is what kr's spec
// needs: 32 bytes, or an RSA private key of the spec's size.
func materialFits(kr *keyRecord, m []byte) bool {
	if kr.KeySpec == "" {
		return len(m) == 32
	}
	priv, err := parseRSA(m)
	return err == nil && priv.N.BitLen() == rsaBits(kr.KeySpec)
}

func parseRSA(m []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(m)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, &kms.Error{Code: kms.CodeInternal, Message: "RSA key material is not an RSA key"}
	}
	return priv, nil
}

func symmetricOnly(kr *keyRecord) error {
	if kr.KeySpec != "" {
		return &kms.Error{Code: kms.CodeInvalidKeyUsage, Message: ARN(kr.ID) + " key usage is ENCRYPT_DECRYPT with " + kr.KeySpec + ", which is not valid for this operation with a symmetric data key."}
	}
	return nil
}

func rsaOnly(kr *keyRecord) error {
	if kr.KeySpec == "" {
		return &kms.Error{Code: kms.CodeInvalidKeyUsage, Message: ARN(kr.ID) + " is a symmetric key; the operation needs an RSA key pair."}
	}
	return nil
}

func rotationUnsupported(kr *keyRecord) error {
	return &kms.Error{Code: kms.CodeUnsupportedOper, Message: ARN(kr.ID) + " is an asymmetric key; its material cannot be rotated."}
}

// CreateKeySpec creates a key of spec: "" or SYMMETRIC_DEFAULT as
// CreateKey, RSA_3072 or RSA_4096 for an RSA key pair.
func (k *Keyring) CreateKeySpec(description, spec string) (*kms.KeyMetadata, error) {
	var md *kms.KeyMetadata
	err := k.update(func(st *state) error {
		kr, err := k.newKeyWith(st, description, spec, false, "")
		if err != nil {
			return err
		}
		md = metadata(st, kr)
		return nil
	})
	return md, err
}

// GetPublicKey implements kms.AsymmetricClient. Like AWS KMS it answers in
// every state but deletion: a public key cannot be revoked once given
// out, so refusing it for a disabled key protects nothing.
func (k *Keyring) GetPublicKey(ctx context.Context, keyID string) (*kms.PublicKey, error) {
	var pk *kms.PublicKey
	err := k.withKey(keyID, func(st *state, kr *keyRecord) error {
		if err := rsaOnly(kr); err != nil {
			return err
		}
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		priv, err := parseRSA(st.material[kr.ID][0])
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			return err
		}
		pk = &kms.PublicKey{KeyID: kr.ID, KeySpec: kr.KeySpec, KeyUsage: kms.KeyUsageEncrypt,
			EncryptionAlgorithms: []string{kms.AlgRSAESOAEPSHA256}, DER: der}
		return nil
	})
	return pk, err
}

// DecryptAsymmetric implements kms.AsymmetricClient: keyID must be given
// (an RSA ciphertext names no key), the key enabled, alg
// RSAES_OAEP_SHA_256.
func (k *Keyring) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	if keyID == "" {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: "KeyId is required to decrypt with an asymmetric key"}
	}
	if alg != kms.AlgRSAESOAEPSHA256 {
		return nil, &kms.Error{Code: kms.CodeInvalidKeyUsage, Message: "encryption algorithm " + alg + " is not valid for this key; s3seal's keyring uses " + kms.AlgRSAESOAEPSHA256}
	}
	var pt []byte
	err := k.withKey(keyID, func(st *state, kr *keyRecord) error {
		if err := rsaOnly(kr); err != nil {
			return err
		}
		if err := usable(kr); err != nil {
			return err
		}
		priv, err := parseRSA(st.material[kr.ID][0])
		if err != nil {
			return err
		}
		pt, err = kms.UnwrapRSA(priv, ct)
		if err != nil {
			return invalidCiphertext()
		}
		return nil
	})
	return pt, err
}
