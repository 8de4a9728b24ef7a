package kmsapi_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
)

// writeOnlyPolicy: bob (the backup host) may only fetch the public key;
// reader (the restore host) may decrypt.
var writeOnlyPolicy = fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Writer", "Effect": "Allow", "Principal": {"AWS": %q}, "Action": ["kms:GetPublicKey", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Reader", "Effect": "Allow", "Principal": {"AWS": %q}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
  ]
}`, user(bob), user(reader))

// TestRSAKeyOverSDK: an RSA_3072 key made and used over the KMS API with
// aws-sdk-go-v2 (through kms/awskms, the client s3seal's proxies use):
// DescribeKey reports it as AWS does, a writer with only kms:GetPublicKey
// wraps data keys it cannot unwrap, a reader with kms:Decrypt opens them
// with RSAES_OAEP_SHA_256, and the symmetric operations are refused.
func TestRSAKeyOverSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	api := e.sdk(admin)
	out, err := api.CreateKey(ctx, &sdk.CreateKeyInput{KeySpec: types.KeySpecRsa3072, KeyUsage: types.KeyUsageTypeEncryptDecrypt, Policy: aws.String(writeOnlyPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	md := out.KeyMetadata
	id := aws.ToString(md.KeyId)
	if md.KeySpec != types.KeySpecRsa3072 || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt ||
		len(md.EncryptionAlgorithms) != 1 || md.EncryptionAlgorithms[0] != types.EncryptionAlgorithmSpecRsaesOaepSha256 {
		t.Fatalf("metadata %+v", md)
	}
	d, err := e.backend(bob).DescribeKey(ctx, id)
	if err != nil || d.KeySpec != kms.KeySpecRSA3072 || !d.Asymmetric() {
		t.Fatalf("DescribeKey through awskms: %+v, %v", d, err)
	}

	writer, err := kms.NewAsymmetric(e.backend(bob), kms.AsymmetricConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := writer.GenerateDataKey(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != aws.ToString(md.Arn) || len(dk.Ciphertext) != 384 {
		t.Fatalf("data key names %s, %d bytes", dk.KeyID, len(dk.Ciphertext))
	}
	// The writer's identity may not decrypt, even when it asks the KMS.
	_, err = e.backend(bob).DecryptAsymmetric(ctx, dk.KeyID, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = e.backend(reader).GetPublicKey(ctx, id)
	wantCode(t, err, kms.CodeAccessDenied)

	pt, err := e.backend(reader).DecryptAsymmetric(ctx, dk.KeyID, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("reader: %v", err)
	}
	bad := bytes.Clone(dk.Ciphertext)
	bad[7] ^= 0x80
	_, err = e.backend(reader).DecryptAsymmetric(ctx, dk.KeyID, kms.AlgRSAESOAEPSHA256, bad)
	wantCode(t, err, kms.CodeInvalidCiphertext)

	// With an encryption context, or without the algorithm: refused.
	_, err = api.Decrypt(ctx, &sdk.DecryptInput{KeyId: aws.String(id), CiphertextBlob: dk.Ciphertext,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, EncryptionContext: map[string]string{"a": "b"}})
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = api.Decrypt(ctx, &sdk.DecryptInput{KeyId: aws.String(id), CiphertextBlob: dk.Ciphertext})
	if err == nil {
		t.Fatal("a symmetric Decrypt opened an RSA ciphertext")
	}
	_, err = api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = api.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id)})
	wantCode(t, err, kms.CodeUnsupportedOper)
}
