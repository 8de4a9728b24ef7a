package envelope

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Format version 3 (FORMAT.md 12): version 2 with a meaningful flags byte.

// rawHeader decodes a header value to its bytes.
func rawHeader(t *testing.T, value string) []byte {
	t.Helper()
	raw, err := headerEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestVersionSelection: no flag writes version 2 exactly as before; any
// flag writes version 3 with it in the flags byte, in the object header and
// in the part header.
func TestVersionSelection(t *testing.T) {
	dek := newDEK(t)
	upload := must(NewUploadID())
	for _, tc := range []struct {
		cfg     Config
		version int
		flags   Flags
	}{
		{Config{}, 2, 0},
		{Config{Flags: FlagAsymmetricWrap}, 3, FlagAsymmetricWrap},
		{Config{version: 3}, 3, 0},
	} {
		o, err := tc.cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, []byte(`{"s":0}`))
		if err != nil {
			t.Fatal(err)
		}
		h := must(ParseHeader(o.HeaderValue()))
		raw := rawHeader(t, o.HeaderValue())
		if h.Version() != tc.version || h.Flags() != tc.flags || o.Version() != tc.version || o.Flags() != tc.flags ||
			raw[4] != byte(tc.version) || raw[5] != byte(tc.flags) {
			t.Fatalf("%+v: header version %d flags %#x, bytes % x", tc.cfg, h.Version(), h.Flags(), raw[:6])
		}
		if got := h.KeyInfo().Flags; got != tc.flags&FlagAsymmetricWrap {
			t.Fatalf("%+v: KeyInfo flags %#x", tc.cfg, got)
		}
		p, err := tc.cfg.NewPart(dek, testKI, "b", "k", upload, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		ph := must(ParsePartHeader(p.Header().Bytes()))
		if ph.Version() != tc.version || ph.Flags() != tc.flags || ph.KeyInfo().Flags != tc.flags&FlagAsymmetricWrap {
			t.Fatalf("%+v: part header version %d flags %#x", tc.cfg, ph.Version(), ph.Flags())
		}
		o.Close()
		p.Close()
	}
	// A version 2 writer cannot carry a flag.
	if _, err := (Config{version: 2, Flags: FlagAsymmetricWrap}).NewObject(dek, testKI, "b", "k", LayoutSingle, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("v2 with a flag: %v", err)
	}
	if _, err := (Config{Flags: 0x80}).NewObject(dek, testKI, "b", "k", LayoutSingle, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("unknown flag: %v", err)
	}
}

// TestV3RoundTrip: a version 3 object with flags 0 (and one with the wrap
// flag, whose DEK the test holds in clear) round-trips, single and
// multipart, and its keys are version 3 keys: relabelled as version 2 it
// does not open.
func TestV3RoundTrip(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(5, 3*S+7)
	for _, cfg := range []Config{{version: 3}, {Flags: FlagAsymmetricWrap}} {
		o, err := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, []byte(`{"s":196615}`))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
		if err != nil || int64(len(body)) != CiphertextSize(int64(len(plain))) {
			t.Fatalf("encrypt: %v, %d bytes", err, len(body))
		}
		h := must(ParseHeader(o.HeaderValue()))
		r, err := Open(h, dek, "b", "k")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decryptAll(r, body, int64(len(plain))); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%+v: decrypt: %v", cfg, err)
		}
		if got, err := decryptRange(r, body, int64(len(plain)), S+3, S, 1000); err != nil || !bytes.Equal(got, plain[S+3:2*S+3]) {
			t.Fatalf("%+v: range: %v", cfg, err)
		}
		// A copy keeps the version and the flags the key info carries.
		v, err := r.Reseal(dek, h.KeyInfo(), "b2", "k2", []byte(`{"s":196615}`))
		if err != nil {
			t.Fatal(err)
		}
		if h2 := must(ParseHeader(v)); h2.Version() != 3 || h2.Flags() != h.Flags() {
			t.Fatalf("resealed: version %d flags %#x", h2.Version(), h2.Flags())
		}
		r.Close()

		// The version byte selects the keys: a v3 header (flags 0) put back
		// as version 2 does not open; with a flag it does not even parse.
		raw := rawHeader(t, o.HeaderValue())
		raw[4] = 2
		h2, err := ParseHeader(headerEncoding.EncodeToString(raw))
		if h.Flags() != 0 {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("v2 with flags parsed: %v", err)
			}
		} else if _, err := Open(h2, dek, "b", "k"); err == nil || !errors.Is(err, ErrAuth) {
			t.Fatalf("v3 relabelled v2 opened: %v", err)
		}
		o.Close()
	}

	// Multipart, version 3 parts with flags 0.
	u := newUpload(t, 3, "b", "k", []int{1, 2}, []int{S + 5, 9}, 1)
	meta := u.finalize(t)
	got, err := readObject(t, meta, u.body(), 2, u.open())
	if err != nil || !bytes.Equal(got, u.plain()) {
		t.Fatalf("v3 multipart: %v", err)
	}
}

