package envelope

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Golden objects pin format version 1: TestGolden decrypts the files in
// testdata/envelope forever, and checks that the encoder, fed the same
// deterministic randomness, still produces them byte for byte. Regenerate
// (only when the format version changes, into new files) with
//
//	go test ./envelope -run TestGolden -update
var update = flag.Bool("update", false, "rewrite golden files and fuzz seed corpus")

const goldenDir = "../testdata/envelope"

// goldenManifest describes one golden object. The DEK is a TEST-ONLY key
// derived from a fixed seed; the wrapped form is fake (not a KMS
// ciphertext) and only shows where a real one goes.
type goldenManifest struct {
	FormatVersion int          `json:"format_version"`
	Description   string       `json:"description"`
	Layout        string       `json:"layout"`
	Bucket        string       `json:"bucket"`
	Key           string       `json:"key"`
	DEKHex        string       `json:"test_only_dek_hex"`
	KeyID         string       `json:"key_id"`
	WrappedHex    string       `json:"fake_wrapped_dek_hex"`
	HeaderValue   string       `json:"header_value"`
	Meta          string       `json:"meta"`
	PlaintextFile string       `json:"plaintext_file"`
	PlaintextSize int64        `json:"plaintext_size"`
	BodyFile      string       `json:"body_file"`
	StoredSize    int64        `json:"stored_size"`
	Parts         []goldenPart `json:"parts,omitempty"`
}

type goldenPart struct {
	PartNumber    int    `json:"part_number"`
	PlaintextSize int64  `json:"plaintext_size"`
	SegmentSize   int    `json:"segment_size"`
	KeyID         string `json:"key_id"`
	DEKHex        string `json:"test_only_dek_hex"`
	WrappedHex    string `json:"fake_wrapped_dek_hex"`
}

type goldenCase struct {
	name  string
	m     goldenManifest
	plain []byte
	body  []byte
}

// goldenDEK returns the test-only data key number i and its fake wrapped form.
func goldenDEK(i byte) ([]byte, KeyInfo) {
	c := mrand.NewChaCha8([32]byte{'g', 'o', 'l', 'd', 'e', 'n', '-', 'd', 'e', 'k', i})
	dek := make([]byte, KeySize)
	_, _ = c.Read(dek)
	wrapped := []byte(fmt.Sprintf("FAKE-WRAPPED-DEK-%d (not a KMS ciphertext)", i))
	return dek, KeyInfo{KeyID: fmt.Sprintf("arn:aws:kms:eu-west-1:111122223333:key/golden-%d", i), Wrapped: wrapped}
}

