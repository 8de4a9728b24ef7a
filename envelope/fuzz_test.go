package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// goldenByName returns the in-memory golden case name.
func goldenByName(t testing.TB, name string) goldenCase {
	for _, c := range goldenCases(t) {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no golden case %s", name)
	return goldenCase{}
}

// FuzzParseHeader: no input panics, and only genuine headers open: with
// the golden data key 1, at the path of each golden object sealed with it,
// only that object's own header values (its pending one included).
func FuzzParseHeader(f *testing.F) {
	genuine := map[[2]string][]string{}
	for _, c := range goldenCases(f) {
		f.Add(c.m.HeaderValue)
		if c.m.KeyID == goldenKeyID(1) {
			p := [2]string{c.m.Bucket, c.m.Key}
			genuine[p] = append(genuine[p], c.m.HeaderValue)
			if c.m.PendingHeaderValue != "" {
				genuine[p] = append(genuine[p], c.m.PendingHeaderValue)
			}
		}
	}
	dek, _ := goldenDEK(1)
	f.Fuzz(func(t *testing.T, value string) {
		h, err := ParseHeader(value)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with error")
			}
			return
		}
		_ = h.KeyInfo()
		_ = h.MetaSize()
		for p, values := range genuine {
			o, err := Open(h, dek, p[0], p[1])
			if err != nil {
				continue
			}
			o.Close()
			if !slices.Contains(values, value) {
				t.Fatalf("forged header %q opened at %s/%s", value, p[0], p[1])
			}
		}
	})
}

func goldenKeyID(i byte) string {
	_, ki := goldenDEK(i)
	return ki.KeyID
}

// FuzzParsePartHeader: no input panics, and only genuine part headers
// authenticate: part 1 of v1-multipart (no upload identity), of
// v2-multipart (with its upload identity) and of v3-compressed-multipart
// (a compressed part), all sealed with the golden data key 2. To keep inputs small the fuzzer supplies the fields region
// (zero-padded to 4080 bytes) and the 16-byte tag separately; raw is also
// parsed as is.
func FuzzParsePartHeader(f *testing.F) {
	type target struct {
		bucket, key string
		upload      []byte
		genuine     []byte
	}
	var targets []target
	for _, name := range []string{"v1-multipart", "v2-multipart", "v3-compressed-multipart"} {
		mp := goldenByName(f, name)
		genuine := mp.body[:PartHeaderSize]
		f.Add(bytes.TrimRight(genuine[:partTagOffset], "\x00"), genuine[partTagOffset:])
		upload, err := hex.DecodeString(mp.m.UploadHex)
		if err != nil {
			f.Fatal(err)
		}
		targets = append(targets, target{mp.m.Bucket, mp.m.Key, upload, genuine})
	}
	f.Add([]byte{}, []byte{})
	dek, _ := goldenDEK(2)
	f.Fuzz(func(t *testing.T, head, tag []byte) {
		_, _ = ParsePartHeader(head)
		if len(head) > partTagOffset || len(tag) > TagSize {
			return
		}
		b := make([]byte, PartHeaderSize)
		copy(b, head)
		copy(b[partTagOffset:], tag)
		ph, err := ParsePartHeader(b)
		if err != nil {
			return
		}
		if ph.PlainLen() < 0 || ph.PlainLen() > MaxPartSize {
			t.Fatalf("parsed impossible part: %d bytes", ph.PlainLen())
		}
		if c := ph.Compression(); c != nil {
			// A compressed part (FORMAT.md 12.2.3): valid parameters, a
			// body length within the bounds, a stored size of header, body
			// and padding, and its index inside the body.
			lo, hi := c.CompressedSizeBounds(ph.PlainLen())
			ioff, in, err := ph.IndexRange()
			if c.check() != nil || ph.SegmentSize() != 0 || ph.BodyLen() < lo || ph.BodyLen() > hi || err != nil ||
				ioff < PartHeaderSize || ioff+in != PartHeaderSize+ph.BodyLen() ||
				ph.CiphertextSize() != PartHeaderSize+ph.BodyLen()+CompressedPartPad(ph.PlainLen(), ph.BodyLen()) {
				t.Fatalf("parsed impossible compressed part: %+v, %d bytes, body %d", c, ph.PlainLen(), ph.BodyLen())
			}
		} else if segCount(ph.PlainLen(), ph.SegmentSize()) > MaxPartSegments {
			t.Fatalf("parsed impossible part: %d bytes, segment %d", ph.PlainLen(), ph.SegmentSize())
		}
		for _, tg := range targets {
			p, err := OpenPart(ph, dek, tg.bucket, tg.key, tg.upload)
			if err != nil {
				continue
			}
			p.Close()
			if !bytes.Equal(b, tg.genuine) {
				t.Fatal("forged part header authenticated")
			}
		}
	})
}

