package keyusage

import (
	"context"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// named reads the key material version only from an embedded-keyring blob
// that names the header's own key.
func TestNamed(t *testing.T) {
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKey("usage")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dk, err := kr.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RotateKey(md.KeyID); err != nil {
		t.Fatal(err)
	}
	dk2, err := kr.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	aws := append([]byte{1}, make([]byte, 180)...) // parses as a keyring blob of another key id
	for _, tc := range []struct {
		name string
		ki   envelope.KeyInfo
		want keyVersion
	}{
		{"version 1", envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext}, keyVersion{dk.KeyID, 1}},
		{"version 2", envelope.KeyInfo{KeyID: dk2.KeyID, Wrapped: dk2.Ciphertext}, keyVersion{dk2.KeyID, 2}},
		{"blob of another key", envelope.KeyInfo{KeyID: "arn:aws:kms:us-east-1:111122223333:key/x", Wrapped: dk.Ciphertext}, keyVersion{"arn:aws:kms:us-east-1:111122223333:key/x", 0}},
		{"not a keyring blob", envelope.KeyInfo{KeyID: "k", Wrapped: []byte{2, 3}}, keyVersion{"k", 0}},
		{"zero key id", envelope.KeyInfo{KeyID: "k", Wrapped: aws}, keyVersion{"k", 0}},
	} {
		if got := named(tc.ki); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
