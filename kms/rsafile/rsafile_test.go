package rsafile

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/kms"
)

// The test-only RSA key of the format's golden objects.
const testKey = "../../testdata/envelope/v3-asym-rsa-TEST-ONLY.pem"

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeyFiles: a public key file and its private key file name one key
// id; the public one wraps (through kms.Asymmetric) what only the private
// one opens; a private key is refused where a public one is expected, and
// keys of other sizes are refused.
func TestKeyFiles(t *testing.T) {
	ctx := context.Background()
	priv, err := LoadPrivate(testKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := writePEM(t, "PUBLIC KEY", priv.der)
	pub, err := LoadPublic(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID() != priv.ID() || !IsKeyID(pub.ID()) || len(pub.ID()) != len(KeyIDPrefix)+64 {
		t.Fatalf("ids %s, %s", pub.ID(), priv.ID())
	}
	w, err := kms.NewAsymmetric(pub, kms.AsymmetricConfig{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := w.GenerateDataKey(ctx, pub.ID(), nil)
	if err != nil || dk.KeyID != pub.ID() {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if _, err := w.Decrypt(ctx, pub.ID(), dk.Ciphertext, nil); kms.ErrorCode(err) != kms.CodeAccessDenied {
		t.Fatalf("decrypt with the public key only: %v", err)
	}
	pt, err := priv.DecryptAsymmetric(ctx, priv.ID(), kms.AlgRSAESOAEPSHA256, dk.Ciphertext)
	if err != nil || string(pt) != string(dk.Plaintext) {
		t.Fatalf("decrypt with the private key: %v", err)
	}
	if _, err := priv.DecryptAsymmetric(ctx, KeyIDPrefix+strings.Repeat("0", 64), kms.AlgRSAESOAEPSHA256, dk.Ciphertext); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatalf("another key id: %v", err)
	}
	if _, err := LoadPublic(testKey); err == nil {
		t.Fatal("a private key file accepted as the public key")
	}
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if _, err := LoadPublic(writePEM(t, "PUBLIC KEY", der)); err == nil {
		t.Fatal("an RSA-2048 key accepted")
	}
}