// goldenCases builds the golden objects from deterministic randomness.
func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	cfg := func(name string) Config {
		var seed [32]byte
		copy(seed[:], "golden rand "+name)
		return Config{Rand: mrand.NewChaCha8(seed)}
	}
	var cases []goldenCase
	single := func(name, desc string, plain []byte, bucket, key, meta string) {
		dek, ki := goldenDEK(1)
		o, err := cfg(name).NewObject(dek, ki, bucket, key, LayoutSingle, []byte(meta))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldenCase{name: name, plain: plain, body: body, m: goldenManifest{
			FormatVersion: Version, Description: desc, Layout: LayoutSingle.String(),
			Bucket: bucket, Key: key, DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID,
			WrappedHex: hex.EncodeToString(ki.Wrapped), HeaderValue: o.HeaderValue(), Meta: meta,
			PlaintextSize: int64(len(plain)), StoredSize: int64(len(body)),
		}})
	}
	single("v1-single-empty", "single layout, empty object: one empty final segment (16-byte tag)",
		nil, "golden-bucket", "empty", `{}`)
	single("v1-single-small", "single layout, 100-byte object: one final segment",
		bytes.Repeat([]byte("s3seal golden\n"), 8)[:100], "golden-bucket", "dir/small.txt",
		`{"md5":"placeholder","meta":{"color":"blue"}}`)
	single("v1-single-3seg", "single layout, 2*65536+1000 bytes: two full segments and a final one of 1000 bytes",
		randBytes(3, 2*S+1000), "golden-bucket", "a key/with spaces+plus%2F", `{"size":132072}`)

	// Multipart: the object header (metadata only) and two parts sealed with
	// two different data keys, as on two proxy instances.
	{
		name := "v1-multipart"
		dek, ki := goldenDEK(1)
		const bucket, key = "golden-bucket", "multi/part.bin"
		meta := `{"parts":2}`
		o, err := cfg(name).NewObject(dek, ki, bucket, key, LayoutMultipart, []byte(meta))
		if err != nil {
			t.Fatal(err)
		}
		m := goldenManifest{
			FormatVersion: Version, Description: "multipart layout: object header (metadata) + part 1 of 70000 bytes (key 2) + part 2 of 10 bytes (key 3)",
			Layout: LayoutMultipart.String(), Bucket: bucket, Key: key, DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID,
			WrappedHex: hex.EncodeToString(ki.Wrapped), HeaderValue: o.HeaderValue(), Meta: meta,
		}
		var plain, body []byte
		for i, size := range []int{70000, 10} {
			pdek, pki := goldenDEK(byte(2 + i))
			pp := randBytes(uint64(10+i), size)
			p, err := cfg(fmt.Sprint(name, i)).NewPart(pdek, pki, bucket, key, i+1, int64(size))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(pp)))
			if err != nil {
				t.Fatal(err)
			}
			plain = append(plain, pp...)
			body = append(body, b...)
			m.Parts = append(m.Parts, goldenPart{PartNumber: i + 1, PlaintextSize: int64(size), SegmentSize: PartSegmentSize(int64(size)),
				KeyID: pki.KeyID, DEKHex: hex.EncodeToString(pdek), WrappedHex: hex.EncodeToString(pki.Wrapped)})
		}
		m.PlaintextSize, m.StoredSize = int64(len(plain)), int64(len(body))
		cases = append(cases, goldenCase{name: name, m: m, plain: plain, body: body})
	}
	for i := range cases {
		cases[i].m.PlaintextFile = cases[i].name + ".plain"
		cases[i].m.BodyFile = cases[i].name + ".body"
	}
	return cases
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if *update {
		writeGolden(t, cases)
	}
	manifests, err := filepath.Glob(filepath.Join(goldenDir, "v*.json"))
	if err != nil || len(manifests) < len(cases) {
		t.Fatalf("golden manifests: %v, %d found", err, len(manifests))
	}
	for _, path := range manifests {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			var m goldenManifest
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			plain, err := os.ReadFile(filepath.Join(goldenDir, m.PlaintextFile))
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(filepath.Join(goldenDir, m.BodyFile))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, &m, plain, body)
			// The encoder still writes exactly these bytes.
			for _, c := range cases {
				if c.name == name {
					if c.m.HeaderValue != m.HeaderValue || !bytes.Equal(c.body, body) || !bytes.Equal(c.plain, plain) {
						t.Fatal("encoder output differs from the golden file: the v1 format changed")
					}
				}
			}
		})
	}
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkGolden(t *testing.T, m *goldenManifest, plain, body []byte) {
	if m.FormatVersion != 1 || int64(len(plain)) != m.PlaintextSize || int64(len(body)) != m.StoredSize {
		t.Fatal("manifest does not match files")
	}
	h, err := ParseHeader(m.HeaderValue)
	if err != nil {
		t.Fatal(err)
	}
	if ki := h.KeyInfo(); ki.KeyID != m.KeyID || hex.EncodeToString(ki.Wrapped) != m.WrappedHex || h.Layout().String() != m.Layout {
		t.Fatalf("header key info %q %x layout %v", ki.KeyID, ki.Wrapped, h.Layout())
	}
	o, err := Open(h, unhex(t, m.DEKHex), m.Bucket, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if string(o.Meta()) != m.Meta {
		t.Fatalf("meta %q", o.Meta())
	}
	switch h.Layout() {
	case LayoutSingle:
		if p, err := PlaintextSize(int64(len(body))); err != nil || p != m.PlaintextSize {
			t.Fatalf("PlaintextSize: %d, %v", p, err)
		}
		got, err := decryptAll(o, body, m.PlaintextSize)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decrypt: %v", err)
		}
		if len(plain) > 2 {
			off, n := int64(len(plain)/2), int64(len(plain)/3)
			got, err := decryptRange(o, body, m.PlaintextSize, off, n, 4096)
			if err != nil || !bytes.Equal(got, plain[off:off+n]) {
				t.Fatalf("range: %v", err)
			}
		}
	case LayoutMultipart:
		if p, err := MultipartPlaintextSize(int64(len(body)), len(m.Parts)); err != nil || p != m.PlaintextSize {
			t.Fatalf("MultipartPlaintextSize: %d, %v", p, err)
		}
		src := bytes.NewReader(body)
		var got []byte
		for _, gp := range m.Parts {
			hdr := make([]byte, PartHeaderSize)
			if _, err := io.ReadFull(src, hdr); err != nil {
				t.Fatal(err)
			}
			ph, err := ParsePartHeader(hdr)
			if err != nil {
				t.Fatal(err)
			}
			if ph.PartNumber() != gp.PartNumber || ph.PlainLen() != gp.PlaintextSize || ph.SegmentSize() != gp.SegmentSize || ph.KeyInfo().KeyID != gp.KeyID {
				t.Fatalf("part header %d %d %d", ph.PartNumber(), ph.PlainLen(), ph.SegmentSize())
			}
			p, err := OpenPart(ph, unhex(t, gp.DEKHex), m.Bucket, m.Key)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p.DecryptReader(src, 0, ph.PlainLen()))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b...)
		}
		if src.Len() != 0 || !bytes.Equal(got, plain) {
			t.Fatal("multipart plaintext differs")
		}
	default:
		t.Fatalf("layout %v", h.Layout())
	}
}

func writeGolden(t *testing.T, cases []goldenCase) {
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		j, err := json.MarshalIndent(c.m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{c.name + ".json": append(j, '\n'), c.m.PlaintextFile: c.plain, c.m.BodyFile: c.body} {
			if err := os.WriteFile(filepath.Join(goldenDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Fuzz seed corpus (testdata/fuzz/<Target>/<name>, "go test fuzz v1").
	seed := func(target, name string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := "go test fuzz v1\n" + strings.Join(vals, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bs := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	i64 := func(v int64) string { return "int64(" + strconv.FormatInt(v, 10) + ")" }
	for _, c := range cases {
		seed("FuzzParseHeader", c.name, "string("+strconv.Quote(c.m.HeaderValue)+")")
		if c.m.Layout == LayoutMultipart.String() {
			seed("FuzzParsePartHeader", c.name, bs(bytes.TrimRight(c.body[:partTagOffset], "\x00")), bs(c.body[partTagOffset:PartHeaderSize]))
		}
	}
	for _, c := range cases {
		if c.name == "v1-single-small" {
			n := int64(len(c.plain))
			seed("FuzzDecrypt", "whole", bs(c.body), i64(n), i64(0), i64(n))
			seed("FuzzDecrypt", "range", bs(c.body), i64(n), i64(10), i64(20))
		}
	}
}
