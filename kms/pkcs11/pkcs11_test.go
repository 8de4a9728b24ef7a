//go:build cgo

package pkcs11_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/kmstest"
	"github.com/s3seal/s3seal/kms/pkcs11"
)

// hsm is this package's SoftHSM2 token. SOFTHSM2_CONF is read when the
// module initializes, once per process, so every test shares one
// configuration (and tokens made in it before the first use).
var hsm *testenv.SoftHSM

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "s3seal-softhsm-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hsm, err = testenv.MakeSoftHSM(dir, "s3seal-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv("SOFTHSM2_CONF", hsm.Conf)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func openStore(t *testing.T, pin string) *pkcs11.Store {
	t.Helper()
	s, err := pkcs11.Open(pkcs11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openKeyring opens a keyring in dir backed by the test token.
func openKeyring(t *testing.T, dir string) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.Open(keyring.Config{Dir: dir, KeyStore: openStore(t, hsm.PIN)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	return kr
}

func createHSMKey(t *testing.T, kr *keyring.Keyring, desc string) *keyring.KeyInfo {
	t.Helper()
	ki, err := kr.CreateKeyWith(keyring.KeyOptions{Description: desc, InKeyStore: true})
	if err != nil {
		t.Fatal(err)
	}
	return ki
}

// TestKMSSuite runs the suite every KMS backend runs over keyring keys
// held in SoftHSM2.
func TestKMSSuite(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Env {
		kr := openKeyring(t, t.TempDir())
		a := createHSMKey(t, kr, "suite")
		b := createHSMKey(t, kr, "other")
		if err := kr.CreateAlias("alias/hsm-suite", a.KeyID); err != nil {
			t.Fatal(err)
		}
		return kmstest.Env{Client: kr, KeyID: a.KeyID, KeyARN: a.Arn, Alias: "alias/hsm-suite",
			OtherKeyID: b.KeyID, MissingKeyID: "11111111-2222-4333-8444-555555555555"}
	})
}

// TestHSMKeysBesideLocalKeys: rotation makes a new HSM key and old blobs
// keep opening; the keyring file holds labels and no key material; a blob
// names its backing, and one backing's blob never opens as the other's.
func TestHSMKeysBesideLocalKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kr := openKeyring(t, dir)
	ki := createHSMKey(t, kr, "hsm")
	if ki.Origin != keyring.OriginCloudHSM || ki.CustomKeyStoreID != "pkcs11:"+hsm.Label {
		t.Fatalf("DescribeKey: Origin %q CustomKeyStoreId %q, want %s, pkcs11:%s", ki.Origin, ki.CustomKeyStoreID, keyring.OriginCloudHSM, hsm.Label)
	}
	local, err := kr.CreateKey("local")
	if err != nil {
		t.Fatal(err)
	}
	if local.Origin != "" || local.CustomKeyStoreID != "" {
		t.Fatalf("a local key says Origin %q, store %q", local.Origin, local.CustomKeyStoreID)
	}
	ec := kms.BucketContext("b")
	v1, err := kr.GenerateDataKey(ctx, ki.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Ciphertext[0] != 2 {
		t.Fatalf("HSM-wrapped blob starts with %#x, want format 2", v1.Ciphertext[0])
	}
	if n, err := kr.RotateKey(ki.KeyID); err != nil || n != 2 {
		t.Fatalf("RotateKey: %d, %v", n, err)
	}
	v2, err := kr.GenerateDataKey(ctx, ki.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, v, _ := keyring.BlobKey(v2.Ciphertext); v != 2 {
		t.Fatalf("after rotation a new blob names version %d", v)
	}
	for i, dk := range []*kms.DataKey{v1, v2} {
		pt, err := kr.Decrypt(ctx, "", dk.Ciphertext, ec)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("version %d after rotation: %v", i+1, err)
		}
	}
	// Each version is its own key in the token.
	info, err := kr.Key(ki.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{info.Versions[0].Label, info.Versions[1].Label}
	if labels[0] != "s3seal-"+ki.KeyID || labels[1] != labels[0]+"-v2" {
		t.Fatalf("version labels %q", labels)
	}
	for _, l := range labels {
		if n := countKeys(t, l); n != 1 {
			t.Fatalf("token holds %d keys labelled %q, want 1", n, l)
		}
	}

	// The file: format 3, labels, and material only for the local key.
	raw, err := os.ReadFile(filepath.Join(dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var df struct {
		Format int `json:"format"`
		Keys   []struct {
			ID       string          `json:"id"`
			Custom   json.RawMessage `json:"customKeyStore"`
			Versions []struct {
				Material []byte `json:"material"`
				Label    string `json:"label"`
			} `json:"versions"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &df); err != nil {
		t.Fatal(err)
	}
	if df.Format != 3 {
		t.Fatalf("keyring file format %d, want 3", df.Format)
	}
	for _, k := range df.Keys {
		for _, v := range k.Versions {
			hsmKey := k.ID == ki.KeyID
			if hsmKey != (len(v.Material) == 0) || hsmKey != (v.Label != "") {
				t.Fatalf("key %s (HSM %v): %d bytes of material, label %q", k.ID, hsmKey, len(v.Material), v.Label)
			}
		}
	}

	// Backings do not mix: a local blob relabelled format 2, an HSM blob
	// relabelled format 1.
	lk, err := kr.GenerateDataKey(ctx, local.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range [][]byte{lk.Ciphertext, v1.Ciphertext} {
		bad := bytes.Clone(blob)
		bad[0] ^= 3 // 1 <-> 2
		if _, err := kr.Decrypt(ctx, "", bad, ec); kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
			t.Fatalf("blob with the other backing's format byte: %v, want InvalidCiphertextException", err)
		}
	}

	// Re-opened (a restart), the keyring finds its HSM keys again.
	kr.Close()
	kr2 := openKeyring(t, dir)
	for i, dk := range []*kms.DataKey{v1, v2} {
		pt, err := kr2.Decrypt(ctx, "", dk.Ciphertext, ec)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("version %d after reopening: %v", i+1, err)
		}
	}
	// Without the key store the HSM key is unavailable and the local key
	// still works.
	kr3, err := keyring.Open(keyring.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer kr3.Close()
	if _, err := kr3.Decrypt(ctx, "", v1.Ciphertext, ec); kms.ErrorCode(err) != kms.CodeInvalidState || !strings.Contains(err.Error(), "S3SEAL_PKCS11_MODULE") {
		t.Fatalf("HSM key without a key store: %v, want KMSInvalidStateException naming the setting", err)
	}
	if pt, err := kr3.Decrypt(ctx, "", lk.Ciphertext, ec); err != nil || !bytes.Equal(pt, lk.Plaintext) {
		t.Fatalf("local key without a key store: %v", err)
	}
}

// session opens a logged-in session of the test token with miekg/pkcs11
// directly, as an HSM administrator's tool would.
func session(t *testing.T) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	c := p11.New(hsm.Module)
	if c == nil {
		t.Fatal("cannot load the module")
	}
	if err := c.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := c.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slots {
		ti, err := c.GetTokenInfo(sl)
		if err != nil || strings.TrimRight(ti.Label, " ") != hsm.Label {
			continue
		}
		sh, err := c.OpenSession(sl, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(sh, p11.CKU_USER, hsm.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
			t.Fatal(err)
		}
		// Closing the session, not finalizing: the store under test may
		// share the module in this process.
		t.Cleanup(func() { c.CloseSession(sh) })
		return c, sh
	}
	t.Fatalf("no token %q", hsm.Label)
	return nil, 0
}

func findKeys(t *testing.T, c *p11.Ctx, sh p11.SessionHandle, label string) []p11.ObjectHandle {
	t.Helper()
	if err := c.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := c.FindObjects(sh, 10)
	c.FindObjectsFinal(sh)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func countKeys(t *testing.T, label string) int {
	c, sh := session(t)
	return len(findKeys(t, c, sh, label))
}

// TestKeyCannotBeExported asks the token for the key's value and to wrap
// it out under another key, as someone holding the PIN could: both are
// refused, and its attributes say it never left and never can.
func TestKeyCannotBeExported(t *testing.T) {
	kr := openKeyring(t, t.TempDir())
	ki := createHSMKey(t, kr, "export")
	info, err := kr.Key(ki.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	c, sh := session(t)
	hs := findKeys(t, c, sh, info.Versions[0].Label)
	if len(hs) != 1 {
		t.Fatalf("%d keys labelled %q", len(hs), info.Versions[0].Label)
	}
	_, err = c.GetAttributeValue(sh, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if !errors.Is(err, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
		t.Fatalf("C_GetAttributeValue(CKA_VALUE) = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
	attrs, err := c.GetAttributeValue(sh, hs[0], []*p11.Attribute{
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_TOKEN, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint]byte{p11.CKA_EXTRACTABLE: 0, p11.CKA_SENSITIVE: 1, p11.CKA_NEVER_EXTRACTABLE: 1, p11.CKA_ALWAYS_SENSITIVE: 1, p11.CKA_TOKEN: 1}
	for _, a := range attrs {
		if len(a.Value) != 1 || a.Value[0] != want[a.Type] {
			t.Errorf("attribute %#x = %v, want %d", a.Type, a.Value, want[a.Type])
		}
	}
	// Wrap it out under a key made for that, with the wrapping mechanism
	// SoftHSM offers for AES keys.
	wk, err := c.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32), p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP, nil)}, wk, hs[0])
	if !errors.Is(err, p11.Error(p11.CKR_KEY_UNEXTRACTABLE)) {
		t.Fatalf("C_WrapKey of the key = %d bytes, %v; want CKR_KEY_UNEXTRACTABLE", len(out), err)
	}
	// And attributes cannot be turned back: CKA_EXTRACTABLE false is for
	// good.
	err = c.SetAttributeValue(sh, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, true)})
	if err == nil {
		t.Fatal("CKA_EXTRACTABLE could be set back to true")
	}
}

// TestRefusesExtractableKey: a key someone made extractable under the
// label a keyring key uses is refused, not used.
func TestRefusesExtractableKey(t *testing.T) {
	ctx := context.Background()
	c, sh := session(t)
	label := "planted-" + testenv.RandomKey(6)
	_, err := c.CreateObject(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE, bytes.Repeat([]byte{7}, 32)), p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_ENCRYPT, true), p11.NewAttribute(p11.CKA_DECRYPT, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, false), p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, hsm.PIN)
	defer s.Close()
	_, err = s.Seal(ctx, label, []byte("data key"), []byte("aad"))
	if kms.ErrorCode(err) != kms.CodeInvalidState || !strings.Contains(err.Error(), "extractable") {
		t.Fatalf("Seal under an extractable key: %v, want KMSInvalidStateException", err)
	}
	// And a keyring key cannot be created under a label already taken.
	if err := s.CreateKey(ctx, label); kms.ErrorCode(err) != kms.CodeAlreadyExists {
		t.Fatalf("CreateKey over an existing label: %v", err)
	}
}

// TestUnavailable: a wrong PIN, a module that is not there or is no
// module, and a token that is not there are KMSInvalidStateException (a
// disconnected custom key store; not retried), at once; a wrong PIN is not
// tried again.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]pkcs11.Config{
		"wrong PIN":      {Module: hsm.Module, TokenLabel: hsm.Label, PIN: "not-the-pin"},
		"missing module": {Module: filepath.Join(t.TempDir(), "no-such-module.so"), TokenLabel: hsm.Label, PIN: hsm.PIN},
		"broken module":  {Module: brokenModule(t), TokenLabel: hsm.Label, PIN: hsm.PIN},
		"no such token":  {Module: hsm.Module, TokenLabel: "no-such-token", PIN: hsm.PIN},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := pkcs11.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var first error
			for i := range 3 {
				start := time.Now()
				err := s.Check(ctx)
				if i == 0 {
					first = err
				} else if name == "wrong PIN" && err != first {
					// The same error value: the PIN was not sent again.
					t.Fatalf("attempt %d: a new error (%v): the wrong PIN was tried again", i, err)
				}
				if kms.ErrorCode(err) != kms.CodeInvalidState {
					t.Fatalf("attempt %d: %v, want KMSInvalidStateException", i, err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("attempt %d took %s", i, d)
				}
				if i == 0 {
					t.Logf("%s: %v", name, err)
				}
			}
			if _, err := s.Seal(ctx, "any", []byte("k"), nil); kms.ErrorCode(err) != kms.CodeInvalidState {
				t.Fatalf("Seal: %v", err)
			}
			if name == "wrong PIN" {
				// Past the store's once-a-second retry of a failed
				// connection, a wrong PIN is still not sent again.
				time.Sleep(1100 * time.Millisecond)
				if err := s.Check(ctx); err != first {
					t.Fatalf("after the retry period: a new error (%v): the wrong PIN was tried again", err)
				}
			}
		})
	}
	// The right PIN still works (the token was not locked).
	s := openStore(t, hsm.PIN)
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("the right PIN after wrong ones: %v", err)
	}
}

// brokenModule is a file that is no shared library.
func brokenModule(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "broken.so")
	if err := os.WriteFile(p, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkDataKey measures what a data key costs the keyring, generated
// (GenerateDataKey) and unwrapped (Decrypt), under a key held in SoftHSM2
// and under a key of the keyring's own, for comparison. The proxy's data
// key cache makes either rare: one per bucket per 5 minutes or 1,000
// objects by default, and one per object read whose key is not cached.
func BenchmarkDataKey(b *testing.B) {
	ctx := context.Background()
	kr, err := keyring.Open(keyring.Config{Dir: b.TempDir(), KeyStore: func() *pkcs11.Store {
		s, err := pkcs11.Open(pkcs11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}()})
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	hsmKey, err := kr.CreateKeyWith(keyring.KeyOptions{InKeyStore: true})
	if err != nil {
		b.Fatal(err)
	}
	local, err := kr.CreateKey("local")
	if err != nil {
		b.Fatal(err)
	}
	ec := kms.BucketContext("bench")
	for _, k := range []struct{ name, id string }{{"hsm", hsmKey.KeyID}, {"local", local.KeyID}} {
		b.Run("GenerateDataKey/"+k.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := kr.GenerateDataKey(ctx, k.id, ec); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		dk, err := kr.GenerateDataKey(ctx, k.id, ec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Decrypt/"+k.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := kr.Decrypt(ctx, "", dk.Ciphertext, ec); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestLifecycle: the keyring's key states and automatic rotation act on
// HSM-backed keys as on its own: a disabled key wraps and unwraps nothing,
// an automatic rotation makes a new HSM key, and usage reports read the
// key and version from the blob.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir(), KeyStore: openStore(t, hsm.PIN), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	ki := createHSMKey(t, kr, "lifecycle")
	ec := kms.BucketContext("life")
	dk, err := kr.GenerateDataKey(ctx, ki.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.DisableKey(ki.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.GenerateDataKey(ctx, ki.KeyID, ec); kms.ErrorCode(err) != kms.CodeDisabled {
		t.Fatalf("GenerateDataKey under a disabled HSM key: %v", err)
	}
	if _, err := kr.Decrypt(ctx, "", dk.Ciphertext, ec); kms.ErrorCode(err) != kms.CodeDisabled {
		t.Fatalf("Decrypt under a disabled HSM key: %v", err)
	}
	if err := kr.EnableKey(ki.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := kr.EnableRotation(ki.KeyID, 90); err != nil {
		t.Fatal(err)
	}
	now = now.Add(91 * 24 * time.Hour)
	rotated, err := kr.RotateDue()
	if err != nil || len(rotated) != 1 || rotated[0] != ki.KeyID {
		t.Fatalf("RotateDue: %v, %v", rotated, err)
	}
	info, err := kr.Key(ki.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Versions) != 2 || !info.Versions[1].Automatic || countKeys(t, info.Versions[1].Label) != 1 {
		t.Fatalf("after automatic rotation: %+v", info.Versions)
	}
	dk2, err := kr.GenerateDataKey(ctx, ki.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	if id, v, ok := keyring.WrappedKeyVersion(dk2.Ciphertext); !ok || id != ki.KeyID || v != 2 {
		t.Fatalf("WrappedKeyVersion: %s %d %v", id, v, ok)
	}
	if pt, err := kr.Decrypt(ctx, "", dk.Ciphertext, ec); err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("version 1 after automatic rotation: %v", err)
	}
}

// TestCreateKeyLabels: a chosen label is used, a bad one refused.
func TestCreateKeyLabels(t *testing.T) {
	kr := openKeyring(t, t.TempDir())
	label := "photos-" + testenv.RandomKey(4)
	ki, err := kr.CreateKeyWith(keyring.KeyOptions{InKeyStore: true, Label: label})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := kr.Key(ki.KeyID); info.Versions[0].Label != label || countKeys(t, label) != 1 {
		t.Fatalf("key made under label %q", info.Versions[0].Label)
	}
	if _, err := kr.CreateKeyWith(keyring.KeyOptions{InKeyStore: true, Label: label}); kms.ErrorCode(err) != kms.CodeAlreadyExists {
		t.Fatalf("a second key under the same label: %v", err)
	}
	if _, err := kr.CreateKeyWith(keyring.KeyOptions{InKeyStore: true, Label: "has space"}); kms.ErrorCode(err) != kms.CodeValidation {
		t.Fatalf("a label with a space: %v", err)
	}
	if keys, _ := kr.ListKeys(); len(keys) != 1 {
		t.Fatalf("refused creations left %d keys in the keyring", len(keys))
	}
}

// TestHSMDoesNotAnswer: an HSM that stops answering costs a caller the
// call timeout, not a hang: the call is KeyUnavailableException (retried,
// then 503) after it, calls beyond the sessions held by hung ones wait no
// longer, and the store works again once the HSM answers.
func TestHSMDoesNotAnswer(t *testing.T) {
	ctx := context.Background()
	var slow atomic.Bool
	release := make(chan struct{})
	pkcs11.SetTestHookInCall(func() {
		if slow.Load() {
			<-release
		}
	})
	const timeout = 300 * time.Millisecond
	s, err := pkcs11.Open(pkcs11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN, MaxSessions: 2, CallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	label := "slow-" + testenv.RandomKey(4)
	if err := s.CreateKey(ctx, label); err != nil {
		t.Fatal(err)
	}
	slow.Store(true)
	for i, want := range []string{kms.CodeKeyUnavailable, kms.CodeKeyUnavailable, kms.CodeUnavailable} {
		start := time.Now()
		_, err := s.Seal(ctx, label, []byte("data key"), []byte("aad"))
		took := time.Since(start)
		if kms.ErrorCode(err) != want || took > timeout+2*time.Second {
			t.Fatalf("call %d on a silent HSM: %v after %s, want %s after %s", i, err, took, want, timeout)
		}
		t.Logf("call %d: %v after %s", i, err, took.Round(time.Millisecond))
	}
	slow.Store(false)
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		sealed, err := s.Seal(ctx, label, []byte("data key"), []byte("aad"))
		if err == nil {
			if pt, err := s.Open(ctx, label, sealed, []byte("aad")); err != nil || string(pt) != "data key" {
				t.Fatalf("after the HSM answers again: %q, %v", pt, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBackupCarriesOnlyReferences: a keyring backup (keys export) of an
// HSM-backed key holds its record and labels and no key, says so, and a
// restore leaves it out; the keyring's own keys go through whole.
func TestBackupCarriesOnlyReferences(t *testing.T) {
	ctx := context.Background()
	kr := openKeyring(t, t.TempDir())
	hk := createHSMKey(t, kr, "in the HSM")
	lk, err := kr.CreateKey("local")
	if err != nil {
		t.Fatal(err)
	}
	ec := kms.BucketContext("b")
	ldk, err := kr.GenerateDataKey(ctx, lk.KeyID, ec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := kr.Backup()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Zero()
	for _, k := range b.Keys() {
		if k.ReferenceOnly != (k.KeyID == hk.KeyID) {
			t.Fatalf("backup lists key %s with ReferenceOnly %v", k.KeyID, k.ReferenceOnly)
		}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct {
			ID       string `json:"id"`
			Versions []struct {
				Material []byte `json:"material"`
				Label    string `json:"label"`
			} `json:"versions"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc.Keys {
		if k.ID == hk.KeyID && (len(k.Versions[0].Material) != 0 || k.Versions[0].Label != "s3seal-"+hk.KeyID) {
			t.Fatalf("the backup of the HSM key: %d bytes of material, label %q", len(k.Versions[0].Material), k.Versions[0].Label)
		}
	}
	kr2 := openKeyring(t, t.TempDir())
	res, err := kr2.Restore(b, keyring.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ReferenceOnly) != 1 || res.ReferenceOnly[0] != hk.KeyID || len(res.Added) != 1 || res.Added[0] != lk.KeyID {
		t.Fatalf("restore: %+v", res)
	}
	if pt, err := kr2.Decrypt(ctx, "", ldk.Ciphertext, ec); err != nil || !bytes.Equal(pt, ldk.Plaintext) {
		t.Fatalf("the local key after the restore: %v", err)
	}
}
