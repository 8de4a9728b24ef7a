package kmsapi_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kmsapi"
)

// TestAutomaticRotation: with automatic rotation every 90 days and the
// keyring's clock moved on (the test's short period: no real 90 days, no
// user-facing knob), RunRotation rotates the key on schedule, and data
// keys wrapped before and after every rotation all decrypt.
func TestAutomaticRotation(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := e.sdk(admin)
	id := aws.ToString(must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{})).KeyMetadata.KeyId)
	must[*sdk.EnableKeyRotationOutput](t)(api.EnableKeyRotation(ctx, &sdk.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}))
	done := make(chan struct{})
	go func() {
		kmsapi.RunRotation(ctx, e.kr, 5*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	defer func() { cancel(); <-done }()

	ec := map[string]string{"s3seal:bucket": "photos"}
	type wrapped struct {
		blob, plain []byte
		material    string
	}
	var keys []wrapped
	wrap := func() {
		dk := must[*sdk.GenerateDataKeyOutput](t)(api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
		keys = append(keys, wrapped{dk.CiphertextBlob, dk.Plaintext, aws.ToString(dk.KeyMaterialId)})
	}
	rotations := func() []types.RotationsListEntry {
		return must[*sdk.ListKeyRotationsOutput](t)(api.ListKeyRotations(ctx, &sdk.ListKeyRotationsInput{KeyId: aws.String(id)})).Rotations
	}
	waitRotations := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(rotations()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d rotations after 10s, want %d", len(rotations()), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	wrap()
	e.clock.Add(89 * 24 * time.Hour)
	time.Sleep(50 * time.Millisecond)
	if n := len(rotations()); n != 0 {
		t.Fatalf("%d rotations before the period ended", n)
	}
	wrap()
	for i := 1; i <= 3; i++ {
		e.clock.Add(2 * 24 * time.Hour) // past the due date
		waitRotations(i)
		wrap()
		e.clock.Add(88 * 24 * time.Hour) // just before the next one
	}
	time.Sleep(50 * time.Millisecond)
	rots := rotations()
	if len(rots) != 3 {
		t.Fatalf("%d rotations, want 3", len(rots))
	}
	for _, r := range rots {
		if r.RotationType != types.RotationTypeAutomatic {
			t.Fatalf("rotation %+v", r)
		}
	}
	st := must[*sdk.GetKeyRotationStatusOutput](t)(api.GetKeyRotationStatus(ctx, &sdk.GetKeyRotationStatusInput{KeyId: aws.String(id)}))
	if !st.NextRotationDate.After(e.clock.Now()) {
		t.Fatalf("next rotation %v is not after now %v", st.NextRotationDate, e.clock.Now())
	}
	materials := map[string]bool{}
	for i, k := range keys {
		materials[k.material] = true
		out, err := api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: k.blob, EncryptionContext: ec})
		if err != nil || string(out.Plaintext) != string(k.plain) || aws.ToString(out.KeyMaterialId) != k.material {
			t.Fatalf("data key %d: %v", i, err)
		}
	}
	if len(materials) != 4 {
		t.Fatalf("data keys under %d key materials, want 4", len(materials))
	}
}
