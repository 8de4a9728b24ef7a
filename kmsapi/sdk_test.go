package kmsapi_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestSDKLifecycle runs a key's whole life through aws-sdk-go-v2's KMS
// client, checking the typed outputs and errors the SDK decodes from the
// wire.
func TestSDKLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	api := e.sdk(admin)

	// Create, describe, list.
	created, err := api.CreateKey(ctx, &sdk.CreateKeyInput{
		Description: aws.String("photos key"),
		Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("photos")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := created.KeyMetadata
	id := aws.ToString(md.KeyId)
	if !strings.HasPrefix(aws.ToString(md.Arn), "arn:aws:kms:local:000000000000:key/") || md.KeyState != types.KeyStateEnabled || !md.Enabled ||
		md.KeySpec != types.KeySpecSymmetricDefault || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || aws.ToString(md.AWSAccountId) != "000000000000" ||
		md.Origin != types.OriginTypeAwsKms || md.KeyManager != types.KeyManagerTypeCustomer || aws.ToString(md.Description) != "photos key" ||
		md.CreationDate == nil || time.Since(*md.CreationDate) > time.Minute || aws.ToString(md.CurrentKeyMaterialId) == "" {
		t.Fatalf("metadata %+v", md)
	}
	other := must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{}))
	otherID := aws.ToString(other.KeyMetadata.KeyId)
	for _, kid := range []string{id, aws.ToString(md.Arn)} {
		d, err := api.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: aws.String(kid)})
		if err != nil || aws.ToString(d.KeyMetadata.KeyId) != id {
			t.Fatalf("DescribeKey(%s): %v", kid, err)
		}
	}
	var listed []string
	p := sdk.NewListKeysPaginator(api, &sdk.ListKeysInput{Limit: aws.Int32(1)})
	for p.HasMorePages() {
		page := must[*sdk.ListKeysOutput](t)(p.NextPage(ctx))
		if len(page.Keys) != 1 {
			t.Fatalf("page of %d keys", len(page.Keys))
		}
		listed = append(listed, aws.ToString(page.Keys[0].KeyId))
	}
	if !slices.Equal(listed, []string{id, otherID}) {
		t.Fatalf("ListKeys %v", listed)
	}
	_, err = api.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: aws.String("00000000-0000-4000-8000-000000000000")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("missing key: %v", err)
	}

	// Aliases.
	if _, err := api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/photos"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/photos"), TargetKeyId: aws.String(otherID)})
	var ae *types.AlreadyExistsException
	if !errors.As(err, &ae) {
		t.Fatalf("duplicate alias: %v", err)
	}
	_, err = api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/aws/s3"), TargetKeyId: aws.String(id)})
	var ian *types.InvalidAliasNameException
	if !errors.As(err, &ian) {
		t.Fatalf("reserved alias: %v", err)
	}
	must[*sdk.CreateAliasOutput](t)(api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: aws.String(id)}))
	must[*sdk.UpdateAliasOutput](t)(api.UpdateAlias(ctx, &sdk.UpdateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: aws.String(otherID)}))
	al := must[*sdk.ListAliasesOutput](t)(api.ListAliases(ctx, &sdk.ListAliasesInput{}))
	got := map[string]string{}
	for _, a := range al.Aliases {
		got[aws.ToString(a.AliasName)] = aws.ToString(a.TargetKeyId)
		if aws.ToString(a.AliasArn) != "arn:aws:kms:local:000000000000:"+aws.ToString(a.AliasName) {
			t.Fatalf("alias ARN %s", aws.ToString(a.AliasArn))
		}
	}
	if len(got) != 2 || got["alias/photos"] != id || got["alias/moving"] != otherID {
		t.Fatalf("aliases %v", got)
	}
	al = must[*sdk.ListAliasesOutput](t)(api.ListAliases(ctx, &sdk.ListAliasesInput{KeyId: aws.String(otherID)}))
	if len(al.Aliases) != 1 || aws.ToString(al.Aliases[0].AliasName) != "alias/moving" {
		t.Fatalf("aliases of one key %+v", al.Aliases)
	}
	must[*sdk.DeleteAliasOutput](t)(api.DeleteAlias(ctx, &sdk.DeleteAliasInput{AliasName: aws.String("alias/moving")}))

	// Encrypt and Decrypt, with a context; the context binds.
	ec := map[string]string{"s3seal:bucket": "photos", "purpose": "test"}
	enc := must[*sdk.EncryptOutput](t)(api.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String("alias/photos"), Plaintext: []byte("hello, KMS"), EncryptionContext: ec}))
	if aws.ToString(enc.KeyId) != aws.ToString(md.Arn) || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("encrypt output %+v", enc)
	}
	dec := must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	if string(dec.Plaintext) != "hello, KMS" || aws.ToString(dec.KeyId) != aws.ToString(md.Arn) || aws.ToString(dec.KeyMaterialId) != aws.ToString(md.CurrentKeyMaterialId) {
		t.Fatalf("decrypt output %+v", dec)
	}
	_, err = api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"s3seal:bucket": "photos"}})
	var ic *types.InvalidCiphertextException
	if !errors.As(err, &ic) {
		t.Fatalf("other context: %v", err)
	}
	_, err = api.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: make([]byte, 4097)})
	wantCode(t, err, "ValidationException")

	// A data key from GenerateDataKey decrypts with Decrypt; under
	// another key it is IncorrectKeyException.
	for _, spec := range []struct {
		in   *sdk.GenerateDataKeyInput
		size int
	}{
		{&sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}, 32},
		{&sdk.GenerateDataKeyInput{KeyId: aws.String("alias/photos"), KeySpec: types.DataKeySpecAes128}, 16},
		{&sdk.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(1024)}, 1024},
	} {
		dk := must[*sdk.GenerateDataKeyOutput](t)(api.GenerateDataKey(ctx, spec.in))
		if len(dk.Plaintext) != spec.size || aws.ToString(dk.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("data key of %d bytes, key %s", len(dk.Plaintext), aws.ToString(dk.KeyId))
		}
		pt := must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: spec.in.EncryptionContext, KeyId: aws.String(id)}))
		if !bytes.Equal(pt.Plaintext, dk.Plaintext) {
			t.Fatal("Decrypt of a GenerateDataKey blob differs")
		}
		_, err = api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: spec.in.EncryptionContext, KeyId: aws.String(otherID)})
		var ik *types.IncorrectKeyException
		if !errors.As(err, &ik) {
			t.Fatalf("decrypt under another key: %v", err)
		}
	}
	_, err = api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	wantCode(t, err, "ValidationException")
	nopt := must[*sdk.GenerateDataKeyWithoutPlaintextOutput](t)(api.GenerateDataKeyWithoutPlaintext(ctx, &sdk.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
	if pt := must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: nopt.CiphertextBlob, EncryptionContext: ec})); len(pt.Plaintext) != 32 {
		t.Fatalf("GenerateDataKeyWithoutPlaintext blob holds %d bytes", len(pt.Plaintext))
	}
	rnd := must[*sdk.GenerateRandomOutput](t)(api.GenerateRandom(ctx, &sdk.GenerateRandomInput{NumberOfBytes: aws.Int32(64)}))
	if len(rnd.Plaintext) != 64 {
		t.Fatal(len(rnd.Plaintext))
	}

	// ReEncrypt to the other key and context.
	re := must[*sdk.ReEncryptOutput](t)(api.ReEncrypt(ctx, &sdk.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyId: aws.String(otherID), DestinationEncryptionContext: map[string]string{"s3seal:bucket": "archive"}}))
	if aws.ToString(re.SourceKeyId) != aws.ToString(md.Arn) || aws.ToString(re.KeyId) != aws.ToString(other.KeyMetadata.Arn) {
		t.Fatalf("reencrypt %+v", re)
	}
	if pt := must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"s3seal:bucket": "archive"}})); string(pt.Plaintext) != "hello, KMS" {
		t.Fatal("reencrypted plaintext differs")
	}

	// Dry runs.
	_, err = api.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	var dr *types.DryRunOperationException
	if !errors.As(err, &dr) {
		t.Fatalf("dry run: %v", err)
	}

	// Disable and enable.
	must[*sdk.DisableKeyOutput](t)(api.DisableKey(ctx, &sdk.DisableKeyInput{KeyId: aws.String(id)}))
	_, err = api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	var de *types.DisabledException
	if !errors.As(err, &de) {
		t.Fatalf("disabled: %v", err)
	}
	if d := must[*sdk.DescribeKeyOutput](t)(api.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: aws.String(id)})); d.KeyMetadata.Enabled || d.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Fatalf("%+v", d.KeyMetadata)
	}
	must[*sdk.EnableKeyOutput](t)(api.EnableKey(ctx, &sdk.EnableKeyInput{KeyId: aws.String(id)}))

	// Rotation: on demand, automatic schedule, listing.
	_, err = api.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(89)})
	wantCode(t, err, "ValidationException")
	must[*sdk.EnableKeyRotationOutput](t)(api.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(180)}))
	st := must[*sdk.GetKeyRotationStatusOutput](t)(api.GetKeyRotationStatus(ctx, &sdk.GetKeyRotationStatusInput{KeyId: aws.String(id)}))
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 180 || st.NextRotationDate == nil ||
		st.NextRotationDate.Sub(e.clock.Now().Add(180*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("rotation status %+v", st)
	}
	rk := must[*sdk.RotateKeyOnDemandOutput](t)(api.RotateKeyOnDemand(ctx, &sdk.RotateKeyOnDemandInput{KeyId: aws.String("alias/photos")}))
	if aws.ToString(rk.KeyId) != id {
		t.Fatalf("RotateKeyOnDemand %+v", rk)
	}
	rots := must[*sdk.ListKeyRotationsOutput](t)(api.ListKeyRotations(ctx, &sdk.ListKeyRotationsInput{KeyId: aws.String(id)}))
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand || rots.Rotations[0].KeyMaterialState != types.KeyMaterialStateCurrent || rots.Rotations[0].RotationDate == nil {
		t.Fatalf("rotations %+v", rots.Rotations)
	}
	all := must[*sdk.ListKeyRotationsOutput](t)(api.ListKeyRotations(ctx, &sdk.ListKeyRotationsInput{KeyId: aws.String(id), IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial}))
	if len(all.Rotations) != 2 || all.Rotations[0].KeyMaterialState != types.KeyMaterialStateNonCurrent {
		t.Fatalf("all key material %+v", all.Rotations)
	}
	if pt := must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})); string(pt.Plaintext) != "hello, KMS" {
		t.Fatal("old ciphertext after rotation")
	}
	for range 9 {
		must[*sdk.RotateKeyOnDemandOutput](t)(api.RotateKeyOnDemand(ctx, &sdk.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	}
	_, err = api.RotateKeyOnDemand(ctx, &sdk.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("11th on-demand rotation: %v", err)
	}
	must[*sdk.DisableKeyRotationOutput](t)(api.DisableKeyRotation(ctx, &sdk.DisableKeyRotationInput{KeyId: aws.String(id)}))
	if st := must[*sdk.GetKeyRotationStatusOutput](t)(api.GetKeyRotationStatus(ctx, &sdk.GetKeyRotationStatusInput{KeyId: aws.String(id)})); st.KeyRotationEnabled {
		t.Fatal("rotation still enabled")
	}

	// Policy.
	pol := must[*sdk.GetKeyPolicyOutput](t)(api.GetKeyPolicy(ctx, &sdk.GetKeyPolicyInput{KeyId: aws.String(id)}))
	if !strings.Contains(aws.ToString(pol.Policy), "arn:aws:iam::000000000000:root") || aws.ToString(pol.PolicyName) != "default" {
		t.Fatalf("default policy %s", aws.ToString(pol.Policy))
	}
	names := must[*sdk.ListKeyPoliciesOutput](t)(api.ListKeyPolicies(ctx, &sdk.ListKeyPoliciesInput{KeyId: aws.String(id)}))
	if !slices.Equal(names.PolicyNames, []string{"default"}) {
		t.Fatal(names.PolicyNames)
	}
	newPolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"kms:*","Resource":"*"},{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/BOB"},"Action":"kms:Decrypt","Resource":"*"}]}`
	must[*sdk.PutKeyPolicyOutput](t)(api.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(newPolicy)}))
	if pol := must[*sdk.GetKeyPolicyOutput](t)(api.GetKeyPolicy(ctx, &sdk.GetKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("default")})); aws.ToString(pol.Policy) != newPolicy {
		t.Fatalf("policy %s", aws.ToString(pol.Policy))
	}
	_, err = api.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Statement":[{"Effect":"Allow"}]}`)})
	var mp *types.MalformedPolicyDocumentException
	if !errors.As(err, &mp) {
		t.Fatalf("malformed policy: %v", err)
	}

	// Tags and description.
	must[*sdk.TagResourceOutput](t)(api.TagResource(ctx, &sdk.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("test")}}}))
	must[*sdk.UntagResourceOutput](t)(api.UntagResource(ctx, &sdk.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"team"}}))
	tags := must[*sdk.ListResourceTagsOutput](t)(api.ListResourceTags(ctx, &sdk.ListResourceTagsInput{KeyId: aws.String(id)}))
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "env" || aws.ToString(tags.Tags[0].TagValue) != "test" {
		t.Fatalf("tags %+v", tags.Tags)
	}
	_, err = api.TagResource(ctx, &sdk.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("")}}})
	var te *types.TagException
	if !errors.As(err, &te) {
		t.Fatalf("reserved tag: %v", err)
	}
	must[*sdk.UpdateKeyDescriptionOutput](t)(api.UpdateKeyDescription(ctx, &sdk.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("renamed")}))

	// Grants.
	g := must[*sdk.CreateGrantOutput](t)(api.CreateGrant(ctx, &sdk.CreateGrantInput{
		KeyId: aws.String(id), GranteePrincipal: aws.String("arn:aws:iam::000000000000:user/" + reader),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}, Name: aws.String("reader"),
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"s3seal:bucket": "photos"}},
	}))
	gl := must[*sdk.ListGrantsOutput](t)(api.ListGrants(ctx, &sdk.ListGrantsInput{KeyId: aws.String(id)}))
	if len(gl.Grants) != 1 || aws.ToString(gl.Grants[0].GrantId) != aws.ToString(g.GrantId) || aws.ToString(gl.Grants[0].Name) != "reader" ||
		gl.Grants[0].Constraints.EncryptionContextSubset["s3seal:bucket"] != "photos" || aws.ToString(gl.Grants[0].KeyId) != aws.ToString(md.Arn) {
		t.Fatalf("grants %+v", gl.Grants)
	}
	must[*sdk.RevokeGrantOutput](t)(api.RevokeGrant(ctx, &sdk.RevokeGrantInput{KeyId: aws.String(id), GrantId: g.GrantId}))
	_, err = api.RevokeGrant(ctx, &sdk.RevokeGrantInput{KeyId: aws.String(id), GrantId: g.GrantId})
	if !errors.As(err, &nf) {
		t.Fatalf("revoking twice: %v", err)
	}

	// Deletion: scheduled (7 to 30 days), cancelled (the key is then
	// disabled), and enabled again.
	_, err = api.ScheduleKeyDeletion(ctx, &sdk.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(6)})
	wantCode(t, err, "ValidationException")
	sd := must[*sdk.ScheduleKeyDeletionOutput](t)(api.ScheduleKeyDeletion(ctx, &sdk.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}))
	if sd.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(sd.PendingWindowInDays) != 7 || sd.DeletionDate.Sub(e.clock.Now().Add(7*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("schedule %+v", sd)
	}
	_, err = api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	var is *types.KMSInvalidStateException
	if !errors.As(err, &is) {
		t.Fatalf("pending deletion: %v", err)
	}
	must[*sdk.CancelKeyDeletionOutput](t)(api.CancelKeyDeletion(ctx, &sdk.CancelKeyDeletionInput{KeyId: aws.String(id)}))
	_, err = api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	if !errors.As(err, &de) {
		t.Fatalf("cancelled deletion: %v", err)
	}
	must[*sdk.EnableKeyOutput](t)(api.EnableKey(ctx, &sdk.EnableKeyInput{KeyId: aws.String(id)}))

	// Deleted for good once the window passes.
	must[*sdk.ScheduleKeyDeletionOutput](t)(api.ScheduleKeyDeletion(ctx, &sdk.ScheduleKeyDeletionInput{KeyId: aws.String(otherID), PendingWindowInDays: aws.Int32(7)}))
	e.clock.Add(7*24*time.Hour + time.Second)
	_, err = api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"s3seal:bucket": "archive"}})
	if !errors.As(err, &nf) {
		t.Fatalf("after deletion: %v", err)
	}

	// Operations s3seal's KMS does not have.
	_, err = api.Sign(ctx, &sdk.SignInput{KeyId: aws.String(id), Message: []byte("x"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	var uo *types.UnsupportedOperationException
	if !errors.As(err, &uo) {
		t.Fatalf("Sign: %v", err)
	}
	_, err = api.CreateKey(ctx, &sdk.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	if !errors.As(err, &uo) {
		t.Fatalf("RSA key: %v", err)
	}
}
