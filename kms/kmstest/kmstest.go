// Package kmstest is the shared test suite every kms.Client backend runs
// (the embedded keyring, AWS KMS through moto), so that they behave alike.
package kmstest

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/kms"
)

// Env is one backend prepared for the suite.
type Env struct {
	Client kms.Client
	// KeyID is an enabled symmetric key's id; KeyARN its ARN; Alias an
	// alias ("alias/...") that names it.
	KeyID, KeyARN, Alias string
	// OtherKeyID is a second enabled key.
	OtherKeyID string
	// MissingKeyID is a well-formed id of a key that does not exist.
	MissingKeyID string
}

// Run runs the suite. setup is called once per subtest and must return a
// ready backend.
func Run(t *testing.T, setup func(t *testing.T) Env) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, e Env)
	}{
		{"RoundTrip", testRoundTrip},
		{"KeyForms", testKeyForms},
		{"ContextMismatch", testContextMismatch},
		{"Tampered", testTampered},
		{"WrongKey", testWrongKey},
		{"NotFound", testNotFound},
		{"EncryptDecrypt", testEncryptDecrypt},
		{"ReEncrypt", testReEncrypt},
		{"DescribeKey", testDescribeKey},
		{"PlaintextOwnedByCaller", testOwnership},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, setup(t)) })
	}
}

func wantCode(t *testing.T, err error, codes ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", codes)
	}
	got := kms.ErrorCode(err)
	for _, c := range codes {
		if got == c {
			return
		}
	}
	t.Fatalf("got %v (code %q), want %v", err, got, codes)
}

func testRoundTrip(t *testing.T, e Env) {
	ctx := context.Background()
	for name, ec := range map[string]map[string]string{
		"bucket": kms.BucketContext("photos"),
		"nil":    nil,
		"multi":  {"a": "1", "b": "2", "s3seal:bucket": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, ec)
			if err != nil {
				t.Fatal(err)
			}
			if len(dk.Plaintext) != 32 || len(dk.Ciphertext) < 32 || dk.KeyID == "" {
				t.Fatalf("data key: %d-byte plaintext, %d-byte ciphertext, id %q", len(dk.Plaintext), len(dk.Ciphertext), dk.KeyID)
			}
			if bytes.Contains(dk.Ciphertext, dk.Plaintext) {
				t.Fatal("wrapped key contains the plaintext")
			}
			for _, id := range []string{dk.KeyID, e.KeyID, ""} {
				pt, err := e.Client.Decrypt(ctx, id, dk.Ciphertext, ec)
				if err != nil {
					t.Fatalf("decrypt with key id %q: %v", id, err)
				}
				if !bytes.Equal(pt, dk.Plaintext) {
					t.Fatalf("decrypt with key id %q: plaintext differs", id)
				}
			}
			dk2, err := e.Client.GenerateDataKey(ctx, e.KeyID, ec)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(dk.Plaintext, dk2.Plaintext) || bytes.Equal(dk.Ciphertext, dk2.Ciphertext) {
				t.Fatal("two data keys are equal")
			}
		})
	}
}

func testKeyForms(t *testing.T, e Env) {
	ctx := context.Background()
	ec := kms.BucketContext("b")
	var canonical string
	for _, id := range []string{e.KeyID, e.KeyARN, e.Alias} {
		dk, err := e.Client.GenerateDataKey(ctx, id, ec)
		if err != nil {
			t.Fatalf("GenerateDataKey(%q): %v", id, err)
		}
		if canonical == "" {
			canonical = dk.KeyID
		} else if dk.KeyID != canonical {
			t.Fatalf("GenerateDataKey(%q) resolved to %q, want %q", id, dk.KeyID, canonical)
		}
		for _, did := range []string{e.KeyID, e.KeyARN, e.Alias, dk.KeyID} {
			pt, err := e.Client.Decrypt(ctx, did, dk.Ciphertext, ec)
			if err != nil || !bytes.Equal(pt, dk.Plaintext) {
				t.Fatalf("wrapped via %q, decrypt via %q: %v", id, did, err)
			}
		}
	}
}

func testContextMismatch(t *testing.T, e Env) {
	ctx := context.Background()
	ec := map[string]string{"s3seal:bucket": "a", "k": "v"}
	dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]map[string]string{
		"other value":   {"s3seal:bucket": "b", "k": "v"},
		"missing pair":  {"s3seal:bucket": "a"},
		"extra pair":    {"s3seal:bucket": "a", "k": "v", "x": "y"},
		"nil":           nil,
		"renamed key":   {"s3seal:bucket": "a", "K": "v"},
		"shifted bytes": {"s3seal:bucket": "ak", "": "v"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.Client.Decrypt(ctx, e.KeyID, dk.Ciphertext, bad)
			wantCode(t, err, kms.CodeInvalidCiphertext)
		})
	}
	// And the other way round: wrapped without context, opened with one.
	dk, err = e.Client.GenerateDataKey(ctx, e.KeyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Client.Decrypt(ctx, e.KeyID, dk.Ciphertext, kms.BucketContext("a"))
	wantCode(t, err, kms.CodeInvalidCiphertext)
}

