package envelope

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Golden objects of format version 3 with FlagAsymmetricWrap (FORMAT.md
// section 12.3). Unlike the other goldens, whose wrapped DEKs are fake,
// their wrapped DEKs are real RSAES_OAEP_SHA_256 ciphertexts under the
// TEST-ONLY RSA key in testdata/envelope (made with openssl genpkey, never
// used anywhere else), made with deterministic randomness so that the
// writer reproduces them byte for byte.

const goldenRSAFile = "v3-asym-rsa-TEST-ONLY.pem"

func goldenRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, goldenRSAFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		t.Fatal("no PEM block in " + goldenRSAFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// goldenAsymDEK is test-only data key i wrapped with the golden RSA key.
func goldenAsymDEK(t testing.TB, i byte) ([]byte, KeyInfo) {
	t.Helper()
	dek, _ := goldenDEK(i)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), mrand.NewChaCha8([32]byte{'g', 'o', 'l', 'd', 'e', 'n', '-', 'r', 's', 'a', i}),
		&goldenRSAKey(t).PublicKey, dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dek, KeyInfo{KeyID: "arn:aws:kms:eu-west-1:111122223333:key/golden-rsa", Wrapped: wrapped, Flags: FlagAsymmetricWrap}
}

// goldenAsymCases builds v3-asym-single and v3-asym-multipart.
func goldenAsymCases(t testing.TB, cfg func(string, byte) Config) []goldenCase {
	t.Helper()
	asym := func(name string) Config {
		c := cfg(name, 0)
		c.Flags = FlagAsymmetricWrap
		return c
	}
	var cases []goldenCase
	{
		const name, bucket, key = "v3-asym-single", "golden-bucket", "backups/db.dump"
		dek, ki := goldenAsymDEK(t, 5)
		plain := randBytes(50, 70000)
		meta := &Meta{Size: int64(len(plain)), User: map[string]string{"host": "db1"},
			Headers: map[string]string{"Content-Type": "application/octet-stream"}}
		o, err := asym(name).NewObject(dek, ki, bucket, key, LayoutSingle, meta.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldenCase{name: name, plain: plain, body: body, m: goldenManifest{
			FormatVersion: 3, Layout: LayoutSingle.String(), Bucket: bucket, Key: key,
			Description: "single layout, version 3 with the asymmetric-wrap flag: 70000 bytes (two segments); " +
				"the wrapped DEK is an RSAES_OAEP_SHA_256 ciphertext under the test-only RSA key " + goldenRSAFile,
			DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID, WrappedHex: hex.EncodeToString(ki.Wrapped),
			HeaderValue: o.HeaderValue(), Meta: string(meta.Encode()),
			PlaintextSize: int64(len(plain)), StoredSize: int64(len(body)), StoreETag: s3ETag(false, body),
		}})
	}
	{
		// As a write-only proxy writes it (section 12.3): pending header and
		// parts under its cached RSA-wrapped data key, and a finalized
		// header made without unwrapping anything: the pending header
		// opened with its object key, resealed under the data key the
		// writer holds (the same cached one here; any RSA-wrapped key of
		// the bucket would do).
		const name, bucket, key = "v3-asym-multipart", "golden-bucket", "backups/big.tar"
		dek, ki := goldenAsymDEK(t, 6)
		upload, err := cfg(name+" upload", 0).NewUploadID()
		if err != nil {
			t.Fatal(err)
		}
		pending := &Meta{Size: -1, User: map[string]string{"host": "db1"}, Upload: upload,
			Create: map[string]string{"X-Amz-Storage-Class": "STANDARD_IA"}}
		o, err := asym(name).NewObject(dek, ki, bucket, key, LayoutMultipart, pending.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		pk, err := o.PendingKey()
		if err != nil {
			t.Fatal(err)
		}
		var plain, body []byte
		var stored [][]byte
		var parts []goldenPart
		for i, size := range []int{70000, 10} {
			pdek, pki := goldenAsymDEK(t, 6)
			pp := randBytes(uint64(60+i), size)
			p, err := asym(fmt.Sprint(name, i)).NewPart(pdek, pki, bucket, key, upload, i+1, int64(size))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(pp)))
			if err != nil {
				t.Fatal(err)
			}
			plain, body, stored = append(plain, pp...), append(body, b...), append(stored, b)
			parts = append(parts, goldenPart{PartNumber: i + 1, PlaintextSize: int64(size), SegmentSize: PartSegmentSize(int64(size)),
				KeyID: pki.KeyID, DEKHex: hex.EncodeToString(pdek), WrappedHex: hex.EncodeToString(pki.Wrapped)})
		}
		pm, err := ReadPartMap(len(stored), int64(len(body)), bodyFetcher(body))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := pm.Manifest(upload)
		if err != nil {
			t.Fatal(err)
		}
		ph, err := ParseHeader(o.HeaderValue())
		if err != nil {
			t.Fatal(err)
		}
		po, err := cfg(name+" finalize", 0).OpenPending(ph, pk)
		if err != nil {
			t.Fatal(err)
		}
		defer po.Close()
		final := *pending
		final.Manifest, final.Create = mf, nil
		fdek, fki := dek, ki
		hv, err := po.Reseal(fdek, fki, bucket, key, final.Encode())
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldenCase{name: name, plain: plain, body: body, m: goldenManifest{
			FormatVersion: 3, Layout: LayoutMultipart.String(), Bucket: bucket, Key: key,
			Description: "multipart layout, version 3 with the asymmetric-wrap flag in the object header and both part headers: " +
				"part 1 of 70000 bytes, part 2 of 10 bytes, sealed to one upload identity; the pending header, and " +
				"the finalized header (with the manifest) made without unwrapping a DEK: the pending header opened with its object key and resealed",
			DEKHex: hex.EncodeToString(fdek), KeyID: fki.KeyID, WrappedHex: hex.EncodeToString(fki.Wrapped),
			HeaderValue: hv, Meta: string(final.Encode()), PlaintextSize: int64(len(plain)), StoredSize: int64(len(body)),
			Parts: parts, StoreETag: s3ETag(true, stored...), UploadHex: hex.EncodeToString(upload),
			ManifestDigestHex: hex.EncodeToString(mf.Digest), PendingHeaderValue: o.HeaderValue(), PendingMeta: string(pending.Encode()),
		}})
	}
	return cases
}