// FuzzDecodeMeta: no blob panics; a blob that decodes re-encodes to a
// canonical form that decodes to itself, and its version 1 encoding
// carries no version 2 field.
func FuzzDecodeMeta(f *testing.F) {
	for _, c := range goldenCases(f) {
		if c.m.FormatVersion >= 2 {
			f.Add([]byte(c.m.Meta))
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"s":-1,"up":"AAECAwQFBgcICQoLDA0ODw","mf":{"n":2,"s":5,"d":""},"w":{"X-Amz-Acl":"private"}}`))
	f.Add([]byte("{\"s\":1,\"h\":{\"Content-Type\":\"x\"},\"u\":{\"a\":\"\xff\"}}")) // invalid UTF-8
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) || m != nil {
				t.Fatalf("DecodeMeta: %v, %v", m, err)
			}
			return
		}
		enc := m.Encode()
		m2, err := DecodeMeta(enc)
		if err != nil {
			t.Fatalf("re-encoded blob %q: %v", enc, err)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding not stable: %q then %q", enc, enc2)
		}
		m1, err := DecodeMeta(m.EncodeFor(1))
		if err != nil {
			t.Fatal(err)
		}
		if m1.Headers != nil || m1.Upload != nil || m1.Manifest != nil || m1.Create != nil {
			t.Fatalf("version 1 encoding %q has version 2 fields", m.EncodeFor(1))
		}
	})
}

// FuzzDecrypt: a stored body, size and range chosen by the fuzzer never
// panic, and any plaintext returned is the genuine plaintext of that range.
func FuzzDecrypt(f *testing.F) {
	small := goldenByName(f, "v1-single-small")
	n := int64(len(small.plain))
	f.Add(small.body, n, int64(0), n)
	f.Add(small.body, n, int64(10), int64(20))
	f.Add(small.body[:50], n, int64(0), n)
	f.Add([]byte{}, int64(0), int64(0), int64(0))
	h, err := ParseHeader(small.m.HeaderValue)
	if err != nil {
		f.Fatal(err)
	}
	dek, _ := goldenDEK(1)
	o, err := Open(h, dek, small.m.Bucket, small.m.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, plainLen, off, n int64) {
		cOff, cLen := CipherRange(plainLen, off, n)
		if cOff < 0 || cLen < 0 || (cLen > 0 && cOff+cLen > CiphertextSize(plainLen)) {
			t.Fatalf("CipherRange(%d, %d, %d) = %d, %d", plainLen, off, n, cOff, cLen)
		}
		got, err := readAllBuf(o.DecryptReader(bytes.NewReader(body), plainLen, off, n), 4096)
		if err == nil && n > 0 && (off < 0 || off+n > int64(len(small.plain)) || !bytes.Equal(got, small.plain[off:off+n])) {
			t.Fatalf("decrypted %d bytes that are not the plaintext of [%d,+%d)", len(got), off, n)
		}
		if err == nil && len(got) != int(n) {
			t.Fatalf("decrypted %d bytes for a range of %d", len(got), n)
		}
		if err != nil && !bytes.HasPrefix(small.plain[max(0, min(off, int64(len(small.plain)))):], got) {
			t.Fatalf("failed decryption returned non-genuine bytes")
		}
	})
}

// FuzzDecryptCompressed: a stored body and range chosen by the fuzzer for
// a small compressed object (one block, so that inputs stay small and the
// fuzzer fast: with the 84 KB golden body it managed a few executions a
// second) never panic (block
// headers and the index position are read before anything is
// authenticated) and any plaintext returned, whole or through the body's
// own index, is genuine.
func FuzzDecryptCompressed(f *testing.F) {
	plain := bytes.Repeat([]byte(`{"level":"info","msg":"fuzz"}`+"\n"), 12)
	size := int64(len(plain))
	dek := bytes.Repeat([]byte{9}, KeySize)
	comp := Compression{Algorithm: AlgS2, BlockSize: MinBlockSize}
	var seed [32]byte
	w, err := Config{Rand: mrand.NewChaCha8(seed), Flags: FlagCompressed}.NewObject(dek, testKI, "b", "k", LayoutSingle, (&Meta{Size: size, Compression: &comp}).Encode())
	if err != nil {
		f.Fatal(err)
	}
	body, err := io.ReadAll(w.EncryptCompressedReader(bytes.NewReader(plain)))
	if err != nil {
		f.Fatal(err)
	}
	h, err := ParseHeader(w.HeaderValue())
	if err != nil {
		f.Fatal(err)
	}
	o, err := Open(h, dek, "b", "k")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, int64(0), size)
	f.Add(body, int64(30), int64(100))
	f.Add(body[:len(body)/2], int64(0), size)
	f.Add([]byte{}, int64(0), int64(0))
	genuine := func(t *testing.T, got []byte, off int64, err error) {
		if off < 0 || off > size || !bytes.HasPrefix(plain[off:], got) {
			t.Fatalf("%d bytes returned at %d that are not the plaintext (err %v)", len(got), off, err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, off, n int64) {
		got, err := readAllBuf(o.DecryptCompressedReader(bytes.NewReader(body), nil, 0, size), 4096)
		genuine(t, got, 0, err)
		if err == nil && len(got) != int(size) {
			t.Fatalf("whole read of %d bytes", len(got))
		}
		ioff, in, err := o.IndexRange(int64(len(body)))
		if err != nil {
			return
		}
		idx, err := o.OpenIndex(body[ioff:ioff+in], int64(len(body)))
		if err != nil {
			return
		}
		cOff, cLen, err := idx.CipherRange(off, n)
		if err != nil {
			return
		}
		got, err = readAllBuf(o.DecryptCompressedReader(bytes.NewReader(body[cOff:cOff+cLen]), idx, off, n), 1000)
		genuine(t, got, off, err)
		if err == nil && int64(len(got)) != n {
			t.Fatalf("range of %d returned %d bytes", n, len(got))
		}
	})
}

// FuzzDecompressBlock: a payload that authenticated but was made by a
// broken or hostile writer never panics, never makes the decoder allocate
// past the block, and decompresses to exactly the block's length or fails.
func FuzzDecompressBlock(f *testing.F) {
	for _, alg := range []Algorithm{AlgS2, AlgZstd} {
		for _, l := range Levels(alg) {
			c, err := compressBlock(alg, l, nil, compressible(1, 5000))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(alg == AlgZstd, c, 5000)
			f.Add(alg == AlgZstd, c, 4999)
		}
	}
	f.Fuzz(func(t *testing.T, zstd bool, payload []byte, want int) {
		if want < 1 || want > MinBlockSize {
			return
		}
		alg := AlgS2
		if zstd {
			alg = AlgZstd
		}
		out, err := decompressBlock(alg, make([]byte, MinBlockSize), payload, want)
		if err == nil && len(out) != want {
			t.Fatalf("%d bytes for a block of %d", len(out), want)
		}
	})
}
