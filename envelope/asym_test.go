package envelope

import (
	"bytes"
	"errors"
	"testing"
)

// TestPendingKey: only an asymmetrically wrapped multipart header hands out
// its object key; OpenPending opens exactly that header with exactly that
// key, and a header whose flags byte was changed at the store fails the
// metadata AAD.
func TestPendingKey(t *testing.T) {
	dek, ki := goldenDEK(9)
	asym := ki
	asym.Flags = FlagAsymmetricWrap
	cfg := Config{Flags: FlagAsymmetricWrap}
	meta := []byte(`{"s":-1}`)

	single, err := cfg.NewObject(dek, asym, "b", "k", LayoutSingle, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := single.PendingKey(); !errors.Is(err, ErrLayout) {
		t.Fatalf("PendingKey of a single object: %v", err)
	}
	sym, err := NewObject(dek, ki, "b", "k", LayoutMultipart, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sym.PendingKey(); !errors.Is(err, ErrLayout) {
		t.Fatalf("PendingKey of a symmetric header: %v", err)
	}
	symH, _ := ParseHeader(sym.HeaderValue())

	o, err := cfg.NewObject(dek, asym, "b", "k", LayoutMultipart, meta)
	if err != nil {
		t.Fatal(err)
	}
	if o.KeyInfo().Flags != FlagAsymmetricWrap || o.Flags() != FlagAsymmetricWrap {
		t.Fatalf("new object: key info flags %#x, flags %#x", o.KeyInfo().Flags, o.Flags())
	}
	pk, err := o.PendingKey()
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(o.HeaderValue())
	if err != nil {
		t.Fatal(err)
	}
	po, err := Config{}.OpenPending(h, pk)
	if err != nil || !bytes.Equal(po.Meta(), meta) || po.Version() != FlagsVersion {
		t.Fatalf("OpenPending: %v", err)
	}
	// Resealed without any DEK of the writer's: the new header opens with
	// the DEK it is sealed under, for its path only.
	hv, err := po.Reseal(dek, asym, "b", "k", []byte(`{"s":-1,"mf":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	rh, _ := ParseHeader(hv)
	if _, err := Open(rh, dek, "b", "k"); err != nil {
		t.Fatalf("resealed header: %v", err)
	}
	if _, err := Open(rh, dek, "b", "other"); !errors.Is(err, ErrAuth) {
		t.Fatalf("resealed header at another key: %v", err)
	}

	wrong := bytes.Clone(pk)
	wrong[0] ^= 1
	if _, err := (Config{}).OpenPending(h, wrong); !errors.Is(err, ErrCommitment) {
		t.Fatalf("OpenPending with another key: %v", err)
	}
	if _, err := (Config{}).OpenPending(symH, pk); !errors.Is(err, ErrLayout) {
		t.Fatalf("OpenPending of a symmetric header: %v", err)
	}
	// Flags byte changed at the store: a known bit set on top (the
	// compressed bit, which a multipart object header may carry, FORMAT.md
	// 12.2.3) parses, and fails the metadata AAD when opened.
	raw, _ := headerEncoding.DecodeString(o.HeaderValue())
	raw[5] |= byte(FlagCompressed)
	fh, err := ParseHeader(headerEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Config{}).OpenPending(fh, pk); !errors.Is(err, ErrAuth) {
		t.Fatalf("multipart header with the compressed flag set at the store: %v", err)
	}
}
