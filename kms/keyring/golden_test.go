package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/kms"
)

var update = flag.Bool("update", false, "regenerate testdata/kms golden vectors")

// The golden keyring is protected by this published passphrase. It guards
// nothing but test vectors.
const goldenPassphrase = "s3seal golden test vector passphrase - not a secret"

var goldenDir = filepath.Join("..", "..", "testdata", "kms", "keyring-v1")

type goldenVector struct {
	Name              string            `json:"name"`
	KeyID             string            `json:"keyId"`
	Version           int               `json:"version"`
	EncryptionContext map[string]string `json:"encryptionContext"`
	Wrapped           []byte            `json:"wrapped"`
	Plaintext         []byte            `json:"plaintext"`
}

func generateGolden(t *testing.T) {
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	k := open(t, Config{Dir: tmp, Passphrase: goldenPassphrase})
	ctx := context.Background()
	id := mustCreate(t, k, "golden")
	if err := k.CreateAlias("alias/golden", id); err != nil {
		t.Fatal(err)
	}
	var vs []goldenVector
	add := func(name string, ec map[string]string, pt []byte) {
		var ct []byte
		var err error
		if pt == nil {
			var dk *kms.DataKey
			dk, err = k.GenerateDataKey(ctx, id, ec)
			if err == nil {
				pt, ct = dk.Plaintext, dk.Ciphertext
			}
		} else {
			ct, err = k.Encrypt(ctx, id, pt, ec)
		}
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, goldenVector{Name: name, KeyID: id, Version: blobVersion(ct), EncryptionContext: ec, Wrapped: ct, Plaintext: pt})
	}
	add("v1 data key, bucket context", kms.BucketContext("golden-bucket"), nil)
	add("v1 data key, no context", nil, nil)
	add("v1 encrypt, unicode context", map[string]string{"s3seal:bucket": "b", "ключ": "значение", "": "empty key"}, []byte("arbitrary plaintext"))
	if _, err := k.RotateKey(id); err != nil {
		t.Fatal(err)
	}
	add("v2 data key, bucket context", kms.BucketContext("golden-bucket"), nil)
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(tmp, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goldenDir, FileName), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile(filepath.Join(goldenDir, "vectors.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGolden opens a keyring written by format version 1 and unwraps the
// data keys it made: a change to the file or blob format that breaks old
// data fails here.
func TestGolden(t *testing.T) {
	if *update {
		generateGolden(t)
	}
	raw, err := os.ReadFile(filepath.Join(goldenDir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(goldenDir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []goldenVector
	if err := json.Unmarshal(js, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 4 {
		t.Fatalf("%d vectors", len(vs))
	}
	k := open(t, Config{Dir: dir, Passphrase: goldenPassphrase})
	ctx := context.Background()
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if got := blobVersion(v.Wrapped); got != v.Version {
				t.Fatalf("blob says version %d, vector %d", got, v.Version)
			}
			for _, id := range []string{"", v.KeyID, "alias/golden", ARN(v.KeyID)} {
				pt, err := k.Decrypt(ctx, id, v.Wrapped, v.EncryptionContext)
				if err != nil || !bytes.Equal(pt, v.Plaintext) {
					t.Fatalf("decrypt via %q: %v", id, err)
				}
			}
			// Tampered: every byte position flipped fails authentication.
			for i := range v.Wrapped {
				bad := bytes.Clone(v.Wrapped)
				bad[i] ^= 0x80
				if _, err := k.Decrypt(ctx, "", bad, v.EncryptionContext); err == nil {
					t.Fatalf("byte %d flipped: decrypted", i)
				}
			}
			other := map[string]string{"s3seal:bucket": "other"}
			if _, err := k.Decrypt(ctx, "", v.Wrapped, other); kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
				t.Fatalf("other context: %v", err)
			}
		})
	}
}

// FuzzDecrypt feeds arbitrary blobs and contexts to the blob parser: it
// must never panic and never accept anything it did not make.
func FuzzDecrypt(f *testing.F) {
	k, err := Open(Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer k.Close()
	id, err := k.CreateKey("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	dk, err := k.GenerateDataKey(context.Background(), id.KeyID, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dk.Ciphertext, "", "")
	f.Add(dk.Ciphertext[:40], "k", "v")
	f.Add([]byte{1}, "s3seal:bucket", "b")
	f.Fuzz(func(t *testing.T, blob []byte, ck, cv string) {
		ec := map[string]string{ck: cv}
		if ck == "" && cv == "" {
			ec = nil
		}
		pt, err := k.Decrypt(context.Background(), "", blob, ec)
		if err == nil && (!bytes.Equal(blob, dk.Ciphertext) || ec != nil || !bytes.Equal(pt, dk.Plaintext)) {
			t.Fatalf("accepted a blob it did not make: %x", blob)
		}
		if err != nil && kms.ErrorCode(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
	})
}
