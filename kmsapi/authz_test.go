package kmsapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kmsapi"
)

func user(ak string) string { return kmsapi.UserARN(ak) }

// rolesPolicy: the root (the administrators) may do everything; alice
// administers the key without using it; bob uses it for the photos
// bucket only; reader may only decrypt; nobody but root may schedule the
// key's deletion.
var rolesPolicy = fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "KeyAdministrators", "Effect": "Allow", "Principal": {"AWS": %q},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
                "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "PhotosOnly", "Effect": "Allow", "Principal": {"AWS": %q},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"], "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:s3seal:bucket": "photos"}}},
    {"Sid": "DecryptOnly", "Effect": "Allow", "Principal": {"AWS": %q}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "OnlyRootDeletes", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
  ]
}`, user(alice), user(bob), user(reader))

// policyKey creates a key with rolesPolicy.
func policyKey(t *testing.T, e *env) string {
	t.Helper()
	out, err := e.sdk(admin).CreateKey(context.Background(), &sdk.CreateKeyInput{Policy: aws.String(rolesPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// TestDeniedChangesNothing: an identity no policy names gets
// AccessDeniedException for every operation on the key, and the key is
// as it was; each denial is audited.
func TestDeniedChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := policyKey(t, e)
	before, err := e.kr.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	dk := must[*sdk.GenerateDataKeyOutput](t)(e.sdk(admin).GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256}))
	api := e.sdk(eve)
	calls := map[string]func() error{
		"DescribeKey": func() error { _, err := api.DescribeKey(ctx, &sdk.DescribeKeyInput{KeyId: aws.String(id)}); return err },
		"Decrypt": func() error {
			_, err := api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
			return err
		},
		"Encrypt": func() error {
			_, err := api.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
			return err
		},
		"DisableKey": func() error { _, err := api.DisableKey(ctx, &sdk.DisableKeyInput{KeyId: aws.String(id)}); return err },
		"ScheduleKeyDeletion": func() error {
			_, err := api.ScheduleKeyDeletion(ctx, &sdk.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
			return err
		},
		"PutKeyPolicy": func() error {
			_, err := api.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`), BypassPolicyLockoutSafetyCheck: true})
			return err
		},
		"GetKeyPolicy": func() error {
			_, err := api.GetKeyPolicy(ctx, &sdk.GetKeyPolicyInput{KeyId: aws.String(id)})
			return err
		},
		"CreateAlias": func() error {
			_, err := api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/eve"), TargetKeyId: aws.String(id)})
			return err
		},
		"EnableKeyRotation": func() error {
			_, err := api.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id)})
			return err
		},
		"RotateKeyOnDemand": func() error {
			_, err := api.RotateKeyOnDemand(ctx, &sdk.RotateKeyOnDemandInput{KeyId: aws.String(id)})
			return err
		},
		"TagResource": func() error {
			_, err := api.TagResource(ctx, &sdk.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{{TagKey: aws.String("x"), TagValue: aws.String("y")}}})
			return err
		},
		"CreateGrant": func() error {
			_, err := api.CreateGrant(ctx, &sdk.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user(eve)), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
			return err
		},
		"CreateKey": func() error { _, err := api.CreateKey(ctx, &sdk.CreateKeyInput{}); return err },
		"ListKeys":  func() error { _, err := api.ListKeys(ctx, &sdk.ListKeysInput{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantCode(t, err, kms.CodeAccessDenied)
			if !strings.Contains(err.Error(), user(eve)+" is not authorized to perform: kms:"+name) {
				t.Fatalf("message %v", err)
			}
		})
	}
	after, err := e.kr.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyState != before.KeyState || after.Policy != before.Policy || len(after.Versions) != len(before.Versions) ||
		len(after.Grants) != 0 || len(after.Aliases) != 0 || len(after.Tags) != 0 || after.Rotation != nil {
		t.Fatalf("key changed:\n%+v\n%+v", before, after)
	}
	keys, _ := e.kr.ListKeys()
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	audited := strings.Count(e.audit.String(), `"errorCode":"AccessDeniedException"`)
	if audited != len(calls) {
		t.Fatalf("%d denials audited, want %d", audited, len(calls))
	}
	// Anyone authenticated may ask for random bytes.
	if _, err := api.GenerateRandom(ctx, &sdk.GenerateRandomInput{NumberOfBytes: aws.Int32(8)}); err != nil {
		t.Fatal(err)
	}
}

