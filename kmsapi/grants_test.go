package kmsapi_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
)

// TestGrants: a grant allows its grantee its operations under its
// constraints from the moment it is created, and nothing from the moment
// it is retired or revoked.
func TestGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	api := e.sdk(admin)
	id := aws.ToString(must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{})).KeyMetadata.KeyId)
	photos := map[string]string{"s3seal:bucket": "photos"}
	backups := map[string]string{"s3seal:bucket": "backups"}
	b := e.sdk(bob)
	gdk := func(c *sdk.Client, ec map[string]string, tokens ...string) error {
		_, err := c.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec, GrantTokens: tokens})
		return err
	}
	wantCode(t, gdk(b, photos), kms.CodeAccessDenied)

	g := must[*sdk.CreateGrantOutput](t)(api.CreateGrant(ctx, &sdk.CreateGrantInput{
		KeyId: aws.String(id), GranteePrincipal: aws.String(user(bob)), RetiringPrincipal: aws.String(user(carol)),
		Operations:  []types.GrantOperation{types.GrantOperationGenerateDataKey, types.GrantOperationDecrypt, types.GrantOperationCreateGrant, types.GrantOperationDescribeKey},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: photos},
	}))
	// At once, with or without the token.
	if err := gdk(b, photos, aws.ToString(g.GrantToken)); err != nil {
		t.Fatalf("with the grant token: %v", err)
	}
	if err := gdk(b, map[string]string{"s3seal:bucket": "photos", "extra": "pair"}); err != nil {
		t.Fatalf("subset constraint with an extra pair: %v", err)
	}
	if err := gdk(b, map[string]string{"S3SEAL:BUCKET": "photos"}); err != nil {
		t.Fatalf("constraint keys are case insensitive: %v", err)
	}
	wantCode(t, gdk(b, backups), kms.CodeAccessDenied)
	wantCode(t, gdk(b, nil), kms.CodeAccessDenied)
	wantCode(t, gdk(b, photos, "not-a-token"), "InvalidGrantTokenException")
	if _, err := b.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatalf("DescribeKey by grant: %v", err)
	}
	_, err := b.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = b.DisableKey(ctx, &sdk.DisableKeyInput{KeyId: aws.String(id)})
	wantCode(t, err, kms.CodeAccessDenied)

	// Bob passes on part of his grant, never more.
	_, err = b.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(reader)),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt}, Constraints: &types.GrantConstraints{EncryptionContextSubset: photos}})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = b.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(reader)),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantCode(t, err, kms.CodeAccessDenied) // drops the constraint
	_, err = b.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(reader)),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationRetireGrant}, Constraints: &types.GrantConstraints{EncryptionContextSubset: photos}})
	wantCode(t, err, kms.CodeAccessDenied) // bob's grant lacks RetireGrant
	sub := must[*sdk.CreateGrantOutput](t)(b.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(reader)),
		RetiringPrincipal: aws.String(user(reader)), Operations: []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextEquals: photos}}))
	dk := must[*sdk.GenerateDataKeyOutput](t)(b.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: photos}))
	r := e.sdk(reader)
	if _, err := r.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: photos}); err != nil {
		t.Fatalf("sub-grant: %v", err)
	}
	// The grantee, also its retiring principal, retires it by token.
	must[*sdk.RetireGrantOutput](t)(r.RetireGrant(ctx, &sdk.RetireGrantInput{GrantToken: sub.GrantToken}))
	_, err = r.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)

	// Only the retiring principal (or whom the policy allows) retires
	// bob's grant; from then on it allows nothing.
	_, err = e.sdk(eve).RetireGrant(ctx, &sdk.RetireGrantInput{KeyId: aws.String(id), GrantId: g.GrantId})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = b.RetireGrant(ctx, &sdk.RetireGrantInput{KeyId: aws.String(id), GrantId: g.GrantId})
	wantCode(t, err, kms.CodeAccessDenied) // bob's grant lacks RetireGrant
	must[*sdk.RetireGrantOutput](t)(e.sdk(carol).RetireGrant(ctx, &sdk.RetireGrantInput{KeyId: aws.String(id), GrantId: g.GrantId}))
	wantCode(t, gdk(b, photos), kms.CodeAccessDenied)
	_, err = b.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)

	// Revoked by an administrator: the same, at once.
	g2 := must[*sdk.CreateGrantOutput](t)(api.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(bob)),
		Operations: []types.GrantOperation{types.GrantOperationGenerateDataKey}}))
	if err := gdk(b, backups); err != nil {
		t.Fatalf("unconstrained grant: %v", err)
	}
	must[*sdk.RevokeGrantOutput](t)(api.RevokeGrant(ctx, &sdk.RevokeGrantInput{KeyId: aws.String(id), GrantId: g2.GrantId}))
	wantCode(t, gdk(b, backups), kms.CodeAccessDenied)

	// A grant never beats an explicit deny of the key policy.
	must[*sdk.CreateGrantOutput](t)(api.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(bob)),
		Operations: []types.GrantOperation{types.GrantOperationGenerateDataKey}}))
	if err := gdk(b, backups); err != nil {
		t.Fatal(err)
	}
	deny := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKey","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:s3seal:bucket":"backups"}}}]}`
	must[*sdk.PutKeyPolicyOutput](t)(api.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(deny)}))
	wantCode(t, gdk(b, backups), kms.CodeAccessDenied)
	if err := gdk(b, photos); err != nil {
		t.Fatal(err)
	}

	// Listing; bad grant ids and operations.
	gl := must[*sdk.ListGrantsOutput](t)(api.ListGrants(ctx, &sdk.ListGrantsInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(bob))}))
	if len(gl.Grants) != 1 {
		t.Fatalf("%d grants", len(gl.Grants))
	}
	rl := must[*sdk.ListRetirableGrantsOutput](t)(api.ListRetirableGrants(ctx, &sdk.ListRetirableGrantsInput{RetiringPrincipal: aws.String(user(carol))}))
	if len(rl.Grants) != 0 {
		t.Fatalf("%d retirable grants left", len(rl.Grants))
	}
	_, err = api.RevokeGrant(ctx, &sdk.RevokeGrantInput{KeyId: aws.String(id), GrantId: aws.String("xyz")})
	wantCode(t, err, "InvalidGrantIdException")
	_, err = api.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(bob)),
		Operations: []types.GrantOperation{types.GrantOperationSign}})
	wantCode(t, err, kms.CodeValidation)
	_, err = api.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String("bob"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantCode(t, err, "InvalidArnException")
}
