package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestFormatSpec decrypts the golden objects with an independent decoder
// written from FORMAT.md alone (offsets, HKDF, AADs, nonces, padding), using
// none of the package's code, so that FORMAT.md stays true to the code.
func TestFormatSpec(t *testing.T) {
	gcm := func(key []byte) cipher.AEAD {
		b, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	kdf := func(k []byte, info string) []byte {
		out, err := hkdf.Key(sha256.New, k, nil, info, 32) // §2: empty salt
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	keyAAD := func(layout byte, bucket, key string, part uint32) []byte { // §2
		a := []byte("s3seal/1")
		a = append(a, layout)
		a = binary.BigEndian.AppendUint16(a, uint16(len(bucket)))
		a = append(a, bucket...)
		a = binary.BigEndian.AppendUint16(a, uint16(len(key)))
		a = append(a, key...)
		return binary.BigEndian.AppendUint32(a, part)
	}
	// §4: a segment stream of plain bytes, segment size s, part number p.
	openStream := func(body, stream []byte, plain int64, s int, p uint32) []byte {
		g := gcm(body)
		n := int64(1)
		if plain > 0 {
			n = (plain + int64(s) - 1) / int64(s)
		}
		var out []byte
		for i := int64(0); i < n; i++ {
			l := s + 16
			if i == n-1 {
				l = int(plain-i*int64(s)) + 16
			}
			nonce := binary.BigEndian.AppendUint32(nil, p)
			idx := binary.BigEndian.AppendUint64(nil, uint64(i))
			nonce = append(nonce, idx[1:]...) // 7-byte index
			if i == n-1 {
				nonce = append(nonce, 1)
			} else {
				nonce = append(nonce, 0)
			}
			pt, err := g.Open(nil, nonce, stream[:l], nil)
			if err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
			out = append(out, pt...)
			stream = stream[l:]
		}
		if p != 0 { // §5: padding to 1024 tags
			pad := stream[:16*(1024-n)]
			if !bytes.Equal(pad, make([]byte, len(pad))) {
				t.Fatal("padding not zero")
			}
		}
		return out
	}

	manifests, _ := filepath.Glob(filepath.Join(goldenDir, "v1-*.json"))
	if len(manifests) == 0 {
		t.Fatal("no golden files")
	}
	for _, path := range manifests {
		var m goldenManifest
		raw, _ := os.ReadFile(path)
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		plain, _ := os.ReadFile(filepath.Join(goldenDir, m.PlaintextFile))
		body, _ := os.ReadFile(filepath.Join(goldenDir, m.BodyFile))
		dek, _ := hex.DecodeString(m.DEKHex)

		// §3 object header.
		h, err := base64.RawURLEncoding.DecodeString(m.HeaderValue)
		if err != nil {
			t.Fatal(err)
		}
		if string(h[0:4]) != "S3SL" || h[4] != 1 || h[5] != 0 {
			t.Fatalf("%s: magic/version/flags % x", path, h[:6])
		}
		layout := h[6]
		K := int(binary.BigEndian.Uint16(h[7:9]))
		if string(h[9:9+K]) != m.KeyID {
			t.Fatalf("%s: key id", path)
		}
		W := int(binary.BigEndian.Uint16(h[9+K : 11+K]))
		if hex.EncodeToString(h[11+K:11+K+W]) != m.WrappedHex {
			t.Fatalf("%s: wrapped", path)
		}
		o := 11 + K + W
		oek, err := gcm(dek).Open(nil, h[o:o+12], h[o+12:o+60], keyAAD(layout, m.Bucket, m.Key, 0))
		if err != nil {
			t.Fatalf("%s: OEK: %v", path, err)
		}
		if !bytes.Equal(h[o+60:o+92], kdf(oek, "s3seal/1 commit")) {
			t.Fatalf("%s: commitment", path)
		}
		meta, err := gcm(kdf(oek, "s3seal/1 meta")).Open(nil, h[o+92:o+104], h[o+104:], h[:o+104])
		if err != nil || string(meta) != m.Meta {
			t.Fatalf("%s: meta %q %v", path, meta, err)
		}

		var got []byte
		switch layout {
		case 1:
			got = openStream(kdf(oek, "s3seal/1 body"), body, int64(len(plain)), 65536, 0)
		case 2:
			for rest := body; len(rest) > 0; {
				ph := rest[:4096]
				if string(ph[0:4]) != "S3SP" || ph[4] != 1 || ph[5] != 0 || ph[7] != 0 {
					t.Fatalf("%s: part magic", path)
				}
				s := 1 << ph[6]
				p := binary.BigEndian.Uint32(ph[8:12])
				pl := int64(binary.BigEndian.Uint64(ph[12:20]))
				K := int(binary.BigEndian.Uint16(ph[20:22]))
				W := int(binary.BigEndian.Uint16(ph[22+K : 24+K]))
				pdek, _ := hex.DecodeString(m.Parts[p-1].DEKHex)
				o := 24 + K + W
				pk, err := gcm(pdek).Open(nil, ph[o:o+12], ph[o+12:o+60], keyAAD(2, m.Bucket, m.Key, p))
				if err != nil {
					t.Fatalf("%s: part %d key: %v", path, p, err)
				}
				if !bytes.Equal(ph[o+60:o+92], kdf(pk, "s3seal/1 commit")) {
					t.Fatalf("%s: part commitment", path)
				}
				if !bytes.Equal(ph[o+92:4080], make([]byte, 4080-o-92)) {
					t.Fatalf("%s: part header padding", path)
				}
				if _, err := gcm(kdf(pk, "s3seal/1 part header")).Open(nil, make([]byte, 12), ph[4080:4096], ph[:4080]); err != nil {
					t.Fatalf("%s: part header tag: %v", path, err)
				}
				size := pl + 4096 + 16*1024
				got = append(got, openStream(kdf(pk, "s3seal/1 body"), rest[4096:size], pl, s, p)...)
				rest = rest[size:]
			}
		default:
			t.Fatalf("%s: layout %d", path, layout)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%s: plaintext differs", path)
		}
	}
}
