package main

import (
	"context"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// TestAsymmetricKeysOptions: the write-only options build the RSA keys'
// stack, and refuse a write-only instance whose private keys would sit in
// its own data dir.
func TestAsymmetricKeysOptions(t *testing.T) {
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKeySpec("", kms.KeySpecRSA3072)
	if err != nil {
		t.Fatal(err)
	}
	below := kms.NewMeter(kr)

	none, err := (&ServeCmd{}).asymmetricKeys(below, kms.DefaultCacheConfig())
	if err != nil || none.KMS != nil {
		t.Fatalf("no options: %+v, %v", none, err)
	}
	c := &ServeCmd{WriteOnlyKey: md.KeyID}
	c.KMS = "local"
	if _, err := c.asymmetricKeys(below, kms.DefaultCacheConfig()); err == nil || !strings.Contains(err.Error(), "would not be write-only") {
		t.Fatalf("write-only with the keyring in the data dir: %v", err)
	}
	c.KMS = "aws"
	c.WriteOnlyBucketKeys = "backups=" + md.KeyID + ",logs=alias/logs"
	wo, err := c.asymmetricKeys(below, kms.DefaultCacheConfig())
	if err != nil || wo.Decrypt || wo.DefaultKeyID != md.KeyID || wo.BucketKeys["logs"] != "alias/logs" {
		t.Fatalf("write-only: %+v, %v", wo, err)
	}
	ctx := context.Background()
	dk, err := wo.KMS.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("backups"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wo.KMS.Decrypt(ctx, md.KeyID, dk.Ciphertext, kms.BucketContext("backups")); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("the write-only stack decrypted: %v", err)
	}
	if s := below.Stats(); s.AsymmetricDecrypt != 0 || s.GetPublicKey != 1 {
		t.Fatalf("KMS requests %+v", s)
	}
	c.RSADecrypt = true
	c.KMS = "local"
	rw, err := c.asymmetricKeys(below, kms.DefaultCacheConfig())
	if err != nil || !rw.Decrypt {
		t.Fatalf("read-write with the keyring: %+v, %v", rw, err)
	}
	if pt, err := rw.KMS.Decrypt(ctx, md.KeyID, dk.Ciphertext, kms.BucketContext("backups")); err != nil || string(pt) != string(dk.Plaintext) {
		t.Fatalf("the read stack: %v", err)
	}
}
