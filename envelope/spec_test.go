package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// TestFormatSpec decrypts the golden objects of every version with an
// independent decoder written from FORMAT.md alone (offsets, HKDF, AADs,
// nonces, padding; for version 2 the info strings, the key AAD with the
// upload identity and the manifest digest of section 11), using none of the
// package's code, so that FORMAT.md stays true to the code.
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
	// §2, and §11.2 for version 2 (u: the upload identity, empty for the
	// object header).
	keyAAD := func(version, layout byte, bucket, key string, part uint32, u []byte) []byte {
		a := fmt.Appendf(nil, "s3seal/%d", version)
		a = append(a, layout)
		a = binary.BigEndian.AppendUint16(a, uint16(len(bucket)))
		a = append(a, bucket...)
		a = binary.BigEndian.AppendUint16(a, uint16(len(key)))
		a = append(a, key...)
		a = binary.BigEndian.AppendUint32(a, part)
		if version >= 2 { // §12.1: version 3 has the same key AAD
			a = append(a, byte(len(u)))
			a = append(a, u...)
		}
		return a
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

	manifests, _ := filepath.Glob(filepath.Join(goldenDir, "v*.json"))
	versions := map[int]bool{}
	for _, path := range manifests {
		var m goldenManifest
		raw, _ := os.ReadFile(path)
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		plain, _ := os.ReadFile(filepath.Join(goldenDir, m.PlaintextFile))
		body, _ := os.ReadFile(filepath.Join(goldenDir, m.BodyFile))
		dek, _ := hex.DecodeString(m.DEKHex)

		// §3 object header (§11.1: version 2 has the same bytes).
		h, err := base64.RawURLEncoding.DecodeString(m.HeaderValue)
		if err != nil {
			t.Fatal(err)
		}
		v, flags := h[4], h[5]
		if string(h[0:4]) != "S3SL" || v < 1 || v > 3 || int(v) != m.FormatVersion || v < 3 && flags != 0 || flags&^0x03 != 0 {
			t.Fatalf("%s: magic/version/flags % x", path, h[:6])
		}
		if flags&0x02 != 0 { // §12.3: the wrapped DEK is RSAES_OAEP_SHA_256 under the RSA key
			wrapped, _ := hex.DecodeString(m.WrappedHex)
			if got, err := rsa.DecryptOAEP(sha256.New(), nil, specRSAKey(t), wrapped, nil); err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("%s: RSA-wrapped DEK: %v", path, err)
			}
		}
		versions[int(v)] = true
		info := func(what string) string { return fmt.Sprintf("s3seal/%d %s", v, what) } // §2, §11.1
		layout := h[6]
		// openHeader opens an object header value: the OEK (key AAD with
		// part 0 and, in version 2, an empty upload identity) and the blob.
		openHeader := func(value string) (oek, meta []byte) {
			h, err := base64.RawURLEncoding.DecodeString(value)
			if err != nil {
				t.Fatal(err)
			}
			K := int(binary.BigEndian.Uint16(h[7:9]))
			if string(h[9:9+K]) != m.KeyID {
				t.Fatalf("%s: key id", path)
			}
			W := int(binary.BigEndian.Uint16(h[9+K : 11+K]))
			if hex.EncodeToString(h[11+K:11+K+W]) != m.WrappedHex {
				t.Fatalf("%s: wrapped", path)
			}
			o := 11 + K + W
			oek, err = gcm(dek).Open(nil, h[o:o+12], h[o+12:o+60], keyAAD(v, layout, m.Bucket, m.Key, 0, nil))
			if err != nil {
				t.Fatalf("%s: OEK: %v", path, err)
			}
			if !bytes.Equal(h[o+60:o+92], kdf(oek, info("commit"))) {
				t.Fatalf("%s: commitment", path)
			}
			meta, err = gcm(kdf(oek, info("meta"))).Open(nil, h[o+92:o+104], h[o+104:], h[:o+104])
			if err != nil {
				t.Fatalf("%s: meta: %v", path, err)
			}
			return oek, meta
		}
		oek, meta := openHeader(m.HeaderValue)
		if string(meta) != m.Meta {
			t.Fatalf("%s: meta %q", path, meta)
		}
		// §11.4: the version 2 blob.
		var blob struct {
			S  int64  `json:"s"`
			Up string `json:"up"`
			Mf *struct {
				N int    `json:"n"`
				S int64  `json:"s"`
				D string `json:"d"`
			} `json:"mf"`
		}
		var upload []byte
		if v >= 2 {
			if err := json.Unmarshal(meta, &blob); err != nil {
				t.Fatalf("%s: blob: %v", path, err)
			}
			if upload, err = base64.StdEncoding.DecodeString(blob.Up); err != nil || hex.EncodeToString(upload) != m.UploadHex {
				t.Fatalf("%s: up %q: %v", path, blob.Up, err)
			}
			if layout == 1 && blob.S != int64(len(plain)) || layout == 2 && (blob.S != -1 || len(upload) != 16 || blob.Mf == nil) ||
				layout == 2 && flags&1 != 0 && bytes.Contains(meta, []byte(`"z":`)) { // §12.2.3: no z on a multipart header
				t.Fatalf("%s: blob %s", path, meta)
			}
		}

		var got []byte
		switch layout {
		case 1:
			if h[5]&1 != 0 { // §12.2
				var blob struct {
					S int64 `json:"s"`
					Z struct {
						A string `json:"a"`
						B int64  `json:"b"`
					} `json:"z"`
				}
				if err := json.Unmarshal(meta, &blob); err != nil {
					t.Fatal(err)
				}
				var n int
				got, n = openCompressed(t, gcm(kdf(oek, info("body"))), kdf(oek, info("block header")), body, blob.Z.A, blob.Z.B, blob.S, 0)
				if n != len(body) {
					t.Fatalf("%s: %d bytes after the index", path, len(body)-n)
				}
				break
			}
			got = openStream(kdf(oek, info("body")), body, int64(len(plain)), 65536, 0)
		case 2:
			// §11.6: the manifest digest, recomputed from the part headers.
			digest := sha256.New()
			digest.Write([]byte("s3seal/2 manifest"))
			digest.Write([]byte{byte(len(upload))})
			digest.Write(upload)
			digest.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m.Parts))))
			var total int64
			for rest := body; len(rest) > 0; {
				ph := rest[:4096]
				// §11.7 step 4: no other version; §12.3 the wrap flag as the
				// object's; §12.2.3: under an object header with the
				// compressed flag, version 2 parts and version 3 compressed
				// parts (flag 01, algorithm at offset 7).
				pv := ph[4]
				compressed := flags&1 != 0 && pv == 3 && ph[5] == 1 && (ph[7] == 1 || ph[7] == 2)
				plainPart := ph[4] == v && ph[5] == flags && ph[7] == 0 || flags&1 != 0 && pv == 2 && ph[5] == 0 && ph[7] == 0
				if string(ph[0:4]) != "S3SP" || !compressed && !plainPart {
					t.Fatalf("%s: part magic/version % x", path, ph[:8])
				}
				pinfo := func(what string) string { return fmt.Sprintf("s3seal/%d %s", pv, what) }
				s := 1 << ph[6]
				p := binary.BigEndian.Uint32(ph[8:12])
				pl := int64(binary.BigEndian.Uint64(ph[12:20]))
				K := int(binary.BigEndian.Uint16(ph[20:22]))
				W := int(binary.BigEndian.Uint16(ph[22+K : 24+K]))
				var pdek []byte
				for _, gp := range m.Parts {
					if gp.PartNumber == int(p) {
						pdek, _ = hex.DecodeString(gp.DEKHex)
					}
				}
				o := 24 + K + W
				pk, err := gcm(pdek).Open(nil, ph[o:o+12], ph[o+12:o+60], keyAAD(pv, 2, m.Bucket, m.Key, p, upload))
				if err != nil {
					t.Fatalf("%s: part %d key: %v", path, p, err)
				}
				if v >= 2 { // §11.2: the part key does not open for another upload
					other := bytes.Clone(upload)
					other[0] ^= 1
					if _, err := gcm(pdek).Open(nil, ph[o:o+12], ph[o+12:o+60], keyAAD(pv, 2, m.Bucket, m.Key, p, other)); err == nil {
						t.Fatalf("%s: part %d opens for another upload", path, p)
					}
				}
				if !bytes.Equal(ph[o+60:o+92], kdf(pk, pinfo("commit"))) {
					t.Fatalf("%s: part commitment", path)
				}
				end := o + 92
				var B int64
				if compressed { // §12.2.3: B right after the commitment
					B = int64(binary.BigEndian.Uint64(ph[o+92 : o+100]))
					end = o + 100
				}
				if !bytes.Equal(ph[end:4080], make([]byte, 4080-end)) {
					t.Fatalf("%s: part header padding", path)
				}
				if _, err := gcm(kdf(pk, pinfo("part header"))).Open(nil, make([]byte, 12), ph[4080:4096], ph[:4080]); err != nil {
					t.Fatalf("%s: part header tag: %v", path, err)
				}
				hd := sha256.Sum256(ph)
				digest.Write(binary.BigEndian.AppendUint32(nil, p))
				digest.Write(binary.BigEndian.AppendUint64(nil, uint64(pl)))
				digest.Write(hd[:])
				total += pl
				if compressed {
					alg := map[byte]string{1: "s2", 2: "zstd"}[ph[7]]
					pt, n := openCompressed(t, gcm(kdf(pk, pinfo("body"))), kdf(pk, pinfo("block header")), rest[4096:4096+B], alg, int64(s), pl, p)
					if int64(n) != B {
						t.Fatalf("%s: part %d: body of %d bytes, B = %d", path, p, n, B)
					}
					// §12.2.3: zero padding up to 5 MiB when the part would be
					// stored in that much uncompressed.
					var pad int64
					if pl+20480 >= 5<<20 {
						pad = max(0, 5<<20-4096-B)
					}
					if !bytes.Equal(rest[4096+B:4096+B+pad], make([]byte, pad)) {
						t.Fatalf("%s: part %d padding", path, p)
					}
					got = append(got, pt...)
					rest = rest[4096+B+pad:]
					continue
				}
				size := pl + 4096 + 16*1024
				got = append(got, openStream(kdf(pk, pinfo("body")), rest[4096:size], pl, s, p)...)
				rest = rest[size:]
			}
			if v >= 2 {
				d := digest.Sum(nil)
				if hex.EncodeToString(d) != m.ManifestDigestHex || blob.Mf.D != base64.StdEncoding.EncodeToString(d) ||
					blob.Mf.N != len(m.Parts) || blob.Mf.S != total {
					t.Fatalf("%s: manifest %+v, digest %x", path, blob.Mf, d)
				}
				if m.PendingHeaderValue == "" {
					break // §11.10: a re-wrapped object is written with its final header
				}
				// §11.5: the pending header opens under the same OEK, and has
				// the same upload identity but no manifest.
				poek, pmeta := openHeader(m.PendingHeaderValue)
				var pending map[string]json.RawMessage
				if err := json.Unmarshal(pmeta, &pending); err != nil || !bytes.Equal(poek, oek) ||
					string(pending["up"]) != `"`+blob.Up+`"` || pending["mf"] != nil || pending["w"] == nil {
					t.Fatalf("%s: pending header %s: %v", path, pmeta, err)
				}
			}
		default:
			t.Fatalf("%s: layout %d", path, layout)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%s: plaintext differs", path)
		}
	}
	if !versions[1] || !versions[2] || !versions[3] {
		t.Fatalf("golden files of versions %v", versions)
	}
}

