//go:build cgo

package kmsapi_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/pkcs11"
)

// TestHSMKeyStore: over the KMS API, CreateKey with Origin AWS_CLOUDHSM
// and the keyring's CustomKeyStoreId makes a key in the HSM (SoftHSM2),
// DescribeKey says so, and data keys go through it; another store id, or
// one half of the pair, is refused as AWS KMS refuses it.
func TestHSMKeyStore(t *testing.T) {
	hsm := testenv.NewSoftHSM(t, "kmsapi-hsm")
	// The module reads SOFTHSM2_CONF when it initializes; no other test of
	// this package loads it.
	t.Setenv("SOFTHSM2_CONF", hsm.Conf)
	store, err := pkcs11.Open(pkcs11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *keyring.Config) { c.KeyStore = store })
	ctx := context.Background()
	c := e.sdk(admin)
	const storeID = "pkcs11:kmsapi-hsm"
	out, err := c.CreateKey(ctx, &sdk.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String(storeID)})
	if err != nil {
		t.Fatal(err)
	}
	md := out.KeyMetadata
	if md.Origin != types.OriginTypeAwsCloudhsm || aws.ToString(md.CustomKeyStoreId) != storeID {
		t.Fatalf("CreateKey: Origin %q, CustomKeyStoreId %q", md.Origin, aws.ToString(md.CustomKeyStoreId))
	}
	d, err := c.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: md.KeyId})
	if err != nil || d.KeyMetadata.Origin != types.OriginTypeAwsCloudhsm || aws.ToString(d.KeyMetadata.CustomKeyStoreId) != storeID {
		t.Fatalf("DescribeKey: %+v, %v", d, err)
	}
	ki, err := e.kr.Key(aws.ToString(md.KeyId))
	if err != nil || ki.Versions[0].Label == "" {
		t.Fatalf("the keyring's record: %+v, %v", ki, err)
	}
	ec := map[string]string{"s3seal:bucket": "b"}
	dk, err := c.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if dk.CiphertextBlob[0] != 2 {
		t.Fatalf("GenerateDataKey: blob format %d, want 2 (sealed in the HSM)", dk.CiphertextBlob[0])
	}
	pt, err := c.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	if err != nil || !bytes.Equal(pt.Plaintext, dk.Plaintext) {
		t.Fatalf("Decrypt: %v", err)
	}
	// A local key is still AWS_KMS.
	local, err := c.CreateKey(ctx, &sdk.CreateKeyInput{})
	if err != nil || local.KeyMetadata.Origin != types.OriginTypeAwsKms || local.KeyMetadata.CustomKeyStoreId != nil {
		t.Fatalf("CreateKey without origin: %+v, %v", local, err)
	}
	_, err = c.CreateKey(ctx, &sdk.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
	wantCode(t, err, "CustomKeyStoreNotFoundException")
	_, err = c.CreateKey(ctx, &sdk.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateKey(ctx, &sdk.CreateKeyInput{CustomKeyStoreId: aws.String(storeID)})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateKey(ctx, &sdk.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore})
	wantCode(t, err, "UnsupportedOperationException")
}
