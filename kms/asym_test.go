package kms_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// TestAsymmetricStack: the stack cmd builds for RSA keys, Cache over
// Asymmetric over Retry, Audit and Meter over the embedded keyring.
// Many data keys asked for cost one GetPublicKey and one RSA wrap per
// cache period (the cache's write side); every call that reaches the KMS
// is audited and counted; a write-only stack never seeds or asks for a
// decryption, a read stack decrypts once per data key.
func TestAsymmetricStack(t *testing.T) {
	ctx := context.Background()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKeySpec("backups", kms.KeySpecRSA3072)
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	meter := kms.NewMeter(kr)
	base := kms.NewRetry(kms.NewAudit(meter, &audit, nil), kms.RetryConfig{})

	build := func(decrypt bool) *kms.Cache {
		a, err := kms.NewAsymmetric(base, kms.AsymmetricConfig{Decrypt: decrypt})
		if err != nil {
			t.Fatal(err)
		}
		cfg := kms.DefaultCacheConfig()
		if !decrypt {
			cfg.DecryptMaxEntries = 0
		}
		return kms.NewCache(a, cfg)
	}
	wo := build(false)
	var first *kms.DataKey
	for i := range 50 {
		dk, err := wo.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("backups"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = dk
		} else if !bytes.Equal(dk.Ciphertext, first.Ciphertext) {
			t.Fatalf("data key %d is not the cached one", i)
		}
	}
	if s := meter.Stats(); s.GetPublicKey != 1 || s.Total() != 1 {
		t.Fatalf("50 data keys cost %+v KMS requests, want one GetPublicKey", s)
	}
	_, err = wo.Decrypt(ctx, md.KeyID, first.Ciphertext, kms.BucketContext("backups"))
	if kms.ErrorCode(err) != kms.CodeAccessDenied || !strings.Contains(err.Error(), kms.WriteOnlyMessage) {
		t.Fatalf("write-only Decrypt: %v", err)
	}
	if s := meter.Stats(); s.AsymmetricDecrypt != 0 {
		t.Fatalf("the write-only stack asked the KMS to decrypt: %+v", s)
	}

	ro := build(true)
	for range 3 {
		pt, err := ro.Decrypt(ctx, md.KeyID, first.Ciphertext, kms.BucketContext("backups"))
		if err != nil || !bytes.Equal(pt, first.Plaintext) {
			t.Fatalf("read stack: %v", err)
		}
	}
	if s := meter.Stats(); s.AsymmetricDecrypt != 1 {
		t.Fatalf("three reads of one data key cost %d asymmetric decrypts, want 1", s.AsymmetricDecrypt)
	}

	// The audit log has one line per KMS request: GetPublicKey, then an
	// asymmetric Decrypt naming its algorithm, and nothing secret.
	var events []kms.AuditEvent
	sc := bufio.NewScanner(&audit)
	for sc.Scan() {
		var ev kms.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != 2 || events[0].EventName != "GetPublicKey" || events[1].EventName != "Decrypt" ||
		events[1].RequestParameters.EncryptionAlgorithm != kms.AlgRSAESOAEPSHA256 {
		t.Fatalf("audit events %+v", events)
	}
}

// BenchmarkRSAWrap measures what a data key costs with an RSA key, without
// the cache: the local wrap (public key, every GenerateDataKey of a
// kms.Asymmetric) and the unwrap (private key, what the embedded keyring
// does for a Decrypt).
func BenchmarkRSAWrap(b *testing.B) {
	ctx := context.Background()
	kr, err := keyring.Open(keyring.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	for _, spec := range []string{kms.KeySpecRSA3072, kms.KeySpecRSA4096} {
		md, err := kr.CreateKeySpec("", spec)
		if err != nil {
			b.Fatal(err)
		}
		a, err := kms.NewAsymmetric(kr, kms.AsymmetricConfig{Decrypt: true})
		if err != nil {
			b.Fatal(err)
		}
		dk, err := a.GenerateDataKey(ctx, md.KeyID, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec+"/wrap", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.GenerateDataKey(ctx, md.KeyID, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec+"/unwrap", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Decrypt(ctx, md.KeyID, dk.Ciphertext, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
