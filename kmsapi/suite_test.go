package kmsapi_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/kms/kmstest"
)

// TestSuite runs the shared kms.Client suite with s3seal's AWS KMS backend
// (kms/awskms) against the KMS API, as it runs against moto: a proxy with
// S3SEAL_KMS=aws sees the same KMS whether AWS, moto or s3seal serves it.
func TestSuite(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Env {
		e := newEnv(t)
		ctx := context.Background()
		api := e.sdk(admin)
		k1 := must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{Description: aws.String("suite")}))
		k2 := must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{}))
		if _, err := api.CreateAlias(ctx, &sdk.CreateAliasInput{AliasName: aws.String("alias/suite"), TargetKeyId: k1.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		return kmstest.Env{
			Client:       e.backend(admin),
			KeyID:        *k1.KeyMetadata.KeyId,
			KeyARN:       *k1.KeyMetadata.Arn,
			Alias:        "alias/suite",
			OtherKeyID:   *k2.KeyMetadata.KeyId,
			MissingKeyID: "00000000-0000-4000-8000-000000000000",
		}
	})
}