// TestGoldenAsym checks what TestGolden does not: every wrapped DEK of
// the v3-asym goldens opens with the test-only RSA private key
// (RSAES_OAEP_SHA_256) to the DEK the manifest names; the object header and
// every part header carry the flag; relabelled as version 2 the header is
// refused for its flags (ErrFormat, as a version 2 reader refuses any flag;
// such a reader refuses version 3 itself with ErrVersion); a flag cleared
// in a part header fails its tag.
func TestGoldenAsym(t *testing.T) {
	priv := goldenRSAKey(t)
	names, err := filepath.Glob(filepath.Join(goldenDir, "v3-asym-*.json"))
	if err != nil || len(names) < 2 {
		t.Fatalf("v3-asym goldens: %v %v", names, err)
	}
	unwrap := func(what, wrappedHex, dekHex string) {
		dek, err := rsa.DecryptOAEP(sha256.New(), nil, priv, unhex(t, wrappedHex), nil)
		if err != nil || hex.EncodeToString(dek) != dekHex {
			t.Fatalf("%s: the wrapped DEK does not open to the DEK with the RSA key: %v", what, err)
		}
	}
	for _, path := range names {
		var m goldenManifest
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		unwrap(path, m.WrappedHex, m.DEKHex)
		for _, hv := range []string{m.HeaderValue, m.PendingHeaderValue} {
			if hv == "" {
				continue
			}
			h, err := ParseHeader(hv)
			if err != nil || h.Version() != 3 || h.Flags() != FlagAsymmetricWrap || h.KeyInfo().Flags != FlagAsymmetricWrap {
				t.Fatalf("%s: header version %d flags %#x: %v", path, h.Version(), h.Flags(), err)
			}
			b, _ := headerEncoding.DecodeString(hv)
			b[4] = 2
			if _, err := ParseHeader(headerEncoding.EncodeToString(b)); !errors.Is(err, ErrFormat) {
				t.Fatalf("%s relabelled version 2: %v", path, err)
			}
		}
		body, err := os.ReadFile(filepath.Join(goldenDir, m.BodyFile))
		if err != nil {
			t.Fatal(err)
		}
		for i, gp := range m.Parts {
			unwrap(fmt.Sprint(path, " part ", i+1), gp.WrappedHex, gp.DEKHex)
			pm, err := ReadPartMap(len(m.Parts), int64(len(body)), bodyFetcher(body))
			if err != nil {
				t.Fatal(err)
			}
			_, _, _, off := pm.Part(i)
			ph, err := ParsePartHeader(body[off:])
			if err != nil || ph.Flags() != FlagAsymmetricWrap || ph.Version() != 3 {
				t.Fatalf("part %d: flags %#x version %d: %v", i+1, ph.Flags(), ph.Version(), err)
			}
			hdr := bytes.Clone(body[off : off+PartHeaderSize])
			hdr[5] = 0
			cleared, err := ParsePartHeader(hdr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := OpenPart(cleared, unhex(t, gp.DEKHex), m.Bucket, m.Key, unhex(t, m.UploadHex)); !errors.Is(err, ErrAuth) {
				t.Fatalf("part %d with its flag cleared: %v", i+1, err)
			}
		}
	}
}

// specRSAKey is the test-only RSA key of the v3-asym goldens, for the
// independent decoder (TestFormatSpec).
func specRSAKey(t *testing.T) *rsa.PrivateKey { return goldenRSAKey(t) }
