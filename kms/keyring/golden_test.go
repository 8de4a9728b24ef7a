package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
)

var (
	update   = flag.Bool("update", false, "regenerate testdata/kms/keyring-v1")
	updateV2 = flag.Bool("update-v2", false, "regenerate testdata/kms/keyring-v2")
)

// The golden keyring is protected by this published passphrase. It guards
// nothing but test vectors.
const goldenPassphrase = "s3seal golden test vector passphrase - not a secret"

var (
	goldenDir   = filepath.Join("..", "..", "testdata", "kms", "keyring-v1")
	goldenDirV2 = filepath.Join("..", "..", "testdata", "kms", "keyring-v2")
)

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
	t.Cleanup(func() {
		// Opening and reading an old keyring leaves its file as it was.
		now, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil || !bytes.Equal(now, raw) {
			t.Errorf("reading the format 1 keyring changed its file (%v)", err)
		}
	})
	if ki, err := k.Key("alias/golden"); err != nil || ki.Policy != DefaultPolicy || ki.Rotation != nil || len(ki.Grants) != 0 || len(ki.Tags) != 0 {
		t.Fatalf("format 1 key seen as %+v, %v", ki, err)
	}
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

// goldenV2Key is what testdata/kms/keyring-v2 holds besides material: the
// format 2 fields.
type goldenV2Key struct {
	KeyID      string            `json:"keyId"`
	Policy     string            `json:"policy"`
	Tags       map[string]string `json:"tags"`
	PeriodDays int               `json:"periodDays"`
	Next       time.Time         `json:"nextRotation"`
	Automatic  []bool            `json:"automatic"`
	Grants     []Grant           `json:"grants"`
}

const goldenV2Policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/reader"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:s3seal:bucket":"golden-bucket"}}}]}`

func generateGoldenV2(t *testing.T) {
	if err := os.RemoveAll(goldenDirV2); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	clock := &testClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	k := open(t, Config{Dir: tmp, Passphrase: goldenPassphrase, Now: clock.Now})
	ctx := context.Background()
	ki, err := k.CreateKeyWith(KeyOptions{Description: "golden v2", Policy: goldenV2Policy, Tags: map[string]string{"team": "golden"}})
	if err != nil {
		t.Fatal(err)
	}
	id := ki.KeyID
	if err := k.CreateAlias("alias/golden-v2", id); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CreateGrant(id, Grant{Name: "reader", GranteePrincipal: "arn:aws:iam::000000000000:user/reader",
		RetiringPrincipal: "arn:aws:iam::000000000000:root", Operations: []string{"Decrypt", "DescribeKey"},
		Constraints: &GrantConstraints{EncryptionContextSubset: map[string]string{"s3seal:bucket": "golden-bucket"}}}); err != nil {
		t.Fatal(err)
	}
	var vs []goldenVector
	add := func(name string, ec map[string]string) {
		dk, err := k.GenerateDataKey(ctx, id, ec)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, goldenVector{Name: name, KeyID: id, Version: blobVersion(dk.Ciphertext), EncryptionContext: ec, Wrapped: dk.Ciphertext, Plaintext: dk.Plaintext})
	}
	add("v1 data key", kms.BucketContext("golden-bucket"))
	if err := k.EnableRotation(id, 90); err != nil {
		t.Fatal(err)
	}
	clock.Add(90 * 24 * time.Hour)
	if got, err := k.RotateDue(); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	add("v2 (automatic) data key", kms.BucketContext("golden-bucket"))
	if _, err := k.RotateKey(id); err != nil {
		t.Fatal(err)
	}
	add("v3 (on demand) data key", nil)
	ki, err = k.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	exp := goldenV2Key{KeyID: id, Policy: ki.Policy, Tags: ki.Tags, PeriodDays: ki.Rotation.PeriodDays, Next: ki.Rotation.NextRotation, Grants: ki.Grants}
	for _, v := range ki.Versions {
		exp.Automatic = append(exp.Automatic, v.Automatic)
	}
	if err := os.MkdirAll(goldenDirV2, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(tmp, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]any{"vectors.json": vs, "key.json": exp} {
		js, _ := json.MarshalIndent(data, "", "  ")
		if err := os.WriteFile(filepath.Join(goldenDirV2, name), append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(goldenDirV2, FileName), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenV2 opens a keyring of file format 2 (a policy, tags, a grant,
// automatic rotation with an automatic and an on-demand version) and
// checks every format 2 field and data key.
func TestGoldenV2(t *testing.T) {
	if *updateV2 {
		generateGoldenV2(t)
	}
	raw, err := os.ReadFile(filepath.Join(goldenDirV2, FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var vs []goldenVector
	var exp goldenV2Key
	for name, into := range map[string]any{"vectors.json": &vs, "key.json": &exp} {
		js, err := os.ReadFile(filepath.Join(goldenDirV2, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(js, into); err != nil {
			t.Fatal(err)
		}
	}
	if fileFormatOf(t, dir) != 2 || len(vs) != 3 {
		t.Fatalf("format %d, %d vectors", fileFormatOf(t, dir), len(vs))
	}
	k := open(t, Config{Dir: dir, Passphrase: goldenPassphrase})
	ki, err := k.Key("alias/golden-v2")
	if err != nil {
		t.Fatal(err)
	}
	var auto []bool
	for _, v := range ki.Versions {
		auto = append(auto, v.Automatic)
	}
	got := goldenV2Key{KeyID: ki.KeyID, Policy: ki.Policy, Tags: ki.Tags, Automatic: auto, Grants: ki.Grants}
	if ki.Rotation != nil {
		got.PeriodDays, got.Next = ki.Rotation.PeriodDays, ki.Rotation.NextRotation
	}
	gj, _ := json.Marshal(got)
	ej, _ := json.Marshal(exp)
	if string(gj) != string(ej) || exp.Policy != goldenV2Policy {
		t.Fatalf("key:\n got %s\nwant %s", gj, ej)
	}
	ctx := context.Background()
	for _, v := range vs {
		pt, err := k.Decrypt(ctx, "alias/golden-v2", v.Wrapped, v.EncryptionContext)
		if err != nil || !bytes.Equal(pt, v.Plaintext) {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if _, ver, _ := BlobKey(v.Wrapped); ver != v.Version {
			t.Fatalf("%s: version %d, want %d", v.Name, ver, v.Version)
		}
	}
}
