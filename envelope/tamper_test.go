package envelope

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

// decryptAll decrypts a whole stored body whose plaintext size is plainLen.
func decryptAll(o *Object, body []byte, plainLen int64) ([]byte, error) {
	return readAllBuf(o.DecryptReader(bytes.NewReader(body), plainLen, 0, plainLen), 1<<20)
}

func TestTamperBody(t *testing.T) {
	dek := newDEK(t)
	const size = 3*S + 1000
	plain := randBytes(11, size)
	o, body := sealSingle(t, dek, "b", "k", plain)
	if got, err := decryptAll(o, body, size); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("untampered: %v", err)
	}

	t.Run("flip", func(t *testing.T) {
		rng := mrand.New(mrand.NewPCG(1, 2))
		positions := []int{0, 1, S - 1, S, S + 15, S + 16, 2*(S+16) - 1, len(body) - 1, len(body) - 16, len(body) - 17}
		for range 300 {
			positions = append(positions, rng.IntN(len(body)))
		}
		for _, pos := range positions {
			tb := bytes.Clone(body)
			tb[pos] ^= 1 << rng.IntN(8)
			for _, chunk := range []int{1 << 20, 4096} {
				got, err := readAllBuf(o.DecryptReader(bytes.NewReader(tb), size, 0, size), chunk)
				mustFail(t, fmt.Sprintf("flip at %d", pos), got, plain, err, ErrAuth)
				// Nothing of the tampered segment or after it is returned.
				if seg := pos / (S + 16); len(got) > seg*S {
					t.Fatalf("flip at %d (segment %d): %d bytes returned", pos, seg, len(got))
				}
			}
			// Ranges that include the tampered segment fail too.
			seg := int64(pos / (S + 16))
			off := seg * S
			n := min(int64(10), size-off)
			got, err := decryptRange(o, tb, size, off, n, 100)
			mustFail(t, fmt.Sprintf("range over flip at %d", pos), got, plain[off:], err, ErrAuth)
			if len(got) != 0 {
				t.Fatalf("range over flip at %d: returned %d bytes", pos, len(got))
			}
		}
	})

	t.Run("truncate", func(t *testing.T) {
		cuts := []int{0, 1, 15, 16, 17, S, S + 16, S + 17, 2 * (S + 16), 3 * (S + 16), 3*(S+16) + 16, len(body) - 1}
		for _, cut := range cuts {
			tb := body[:cut]
			// With the true size (from the sealed metadata): truncation.
			got, err := decryptAll(o, tb, size)
			mustFail(t, fmt.Sprintf("cut %d, true size", cut), got, plain, err, ErrTruncated, ErrAuth)
			// With the size implied by the stored length, if it is a valid one.
			if p, err := PlaintextSize(int64(cut)); err == nil {
				got, err := decryptAll(o, tb, p)
				mustFail(t, fmt.Sprintf("cut %d, implied size %d", cut, p), got, plain, err, ErrAuth)
			}
		}
	})

	t.Run("extend", func(t *testing.T) {
		// Append a copy of segment 0 as a fourth+ segment: the stored size is
		// valid, the final flag is not.
		tb := append(bytes.Clone(body[:3*(S+16)]), body[:S+16]...)
		p, err := PlaintextSize(int64(len(tb)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decryptAll(o, tb, p)
		mustFail(t, "extend", got, plain, err, ErrAuth)
	})

	t.Run("swap segments", func(t *testing.T) {
		tb := bytes.Clone(body)
		copy(tb[0:S+16], body[S+16:2*(S+16)])
		copy(tb[S+16:2*(S+16)], body[0:S+16])
		got, err := decryptAll(o, tb, size)
		mustFail(t, "swap", got, plain, err, ErrAuth)
		if len(got) != 0 {
			t.Fatal("plaintext returned")
		}
		// A segment moved to another index fails even in a range read.
		got, err = decryptRange(o, tb, size, S, 10, 100)
		mustFail(t, "swap range", got, plain[S:], err, ErrAuth)
	})

	t.Run("swap bodies", func(t *testing.T) {
		plain2 := randBytes(12, size)
		_, body2 := sealSingle(t, dek, "b", "k", plain2)
		got, err := decryptAll(o, body2, size)
		mustFail(t, "other body", got, plain, err, ErrAuth)
		if len(got) != 0 {
			t.Fatal("plaintext returned")
		}
	})
}

func TestTamperHeader(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(13, 2*S+5)
	o, body := sealSingle(t, dek, "bucket", "a/b", plain)
	hv := o.HeaderValue()
	open := func(hv string, dek []byte, bucket, key string) (*Object, error) {
		h, err := ParseHeader(hv)
		if err != nil {
			return nil, err
		}
		return Open(h, dek, bucket, key)
	}
	if o2, err := open(hv, dek, "bucket", "a/b"); err != nil || !bytes.Equal(o2.Meta(), []byte(`{"m":1}`)) {
		t.Fatalf("open: %v", err)
	}
	for _, tc := range []struct {
		name, bucket, key string
		dek               []byte
	}{
		{"other bucket", "bucket2", "a/b", dek},
		{"other key", "bucket", "a/c", dek},
		{"key with bucket prefix moved", "bucketa", "/b", dek},
		{"wrong dek", "bucket", "a/b", newDEK(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := open(hv, tc.dek, tc.bucket, tc.key); !errors.Is(err, ErrAuth) {
				t.Fatalf("got %v, want ErrAuth", err)
			}
		})
	}

	t.Run("header of another object", func(t *testing.T) {
		other, _ := sealSingle(t, dek, "bucket", "a/b", randBytes(14, 2*S+5))
		o2, err := open(other.HeaderValue(), dek, "bucket", "a/b")
		if err != nil {
			t.Fatal(err)
		}
		got, err := decryptAll(o2, body, int64(len(plain)))
		mustFail(t, "other header", got, plain, err, ErrAuth)
	})

	t.Run("layout byte", func(t *testing.T) {
		raw, _ := headerEncoding.DecodeString(hv)
		raw[6] = byte(LayoutMultipart)
		if _, err := open(headerEncoding.EncodeToString(raw), dek, "bucket", "a/b"); !errors.Is(err, ErrAuth) {
			t.Fatalf("got %v, want ErrAuth", err)
		}
	})

	t.Run("commitment", func(t *testing.T) {
		raw, _ := headerEncoding.DecodeString(hv)
		h, _ := ParseHeader(hv)
		off := len(raw) - len(h.sealedMeta) - NonceSize - CommitmentSize
		raw[off+3] ^= 0x40
		if _, err := open(headerEncoding.EncodeToString(raw), dek, "bucket", "a/b"); !errors.Is(err, ErrCommitment) {
			t.Fatalf("got %v, want ErrCommitment", err)
		}
	})

	t.Run("flip every bit", func(t *testing.T) {
		raw, _ := headerEncoding.DecodeString(hv)
		for i := range raw {
			for bit := range 8 {
				tr := bytes.Clone(raw)
				tr[i] ^= 1 << bit
				o2, err := open(headerEncoding.EncodeToString(tr), dek, "bucket", "a/b")
				if err == nil {
					t.Fatalf("byte %d bit %d: header opened", i, bit)
				}
				if o2 != nil {
					t.Fatal("object returned with error")
				}
				if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrCommitment) {
					t.Fatalf("byte %d bit %d: untyped error %v", i, bit, err)
				}
			}
		}
		for cut := range len(raw) {
			if _, err := open(headerEncoding.EncodeToString(raw[:cut]), dek, "bucket", "a/b"); err == nil {
				t.Fatalf("header truncated to %d bytes opened", cut)
			}
		}
	})
}