// TestDelegatedAdministration: alice manages the key and cannot use it;
// bob uses it and cannot manage it.
func TestDelegatedAdministration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := policyKey(t, e)
	a, b := e.sdk(alice), e.sdk(bob)
	photos := map[string]string{"s3seal:bucket": "photos"}

	must[*sdk.DisableKeyOutput](t)(a.DisableKey(ctx, &sdk.DisableKeyInput{KeyId: aws.String(id)}))
	must[*sdk.EnableKeyOutput](t)(a.EnableKey(ctx, &sdk.EnableKeyInput{KeyId: aws.String(id)}))
	must[*sdk.EnableKeyRotationOutput](t)(a.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id)}))
	must[*sdk.CreateAliasOutput](t)(a.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/photos"), TargetKeyId: aws.String(id)}))
	must[*sdk.GetKeyPolicyOutput](t)(a.GetKeyPolicy(ctx, &sdk.GetKeyPolicyInput{KeyId: aws.String(id)}))
	_, err := a.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = a.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)
	// The explicit deny beats alice's kms:ScheduleKeyDeletion allow.
	_, err = a.ScheduleKeyDeletion(ctx, &sdk.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
	wantCode(t, err, kms.CodeAccessDenied)
	if !strings.Contains(err.Error(), "explicit deny") {
		t.Fatalf("message %v", err)
	}

	dk := must[*sdk.GenerateDataKeyOutput](t)(b.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String("alias/photos"), KeySpec: types.DataKeySpecAes256, EncryptionContext: photos}))
	must[*sdk.DecryptOutput](t)(b.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: photos}))
	_, err = a.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: photos})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = b.DisableKey(ctx, &sdk.DisableKeyInput{KeyId: aws.String(id)})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = b.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(rolesPolicy)})
	wantCode(t, err, kms.CodeAccessDenied)

	// Alice edits the policy; the lockout check keeps her from locking
	// herself out, unless she insists.
	lockout := `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}}`
	_, err = a.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(lockout)})
	wantCode(t, err, "MalformedPolicyDocumentException")
	must[*sdk.PutKeyPolicyOutput](t)(a.PutKeyPolicy(ctx, &sdk.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(lockout), BypassPolicyLockoutSafetyCheck: true}))
	_, err = a.GetKeyPolicy(ctx, &sdk.GetKeyPolicyInput{KeyId: aws.String(id)})
	wantCode(t, err, kms.CodeAccessDenied)
}

// TestBucketCondition: an identity limited to s3seal:bucket = photos
// cannot unwrap a data key of backups, nor make one.
func TestBucketCondition(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := policyKey(t, e)
	// What the proxies do: s3seal's AWS KMS backend, with the bucket
	// context.
	root, limited := e.backend(admin), e.backend(bob)
	backups, err := root.GenerateDataKey(ctx, id, kms.BucketContext("backups"))
	if err != nil {
		t.Fatal(err)
	}
	photos, err := root.GenerateDataKey(ctx, id, kms.BucketContext("photos"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limited.Decrypt(ctx, "", backups.Ciphertext, kms.BucketContext("backups")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("backups data key: %v", err)
	}
	if _, err := limited.Decrypt(ctx, "", photos.Ciphertext, kms.BucketContext("photos")); err != nil {
		t.Fatalf("photos data key: %v", err)
	}
	if _, err := limited.GenerateDataKey(ctx, id, kms.BucketContext("backups")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("new backups data key: %v", err)
	}
	// Claiming photos for a backups key does not help: the context is
	// bound to the ciphertext.
	if _, err := limited.Decrypt(ctx, "", backups.Ciphertext, kms.BucketContext("photos")); kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
		t.Fatalf("backups data key claimed as photos: %v", err)
	}
	// ReEncrypt out of backups into photos is refused too.
	if _, _, err := limited.ReEncrypt(ctx, "", backups.Ciphertext, kms.BucketContext("backups"), id, kms.BucketContext("photos")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("reencrypt out of backups: %v", err)
	}
}

// TestDecryptOnly: an identity allowed kms:Decrypt alone (what a proxy
// sharing a bucket read-only runs as) unwraps data keys and can neither
// make nor wrap one.
func TestDecryptOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := policyKey(t, e)
	dk, err := e.backend(admin).GenerateDataKey(ctx, id, kms.BucketContext("shared"))
	if err != nil {
		t.Fatal(err)
	}
	ro := e.backend(reader)
	pt, err := ro.Decrypt(ctx, dk.KeyID, dk.Ciphertext, kms.BucketContext("shared"))
	if err != nil || string(pt) != string(dk.Plaintext) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := ro.DescribeKey(ctx, id); err != nil {
		t.Fatalf("describe (the proxy's readiness probe): %v", err)
	}
	if _, err := ro.GenerateDataKey(ctx, id, kms.BucketContext("shared")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if _, err := ro.Encrypt(ctx, id, []byte("x"), nil); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("Encrypt: %v", err)
	}
	if _, _, err := ro.ReEncrypt(ctx, id, dk.Ciphertext, kms.BucketContext("shared"), id, kms.BucketContext("other")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("ReEncrypt: %v", err)
	}
	_, err = e.sdk(reader).GenerateDataKeyWithoutPlaintext(ctx, &sdk.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	wantCode(t, err, kms.CodeAccessDenied)
}

// TestDefaultPolicy: a key created without a policy is the
// administrators' alone, as AWS's default policy gives it to the account.
func TestDefaultPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out := must[*sdk.CreateKeyOutput](t)(e.sdk(admin).CreateKey(ctx, &sdk.CreateKeyInput{}))
	id := aws.ToString(out.KeyMetadata.KeyId)
	for _, ak := range []string{alice, bob, reader, eve} {
		_, err := e.sdk(ak).GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
		wantCode(t, err, kms.CodeAccessDenied)
	}
	if _, err := e.sdk(admin).GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256}); err != nil {
		t.Fatal(err)
	}
	// A policy that leaves the creator out is refused at creation too.
	_, err := e.sdk(admin).CreateKey(ctx, &sdk.CreateKeyInput{Policy: aws.String(fmt.Sprintf(`{"Statement":{"Effect":"Allow","Principal":{"AWS":%q},"Action":"kms:*","Resource":"*"}}`, user(bob)))})
	wantCode(t, err, "MalformedPolicyDocumentException")
}
