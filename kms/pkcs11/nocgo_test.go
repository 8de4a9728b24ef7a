//go:build !cgo

package pkcs11_test

import (
	"errors"
	"testing"

	"github.com/s3seal/s3seal/kms/pkcs11"
)

// TestNoCgo: a build without cgo cannot open a PKCS#11 store, and says
// why and what to do (.ci/run runs it with CGO_ENABLED=0).
func TestNoCgo(t *testing.T) {
	_, err := pkcs11.Open(pkcs11.Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1"})
	if !errors.Is(err, pkcs11.ErrNoCgo) {
		t.Fatalf("Open without cgo: %v, want ErrNoCgo", err)
	}
}