func testTampered(t *testing.T, e Env) {
	ctx := context.Background()
	dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{len(dk.Ciphertext) - 1, len(dk.Ciphertext) / 2, len(dk.Ciphertext) - 20} {
		bad := bytes.Clone(dk.Ciphertext)
		bad[i] ^= 0x01
		_, err := e.Client.Decrypt(ctx, e.KeyID, bad, nil)
		wantCode(t, err, kms.CodeInvalidCiphertext)
	}
	_, err = e.Client.Decrypt(ctx, e.KeyID, dk.Ciphertext[:len(dk.Ciphertext)-1], nil)
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = e.Client.Decrypt(ctx, e.KeyID, []byte("short"), nil)
	wantCode(t, err, kms.CodeInvalidCiphertext, kms.CodeValidation)
}

func testWrongKey(t *testing.T, e Env) {
	ctx := context.Background()
	dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Client.Decrypt(ctx, e.OtherKeyID, dk.Ciphertext, nil)
	// AWS says IncorrectKeyException; moto says AccessDeniedException.
	wantCode(t, err, kms.CodeIncorrectKey, kms.CodeInvalidCiphertext, kms.CodeAccessDenied)
}

func testNotFound(t *testing.T, e Env) {
	ctx := context.Background()
	_, err := e.Client.GenerateDataKey(ctx, e.MissingKeyID, nil)
	wantCode(t, err, kms.CodeNotFound)
	_, err = e.Client.GenerateDataKey(ctx, "alias/s3seal-test-no-such-alias", nil)
	wantCode(t, err, kms.CodeNotFound)
	_, err = e.Client.DescribeKey(ctx, e.MissingKeyID)
	wantCode(t, err, kms.CodeNotFound)
	_, err = e.Client.Encrypt(ctx, e.MissingKeyID, []byte("x"), nil)
	wantCode(t, err, kms.CodeNotFound)
}

func testEncryptDecrypt(t *testing.T, e Env) {
	ctx := context.Background()
	for _, n := range []int{1, 32, 4096} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ec := kms.BucketContext("enc")
		ct, err := e.Client.Encrypt(ctx, e.Alias, pt, ec)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := e.Client.Decrypt(ctx, "", ct, ec)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
		_, err = e.Client.Decrypt(ctx, "", ct, nil)
		wantCode(t, err, kms.CodeInvalidCiphertext)
	}
}

func testReEncrypt(t *testing.T, e Env) {
	ctx := context.Background()
	src, dst := kms.BucketContext("src"), kms.BucketContext("dst")
	dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, src)
	if err != nil {
		t.Fatal(err)
	}
	ct, resolved, err := e.Client.ReEncrypt(ctx, e.KeyID, dk.Ciphertext, src, e.OtherKeyID, dst)
	if err != nil {
		t.Fatal(err)
	}
	if resolved == "" {
		t.Fatal("ReEncrypt returned no destination key id")
	}
	pt, err := e.Client.Decrypt(ctx, resolved, ct, dst)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("decrypt rewrapped: %v", err)
	}
	_, err = e.Client.Decrypt(ctx, e.OtherKeyID, ct, src)
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = e.Client.Decrypt(ctx, e.KeyID, ct, dst)
	wantCode(t, err, kms.CodeIncorrectKey, kms.CodeInvalidCiphertext, kms.CodeAccessDenied)
	// The source context is checked too.
	_, _, err = e.Client.ReEncrypt(ctx, e.KeyID, dk.Ciphertext, dst, e.OtherKeyID, dst)
	wantCode(t, err, kms.CodeInvalidCiphertext)
}

func testDescribeKey(t *testing.T, e Env) {
	ctx := context.Background()
	for _, id := range []string{e.KeyID, e.KeyARN, e.Alias} {
		md, err := e.Client.DescribeKey(ctx, id)
		if err != nil {
			t.Fatalf("DescribeKey(%q): %v", id, err)
		}
		if md.KeyID != e.KeyID || md.Arn != e.KeyARN || md.KeyState != kms.KeyEnabled || md.CreationDate.IsZero() {
			t.Fatalf("DescribeKey(%q) = %+v, want id %s, arn %s, Enabled", id, md, e.KeyID, e.KeyARN)
		}
	}
}

func testOwnership(t *testing.T, e Env) {
	ctx := context.Background()
	dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(dk.Plaintext)
	wrapped := bytes.Clone(dk.Ciphertext)
	kms.Zero(dk.Plaintext)
	pt, err := e.Client.Decrypt(ctx, e.KeyID, dk.Ciphertext, nil)
	if err != nil || !bytes.Equal(pt, want) {
		t.Fatalf("after zeroing the returned key: %v", err)
	}
	kms.Zero(pt)
	kms.Zero(dk.Ciphertext)
	pt, err = e.Client.Decrypt(ctx, e.KeyID, wrapped, nil)
	if err != nil || !bytes.Equal(pt, want) {
		t.Fatalf("after zeroing returned slices: %v", err)
	}
}

func testConcurrent(t *testing.T, e Env) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			ec := kms.BucketContext(string(rune('a' + i)))
			for range 10 {
				dk, err := e.Client.GenerateDataKey(ctx, e.KeyID, ec)
				if err != nil {
					errs <- err
					return
				}
				pt, err := e.Client.Decrypt(ctx, e.KeyID, dk.Ciphertext, ec)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(pt, dk.Plaintext) {
					errs <- errMismatch
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var errMismatch = &kms.Error{Code: "Mismatch", Message: "decrypted key differs"}
