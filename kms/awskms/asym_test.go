package awskms

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
)

// TestAsymmetricMoto: the AWS path's write side against moto. moto answers
// GetPublicKey for an RSA_3072 ENCRYPT_DECRYPT key, and DescribeKey
// reports its spec, so kms.Asymmetric wraps data keys with it. moto does
// not decrypt with the RSA private half as AWS does (issue #21), so the
// read side is tested against s3seal's own KMS API (kmsapi
// TestRSAKeyOverSDK, over this package's client) and the embedded
// keyring; here it is only checked that moto's answer is not taken for a
// decryption.
func TestAsymmetricMoto(t *testing.T) {
	ctx := context.Background()
	c := newMotoClient(t, "us-east-1")
	out, err := c.API().CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecRsa3072, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.KeyMetadata.Arn)
	md, err := c.DescribeKey(ctx, arn)
	if err != nil || md.KeySpec != kms.KeySpecRSA3072 || !md.Asymmetric() {
		t.Fatalf("DescribeKey: %+v, %v", md, err)
	}
	pk, err := c.GetPublicKey(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pk.RSA()
	if err != nil {
		t.Fatal(err)
	}
	if pub.N.BitLen() != 3072 || pk.KeyID != arn {
		t.Fatalf("public key: %d bits, id %s", pub.N.BitLen(), pk.KeyID)
	}
	a, err := kms.NewAsymmetric(c, kms.AsymmetricConfig{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := a.GenerateDataKey(ctx, arn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != arn || len(dk.Ciphertext) != 384 || len(dk.Plaintext) != 32 {
		t.Fatalf("data key %s, %d/%d bytes", dk.KeyID, len(dk.Plaintext), len(dk.Ciphertext))
	}
	// The wrapped key is a real RSAES-OAEP-SHA-256 ciphertext under moto's
	// public key: it is exactly one modulus long and is no plaintext.
	if bytes.Contains(dk.Ciphertext, dk.Plaintext) {
		t.Fatal("wrapped key holds the plaintext")
	}
	pt, err := a.Decrypt(ctx, arn, dk.Ciphertext, nil)
	switch {
	case err == nil && bytes.Equal(pt, dk.Plaintext):
		t.Log("moto now decrypts RSAES_OAEP_SHA_256: the read side can be tested against it too")
	case err == nil:
		t.Fatalf("moto's RSA Decrypt returned %d bytes that are not the data key, and Asymmetric accepted them", len(pt))
	default:
		t.Logf("moto's RSA Decrypt: %v (expected: moto does not model it)", err)
	}
}
