package envelope

import (
	"bytes"
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

// FuzzParseHeader: no input panics, and only the genuine header opens.
func FuzzParseHeader(f *testing.F) {
	small := goldenByName(f, "v1-single-small")
	for _, c := range goldenCases(f) {
		f.Add(c.m.HeaderValue)
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
		o, err := Open(h, dek, small.m.Bucket, small.m.Key)
		if err != nil {
			return
		}
		defer o.Close()
		if value != small.m.HeaderValue {
			t.Fatalf("forged header %q opened", value)
		}
	})
}

// FuzzParsePartHeader: no input panics, and only the genuine part header
// authenticates. To keep inputs small the fuzzer supplies the fields region
// (zero-padded to 4080 bytes) and the 16-byte tag separately; raw is also
// parsed as is.
func FuzzParsePartHeader(f *testing.F) {
	mp := goldenByName(f, "v1-multipart")
	genuine := mp.body[:PartHeaderSize]
	fields := bytes.TrimRight(genuine[:partTagOffset], "\x00")
	f.Add(fields, genuine[partTagOffset:])
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
		if ph.PlainLen() < 0 || ph.PlainLen() > MaxPartSize || segCount(ph.PlainLen(), ph.SegmentSize()) > MaxPartSegments {
			t.Fatalf("parsed impossible part: %d bytes, segment %d", ph.PlainLen(), ph.SegmentSize())
		}
		p, err := OpenPart(ph, dek, mp.m.Bucket, mp.m.Key)
		if err != nil {
			return
		}
		defer p.Close()
		if !bytes.Equal(b, genuine) {
			t.Fatal("forged part header authenticated")
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