// TestFlagsRefused: an unknown flag in a version 3 header, and any flag in
// a version 1 or 2 header, are refused when parsing (ErrFormat).
func TestFlagsRefused(t *testing.T) {
	dek := newDEK(t)
	upload := must(NewUploadID())
	for _, version := range []byte{1, 2, 3} {
		cfg := Config{version: version}
		o, err := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
		if err != nil {
			t.Fatal(err)
		}
		var up []byte
		if version >= 2 {
			up = upload
		}
		p, err := cfg.NewPart(dek, testKI, "b", "k", up, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		bad := []byte{0x04, 0x08, 0x10, 0x40, 0x80, 0xff}
		if version < 3 {
			bad = append(bad, byte(FlagCompressed), byte(FlagAsymmetricWrap))
		}
		for _, f := range bad {
			raw := rawHeader(t, o.HeaderValue())
			raw[5] = f
			if _, err := ParseHeader(headerEncoding.EncodeToString(raw)); !errors.Is(err, ErrFormat) {
				t.Fatalf("v%d object header flags %#x: %v", version, f, err)
			}
			pb := p.Header().Bytes()
			pb[5] = f
			if _, err := ParsePartHeader(pb); !errors.Is(err, ErrFormat) {
				t.Fatalf("v%d part header flags %#x: %v", version, f, err)
			}
		}
		o.Close()
		p.Close()
	}
}

// TestFlagFlipped: a flag set or cleared at the store fails authentication:
// the metadata AAD covers the object header's flags byte, the header tag
// the part header's.
func TestFlagFlipped(t *testing.T) {
	dek := newDEK(t)
	upload := must(NewUploadID())
	for _, cfg := range []Config{{version: 3}, {Flags: FlagAsymmetricWrap}} {
		o, err := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, []byte(`{"s":0}`))
		if err != nil {
			t.Fatal(err)
		}
		raw := rawHeader(t, o.HeaderValue())
		raw[5] ^= byte(FlagAsymmetricWrap)
		h, err := ParseHeader(headerEncoding.EncodeToString(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(h, dek, "b", "k"); !errors.Is(err, ErrAuth) {
			t.Fatalf("%+v: object header with a flipped flag: %v", cfg, err)
		}
		o.Close()

		p, err := cfg.NewPart(dek, testKI, "b", "k", upload, 3, 10)
		if err != nil {
			t.Fatal(err)
		}
		pb := p.Header().Bytes()
		pb[5] ^= byte(FlagAsymmetricWrap)
		ph, err := ParsePartHeader(pb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenPart(ph, dek, "b", "k", upload); !errors.Is(err, ErrAuth) {
			t.Fatalf("%+v: part header with a flipped flag: %v", cfg, err)
		}
		p.Close()
	}
}
