package kmsapi

import (
	"crypto/rand"
	"maps"
	"strconv"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// Cryptographic operations.

const (
	maxPlaintext  = 4096 // Encrypt
	maxCiphertext = 6144 // Decrypt, ReEncrypt
	maxDataKey    = 1024 // GenerateDataKey NumberOfBytes, GenerateRandom
	algorithm     = "SYMMETRIC_DEFAULT"
)

func checkAlgorithm(param, alg string) error {
	switch alg {
	case "", algorithm:
		return nil
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE":
		return apiErr(kms.CodeInvalidKeyUsage, "%s is not valid for a symmetric encryption key; use SYMMETRIC_DEFAULT.", alg)
	}
	return validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set", alg, param)
}

func noRecipient(r any) error {
	if r != nil {
		return apiErr(codeUnsupported, "s3seal's KMS has no Nitro Enclaves attestation (Recipient).")
	}
	return nil
}

// blobKey resolves the key of a ciphertext: the one it names, which must
// be the one keyID names if given (IncorrectKeyException otherwise).
func (s *Server) blobKey(c *call, blob []byte, keyID, param string) (*keyring.KeyInfo, int, error) {
	switch {
	case len(blob) == 0:
		return nil, 0, missing("ciphertextBlob")
	case len(blob) > maxCiphertext:
		return nil, 0, validation("Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to %d", maxCiphertext)
	}
	id, version, err := keyring.BlobKey(blob)
	if err != nil {
		return nil, 0, err
	}
	if keyID != "" {
		ki, err := s.key(c, keyID, param)
		if err != nil {
			return nil, 0, err
		}
		if ki.KeyID != id {
			return nil, 0, apiErr(kms.CodeIncorrectKey, "The key ID in the request does not identify a KMS key that can perform this operation.")
		}
		return ki, version, nil
	}
	ki, err := s.kr.Key(id)
	if err != nil {
		return nil, 0, err
	}
	c.resource(ki.Arn)
	return ki, version, nil
}

func opEncrypt(s *Server, c *call, in *encryptInput) (any, error) {
	defer kms.Zero(in.Plaintext)
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, EncryptionContext: in.EncryptionContext,
		EncryptionAlgorithm: in.EncryptionAlgorithm, DryRun: in.DryRun}
	if len(in.Plaintext) == 0 {
		return nil, missing("plaintext")
	}
	if len(in.Plaintext) > maxPlaintext {
		return nil, validation("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to %d", maxPlaintext)
	}
	if err := checkAlgorithm("encryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:Encrypt", grantOp: "Encrypt", encCtx: in.EncryptionContext, hasEC: true, extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	if in.DryRun {
		if err := usableState(ki); err != nil {
			return nil, err
		}
		return nil, dryRun()
	}
	ct, err := s.kr.Encrypt(c.ctx, ki.KeyID, in.Plaintext, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &encryptOutput{CiphertextBlob: ct, KeyID: ki.Arn, EncryptionAlgorithm: algorithm}, nil
}

func opDecrypt(s *Server, c *call, in *decryptInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, EncryptionContext: in.EncryptionContext,
		EncryptionAlgorithm: in.EncryptionAlgorithm, DryRun: in.DryRun}
	if err := noRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.EncryptionAlgorithm == kms.AlgRSAESOAEPSHA256 {
		return s.decryptRSA(c, in)
	}
	if err := checkAlgorithm("encryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ki, version, err := s.blobKey(c, in.CiphertextBlob, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:Decrypt", grantOp: "Decrypt", encCtx: in.EncryptionContext, hasEC: true, extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	if in.DryRun {
		if err := usableState(ki); err != nil {
			return nil, err
		}
		return nil, dryRun()
	}
	pt, err := s.kr.Decrypt(c.ctx, ki.KeyID, in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &decryptOutput{Plaintext: pt, KeyID: ki.Arn, EncryptionAlgorithm: algorithm, KeyMaterialID: keyring.MaterialID(ki.KeyID, version)}, nil
}

func opReEncrypt(s *Server, c *call, in *reEncryptInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{SourceKeyID: in.SourceKeyID, SourceEncryptionContext: in.SourceEncryptionContext,
		DestinationKeyID: in.DestinationKeyID, DestinationEncryptionContext: in.DestinationEncryptionContext, DryRun: in.DryRun}
	for param, alg := range map[string]string{"sourceEncryptionAlgorithm": in.SourceEncryptionAlgorithm, "destinationEncryptionAlgorithm": in.DestinationEncryptionAlgorithm} {
		if err := checkAlgorithm(param, alg); err != nil {
			return nil, err
		}
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if in.DestinationKeyID == "" {
		return nil, missing("destinationKeyId")
	}
	src, srcVersion, err := s.blobKey(c, in.CiphertextBlob, in.SourceKeyID, "sourceKeyId")
	if err != nil {
		return nil, err
	}
	dst, err := s.key(c, in.DestinationKeyID, "destinationKeyId")
	if err != nil {
		return nil, err
	}
	same := map[string][]string{"kms:reencryptonsamekey": {strconv.FormatBool(src.KeyID == dst.KeyID)}}
	if err := s.authorize(c, src, access{action: "kms:ReEncryptFrom", grantOp: "ReEncryptFrom", encCtx: in.SourceEncryptionContext, hasEC: true, extra: same}); err != nil {
		return nil, err
	}
	extra := maps.Clone(same)
	maps.Copy(extra, requestAlias(in.DestinationKeyID))
	if err := s.authorize(c, dst, access{action: "kms:ReEncryptTo", grantOp: "ReEncryptTo", encCtx: in.DestinationEncryptionContext, hasEC: true, extra: extra}); err != nil {
		return nil, err
	}
	if in.DryRun {
		for _, k := range []*keyring.KeyInfo{src, dst} {
			if err := usableState(k); err != nil {
				return nil, err
			}
		}
		return nil, dryRun()
	}
	ct, _, err := s.kr.ReEncrypt(c.ctx, src.KeyID, in.CiphertextBlob, in.SourceEncryptionContext, dst.KeyID, in.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	_, dstVersion, err := keyring.BlobKey(ct)
	if err != nil {
		return nil, err
	}
	return &reEncryptOutput{
		CiphertextBlob: ct, KeyID: dst.Arn, SourceKeyID: src.Arn,
		SourceEncryptionAlgorithm: algorithm, DestinationEncryptionAlgorithm: algorithm,
		SourceKeyMaterialID: keyring.MaterialID(src.KeyID, srcVersion), DestinationKeyMaterialID: keyring.MaterialID(dst.KeyID, dstVersion),
	}, nil
}

// dataKeySize is the length KeySpec or NumberOfBytes asks for (exactly
// one of them).
func dataKeySize(keySpec string, n *int) (int, error) {
	switch {
	case keySpec != "" && n != nil:
		return 0, validation("Specify either KeySpec or NumberOfBytes, not both.")
	case n != nil:
		if *n < 1 || *n > maxDataKey {
			return 0, validation("1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and %d", *n, maxDataKey)
		}
		return *n, nil
	case keySpec == "AES_256":
		return 32, nil
	case keySpec == "AES_128":
		return 16, nil
	case keySpec == "":
		return 0, validation("Specify KeySpec or NumberOfBytes.")
	}
	return 0, validation("1 validation error detected: Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]", keySpec)
}

// generateDataKey is GenerateDataKey with or without the plaintext.
func (s *Server) generateDataKey(c *call, in *generateDataKeyInput, action string) (*generateDataKeyOutput, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, KeySpec: in.KeySpec, NumberOfBytes: deref(in.NumberOfBytes),
		EncryptionContext: in.EncryptionContext, DryRun: in.DryRun}
	if err := noRecipient(in.Recipient); err != nil {
		return nil, err
	}
	n, err := dataKeySize(in.KeySpec, in.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:" + action, grantOp: action, encCtx: in.EncryptionContext, hasEC: true, extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	if in.DryRun {
		if err := usableState(ki); err != nil {
			return nil, err
		}
		return nil, dryRun()
	}
	pt := make([]byte, n)
	rand.Read(pt)
	ct, err := s.kr.Encrypt(c.ctx, ki.KeyID, pt, in.EncryptionContext)
	if err != nil {
		kms.Zero(pt)
		return nil, err
	}
	_, version, err := keyring.BlobKey(ct)
	if err != nil {
		kms.Zero(pt)
		return nil, err
	}
	return &generateDataKeyOutput{CiphertextBlob: ct, Plaintext: pt, KeyID: ki.Arn, KeyMaterialID: keyring.MaterialID(ki.KeyID, version)}, nil
}

func opGenerateDataKey(s *Server, c *call, in *generateDataKeyInput) (any, error) {
	out, err := s.generateDataKey(c, in, "GenerateDataKey")
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opGenerateDataKeyWithoutPlaintext(s *Server, c *call, in *generateDataKeyInput) (any, error) {
	out, err := s.generateDataKey(c, in, "GenerateDataKeyWithoutPlaintext")
	if err != nil {
		return nil, err
	}
	kms.Zero(out.Plaintext)
	out.Plaintext = nil
	return out, nil
}

func opGenerateRandom(s *Server, c *call, in *generateRandomInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{NumberOfBytes: deref(in.NumberOfBytes)}
	if err := noRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreID != "" {
		return nil, apiErr(codeUnsupported, "s3seal's KMS has no custom key stores.")
	}
	if in.NumberOfBytes == nil {
		return nil, missing("numberOfBytes")
	}
	n := *in.NumberOfBytes
	if n < 1 || n > maxDataKey {
		return nil, validation("1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and %d", n, maxDataKey)
	}
	b := make([]byte, n)
	rand.Read(b)
	return &generateRandomOutput{Plaintext: b}, nil
}