// openCompressed decodes a compressed body as FORMAT.md 12.2 describes it
// (of a single object, part number p = 0, or of a compressed part, 12.2.3):
// blocks with their masked length headers (the AAD of their segment), S2
// block format or zstd frames, raw blocks, and the index, the final
// segment, compared with the block headers. It returns the plaintext and
// the number of body bytes it took (the index's end).
func openCompressed(t *testing.T, g cipher.AEAD, hdrKey, body []byte, alg string, bs, size int64, p uint32) ([]byte, int) {
	mb, err := aes.NewCipher(hdrKey)
	if err != nil {
		t.Fatal(err)
	}
	// m_i: the first 4 bytes of AES(block header key, uint64 i || 8 zero bytes).
	mask := func(i int64) uint32 {
		var in, out [16]byte
		binary.BigEndian.PutUint64(in[:8], uint64(i))
		mb.Encrypt(out[:], in[:])
		return binary.BigEndian.Uint32(out[:4])
	}
	nonce := func(i int64, final byte) []byte {
		n := binary.BigEndian.AppendUint32(nil, p)
		idx := binary.BigEndian.AppendUint64(nil, uint64(i))
		return append(append(n, idx[1:]...), final)
	}
	nb := (size + bs - 1) / bs
	var out, hdrs []byte
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	used := 0
	for i := int64(0); i < nb; i++ {
		h := binary.BigEndian.Uint32(body[:4]) ^ mask(i)
		hdr := binary.BigEndian.AppendUint32(nil, h)
		l := int(h & 0x7fffffff)
		payload, err := g.Open(nil, nonce(i, 0), body[4:4+l+16], hdr)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		want := min(bs, size-i*bs)
		var pt []byte
		switch {
		case h&0x80000000 != 0:
			pt = payload
		case alg == "s2":
			pt, err = s2.Decode(nil, payload)
		case alg == "zstd":
			pt, err = zd.DecodeAll(payload, nil)
		default:
			t.Fatalf("algorithm %q", alg)
		}
		if err != nil || int64(len(pt)) != want {
			t.Fatalf("block %d: %d bytes, %v", i, len(pt), err)
		}
		out = append(out, pt...)
		hdrs = append(hdrs, hdr...)
		body = body[4+l+16:]
		used += 4 + l + 16
	}
	if int64(len(body)) < 4*nb+16 {
		t.Fatalf("index of %d bytes for %d blocks", len(body), nb)
	}
	index, err := g.Open(nil, nonce(nb, 1), body[:4*nb+16], nil)
	if err != nil || !bytes.Equal(index, hdrs) {
		t.Fatalf("index: %v", err)
	}
	return out, used + int(4*nb+16)
}