func TestReseal(t *testing.T) {
	dek, dek2 := newDEK(t), newDEK(t)
	plain := randBytes(15, S+3)
	o, body := sealSingle(t, dek, "src", "k1", plain)
	ki2 := KeyInfo{KeyID: "other-key", Wrapped: []byte("wrapped-2")}
	hv2, err := o.Reseal(dek2, ki2, "dst", "k2", []byte("new meta"))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ParseHeader(hv2)
	if err != nil {
		t.Fatal(err)
	}
	if ki := h2.KeyInfo(); ki.KeyID != "other-key" || string(ki.Wrapped) != "wrapped-2" {
		t.Fatalf("KeyInfo %+v", ki)
	}
	if _, err := Open(h2, dek2, "src", "k1"); !errors.Is(err, ErrAuth) {
		t.Fatalf("resealed header opened at old path: %v", err)
	}
	if _, err := Open(h2, dek, "dst", "k2"); !errors.Is(err, ErrAuth) {
		t.Fatalf("resealed header opened with old dek: %v", err)
	}
	o2, err := Open(h2, dek2, "dst", "k2")
	if err != nil {
		t.Fatal(err)
	}
	if string(o2.Meta()) != "new meta" {
		t.Fatalf("meta %q", o2.Meta())
	}
	got, err := decryptAll(o2, body, int64(len(plain)))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("body under resealed header: %v", err)
	}
	// The metadata of one header cannot be spliced into another header of
	// the same object.
	raw1, _ := headerEncoding.DecodeString(o.HeaderValue())
	h1, _ := ParseHeader(o.HeaderValue())
	raw3, _ := o.Reseal(dek, testKI, "src", "k1", []byte(`{"m":2}`))
	h3, _ := ParseHeader(raw3)
	spliced := append(bytes.Clone(raw1[:len(raw1)-len(h1.sealedMeta)-NonceSize]), append(bytes.Clone(h3.metaNonce), h3.sealedMeta...)...)
	hs, err := ParseHeader(headerEncoding.EncodeToString(spliced))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(hs, dek, "src", "k1"); !errors.Is(err, ErrAuth) {
		t.Fatalf("spliced metadata opened: %v", err)
	}
}

func TestHeaderLimits(t *testing.T) {
	dek := newDEK(t)
	ki := KeyInfo{KeyID: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", Wrapped: make([]byte, 184)}
	// With a realistic AWS key id and wrapped key, ~1.1 KB of metadata fits.
	o, err := NewObject(dek, ki, "b", "k", LayoutSingle, make([]byte, 1100))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(o.HeaderValue()); n > MaxHeaderValueLen {
		t.Fatalf("header value %d bytes", n)
	}
	if _, err := NewObject(dek, ki, "b", "k", LayoutSingle, make([]byte, 1200)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized metadata: %v, want ErrTooLarge", err)
	}
	if _, err := NewObject(dek[:16], ki, "b", "k", LayoutSingle, nil); !errors.Is(err, ErrKeySize) {
		t.Fatalf("short dek: %v", err)
	}
	if _, err := NewObject(dek, ki, "b", "k", Layout(9), nil); !errors.Is(err, ErrLayout) {
		t.Fatalf("bad layout: %v", err)
	}
	// The value is a valid HTTP header value: base64url, no padding.
	for _, c := range o.HeaderValue() {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Fatalf("header value has %q", c)
		}
	}
}
