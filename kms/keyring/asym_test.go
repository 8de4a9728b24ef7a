package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/kms"
)

// TestRSAKeys: an RSA_3072 key pair in the keyring wraps (through
// kms.Asymmetric, with its public half) what only its private half opens,
// refuses symmetric use and rotation, survives a reopen, and marks the
// file format 3; a tampered or misdirected ciphertext does not open.
func TestRSAKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	md, err := k.CreateKeySpec("backups", kms.KeySpecRSA3072)
	if err != nil {
		t.Fatal(err)
	}
	if md.KeySpec != kms.KeySpecRSA3072 || md.KeyUsage != kms.KeyUsageEncrypt || len(md.EncryptionAlgorithms) != 1 || md.EncryptionAlgorithms[0] != kms.AlgRSAESOAEPSHA256 || !md.Asymmetric() {
		t.Fatalf("metadata %+v", md)
	}
	sym := mustCreate(t, k, "symmetric")
	other, err := k.CreateKeySpec("other", kms.KeySpecRSA3072)
	if err != nil {
		t.Fatal(err)
	}

	pk, err := k.GetPublicKey(ctx, md.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pk.RSA(); err != nil {
		t.Fatal(err)
	}
	w, err := kms.NewAsymmetric(k, kms.AsymmetricConfig{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := w.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != md.KeyID || len(dk.Plaintext) != 32 || len(dk.Ciphertext) != 384 {
		t.Fatalf("data key: id %s, %d/%d bytes", dk.KeyID, len(dk.Plaintext), len(dk.Ciphertext))
	}
	pt, err := w.Decrypt(ctx, md.KeyID, dk.Ciphertext, nil)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("round trip: %v", err)
	}

	// Tampered, wrong key, wrong algorithm, no key id.
	bad := bytes.Clone(dk.Ciphertext)
	bad[100] ^= 1
	_, err = k.DecryptAsymmetric(ctx, md.KeyID, kms.AlgRSAESOAEPSHA256, bad)
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = k.DecryptAsymmetric(ctx, other.KeyID, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = k.DecryptAsymmetric(ctx, md.KeyID, "RSAES_OAEP_SHA_1", dk.Ciphertext)
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = k.DecryptAsymmetric(ctx, "", kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	wantCode(t, err, kms.CodeValidation)
	_, err = k.DecryptAsymmetric(ctx, sym, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = k.GetPublicKey(ctx, sym)
	wantCode(t, err, kms.CodeInvalidKeyUsage)

	// A write-only wrapper never reaches the KMS to decrypt.
	wo, err := kms.NewAsymmetric(k, kms.AsymmetricConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wo.Decrypt(ctx, md.KeyID, dk.Ciphertext, nil)
	wantCode(t, err, kms.CodeAccessDenied)
	if !strings.Contains(err.Error(), kms.WriteOnlyMessage) {
		t.Fatalf("write-only refusal says %v", err)
	}

	// No symmetric use of an RSA key, no rotation.
	_, err = k.GenerateDataKey(ctx, md.KeyID, nil)
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = k.Encrypt(ctx, md.KeyID, []byte("x"), nil)
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = k.RotateKey(md.KeyID)
	wantCode(t, err, kms.CodeUnsupportedOper)
	wantCode(t, k.EnableRotation(md.KeyID, 0), kms.CodeUnsupportedOper)

	// Disabled: the public key is still given out, decrypting is refused.
	if err := k.DisableKey(md.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.GetPublicKey(ctx, md.KeyID); err != nil {
		t.Fatal(err)
	}
	_, err = k.DecryptAsymmetric(ctx, md.KeyID, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	wantCode(t, err, kms.CodeDisabled)
	if err := k.EnableKey(md.KeyID); err != nil {
		t.Fatal(err)
	}

	// The file: format 3, the key spec in clear, the private key sealed.
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var df struct {
		Format int `json:"format"`
		Keys   []struct {
			KeySpec  string `json:"keySpec"`
			Versions []struct {
				Material []byte `json:"material"`
			} `json:"versions"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &df); err != nil {
		t.Fatal(err)
	}
	if df.Format != fileFormatV3 || df.Keys[0].KeySpec != kms.KeySpecRSA3072 {
		t.Fatalf("file format %d, key spec %q", df.Format, df.Keys[0].KeySpec)
	}
	// The modulus is in the PKCS #8 key too: sealed, it must not show.
	pub, _ := pk.RSA()
	if n := pub.N.Bytes(); bytes.Contains(df.Keys[0].Versions[0].Material, n[:64]) || len(df.Keys[0].Versions) != 1 {
		t.Fatal("the keyring file holds the RSA key in clear")
	}

	// Reopened, the key still opens what it wrapped.
	k.Close()
	k2 := open(t, Config{Dir: dir})
	pt, err = k2.DecryptAsymmetric(ctx, md.KeyID, kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("after reopen: %v", err)
	}
	if _, err := k2.CreateKeySpec("", "RSA_2048"); kms.ErrorCode(err) != kms.CodeValidation {
		t.Fatalf("RSA_2048: %v", err)
	}
}
