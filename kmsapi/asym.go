package kmsapi

import (
	"github.com/s3seal/s3seal/kms"
)

// RSA key pairs (KeySpec RSA_3072, RSA_4096; KeyUsage ENCRYPT_DECRYPT):
// GetPublicKey hands out the public half, Decrypt with EncryptionAlgorithm
// RSAES_OAEP_SHA_256 opens what it wrapped. As in AWS KMS, an asymmetric
// Decrypt takes no encryption context and needs the KeyId (the ciphertext
// does not name its key).

type getPublicKeyInput struct {
	KeyID       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

type getPublicKeyOutput struct {
	KeyID                 string   `json:"KeyId"`
	PublicKey             []byte   `json:"PublicKey"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	KeySpec               string   `json:"KeySpec"`
	KeyUsage              string   `json:"KeyUsage"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms"`
}

func opGetPublicKey(s *Server, c *call, in *getPublicKeyInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:GetPublicKey", grantOp: "GetPublicKey", extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	pk, err := s.kr.GetPublicKey(c.ctx, ki.KeyID)
	if err != nil {
		return nil, err
	}
	return &getPublicKeyOutput{KeyID: ki.Arn, PublicKey: pk.DER, CustomerMasterKeySpec: pk.KeySpec, KeySpec: pk.KeySpec,
		KeyUsage: pk.KeyUsage, EncryptionAlgorithms: pk.EncryptionAlgorithms}, nil
}

// decryptRSA is Decrypt with EncryptionAlgorithm RSAES_OAEP_SHA_256.
func (s *Server) decryptRSA(c *call, in *decryptInput) (any, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	switch {
	case len(in.CiphertextBlob) == 0:
		return nil, missing("ciphertextBlob")
	case len(in.CiphertextBlob) > maxCiphertext:
		return nil, validation("Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to %d", maxCiphertext)
	case len(in.EncryptionContext) > 0:
		return nil, apiErr(kms.CodeInvalidCiphertext, "An encryption context is not valid with an asymmetric KMS key.")
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:Decrypt", grantOp: "Decrypt", hasEC: true, extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	if in.DryRun {
		if err := usableState(ki); err != nil {
			return nil, err
		}
		return nil, dryRun()
	}
	pt, err := s.kr.DecryptAsymmetric(c.ctx, ki.KeyID, in.EncryptionAlgorithm, in.CiphertextBlob)
	if err != nil {
		return nil, err
	}
	return &decryptOutput{Plaintext: pt, KeyID: ki.Arn, EncryptionAlgorithm: in.EncryptionAlgorithm}, nil
}
